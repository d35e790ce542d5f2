//! `whittle compare`: the same model has zero error; a model with one perturbed weight has
//! exactly the error computed here independently; exit codes 0 / 2 / 1 and usage errors.
//!
//! The perturbation: digits_cnn's last layer is `logits = x · Wᵀ + b` (Gemm `fc`), so adding
//! δ to `b[K]` adds δ to column K of the logits and changes nothing else. With the reference
//! logits `r` (from `whittle run`), the candidate is `c = r + δ·e_K` up to one f32 rounding
//! per element, so: max |Δ| = δ, mean |Δ| = δ/10, SNR = 10·log10(Σr² / (N·δ²)), cosine =
//! Σr·c / (‖r‖‖c‖), top-1 = the rows whose argmax stays put.
use std::path::{Path, PathBuf};
use whittle_ir::{Model, SaveOptions, save};
use whittle_runtime::read_npz;
use whittle_tests::{fixture, whittle};

const RUNTIMES: [&str; 2] = ["tract", "onnxruntime"];
const DELTA: f32 = 0.01;
const CLASS: usize = 3;

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// digits_cnn with `fc.bias[CLASS] += DELTA`, written through the IR.
fn perturbed(dir: &Path) -> PathBuf {
    let mut model = Model::load(&fixture("digits_cnn.onnx")).unwrap();
    let bias = model
        .graph
        .initializers
        .iter_mut()
        .find(|t| t.name() == "fc.bias")
        .expect("digits_cnn has fc.bias");
    let mut values = bias.to_f32_vec().unwrap();
    assert_eq!(values.len(), 10);
    values[CLASS] += DELTA;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    bias.set_raw(bytes.into());
    let out = dir.join("perturbed.onnx");
    save(&model, &out, &SaveOptions::default()).unwrap();
    out
}

