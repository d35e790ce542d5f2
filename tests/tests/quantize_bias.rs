//! `whittle quantize --bias-correction` on the digits fixture: with weights coarse enough
//! for the bias error to show (int4 per tensor; int8 per tensor in static mode), the output
//! error against the float model measured on the calibration set shrinks, test accuracy is
//! not worse, every layer is corrected, and the result runs in onnxruntime.
mod quantize_common;

use quantize_common::{Quantized, agreement, f, quantize};
use whittle_tests::{eval_accuracy, fixture};

fn digits(args: &[&str]) -> Quantized {
    let calib = fixture("digits_calib.npz");
    let mut all = vec!["--calib", calib.to_str().unwrap()];
    all.extend_from_slice(args);
    quantize(&fixture("digits_cnn.onnx"), &all)
}

/// Mean |quantized − float| of the logits over the calibration set (the `error` report).
fn output_error(q: &Quantized) -> f64 {
    f(&q.json["error"]["outputs"][0]["mean_abs"])
}

fn compare(args: &[&str]) {
    let plain = digits(args);
    let mut with: Vec<&str> = args.to_vec();
    with.push("--bias-correction");
    let corrected = digits(&with);
    let entries = corrected.report()["bias_correction"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "conv1, conv2, fc: {entries:?}");
    assert!(
        entries.iter().all(|e| e["corrected"] == true),
        "{entries:?}"
    );
    assert!(
        plain.report().get("bias_correction").is_none(),
        "no entries without the flag"
    );
    let (before, after) = (output_error(&plain), output_error(&corrected));
    assert!(
        after < 0.8 * before,
        "{args:?}: output error {before} → {after} with bias correction"
    );
    let test = fixture("digits_test.npz");
    let (acc_plain, acc_corrected) = (
        eval_accuracy!(&plain.path, &test),
        eval_accuracy!(&corrected.path, &test),
    );
    assert!(
        acc_corrected >= acc_plain,
        "{args:?}: accuracy {acc_plain} → {acc_corrected}"
    );
    // onnxruntime loads and runs the corrected model.
    let outs = agreement(&fixture("digits_cnn.onnx"), &corrected.path, &[]);
    assert!(!outs.is_empty());
}

#[test]
fn weight_int4_per_tensor_error_shrinks_and_accuracy_holds() {
    compare(&["--mode", "weight", "--dtype", "int4", "--per-tensor"]);
}

#[test]
fn static_int8_per_tensor_error_shrinks_and_accuracy_holds() {
    compare(&["--mode", "static", "--per-tensor"]);
}

#[test]
fn bias_correction_needs_a_calibration_set_and_a_weight_or_static_mode() {
    let src = fixture("digits_cnn.onnx");
    let src = src.to_str().unwrap();
    let err = quantize_common::quantize_fails(&[src, "--bias-correction"]);
    assert!(err.contains("--calib"), "{err}");
    let err = quantize_common::quantize_fails(&[
        src,
        "--mode",
        "dynamic",
        "--bias-correction",
        "--calib",
        "x.npz",
    ]);
    assert!(err.contains("--mode weight or --mode static"), "{err}");
}
