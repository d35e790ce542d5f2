//! `whittle convert`: lossless by default, external/inline moves that onnxruntime accepts,
//! and clear one-line errors that never leave a partial output.
use std::path::{Path, PathBuf};
use whittle_tests::{fixture, fixture_models, python_json, whittle};

/// Fixtures onnxruntime can run (see fixtures/README.md).
fn runnable() -> Vec<PathBuf> {
    fixture_models()
        .into_iter()
        .filter(|p| !p.ends_with("dtype_zoo.onnx"))
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_fails_cleanly(out: &std::process::Output, needles: &[&str], not_written: &Path) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
    assert!(
        !not_written.exists(),
        "{} was written",
        not_written.display()
    );
}

#[test]
fn convert_without_flags_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for src in fixture_models() {
        let out = dir.path().join(src.file_name().unwrap());
        let r = whittle!("convert", &src, "-o", &out);
        assert!(r.status.success(), "{}: {}", src.display(), stderr(&r));
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&src).unwrap(),
            "{}",
            src.display()
        );
    }
    let data = "external_mlp.onnx.data";
    assert_eq!(
        std::fs::read(dir.path().join(data)).unwrap(),
        std::fs::read(fixture(data)).unwrap()
    );
}

#[test]
fn converted_models_run_in_onnxruntime_with_equal_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for (k, mode) in [
        vec![],
        vec!["--external-data", "256"],
        vec!["--inline-data"],
    ]
    .iter()
    .enumerate()
    {
        for src in runnable() {
            let out = dir.path().join(format!(
                "m{k}-{}",
                src.file_name().unwrap().to_string_lossy()
            ));
            let mut args: Vec<std::ffi::OsString> = vec![
                "convert".into(),
                src.clone().into(),
                "-o".into(),
                out.clone().into(),
            ];
            args.extend(mode.iter().map(Into::into));
            let r = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &args);
            assert!(
                r.status.success(),
                "{mode:?} {}: {}",
                src.display(),
                stderr(&r)
            );
            let res = python_json(
                "ort_run_compare.py",
                &[
                    src.as_os_str(),
                    out.as_os_str(),
                    "--seed".as_ref(),
                    "7".as_ref(),
                ],
            );
            let res = res.unwrap_or_else(|e| panic!("{mode:?} {}: {e}", src.display()));
            assert_eq!(res["ok"], true, "{mode:?} {}: {res}", src.display());
        }
    }
    // --external-data moved the big MLP weights out; --inline-data pulled them in.
    assert!(dir.path().join("m1-external_mlp.onnx.data").exists());
    assert!(dir.path().join("m1-digits_cnn.onnx.data").exists());
    assert!(!dir.path().join("m2-external_mlp.onnx.data").exists());
}

#[test]
fn refuses_to_overwrite_inputs_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("external_mlp.onnx");
    std::fs::copy(fixture("external_mlp.onnx"), &model).unwrap();
    std::fs::copy(
        fixture("external_mlp.onnx.data"),
        dir.path().join("external_mlp.onnx.data"),
    )
    .unwrap();
    let before = std::fs::read(&model).unwrap();
    let r = whittle!("convert", &model, "-o", &model);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("refusing to overwrite an input file"),
        "{}",
        stderr(&r)
    );
    // Another model in the same folder: keeping the external layout would rewrite the
    // input's data file, so the copy gets its own `copy.onnx.data` (same offsets).
    let data_before = std::fs::read(dir.path().join("external_mlp.onnx.data")).unwrap();
    let other = dir.path().join("copy.onnx");
    let r = whittle!("convert", &model, "-o", &other);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(dir.path().join("copy.onnx.data")).unwrap(),
        data_before
    );
    assert_eq!(
        std::fs::read(dir.path().join("external_mlp.onnx.data")).unwrap(),
        data_before
    );
    let copy = whittle_ir::Model::load(&other).unwrap();
    let original = whittle_ir::Model::load(&model).unwrap();
    let hashes = |m: &whittle_ir::Model| {
        m.graph
            .initializers
            .iter()
            .map(|t| t.content_hash())
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&copy), hashes(&original));
    assert!(copy.graph.initializers.iter().any(|t| t.is_external()));
    let r = whittle!("convert", &model, "-o", &model, "--force");
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let missing = dir.path().join("missing.onnx");
    assert_fails_cleanly(
        &whittle!("convert", &missing, "-o", &out),
        &["missing.onnx", "cannot read"],
        &out,
    );

    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf at all \xff\xff\xff\xff").unwrap();
    assert_fails_cleanly(
        &whittle!("convert", &garbage, "-o", &out),
        &["garbage.onnx", "not"],
        &out,
    );

    let bytes = std::fs::read(fixture("digits_cnn.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_cleanly(
        &whittle!("convert", &truncated, "-o", &out),
        &["truncated.onnx"],
        &out,
    );

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert_fails_cleanly(
        &whittle!("convert", &empty, "-o", &out),
        &["empty.onnx", "empty"],
        &out,
    );

    // IR version 99: field 1 (varint) = 99, then a graph (field 7, empty).
    let future = dir.path().join("future.onnx");
    std::fs::write(&future, [0x08, 99, 0x3a, 0x00]).unwrap();
    assert_fails_cleanly(
        &whittle!("convert", &future, "-o", &out),
        &["future.onnx", "unsupported IR version 99"],
        &out,
    );

    // An external location that leaves the model's folder.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let model = std::fs::read(fixture("external_mlp.onnx")).unwrap();
    let escaped = replace(&model, b"external_mlp.onnx.data", b"../xternal_mlp.onnx.da");
    let evil = sub.join("evil.onnx");
    std::fs::write(&evil, escaped).unwrap();
    assert_fails_cleanly(
        &whittle!("convert", &evil, "-o", &out),
        &["evil.onnx", "leaves the model's folder"],
        &out,
    );

    // A data file too short for the recorded offsets.
    let short = dir.path().join("short");
    std::fs::create_dir(&short).unwrap();
    std::fs::write(short.join("m.onnx"), &model).unwrap();
    std::fs::write(short.join("external_mlp.onnx.data"), b"tiny").unwrap();
    assert_fails_cleanly(
        &whittle!("convert", short.join("m.onnx"), "-o", &out),
        &["m.onnx", "past the end"],
        &out,
    );
}

