//! `whittle quantize --mode dynamic` and `--mode static`: the written forms run in
//! onnxruntime, keep the digits accuracy, and static mode loses no more accuracy than
//! onnxruntime's own `quantize_static` with the same calibration set and options.
mod quantize_common;

use quantize_common::*;
use whittle_tests::{fixture, python_json};

fn ort_accuracy(model: &std::path::Path) -> f64 {
    let data = fixture("digits_test.npz");
    let r = python_json("ort_eval.py", &[model.as_os_str(), data.as_os_str()]).unwrap();
    f(&r["accuracy"])
}

#[test]
fn dynamic_writes_matmulinteger_and_leaves_conv_float_unless_asked() {
    let src = fixture("digits_cnn.onnx");
    let q = quantize(&src, &["--mode", "dynamic"]);
    let s = q.statuses();
    assert!(
        s.iter().any(|(n, st, form)| n.contains("\"fc\"")
            && st == "quantized"
            && form.contains("MatMulInteger (uint8 × int8")),
        "{s:?}"
    );
    assert!(
        s.iter()
            .filter(|(n, _, _)| n.contains("conv"))
            .all(|(_, st, why)| st == "skipped" && why.contains("--conv-integer")),
        "{s:?}"
    );
    assert!(ort_accuracy(&q.path) >= 0.98);
    let q = quantize(&src, &["--mode", "dynamic", "--conv-integer"]);
    assert!(
        q.statuses().iter().all(|(_, st, _)| st == "quantized"),
        "{:?}",
        q.statuses()
    );
    assert_eq!(f(&q.report()["coverage"]["integer_coverage"]), 1.0);
    assert!(ort_accuracy(&q.path) >= 0.98);
    for (model, args) in [
        ("attention.onnx", vec!["--mode", "dynamic"]),
        (
            "external_mlp.onnx",
            vec!["--mode", "dynamic", "--asymmetric"],
        ),
        (
            "external_mlp.onnx",
            vec!["--mode", "dynamic", "--dtype", "uint8", "--per-tensor"],
        ),
    ] {
        let q = quantize(&fixture(model), &args);
        let out = agreement(
            &fixture(model),
            &q.path,
            &["--shape", "batch=2", "--shape", "seq=3", "--samples", "4"],
        );
        assert!(f(&out[0]["snr_db"]) > 30.0, "{model} {args:?}: {out:?}");
    }
    // float16 models are left alone, with the reason.
    let q = quantize(&fixture("fp16_mlp.onnx"), &["--mode", "dynamic"]);
    assert!(
        q.statuses()
            .iter()
            .all(|(_, st, why)| st == "skipped" && why.contains("float32")),
        "{:?}",
        q.statuses()
    );
}

#[test]
fn static_qdq_keeps_digits_accuracy_like_onnxruntime_quantize_static() {
    let src = fixture("digits_cnn.onnx");
    let calib = fixture("digits_calib.npz");
    let float = ort_accuracy(&src);
    let q = quantize(
        &src,
        &["--mode", "static", "--calib", calib.to_str().unwrap()],
    );
    let s = q.statuses();
    assert_eq!(s.len(), 5, "{s:?}");
    assert!(s.iter().all(|(_, st, _)| st == "quantized"), "{s:?}");
    assert_eq!(f(&q.report()["coverage"]["integer_coverage"]), 1.0);
    assert!(
        q.notes().iter().any(|n| n.contains("folded 2 Relu")),
        "{:?}",
        q.notes()
    );
    let ours = ort_accuracy(&q.path);
    let dir = tempfile::tempdir().unwrap();
    let theirs_path = dir.path().join("ort_static.onnx");
    python_json(
        "ort_quantize_ref.py",
        &[
            src.as_os_str(),
            theirs_path.as_os_str(),
            "--mode".as_ref(),
            "static".as_ref(),
            "--calib".as_ref(),
            calib.as_os_str(),
            "--per-channel".as_ref(),
        ],
    )
    .unwrap();
    let theirs = ort_accuracy(&theirs_path);
    assert!(
        ours >= theirs - 1e-9,
        "whittle {ours} < onnxruntime {theirs} (float {float})"
    );
    assert!(ours >= float - 0.01, "whittle {ours} vs float {float}");
    // The CLI measured its own error on the calibration set, per layer too.
    let err = &q.json["error"];
    assert_eq!(err["layers"].as_array().map(Vec::len), Some(5), "{err}");
    assert!(f(&err["outputs"][0]["top1_agreement"]) >= 0.98, "{err}");
}