#[test]
fn a_model_compared_with_itself_has_zero_error() {
    for runtime in RUNTIMES {
        let out = whittle!(
            "compare",
            fixture("digits_cnn.onnx"),
            fixture("digits_cnn.onnx"),
            "--inputs",
            fixture("digits_test.npz"),
            "--runtime",
            runtime,
            "--json"
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = &json(&out)["report"];
        assert_eq!(r["samples"], 450, "{r}");
        let m = &r["outputs"][0]["metrics"];
        assert_eq!(r["outputs"][0]["shape"], serde_json::json!([450, 10]));
        assert_eq!(
            (m["max_abs"].as_f64(), m["mean_abs"].as_f64()),
            (Some(0.0), Some(0.0)),
            "{m}"
        );
        assert_eq!(
            (m["max_rel"].as_f64(), m["cosine"].as_f64()),
            (Some(0.0), Some(1.0)),
            "{m}"
        );
        assert!(m["snr_db"].is_null(), "infinite SNR is null in JSON: {m}");
        assert_eq!(m["top1_agreement"].as_f64(), Some(1.0));
    }
}

#[test]
fn a_perturbed_bias_gives_the_error_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = perturbed(dir.path());
    let ref_out = dir.path().join("ref.npz");
    let run = whittle!(
        "run",
        fixture("digits_cnn.onnx"),
        "--inputs",
        fixture("digits_test.npz"),
        "-o",
        &ref_out
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r = read_npz(&ref_out).unwrap().remove(0).1.to_f64_vec();
    let n = r.len() / 10;
    let d = f64::from(DELTA);
    let c: Vec<f64> = r
        .iter()
        .enumerate()
        .map(|(i, &x)| if i % 10 == CLASS { x + d } else { x })
        .collect();
    let dot: f64 = r.iter().zip(&c).map(|(a, b)| a * b).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let cosine = dot / (norm(&r) * norm(&c));
    let snr = 10.0 * (r.iter().map(|x| x * x).sum::<f64>() / (n as f64 * d * d)).log10();
    let argmax = |v: &[f64]| (0..10).fold(0, |b, k| if v[k] > v[b] { k } else { b });
    let kept = r
        .chunks(10)
        .zip(c.chunks(10))
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    for runtime in RUNTIMES {
        let out = whittle!(
            "compare",
            fixture("digits_cnn.onnx"),
            &candidate,
            "--inputs",
            fixture("digits_test.npz"),
            "--runtime",
            runtime,
            "--atol",
            "0.02",
            "--rtol",
            "0",
            "--json"
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{runtime}: loose bound: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = json(&out)["report"]["outputs"][0]["metrics"].clone();
        let got = |k: &str| m[k].as_f64().unwrap();
        // one f32 rounding of logits up to ~20 in size: ≤ 2⁻¹⁹·20 ≈ 4e-5 per element
        assert!((got("max_abs") - d).abs() < 4e-5, "{runtime}: {m}");
        assert!((got("mean_abs") - d / 10.0).abs() < 4e-6, "{runtime}: {m}");
        assert!(
            (got("snr_db") - snr).abs() < 0.05,
            "{runtime}: snr {snr} vs {m}"
        );
        assert!(
            (got("cosine") - cosine).abs() < 1e-9,
            "{runtime}: cosine {cosine} vs {m}"
        );
        assert_eq!(
            got("top1_agreement"),
            kept as f64 / n as f64,
            "{runtime}: {m}"
        );

        let tight = whittle!(
            "compare",
            fixture("digits_cnn.onnx"),
            &candidate,
            "--inputs",
            fixture("digits_test.npz"),
            "--runtime",
            runtime,
            "--atol",
            "1e-3",
            "--rtol",
            "0"
        );
        let stderr = String::from_utf8_lossy(&tight.stderr);
        assert_eq!(
            tight.status.code(),
            Some(2),
            "{runtime}: tight bound: {stderr}"
        );
        // every sample's logit CLASS moved by δ > 1e-3, nothing else moved
        assert!(
            stderr.contains(&format!(
                "compare: OUTSIDE the bounds: output \"logits\": {n} of {} elements",
                10 * n
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("Usage:"), "{stderr}");
        let stdout = String::from_utf8_lossy(&tight.stdout);
        assert!(stdout.contains("OUTSIDE"), "{stdout}");

        let cos = whittle!(
            "compare",
            fixture("digits_cnn.onnx"),
            &candidate,
            "--inputs",
            fixture("digits_test.npz"),
            "--runtime",
            runtime,
            "--atol",
            "1",
            "--min-cosine",
            "0.9999999999"
        );
        assert_eq!(cos.status.code(), Some(2), "{runtime}: cosine bound");
        assert!(
            String::from_utf8_lossy(&cos.stderr).contains("cosine 0.99999"),
            "{}",
            String::from_utf8_lossy(&cos.stderr)
        );
    }
}

#[test]
fn exit_codes_and_usage_errors_are_told_apart() {
    let usage = whittle!("compare", fixture("digits_cnn.onnx"));
    let stderr = String::from_utf8_lossy(&usage.stderr);
    assert_eq!(usage.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Usage:") && !stderr.contains("OUTSIDE"),
        "{stderr}"
    );
    let help = whittle!("compare", "--help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Exit status:") && text.contains("2  some output is outside the bounds"),
        "{text}"
    );
    let missing = whittle!(
        "compare",
        fixture("digits_cnn.onnx"),
        "/nonexistent/model.onnx",
        "--shape",
        "N=1"
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.onnx"));
}

/// Outputs pair by name, else by position; when neither works the error lists both sides.
#[test]
fn outputs_are_matched_by_name_then_position() {
    let dir = tempfile::tempdir().unwrap();
    let base = Model::load(&fixture("digits_cnn.onnx")).unwrap();
    // "logits" renamed to "scores" (node output and graph output): matched by position
    let mut renamed = base.clone();
    for n in renamed.graph.nodes_mut() {
        for o in n.proto.output.iter_mut().filter(|o| *o == "logits") {
            *o = "scores".into();
        }
    }
    renamed.graph.proto.output[0].name = Some("scores".into());
    renamed.graph.rebuild_edges();
    let renamed_path = dir.path().join("renamed.onnx");
    save(&renamed, &renamed_path, &SaveOptions::default()).unwrap();
    let out = whittle!(
        "compare",
        fixture("digits_cnn.onnx"),
        &renamed_path,
        "--shape",
        "N=2",
        "--json"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &json(&out)["report"];
    assert_eq!(r["outputs_matched_by"], "position");
    assert_eq!(r["outputs"][0]["candidate_output"], "scores");
    // two outputs, neither named "logits": no pairing
    let mut two = renamed.clone();
    let extra = two.graph.proto.output[0].clone();
    two.graph
        .proto
        .output
        .push(whittle_ir::proto::ValueInfoProto {
            name: Some("relu1_out".into()),
            ..extra
        });
    let two_path = dir.path().join("two.onnx");
    save(&two, &two_path, &SaveOptions::default()).unwrap();
    let out = whittle!(
        "compare",
        fixture("digits_cnn.onnx"),
        &two_path,
        "--shape",
        "N=2"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot match the outputs"), "{stderr}");
    assert!(
        stderr.contains("first:  logits") && stderr.contains("second: scores, relu1_out"),
        "{stderr}"
    );
}
