//! `whittle quantize --mode fp16`: every fixture onnxruntime runs still runs, close to the
//! float model, with float16 or float32 interfaces as asked; values outside the float16
//! range keep float32 and the report says which.
mod quantize_common;

use quantize_common::*;
use whittle_tests::{fixture, python_json};

/// Fixtures onnxruntime runs (dtype_zoo has a custom op).
const RUNNABLE: &[&str] = &[
    "digits_cnn.onnx",
    "attention.onnx",
    "external_mlp.onnx",
    "fp16_mlp.onnx",
    "if_nested.onnx",
    "multi_domain.onnx",
    "training_info.onnx",
];

fn io_types(path: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let m = whittle_ir::Model::load(path).unwrap();
    let text = whittle_ir::text::model_to_text(&m);
    // top-level declarations only (subgraph ones are indented further)
    let pick = |kind: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|l| l.split(": ").nth(1).unwrap_or("").to_string())
            .collect()
    };
    (pick("  input  "), pick("  output "))
}

#[test]
fn fixtures_run_in_float16_with_and_without_float32_interfaces() {
    for model in RUNNABLE {
        for keep in [false, true] {
            let src = fixture(model);
            let args: &[&str] = if keep {
                &["--mode", "fp16", "--keep-io-types"]
            } else {
                &["--mode", "fp16"]
            };
            let q = quantize(&src, args);
            let what = format!("{model} keep_io={keep}");
            let shapes = [
                "--shape",
                "N=2",
                "--shape",
                "batch=2",
                "--shape",
                "seq=3",
                "--samples",
                "3",
            ];
            for o in agreement(&src, &q.path, &shapes) {
                let snr = o["snr_db"].as_f64().unwrap_or(f64::INFINITY);
                assert!(snr > 40.0, "{what}: output {} SNR {snr}", o["name"]);
            }
            let (inputs, outputs) = io_types(&q.path);
            let want = if keep { "f32" } else { "f16" };
            for t in inputs.iter().chain(&outputs).filter(|t| t.starts_with('f')) {
                let ok = t.starts_with(want) || *model == "fp16_mlp.onnx";
                assert!(ok, "{what}: interface type {t} ({inputs:?} → {outputs:?})");
            }
            let f16 = q
                .nodes()
                .iter()
                .filter(|n| n["status"] == "float16")
                .count();
            if *model == "digits_cnn.onnx" {
                assert_eq!(f16, q.nodes().len(), "{what}: {:?}", q.statuses());
                let b = &q.report()["bytes"];
                assert!(
                    f(&b["tensors_before"]) >= 1.99 * f(&b["tensors_after"]),
                    "{b}"
                );
            }
        }
    }
}

#[test]
fn subgraph_holders_and_other_domains_keep_float32_with_reasons() {
    let q = quantize(&fixture("if_nested.onnx"), &["--mode", "fp16"]);
    let s = q.statuses();
    assert!(
        s.iter().any(|(n, st, why)| n.contains("outer_if")
            && st == "kept_float32"
            && why.contains("subgraphs")),
        "{s:?}"
    );
    let q = quantize(&fixture("multi_domain.onnx"), &["--mode", "fp16"]);
    let s = q.statuses();
    assert!(
        s.iter()
            .any(|(_, st, why)| st == "kept_float32" && why.contains("com.microsoft")),
        "{s:?}"
    );
    let q = quantize(
        &fixture("digits_cnn.onnx"),
        &[
            "--mode",
            "fp16",
            "--exclude-ops",
            "Gemm",
            "--exclude-nodes",
            "conv1",
        ],
    );
    let s = q.statuses();
    assert!(
        s.iter().any(|(n, st, why)| n.contains("\"fc\"")
            && st == "kept_float32"
            && why.contains("--exclude-ops")),
        "{s:?}"
    );
    assert!(
        s.iter().any(|(n, st, why)| n.contains("conv1")
            && st == "kept_float32"
            && why.contains("--exclude-nodes")),
        "{s:?}"
    );
    agreement(&fixture("digits_cnn.onnx"), &q.path, &["--shape", "N=2"]);
}

#[test]
fn values_outside_the_float16_range_keep_float32() {
    let dir = tempfile::tempdir().unwrap();
    let made = python_json(
        "quant_fixtures.py",
        &["overflow".as_ref(), dir.path().as_os_str()],
    )
    .unwrap();
    assert_eq!(made["ok"], true);
    let src = dir.path().join("overflow.onnx");
    let calib = dir.path().join("overflow_calib.npz");
    // Without calibration only the constant is known to overflow.
    let q = quantize(&src, &["--mode", "fp16"]);
    assert!(
        q.notes()
            .iter()
            .any(|n| n.contains("\"big\"") && n.contains("65504")),
        "{:?}",
        q.notes()
    );
    let s = q.statuses();
    assert!(
        s.iter()
            .any(|(n, st, _)| n.contains("mul_big") && st == "kept_float32"),
        "{s:?}"
    );
    assert!(
        s.iter()
            .any(|(n, st, _)| n.contains("matmul_big") && st == "float16"),
        "{s:?}"
    );
    // With calibration the activation that overflows (z ≈ 3e5) keeps float32 too, and so
    // does the output (y ≈ 1e7), whose declared type stays float32.
    let q = quantize(
        &src,
        &["--mode", "fp16", "--calib", calib.to_str().unwrap()],
    );
    let notes = q.notes();
    for v in ["\"z\"", "\"y\""] {
        assert!(notes.iter().any(|n| n.contains(v)), "{v} not in {notes:?}");
    }
    let s = q.statuses();
    assert!(s.iter().all(|(_, st, _)| st == "kept_float32"), "{s:?}");
    let (_, outputs) = io_types(&q.path);
    assert_eq!(outputs, vec!["f32[N,4]".to_string()]);
    let out = agreement(
        &src,
        &q.path,
        &["--npz", calib.to_str().unwrap(), "--samples", "16"],
    );
    assert!(f(&out[0]["snr_db"]) > 60.0, "{out:?}");
    let err = &q.json["error"]["outputs"][0];
    assert!(f(&err["snr_db"]) > 60.0, "{err}");
}

#[test]
fn fp16_text_snapshot() {
    let q = quantize(
        &fixture("digits_cnn.onnx"),
        &["--mode", "fp16", "--keep-io-types"],
    );
    let m = whittle_ir::Model::load(&q.path).unwrap();
    insta::assert_snapshot!("digits_fp16_keep_io", whittle_ir::text::model_to_text(&m));
}