#[test]
fn every_calibration_method_gives_a_model_that_runs() {
    let src = fixture("digits_cnn.onnx");
    let calib = fixture("digits_calib.npz");
    for method in ["minmax", "percentile", "entropy", "mse"] {
        let q = quantize(
            &src,
            &[
                "--mode",
                "static",
                "--calib",
                calib.to_str().unwrap(),
                "--calib-method",
                method,
            ],
        );
        let acc = ort_accuracy(&q.path);
        assert!(acc >= 0.95, "{method}: accuracy {acc}");
    }
    // Without the clean-up the BatchNorms stay float between the quantized ops.
    let q = quantize(
        &src,
        &[
            "--mode",
            "static",
            "--calib",
            calib.to_str().unwrap(),
            "--no-optimize",
        ],
    );
    assert!(ort_accuracy(&q.path) >= 0.97);
}

#[test]
fn static_text_snapshot() {
    let calib = fixture("digits_calib.npz");
    // Tract calibrates, whether or not onnxruntime is installed: the two round the ranges
    // differently in the last bits, and the snapshot holds the scales' hashes.
    let q = quantize(
        &fixture("digits_cnn.onnx"),
        &[
            "--mode",
            "static",
            "--calib",
            calib.to_str().unwrap(),
            "--runtime",
            "tract",
        ],
    );
    let m = whittle_ir::Model::load(&q.path).unwrap();
    insta::assert_snapshot!("digits_static_qdq", whittle_ir::text::model_to_text(&m));
}

#[test]
fn a_bad_calibration_file_is_named_and_nothing_is_written() {
    // The file is read on a background thread while the model loads (and, with
    // onnxruntime, while the library loads): its errors still name it, once, and stop the
    // command before anything is written.
    let src = fixture("digits_cnn.onnx");
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.npz");
    std::fs::write(&corrupt, b"not a zip archive").unwrap();
    let missing = dir.path().join("missing.npz");
    let out = dir.path().join("out.onnx");
    for runtime in ["tract", "onnxruntime"] {
        for (calib, why) in [
            (&corrupt, "not a readable .npz"),
            (&missing, "No such file"),
        ] {
            let err = quantize_fails(&[
                src.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--mode",
                "static",
                "--runtime",
                runtime,
                "--calib",
                calib.to_str().unwrap(),
            ]);
            let name = calib.display().to_string();
            assert!(err.contains(why), "{runtime}: {err}");
            assert_eq!(err.matches(&name).count(), 1, "{runtime}: {err}");
            assert!(!out.exists(), "{runtime}: wrote {}", out.display());
        }
    }
}

#[test]
fn calibration_prefers_onnxruntime_for_models_that_gain_and_otherwise_tract() {
    let note = |json: &serde_json::Value| {
        json["notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str())
            .find(|n| n.starts_with("calibrated"))
            .unwrap_or_default()
            .to_string()
    };
    // The digits CNN (22 KB) calibrates on tract: loading onnxruntime costs more than it saves.
    let digits_calib = fixture("digits_calib.npz");
    let digits = [
        "--mode",
        "static",
        "--calib",
        digits_calib.to_str().unwrap(),
    ];
    let tiny = quantize(&fixture("digits_cnn.onnx"), &digits);
    assert!(note(&tiny.json).contains("(tract)"), "{}", note(&tiny.json));
    // PP-OCR cls (585 KB) calibrates on onnxruntime, found in the test venv; the error report
    // keeps the runtime asked for (tract by default).
    let Some(cls) =
        whittle_tests::corpus_or_skip("rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("cls.npz");
    let x: Vec<f32> = (0..4 * 3 * 48 * 192)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let x =
        whittle_runtime::HostTensor::new(vec![4, 3, 48, 192], whittle_runtime::TensorData::F32(x))
            .unwrap();
    whittle_runtime::write_npz(&calib, &[("x".to_string(), x)], Default::default()).unwrap();
    let args = ["--mode", "static", "--calib", calib.to_str().unwrap()];
    let auto = quantize(&cls, &args);
    assert!(note(&auto.json).contains("(ort)"), "{}", note(&auto.json));
    assert_eq!(auto.json["error"]["backend"], "tract");
    let asked = quantize(&cls, &[&args[..], &["--runtime", "tract"]].concat());
    assert!(
        note(&asked.json).contains("(tract)"),
        "{}",
        note(&asked.json)
    );
    // Without a usable library (missing, or named as older than the backend's floor),
    // tract calibrates and nothing fails.
    let old = dir.path().join("libonnxruntime.so.1.20.0");
    std::fs::write(&old, b"not loaded").unwrap();
    for lib in [dir.path().join("no-such-library.so"), old] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_whittle-e2e"))
            .args(["quantize", cls.to_str().unwrap(), "-o"])
            .arg(dir.path().join("q.onnx"))
            .args(args)
            .args(["--json", "--force"])
            .env("WHITTLE_ORT_LIB", &lib)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            note(&json).contains("(tract)"),
            "{}: {}",
            lib.display(),
            note(&json)
        );
    }
}
