//! `whittle compress` on real CNNs from the corpus (PP-OCR cls and det, Paddle exports;
//! YOLOv8n from nudenet, a PyTorch export): the default weight-only int8 and static int8
//! with a calibration set shrink the file, stay close to the original, run in onnxruntime
//! (the table's onnxruntime latency is measured on the written model), and the table
//! states the speed verdict per runtime. Models whose input size is open are measured at
//! the calibration data's size.
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use whittle_tests::{compress_json, repo_root, venv_python};

fn corpus(rel: &str) -> PathBuf {
    let p = repo_root().join("corpus").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/fetch-corpus.sh`",
        p.display()
    );
    p
}

/// `whittle compress ARGS… --json`, which must succeed; returns the report.
fn compress(args: &[OsString]) -> Value {
    compress_json!(args)
}

/// `n` uniform [0, 1) samples of `shape` for input `name`, written by numpy.
fn calib(path: &Path, name: &str, n: usize, shape: &[usize]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let code = format!(
        "import numpy as np; np.savez({:?}, **{{{name:?}: \
         np.random.default_rng(0).random(({n}, {}), dtype=np.float32)}})",
        path.display().to_string(),
        dims.join(", ")
    );
    let out = std::process::Command::new(venv_python())
        .args(["-c", &code])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{out:?}");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The checks every corpus result must pass; `max_size` is the largest after/before file
/// size ratio accepted.
fn check_result(r: &Value, out: &Path, max_size: f64, min_cosine: f64) {
    let (b, a) = (&r["before"], &r["after"]);
    assert_eq!(
        f(&a["file_bytes"]) as u64,
        std::fs::metadata(out).unwrap().len()
    );
    assert!(
        f(&a["file_bytes"]) <= max_size * f(&b["file_bytes"]),
        "{} -> {} bytes",
        b["file_bytes"],
        a["file_bytes"]
    );
    assert!(
        f(&r["agreement"]["cosine"]) >= min_cosine,
        "{}",
        r["agreement"]
    );
    assert!(r["quantized_layers"].as_u64().unwrap() > 20, "{r}");
    // Both sides timed in both runtimes: the written model runs in onnxruntime.
    for side in [b, a] {
        assert!(side["tract_ms"].as_f64().is_some(), "{r}");
        assert!(side["ort_ms"].as_f64().is_some(), "{r}");
    }
    let speed = r["speed"].as_array().unwrap();
    assert_eq!(speed.len(), 2, "{r}");
    for v in speed {
        let slower = f(&v["ratio"]) > 1.10;
        assert_eq!(v["slower"].as_bool(), Some(slower), "{v}");
        assert_eq!(v["hint"].is_string(), slower, "{v}");
    }
}

#[test]
fn weight_only_int8_on_ppocr_cls_and_det() {
    let dir = tempfile::tempdir().unwrap();
    // The detector's probability map is ~0 everywhere on random inputs (max |Δ| 2e-6), so
    // its cosine is a ratio of tiny numbers: a looser floor there says nothing about text.
    for (model, shape, max_size, min_cosine) in [
        (
            "rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "x=1x3x48x192",
            0.4,
            0.999,
        ),
        (
            "rapidocr-onnxruntime/ch_PP-OCRv4_det_infer.onnx",
            "x=1x3x64x64",
            0.3,
            0.99,
        ),
    ] {
        let out = dir.path().join("w.onnx");
        let r = compress(&[
            corpus(model).into(),
            "-o".into(),
            out.clone().into(),
            "--shape".into(),
            shape.into(),
            "--force".into(),
        ]);
        assert_eq!(r["recipe"]["mode"], "weight", "{model}");
        check_result(&r, &out, max_size, min_cosine);
        // 16 seeded samples even though --shape pins the batch to 1.
        let on = r["agreement"]["inputs"].as_str().unwrap();
        assert!(on.starts_with("16 seeded samples"), "{on}");
        if model.contains("cls") {
            assert_eq!(f(&r["agreement"]["top1_agreement"]), 1.0, "{r}");
        }
    }
}

#[test]
fn static_int8_on_yolov8n_is_measured_at_the_calibration_size() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("calib.npz");
    calib(&npz, "images", 4, &[3, 320, 320]);
    let out = dir.path().join("s.onnx");
    let r = compress(&[
        corpus("nudenet/320n.onnx").into(),
        "-o".into(),
        out.clone().into(),
        "--calib".into(),
        npz.into(),
    ]);
    assert_eq!(r["recipe"]["mode"], "static");
    check_result(&r, &out, 0.3, 0.999);
    // [batch, 3, height, width]: counted and timed at 1x3x320x320, and said so.
    assert_eq!(r["before"]["macs"].as_u64(), Some(1_012_627_200), "{r}");
    let notes = r["notes"].to_string();
    assert!(notes.contains("--shape images=1x3x320x320"), "{notes}");
}

/// fp16 calibration taps every value, including the `Shape` outputs of Paddle's shape
/// arithmetic, which tract computes as symbolic dims (they used to fail the whole run with
/// "has dtype TDim"); they come back as int64 like in onnxruntime.
#[test]
fn fp16_on_ppocr_cls_calibrates_through_shape_values() {
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("calib.npz");
    calib(&npz, "x", 4, &[3, 48, 192]);
    let out = dir.path().join("h.onnx");
    let r = compress(&[
        corpus("rapidocr-onnxruntime/ch_ppocr_mobile_v2.0_cls_infer.onnx").into(),
        "-o".into(),
        out.clone().into(),
        "--quantize".into(),
        "fp16".into(),
        "--calib".into(),
        npz.into(),
        "--shape".into(),
        "x=1x3x48x192".into(),
    ]);
    check_result(&r, &out, 0.55, 0.9999);
    assert_eq!(f(&r["agreement"]["top1_agreement"]), 1.0, "{r}");
}
