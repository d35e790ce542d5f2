//! `whittle prune` on Paddle exports (issue #6): their weights sit in `Constant` nodes and
//! their biases are `Reshape(Constant, [1,C,1,1])` + Add, so the prune command first runs
//! the exact clean-up `constants, identity, fold, dce` (and says so in its report); the
//! det head's ConvTranspose layers are pruned too.
//!
//! `tests/data/prune/paddle_zero.onnx` (make_models.py) has exactly-zero channels in every
//! prunable group, an SE block, a ConvTranspose and hardswish spelled out, so l1 pruning
//! at 0.25 must give the original outputs (1e-5) in onnxruntime and tract. When the corpus is fetched, PP-OCR
//! det and cls prune at --ratio 0.3 and run in both runtimes, and the clean-up alone
//! (`--ratio 0`) computes bit-identical outputs.
use serde_json::{Value, json};
use std::path::PathBuf;
use whittle_tests::{
    assert_outputs_match, assert_runs, corpus_or_skip, prune_group_counts, prune_json, repo_root,
    whittle,
};

#[test]
fn constant_node_weights_are_cleaned_up_then_pruned_exactly() {
    let model = repo_root().join("tests/data/prune/paddle_zero.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paddle.onnx");
    let shape = "x=1x3x16x16";
    let r = prune_json!(
        &model,
        &out,
        &["--criterion", "l1", "--ratio", "0.25", "--shape", shape],
    );
    assert_eq!(
        r["prepared"]["passes"],
        json!([
            {"pass": "constants", "changes": 26},
            {"pass": "identity", "changes": 1},
            {"pass": "fold", "changes": 5},
            {"pass": "dce", "changes": 10},
        ])
    );
    let removed: Vec<&Value> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["removed"])
        .collect();
    // conv1 {1,5}; conv2 tied to se2 by the SE Mul {2,6}; se1 {1}; conv3 {3}; the
    // ConvTranspose's output channel 2 (weight axis 1); the MatMul ends at the output.
    let want = [
        json!([1, 5]),
        json!([2, 6]),
        json!([1]),
        json!([3]),
        json!([2]),
        json!([]),
    ];
    assert_eq!(removed, want.iter().collect::<Vec<_>>());
    assert_eq!(r["before"]["parameters"], 1485);
    assert_eq!(r["after"]["parameters"], 915);
    for runtime in ["onnxruntime", "tract"] {
        assert_outputs_match!(&model, &out, runtime, Some(shape), "1e-5");
    }
    let explain = whittle!("prune", &model, "--explain");
    let stderr = String::from_utf8_lossy(&explain.stderr);
    assert!(stderr.contains("weights are in Constant nodes"), "{stderr}");
    let stdout = String::from_utf8_lossy(&explain.stdout);
    assert!(
        stdout.contains("group 1: 8 channels, prunable, from p2o.Conv.7, p2o.Conv.16"),
        "{stdout}"
    );
}

#[test]
fn models_without_constant_nodes_are_not_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resnet.onnx");
    let model = repo_root().join("tests/data/prune/resnet.onnx");
    let r = prune_json!(&model, &out, &["--ratio", "0.3"]);
    assert!(r.get("prepared").is_none(), "{r}");
}

fn corpus(name: &str) -> Option<PathBuf> {
    corpus_or_skip(&format!("rapidocr-onnxruntime/{name}"))
}

/// Prunes at 0.3 (checks parameters and groups, runs in both runtimes), and checks that
/// the clean-up alone (`--ratio 0`) is bit-exact in onnxruntime.
fn pp_ocr_case(name: &str, shape: &str, params: (u64, u64), groups: (usize, usize)) {
    let Some(model) = corpus(name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pruned.onnx");
    let r = prune_json!(&model, &out, &["--ratio", "0.3", "--shape", shape]);
    eprintln!(
        "{name}: parameters {} -> {}, MACs {} -> {}, groups (pruned, skipped) {:?}",
        r["before"]["parameters"],
        r["after"]["parameters"],
        r["before"]["macs"],
        r["after"]["macs"],
        prune_group_counts(&r)
    );
    assert_eq!(r["before"]["parameters"].as_u64(), Some(params.0));
    assert_eq!(r["after"]["parameters"].as_u64(), Some(params.1));
    assert_eq!(prune_group_counts(&r), groups);
    assert!(
        r["prepared"]["passes"][0]["changes"].as_u64() > Some(300),
        "{r}"
    );
    for runtime in ["onnxruntime", "tract"] {
        assert_runs!(&out, runtime, Some(shape));
    }
    let clean = dir.path().join("clean.onnx");
    let r0 = prune_json!(&model, &clean, &["--ratio", "0"]);
    // Folding the bias Reshapes drops their int64 shape constants, nothing else.
    let kept = r0["after"]["parameters"].as_u64().expect("parameters");
    assert!(kept <= params.0 && kept + 100 > params.0, "{r0}");
    assert_outputs_match!(&model, &clean, "onnxruntime", Some(shape), "0");
}

#[test]
fn pp_ocr_det_prunes_after_the_constant_clean_up() {
    // The head's two ConvTransposes are understood (weight [C_in, C_out, k, k]); only the
    // last one's single output channel (the probability map, a graph output) is skipped.
    pp_ocr_case(
        "ch_PP-OCRv4_det_infer.onnx",
        "x=1x3x64x64",
        (1_171_841, 592_152),
        (36, 1),
    );
}

#[test]
fn pp_ocr_cls_prunes_after_the_constant_clean_up() {
    // The SE blocks' bias Reshapes fold to initializers, so the SE Mul ties each block's
    // channels to its se2 conv; skipped: the head (Shape/Reshape) and the Softmax output.
    pp_ocr_case(
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "x=1x3x48x192",
        (133_777, 75_205),
        (24, 2),
    );
}
