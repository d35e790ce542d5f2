//! Quantization inside If bodies (issue #5): static mode quantizes the branch weights as in
//! weight mode (DequantizeLinear, activations float) next to the main graph's QDQ, fp16
//! stores them as float16; both written models run in onnxruntime close to the float one.
//! The model is `tests/data/quantize/if_weights.onnx` (made by `make_models.py` there).
mod quantize_common;

use quantize_common::*;
use std::path::PathBuf;
use whittle_ir::{DataType, Graph, Model};

const BODY_NODES: &[&str] = &["then_gemm", "then_matmul", "else_conv"];

fn data(name: &str) -> PathBuf {
    whittle_tests::repo_root()
        .join("tests/data/quantize")
        .join(name)
}

/// The If's branches (then, else) of the written model.
fn branches(m: &Model) -> Vec<Graph> {
    m.graph
        .nodes()
        .filter(|(_, n)| n.op_type() == "If")
        .flat_map(|(_, n)| n.subgraphs().cloned().collect::<Vec<_>>())
        .collect()
}

fn dtype_of(branches: &[Graph], name: &str) -> Option<DataType> {
    branches
        .iter()
        .find_map(|g| g.initializer(name).map(|t| t.dtype()))
}

/// Seeded inputs: random `cond` values, so both branches run over the samples.
fn agreement_with_float(q: &Quantized) -> serde_json::Value {
    let src = data("if_weights.onnx");
    let outputs = agreement(&src, &q.path, &["--samples", "32", "--seed", "3"]);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    outputs[0].clone()
}

#[test]
fn static_mode_quantizes_branch_weights_weight_only() {
    let calib = data("if_weights_calib.npz");
    let q = quantize(
        &data("if_weights.onnx"),
        &[
            "--mode",
            "static",
            "--calib",
            calib.to_str().unwrap_or_default(),
        ],
    );
    let statuses = q.statuses();
    let main = statuses.iter().find(|s| s.0.contains("main_matmul"));
    assert!(
        main.is_some_and(|s| s.1 == "quantized" && s.2.starts_with("QDQ")),
        "{statuses:?}"
    );
    for label in BODY_NODES {
        let e = q
            .nodes()
            .iter()
            .find(|n| n["node"].as_str().is_some_and(|s| s.contains(label)));
        let e = e.unwrap_or_else(|| panic!("{label} is in the report: {statuses:?}"));
        assert_eq!(e["status"], "quantized", "{e}");
        assert_eq!(
            e["reason"],
            "inside a subgraph: weights only (activations there cannot be calibrated)"
        );
    }
    let m = Model::load(&q.path).unwrap();
    let b = branches(&m);
    for w in ["Wt_quantized", "Wt2_quantized", "Wc_quantized"] {
        assert_eq!(dtype_of(&b, w), Some(DataType::INT8), "{w}");
    }
    let ops: Vec<&str> = m.graph.nodes().map(|(_, n)| n.op_type()).collect();
    assert!(
        ops.contains(&"QuantizeLinear"),
        "main graph is QDQ: {ops:?}"
    );
    let o = agreement_with_float(&q);
    let snr = f(&o["snr_db"]);
    eprintln!("static: {o}");
    assert!(snr > 25.0, "static SNR {snr}: {o}");
}

#[test]
fn fp16_stores_branch_weights_as_float16() {
    let q = quantize(&data("if_weights.onnx"), &["--mode", "fp16"]);
    let m = Model::load(&q.path).unwrap();
    let b = branches(&m);
    for w in ["Wt_fp16", "Wt2_fp16", "Wc_fp16"] {
        assert_eq!(dtype_of(&b, w), Some(DataType::FLOAT16), "{w}");
    }
    let bytes = &q.report()["bytes"];
    eprintln!("fp16 bytes: {bytes}");
    assert!(
        f(&bytes["tensors_before"]) >= 1.9 * f(&bytes["tensors_after"]),
        "{bytes}"
    );
    let o = agreement_with_float(&q);
    eprintln!("fp16: {o}");
    let snr = f(&o["snr_db"]);
    assert!(snr > 50.0, "fp16 SNR {snr}: {o}");
    assert!(f(&o["max_abs_diff"]) < 1e-2, "{o}");
}

/// silero VAD (corpus) keeps every weight in Constant nodes inside its If branches: static
/// mode quantizes the branch Convs weight-only, fp16 stores the branch weights as float16,
/// and onnxruntime runs both (the CLI's own measurement runs the written model in ort).
/// The bounds are loose on purpose: silero's state is sensitive to its weights (rounding
/// them to float16 in numpy moves `stateN` by 0.3 on some chunks too), and int8 branch
/// weights give the same error as `--mode weight`.
#[test]
fn silero_vad_branch_weights_are_quantized() {
    let Some(model) = whittle_tests::corpus_or_skip("silero-vad/silero_vad.onnx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("calib.npz");
    let made = std::process::Command::new(whittle_tests::venv_python())
        .arg(data("silero_calib.py"))
        .arg(&calib)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let calib = calib.to_str().unwrap_or_default();
    let ort = ["--calib", calib, "--runtime", "onnxruntime"];
    let s = quantize(&model, &[&["--mode", "static"][..], &ort].concat());
    let branch = |q: &Quantized, reason: &str| {
        q.nodes()
            .iter()
            .filter(|n| n["reason"].as_str().is_some_and(|r| r.starts_with(reason)))
            .count()
    };
    assert!(
        branch(&s, "inside a subgraph: weights only") >= 12,
        "{:?}",
        s.statuses()
    );
    let f16 = quantize(&model, &[&["--mode", "fp16"][..], &ort].concat());
    assert!(branch(&f16, "inside a subgraph: weights stored as float16") >= 12);
    let bytes = &f16.report()["bytes"];
    assert!(
        f(&bytes["tensors_before"]) >= 1.9 * f(&bytes["tensors_after"]),
        "{bytes}"
    );
    for (q, min_db) in [(&s, 5.0), (&f16, 30.0)] {
        let outputs = q.json["error"]["outputs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(outputs.len(), 2, "{}", q.json["error"]);
        for o in outputs {
            eprintln!("{o}");
            assert!(f(&o["snr_db"]) > min_db, "{o}");
        }
    }
}
