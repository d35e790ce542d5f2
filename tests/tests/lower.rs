//! Lowering for verification is exact: onnxruntime gives bit-identical outputs before and
//! after folding DequantizeLinear of constants and inlining constant-condition Ifs.
//!
//! onnxruntime runs at `--opt-level basic` here: at `extended` it fuses DequantizeLinear +
//! MatMul of the original into its own quantized kernels (int4 blocked → MatMulNBits), whose
//! results differ from the graph's float semantics (max |Δ| 0.083 on dq_weights.onnx,
//! measured), so the original would not be the exact reference.
use whittle_ir::{Model, SaveOptions, save};
use whittle_passes::lower::LowerForVerification;
use whittle_passes::{PassContext, PassManager};
use whittle_tests::{python_json, repo_root};

fn lower(name: &str) -> (std::path::PathBuf, tempfile::TempDir, Model, Vec<String>) {
    let src = repo_root().join("tests/data/lower").join(name);
    let mut model = Model::load(&src).unwrap();
    let mut pm = PassManager::new();
    pm.add(Box::new(LowerForVerification));
    let reports = pm.run(&mut model, &mut PassContext::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    save(&model, &out, &SaveOptions::default()).unwrap();
    let res = python_json(
        "ort_run_compare.py",
        &[
            src.as_os_str(),
            out.as_os_str(),
            "--shape".as_ref(),
            "N=3".as_ref(),
            "--opt-level".as_ref(),
            "basic".as_ref(),
        ],
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(res["all_identical"], true, "{name}: {res}");
    (out, dir, model, reports[0].changes.clone())
}

#[test]
fn dequantize_of_constants_folds_bit_exactly() {
    let (_, _dir, model, changes) = lower("dq_weights.onnx");
    let ops: Vec<&str> = model.graph.nodes().map(|(_, n)| n.op_type()).collect();
    assert!(!ops.contains(&"DequantizeLinear"), "{ops:?}");
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.starts_with("folded DequantizeLinear"))
            .count(),
        4,
        "{changes:?}"
    );
    // The int4 weight is gone (tract cannot even read int4 tensors).
    assert!(model.graph.initializer("w4").is_none());
    assert_eq!(
        model.graph.initializer("w4f").map(|t| t.dtype()),
        Some(whittle_ir::DataType::FLOAT)
    );
    assert_eq!(
        model.graph.initializer("bhf").map(|t| t.dtype()),
        Some(whittle_ir::DataType::FLOAT16)
    );
}

#[test]
fn constant_if_is_inlined_exactly() {
    let (_, _dir, model, changes) = lower("if_const.onnx");
    let ops: Vec<&str> = model.graph.nodes().map(|(_, n)| n.op_type()).collect();
    assert_eq!(
        ops,
        ["Relu", "Sigmoid", "Mul", "Add", "Identity", "Add"],
        "{changes:?}"
    );
}
