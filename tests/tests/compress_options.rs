//! `whittle compress` with the options shared with `quantize` and `prune`: `--no-slower`
//! (the report is consistent with what was written, whatever the timings were),
//! `--bias-correction` and `--reconstruct` (each measured by compress itself, with and
//! without, on the digits fixture), and their one-line errors.
use serde_json::Value;
use std::ffi::OsStr;
use whittle_tests::{compress_json, fixture};

/// Accuracy after compressing digits with `flags` (plus -o, --calib and --eval).
fn after_accuracy(flags: &[&str]) -> (f64, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let (model, calib, eval) = (
        fixture("digits_cnn.onnx"),
        fixture("digits_calib.npz"),
        fixture("digits_test.npz"),
    );
    let mut args: Vec<&OsStr> = vec![
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--calib".as_ref(),
        calib.as_os_str(),
        "--eval".as_ref(),
        eval.as_os_str(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let r = compress_json!(&args);
    (r["after"]["accuracy"].as_f64().unwrap(), r)
}

#[test]
fn no_slower_reports_what_it_kept_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ns.onnx");
    let model = fixture("digits_cnn.onnx");
    let r = compress_json!(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--no-slower".as_ref(),
    ]);
    assert_eq!(r["recipe"]["no_slower"], Value::Bool(true));
    let d = &r["no_slower"];
    assert!(["onnxruntime", "tract"].contains(&d["runtime"].as_str().unwrap()));
    let tries = d["tries"].as_array().expect("the decision lists its tries");
    assert_eq!(
        tries[0]["kept_float"], "nothing",
        "the full quantization first"
    );
    let tolerance = d["tolerance"].as_f64().unwrap();
    let layers = r["quantized_layers"].as_u64().unwrap();
    let steps = r["steps"].to_string();
    let written = std::fs::read(&out).unwrap();
    let has_qdq = written
        .windows("DequantizeLinear".len())
        .any(|w| w == b"DequantizeLinear");
    match d["chosen"].as_u64() {
        // Kept a quantized configuration: it measured not slower, and the table says which.
        Some(k) => {
            let t = &tries[k as usize];
            assert!(t["ratio"].as_f64().unwrap() <= 1.0 + tolerance, "{d}");
            if k == 0 {
                assert!(steps.contains("full quantization kept"), "{steps}");
                assert!(layers > 0 && has_qdq);
            } else if layers == 0 {
                assert!(steps.contains("float model kept"), "{steps}");
                assert!(!has_qdq, "no layer quantized, yet QDQ nodes written");
            } else {
                let kept = t["kept_float"].as_str().unwrap();
                assert!(steps.contains(&format!("{kept} kept in float")), "{steps}");
            }
        }
        // Nothing quantized was faster: the float model is written, and said so.
        None => {
            assert!(steps.contains("float model kept"), "{steps}");
            assert_eq!(layers, 0);
            assert!(!has_qdq, "the float model has no QDQ nodes");
        }
    }
    // A verdict the table calls slower is explained by the search, not by a scheme hint.
    for v in r["speed"].as_array().unwrap() {
        if v["slower"] == Value::Bool(true) {
            assert!(v["hint"].as_str().unwrap().contains("--no-slower"), "{v}");
        }
    }
}

#[test]
fn bias_correction_does_not_lose_accuracy_on_int4() {
    let base = ["--quantize", "int4", "--mode", "weight"];
    let (without, r0) = after_accuracy(&base);
    let (with, r1) = after_accuracy(&[&base[..], &["--bias-correction"]].concat());
    assert!(r0["bias_corrected"].is_null());
    assert!(
        r1["bias_corrected"].as_u64().unwrap() > 0,
        "{}",
        r1["bias_corrected"]
    );
    assert_eq!(r1["recipe"]["bias_correction"], Value::Bool(true));
    assert!(with >= without, "with {with} < without {without}");
}

#[test]
fn gptq_rounds_every_layer_and_does_not_lose_accuracy_on_int4() {
    let base = ["--quantize", "int4", "--mode", "weight"];
    let (without, r0) = after_accuracy(&base);
    let (with, r1) = after_accuracy(&[&base[..], &["--gptq"]].concat());
    assert_eq!(r1["recipe"]["gptq"], Value::Bool(true));
    assert!(r0["recipe"].get("gptq").is_none(), "{}", r0["recipe"]);
    assert!(
        r1["notes"]
            .to_string()
            .contains("GPTQ: input moments of 3 layers"),
        "{}",
        r1["notes"]
    );
    assert!(with >= without, "with {with} < without {without}");
}

#[test]
fn reconstruct_recovers_pruning_accuracy() {
    let base = ["--prune", "0.3", "--quantize", "none"];
    let (without, _) = after_accuracy(&base);
    let (with, r) = after_accuracy(&[&base[..], &["--reconstruct"]].concat());
    assert!(with > without, "with {with} <= without {without}");
    let layers = r["reconstruction"]["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert!(
            l["error_after"].as_f64() <= l["error_before"].as_f64(),
            "{l}"
        );
    }
    assert!(r["steps"].to_string().contains("reconstruct ("));
}

#[test]
fn new_options_say_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let model = fixture("digits_cnn.onnx");
    for (flags, needle) in [
        (
            &["--prune", "0.3", "--reconstruct"][..],
            "--reconstruct needs --calib",
        ),
        (&["--bias-correction"][..], "--calib"),
        (&["--gptq"][..], "--calib"),
        (&["--quantize", "none", "--no-slower"][..], "--no-slower"),
    ] {
        let mut args: Vec<&OsStr> = vec![
            "compress".as_ref(),
            model.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ];
        args.extend(flags.iter().map(OsStr::new));
        let o = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &args);
        assert_eq!(o.status.code(), Some(1), "{flags:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    assert!(!out.exists(), "nothing written on error");
}
