//! `whittle quantize --mode static --format qoperator` on the digits fixture: the Conv
//! groups become QLinearConv, the model runs in onnxruntime and agrees with the QDQ model
//! (top-1 ≥ 99% on the test set), and the report counts the QLinear MACs as integer.
mod quantize_common;

use quantize_common::{Quantized, agreement, f, quantize, quantize_fails};
use std::collections::BTreeMap;
use std::path::Path;
use whittle_tests::fixture;

/// `whittle quantize MODEL --mode static --calib CALIB --format FORMAT`.
fn quantize_static(model: &Path, calib: &Path, format: &str) -> Quantized {
    quantize(
        model,
        &[
            "--mode",
            "static",
            "--calib",
            calib.to_str().unwrap(),
            "--format",
            format,
        ],
    )
}

fn digits(format: &str) -> Quantized {
    quantize_static(
        &fixture("digits_cnn.onnx"),
        &fixture("digits_calib.npz"),
        format,
    )
}

fn op_counts(path: &Path) -> BTreeMap<String, usize> {
    let m = whittle_ir::Model::load(path).unwrap();
    let mut out = BTreeMap::new();
    for (_, n) in m.graph.nodes() {
        *out.entry(n.op_type().to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn qoperator_digits_agrees_with_qdq_and_counts_integer_macs() {
    let qdq = digits("qdq");
    let qop = digits("qoperator");
    let ops = op_counts(&qop.path);
    assert_eq!(ops.get("QLinearConv"), Some(&2), "{ops:?}");
    assert_eq!(ops.get("Conv"), None, "{ops:?}");
    let convs: Vec<String> = qop
        .statuses()
        .into_iter()
        .filter(|(n, _, _)| n.contains("(Conv)"))
        .map(|(_, _, form)| form)
        .collect();
    assert_eq!(convs.len(), 2);
    assert!(
        convs.iter().all(|f| f.starts_with("QLinearConv: ")),
        "{convs:?}"
    );
    let cov = &qop.report()["coverage"];
    assert!(f(&cov["macs_integer"]) > 0.0, "{cov}");
    assert_eq!(cov["macs_integer"], cov["macs_total"], "{cov}");
    assert_eq!(cov, &qdq.report()["coverage"], "same coverage as QDQ");
    let test = fixture("digits_test.npz");
    let outs = agreement(
        &qdq.path,
        &qop.path,
        &["--npz", test.to_str().unwrap(), "--samples", "450"],
    );
    let top1 = f(&outs[0]["top1_agreement"]);
    assert!(top1 >= 0.99, "top-1 agreement with the QDQ model {top1}");
}

#[test]
fn qoperator_is_for_static_mode() {
    let src = fixture("digits_cnn.onnx");
    let err = quantize_fails(&[src.to_str().unwrap(), "--format", "qoperator"]);
    assert!(
        err.contains("--format qoperator is for --mode static"),
        "{err}"
    );
}

/// A two-layer MLP (MatMul+Add+Relu, MatMul, Sigmoid) and a calibration set, made by onnx.
const MLP: &str = r#"
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
         for n, s in [("W1", (16, 32)), ("b1", (32,)), ("W2", (32, 10))]]
nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
         helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
         helper.make_node("Relu", ["hb"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "W2"], ["y0"], name="mm2"),
         helper.make_node("Sigmoid", ["y0"], ["y"], name="sig")]
g = helper.make_graph(nodes, "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, sys.argv[1] + "/mlp.onnx")
np.savez(sys.argv[1] + "/calib.npz", x=rng.standard_normal((64, 16)).astype(np.float32))
"#;

#[test]
fn qoperator_matmul_becomes_qlinearmatmul_with_per_column_weights() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(whittle_tests::venv_python())
        .args(["-c", MLP])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (src, calib) = (dir.path().join("mlp.onnx"), dir.path().join("calib.npz"));
    let run = |format: &str| quantize_static(&src, &calib, format);
    let (qdq, qop) = (run("qdq"), run("qoperator"));
    let ops = op_counts(&qop.path);
    assert_eq!(ops.get("QLinearMatMul"), Some(&1), "{ops:?}");
    let forms: Vec<String> = qop.statuses().into_iter().map(|(_, _, f)| f).collect();
    assert!(
        forms
            .iter()
            .any(|f| f.starts_with("QLinearMatMul: ") && f.contains("per-channel")),
        "{forms:?}"
    );
    let outs = agreement(&qdq.path, &qop.path, &["--npz", calib.to_str().unwrap()]);
    assert!(f(&outs[0]["max_abs_diff"]) < 1e-5, "{outs:?}");
}
