//! `whittle quantize --check-speed` times the result against the input on the same runtime
//! and reports the ratio (a slower quantized model is reported, not hidden).
use whittle_tests::{fixture, whittle};

#[test]
fn check_speed_reports_both_latencies_and_their_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.onnx");
    let r = whittle!(
        "quantize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out,
        "--mode",
        "weight",
        "--check-speed",
        "--json"
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let speed = &json["speed"];
    let (f, q, ratio) = (
        speed["float_ms"].as_f64().unwrap(),
        speed["quantized_ms"].as_f64().unwrap(),
        speed["ratio"].as_f64().unwrap(),
    );
    assert!(f > 0.0 && q > 0.0, "{speed}");
    assert!((ratio - q / f).abs() < 1e-9, "{speed}");
    assert_eq!(
        speed["backend"], "onnxruntime",
        "the test venv provides onnxruntime"
    );
    let r = whittle!(
        "quantize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out,
        "--mode",
        "weight",
        "--check-speed",
        "--force"
    );
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("speed (onnxruntime, batch 1, median of 20 runs): input "),
        "{stdout}"
    );
    let r = whittle!(
        "quantize",
        fixture("digits_cnn.onnx"),
        "-o",
        dir.path().join("n.onnx"),
        "--mode",
        "weight",
        "--json"
    );
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(json["speed"].is_null(), "no timing without --check-speed");
}