/// Replaces every occurrence of `from` by `to` (same length, so protobuf lengths still hold).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn a_full_disk_leaves_the_previous_output_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    std::fs::write(&out, b"previous output").unwrap();
    // A 16 KiB file size limit: the 20 KiB digits model cannot be written.
    let cmd = format!(
        "ulimit -f 16; exec '{}' convert '{}' -o '{}' --force",
        env!("CARGO_BIN_EXE_whittle-e2e"),
        fixture("digits_cnn.onnx").display(),
        out.display()
    );
    let r = std::process::Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap();
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("out.onnx") && err.contains("File too large"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"previous output");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out.onnx"]);
}

/// A model with one `mib` MiB initializer, written through the IR.
fn big_model(path: &Path, mib: usize) {
    use whittle_ir::proto::{
        GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto,
    };
    let w = whittle_ir::Tensor::new_raw(
        "w",
        whittle_ir::DataType::FLOAT,
        vec![(mib * 1024 * 256) as i64],
        bytes::Bytes::from(vec![0u8; mib << 20]),
    );
    let graph = GraphProto {
        name: Some("big".into()),
        output: vec![ValueInfoProto {
            name: Some("y".into()),
            ..Default::default()
        }],
        node: vec![NodeProto {
            input: vec!["w".into()],
            output: vec!["y".into()],
            op_type: Some("Identity".into()),
            ..Default::default()
        }],
        initializer: vec![w.proto],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(graph),
        ..Default::default()
    };
    use whittle_ir::proto::Message;
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

#[test]
fn an_interrupted_convert_leaves_the_previous_output_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.onnx");
    big_model(&src, 384);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("out.onnx");
    let mut interrupted = 0;
    for delay_ms in [30, 80, 150, 300, 600] {
        std::fs::write(&out, b"previous output").unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_whittle-e2e"))
            .args([
                "convert".as_ref(),
                src.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
                "--external-data".as_ref(),
                "1".as_ref(),
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let r = child.wait_with_output().unwrap();
        // Whatever the timing: the output is the previous one or the complete new one
        // (a signal after the final rename), never half-written; never a stray temporary file.
        let previous = std::fs::read(&out).unwrap() == b"previous output";
        match r.status.code() {
            Some(0) => assert!(whittle_ir::Model::load(&out).is_ok()),
            Some(130) => {
                interrupted += usize::from(previous);
                assert!(
                    previous || whittle_ir::Model::load(&out).is_ok(),
                    "{}",
                    stderr(&r)
                );
            }
            other => panic!("exit {other:?}: {}", stderr(&r)),
        }
        let stray: Vec<_> = std::fs::read_dir(&out_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "after {delay_ms} ms: {stray:?}");
    }
    eprintln!("{interrupted} of 5 runs were interrupted mid-way");
}
