//! Error cases of the executing commands: each is exit 1 with one message that says what to
//! do, never a panic.
use std::process::Command;
use whittle_proto::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
use whittle_proto::{
    GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto, type_proto,
};
use whittle_runtime::read_npz;
use whittle_tests::{fixture, whittle};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_onnxruntime_library_says_how_to_point_to_one() {
    let out = whittle!(
        "run",
        fixture("digits_cnn.onnx"),
        "--shape",
        "N=1",
        "--runtime",
        "onnxruntime",
        "--ort-lib",
        "/nonexistent/libonnxruntime.so.1.32.0"
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("--ort-lib /nonexistent/libonnxruntime.so.1.32.0: no such file or folder"),
        "{e}"
    );
    assert!(
        e.contains("point to one with --ort-lib PATH or the WHITTLE_ORT_LIB environment variable"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    // the same through the environment variable
    let out = Command::new(env!("CARGO_BIN_EXE_whittle-e2e"))
        .args(["eval", "--runtime", "onnxruntime", "--data"])
        .arg(fixture("digits_test.npz"))
        .arg(fixture("digits_cnn.onnx"))
        .env("WHITTLE_ORT_LIB", "/nonexistent/lib")
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("WHITTLE_ORT_LIB /nonexistent/lib: no such file or folder"),
        "{e}"
    );
    // a file that is no library: dlopen's reason is shown
    let out = whittle!(
        "run",
        fixture("digits_cnn.onnx"),
        "--shape",
        "N=1",
        "--runtime",
        "onnxruntime",
        "--ort-lib",
        fixture("digits_cnn.onnx")
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("dlopen failed") && e.contains("--ort-lib PATH"),
        "{e}"
    );
}

fn input(name: &str, dims: &[Option<&str>]) -> ValueInfoProto {
    let dim = |d: &Option<&str>| Dimension {
        value: match d {
            Some(s) => match s.parse::<i64>() {
                Ok(v) => Some(DimValue::DimValue(v)),
                Err(_) => Some(DimValue::DimParam(s.to_string())),
            },
            None => None,
        },
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(dim).collect(),
                }),
            })),
        }),
        ..Default::default()
    }
}

#[test]
fn unknown_dims_are_all_listed_with_the_flag_to_give() {
    // y = a + b with a: [N, 4] and b: [N, ?]
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("add".into()),
            node: vec![NodeProto {
                op_type: Some("Add".into()),
                input: vec!["a".into(), "b".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![
                input("a", &[Some("N"), Some("4")]),
                input("b", &[Some("N"), None]),
            ],
            output: vec![input("y", &[Some("N"), Some("4")])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("add.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let out = whittle!("run", &path);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("3 input dim(s) need a value"), "{e}");
    assert!(
        e.contains("input \"a\" dim 0 (\"N\") needs a value: pass --shape a=<N>x4"),
        "{e}"
    );
    assert!(
        e.contains("input \"b\" dim 0 (\"N\") needs a value: pass --shape b=<N>x<d1>"),
        "{e}"
    );
    assert!(
        e.contains("input \"b\" dim 1 (unnamed) needs a value"),
        "{e}"
    );
    // the symbol fixes both N; b's unnamed dim is still missing
    let out = whittle!("bench", &path, "--shape", "N=2", "--runs", "1");
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("1 input dim(s) need a value") && e.contains("pass --shape b=2x<d1>"),
        "{e}"
    );
    for runtime in ["tract", "onnxruntime"] {
        let out = whittle!(
            "run",
            &path,
            "--shape",
            "N=2",
            "--shape",
            "b=2x4",
            "--runtime",
            runtime
        );
        assert!(out.status.success(), "{runtime}: {}", stderr(&out));
    }
}

#[test]
fn tract_gaps_name_op_and_node_and_suggest_onnxruntime() {
    let model = fixture("multi_domain.onnx");
    let out = whittle!("run", &model, "--shape", "batch=1");
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("tract cannot run this model (op FusedMatMul in node \"fused_matmul\")"),
        "{e}"
    );
    assert!(e.contains("--runtime onnxruntime"), "{e}");
    assert!(
        e.contains(&model.display().to_string()) && !e.contains("whittle-run-"),
        "names the user's file: {e}"
    );
    let out = whittle!(
        "run",
        &model,
        "--shape",
        "batch=1",
        "--runtime",
        "onnxruntime"
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // commands that do not execute the model still work on it
    let dir = tempfile::tempdir().unwrap();
    let out = whittle!("convert", &model, "-o", dir.path().join("copy.onnx"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn run_writes_outputs_atomically_and_never_over_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.npz");
    std::fs::copy(fixture("digits_test.npz"), &data).unwrap();
    let before = std::fs::read(&data).unwrap();
    let out = whittle!(
        "run",
        fixture("digits_cnn.onnx"),
        "--inputs",
        &data,
        "-o",
        &data
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("refusing to overwrite an input file"), "{e}");
    assert_eq!(std::fs::read(&data).unwrap(), before);
    let logits = dir.path().join("logits.npz");
    let out = whittle!(
        "run",
        fixture("digits_cnn.onnx"),
        "--inputs",
        &data,
        "-o",
        &logits
    );
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("note: array \"label\" is not an input of the model: ignored"),
        "{e}"
    );
    let saved = read_npz(&logits).unwrap();
    assert_eq!(
        (saved[0].0.as_str(), saved[0].1.shape()),
        ("logits", &[450usize, 10][..])
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}
