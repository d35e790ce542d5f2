//! Hostile inputs: each is refused with one exact, clear line on stderr and exit code 1,
//! before memory is allocated for what it declares; nothing is written.
use std::path::Path;
use whittle_ir::proto::{
    GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, ValueInfoProto,
};
use whittle_tests::whittle;

/// A model whose one initializer `w` (an Identity's input) is `tensor`.
fn model_with(tensor: TensorProto) -> Vec<u8> {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                input: vec!["w".into()],
                output: vec!["y".into()],
                op_type: Some("Identity".into()),
                ..Default::default()
            }],
            initializer: vec![tensor],
            output: vec![ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn f32_tensor(dims: Vec<i64>, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some("w".into()),
        data_type: Some(1),
        dims,
        raw_data: Some(raw.into()),
        ..Default::default()
    }
}

fn external(location: &str, offset: u64, length: u64) -> TensorProto {
    let kv = |k: &str, v: String| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    TensorProto {
        name: Some("w".into()),
        data_type: Some(1),
        dims: vec![4],
        external_data: vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", length.to_string()),
        ],
        data_location: Some(1),
        ..Default::default()
    }
}

/// Runs `inspect` and `convert` on `model`; both must fail with exactly `expected` (after
/// `error: <path>: `) and write nothing.
fn refused(dir: &Path, bytes: &[u8], expected: &str) {
    let model = dir.join("m.onnx");
    std::fs::write(&model, bytes).unwrap();
    let out = dir.join("out.onnx");
    for r in [
        whittle!("inspect", &model),
        whittle!("convert", &model, "-o", &out),
    ] {
        let err = String::from_utf8_lossy(&r.stderr).into_owned();
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert_eq!(err, format!("error: {}: {expected}\n", model.display()));
        assert!(!out.exists());
    }
}

#[test]
fn declared_dims_past_the_data() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &model_with(f32_tensor(vec![1000], vec![0; 8])),
        "tensor \"w\": dims [1000] of f32 need 4000 bytes of data but 8 are stored",
    );
}

#[test]
fn dims_whose_product_overflows() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &model_with(f32_tensor(vec![1 << 40, 1 << 40], vec![0; 8])),
        "tensor \"w\": dims [1099511627776, 1099511627776] are negative or their product overflows",
    );
    refused(
        dir.path(),
        &model_with(f32_tensor(vec![-4], vec![])),
        "tensor \"w\": dims [-4] are negative or their product overflows",
    );
}

#[test]
fn external_length_of_2_pow_40() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.data"), [0u8; 16]).unwrap();
    refused(
        dir.path(),
        &model_with(external("w.data", 0, 1 << 40)),
        "tensor \"w\": external data offset 0 + length 1099511627776 is past the end of w.data (16 bytes)",
    );
    refused(
        dir.path(),
        &model_with(external("w.data", 12, 16)),
        "tensor \"w\": external data offset 12 + length 16 is past the end of w.data (16 bytes)",
    );
}

#[test]
fn external_locations_that_leave_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(dir.path().join("secret.data"), [0u8; 16]).unwrap();
    refused(
        &inner,
        &model_with(external("../secret.data", 0, 16)),
        "tensor \"w\": external data location \"../secret.data\" leaves the model's folder (\"..\")",
    );
    let abs = dir.path().join("secret.data");
    refused(
        &inner,
        &model_with(external(&abs.to_string_lossy(), 0, 16)),
        &format!(
            "tensor \"w\": external data location {:?} is absolute; it must be relative to the model's folder",
            abs.to_string_lossy()
        ),
    );
    std::os::unix::fs::symlink(&abs, inner.join("link.data")).unwrap();
    let real = abs.canonicalize().unwrap();
    refused(
        &inner,
        &model_with(external("link.data", 0, 16)),
        &format!(
            "tensor \"w\": external data location \"link.data\" resolves to {} outside the model's folder",
            real.display()
        ),
    );
}

#[test]
fn deep_nesting_is_refused_by_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = GraphProto {
        name: Some("leaf".into()),
        ..Default::default()
    };
    for i in 0..101 {
        let attr = whittle_ir::proto::AttributeProto {
            name: Some("then_branch".into()),
            r#type: Some(5),
            g: Some(g),
            ..Default::default()
        };
        let node = NodeProto {
            op_type: Some("If".into()),
            attribute: vec![attr],
            ..Default::default()
        };
        g = GraphProto {
            node: vec![node],
            name: Some(format!("g{i}")),
            ..Default::default()
        };
    }
    let bytes = ModelProto {
        ir_version: Some(8),
        graph: Some(g),
        ..Default::default()
    }
    .encode_to_vec();
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, bytes).unwrap();
    let r = whittle!("inspect", &model);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        err.starts_with(&format!(
            "error: {}: not a valid ONNX model (protobuf decode failed: ",
            model.display()
        )) && err.contains("recursion limit reached"),
        "{err}"
    );
}

#[test]
fn a_folder_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let r = whittle!("inspect", dir.path());
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        format!(
            "error: {}: is a folder, not a model file\n",
            dir.path().display()
        )
    );
}

#[test]
fn a_model_past_2_gib_is_written_with_external_data_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    // 2 GiB + 4 KiB of zeros inline: protobuf cannot encode it as one message.
    let n = (1usize << 31) + 4096;
    let small = model_with(f32_tensor(vec![1], vec![0; 4]));
    let mut m = whittle_ir::Model::decode(small.into(), None, Path::new("big.onnx")).unwrap();
    m.graph.initializers[0].proto.dims = vec![(n / 4) as i64];
    m.graph.initializers[0].set_raw(bytes::Bytes::from(vec![0u8; n]));
    let out = dir.path().join("big.onnx");
    let report = whittle_ir::save(&m, &out, &whittle_ir::SaveOptions::default()).unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("past protobuf's 2 GiB limit")),
        "{:?}",
        report.notes
    );
    assert_eq!(report.data_files.len(), 1);
    let back = whittle_ir::Model::load(&out).unwrap();
    let t = &back.graph.initializers[0];
    assert!(t.is_external());
    assert_eq!(t.external.as_ref().map(|b| b.len()), Some(n));
}
