//! `whittle quantize --no-slower` runs end to end: it times the result against the input,
//! reports every configuration it tried with its ratio, and writes a model onnxruntime
//! runs. (The decision itself is tested with injected timings in the CLI crate, since
//! real timings are noise at the digits model's ~10 µs.)
mod quantize_common;

use quantize_common::{agreement, f, quantize};
use whittle_tests::fixture;

#[test]
fn no_slower_reports_its_tries_and_writes_a_model_onnxruntime_runs() {
    let calib = fixture("digits_calib.npz");
    let q = quantize(
        &fixture("digits_cnn.onnx"),
        &[
            "--mode",
            "static",
            "--calib",
            calib.to_str().unwrap(),
            "--no-slower",
        ],
    );
    let d = &q.json["no_slower"];
    let tries = d["tries"].as_array().expect("tries");
    assert_eq!(tries[0]["kept_float"], "nothing", "{d}");
    assert!(f(&d["float_ms"]) > 0.0, "{d}");
    let speed = &q.json["speed"];
    assert_eq!(
        speed["float_ms"], d["float_ms"],
        "the speed check reuses the timing"
    );
    match d["chosen"].as_u64() {
        Some(k) => {
            let t = &tries[k as usize];
            assert!(f(&t["ratio"]) <= 1.0 + f(&d["tolerance"]), "{d}");
            assert_eq!(speed["quantized_ms"], t["quantized_ms"], "{d}");
        }
        None => {
            assert!(
                tries.iter().all(|t| t["ratio"]
                    .as_f64()
                    .is_none_or(|r| r > 1.0 + f(&d["tolerance"]))),
                "{d}"
            );
            assert_eq!(f(&speed["ratio"]), 1.0);
        }
    }
    assert!(
        q.notes().iter().any(|n| n.starts_with("--no-slower: ")),
        "{:?}",
        q.notes()
    );
    let outs = agreement(&fixture("digits_cnn.onnx"), &q.path, &[]);
    assert!(f(&outs[0]["top1_agreement"]) >= 0.9, "{outs:?}");
}
