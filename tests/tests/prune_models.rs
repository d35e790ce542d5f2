//! `whittle prune` on real architectures (issue #6): a torchvision-style ResNet, a
//! MobileNetV2 (depthwise, inverted residuals), a YOLOv8n-like model (C2f `Split` of one
//! Conv into halves, a Split sizes tensor shared by two C2f that still prune
//! independently, SPPF, Resize + Concat), an
//! equal Split with no sizes (its halves tied into one group), an opset-11 Split with a
//! `split` attribute and Slices inside one Conv's channels and, when the corpus is
//! fetched, the real YOLOv8n detector `corpus/nudenet/320n.onnx`.
//!
//! The strongest check of the coupling logic: in the `*_zero` models every prunable group
//! has exactly-zero channels (weights, biases, BN gamma and beta), so l1 pruning at
//! `--ratio 0.25` removes exactly those and the outputs must equal the original's within
//! 1e-5 in onnxruntime and in tract. At `--ratio 0.3` the random-weight models must shrink
//! by a known number of parameters and still load and run in both runtimes.
//!
//! Test models: `tests/data/prune/make_arch_models.py` (groups and zero indices in
//! `tests/data/prune/arch_models.json`).
use serde_json::Value;
use std::path::{Path, PathBuf};
use whittle_tests::{
    assert_outputs_match, assert_runs, corpus_or_skip, prune_group_counts, prune_json, repo_root,
    success_stdout, whittle,
};

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/prune").join(name)
}

fn params(report: &Value) -> (u64, u64) {
    let get = |k: &str| report[k]["parameters"].as_u64().expect("parameters");
    (get("before"), get("after"))
}

/// Prunes a zero-channel model by l1 at 0.25 and checks that exactly the zero channels of
/// every prunable group went (the counts the generator recorded), then the outputs.
fn zero_case(name: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let r = prune_json!(&data(name), &out, &["--criterion", "l1", "--ratio", "0.25"]);
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(data("arch_models.json")).expect("arch_models.json"),
    )
    .expect("arch_models.json is JSON");
    let groups = meta[name]["groups"]
        .as_object()
        .expect("groups of the model");
    let removed: u64 = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["removed"].as_array().map_or(0, Vec::len) as u64)
        .sum();
    let zero: u64 = groups
        .values()
        .filter_map(Value::as_u64)
        .map(|c| c / 4)
        .sum();
    assert_eq!(prune_group_counts(&r).0, groups.len(), "{name}: {r}");
    assert_eq!(removed, zero, "{name}");
    for runtime in ["onnxruntime", "tract"] {
        assert_outputs_match!(&data(name), &out, runtime, None, "1e-5");
    }
    r
}

#[test]
fn resnet_with_zero_channels_prunes_exactly() {
    let r = zero_case("resnet_zero.onnx");
    // 8 groups: 3 residual stages (stem + conv2s + downsamples) and 5 inner conv1s.
    assert_eq!(prune_group_counts(&r), (8, 1));
}

#[test]
fn mobilenetv2_with_zero_channels_prunes_exactly() {
    let r = zero_case("mobilenetv2_zero.onnx");
    // Stem (+ the first depthwise), 4 expand groups (+ their depthwise), 2 residual
    // project groups, the t=1 project and the last conv; the classifier is an output.
    assert_eq!(prune_group_counts(&r), (9, 1));
}

#[test]
fn yolo_like_with_zero_channels_prunes_exactly_through_c2f_splits() {
    // model.2 and model.4 read one Split sizes initializer but have different zero
    // channels: exact only because their halves are separate groups (19, not 17).
    let r = zero_case("yolo_zero.onnx");
    assert_eq!(prune_group_counts(&r), (19, 2));
}

#[test]
fn splits_sharing_a_sizes_tensor_prune_independently() {
    // --global 0.1 removes zero channels of the earliest groups only: model.2's halves
    // shrink, model.4's (same sizes initializer) do not, so model.2's Split gets its own
    // copy of the sizes and model.4's keeps reading the original.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("yolo_global.onnx");
    let model = data("yolo_zero.onnx");
    let r = prune_json!(&model, &out, &["--criterion", "l1", "--global", "0.1"]);
    let changes = r["tensor_changes"].as_array().expect("tensor_changes");
    let own = "/model/2/Split: Split sizes onnx::Split_138 (shared) -> own copy \
               onnx::Split_138_/model/2/Split_output_0 [6, 6]";
    assert!(changes.iter().any(|c| c == own), "{r}");
    assert!(
        !changes
            .iter()
            .any(|c| c.as_str().is_some_and(|c| c.contains("/model/4/"))),
        "{r}"
    );
    for runtime in ["onnxruntime", "tract"] {
        assert_outputs_match!(&model, &out, runtime, None, "1e-5");
    }
}

#[test]
fn equal_split_without_sizes_ties_its_halves() {
    // No sizes to rewrite: both halves lose the same index, so they stay equal.
    let r = zero_case("split_equal_zero.onnx");
    assert_eq!(prune_group_counts(&r), (2, 1));
    assert_eq!(r["groups"][0]["removed"], serde_json::json!([1]));
    assert!(
        r["tensor_changes"]
            .as_array()
            .expect("tensor_changes")
            .iter()
            .any(|c| c == "conv_a.weight: [8, 3, 3, 3] -> [6, 3, 3, 3]"),
        "{r}"
    );
}

#[test]
fn split_attribute_and_slices_inside_one_conv_prune_exactly() {
    // Opset 11: the Split's sizes are its `split` attribute; two Slices cut conv_d.
    let r = zero_case("slices_zero.onnx");
    assert_eq!(prune_group_counts(&r), (5, 1));
    let changes = r["tensor_changes"].as_array().expect("tensor_changes");
    for change in [
        "/Split: split -> [3, 6]",
        "conv_d.weight: [12, 3, 3, 3] -> [9, 3, 3, 3]",
        "conv_f.weight: [4, 8, 3, 3] -> [3, 6, 3, 3]",
    ] {
        assert!(changes.iter().any(|c| c == change), "{change}: {r}");
    }
}

/// Prunes by l2 at 0.3; checks the counts and that the result runs in both runtimes.
fn ratio_case(model: &Path, shape: Option<&str>, params_after: u64, groups: (usize, usize)) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pruned.onnx");
    let r = prune_json!(model, &out, &["--ratio", "0.3"]);
    let (before, after) = params(&r);
    eprintln!(
        "{}: parameters {before} -> {after}, groups (pruned, skipped) {:?}",
        model.display(),
        prune_group_counts(&r)
    );
    assert_eq!(after, params_after, "{}", model.display());
    assert!(after < before);
    assert_eq!(prune_group_counts(&r), groups, "{}", model.display());
    for runtime in ["onnxruntime", "tract"] {
        assert_runs!(&out, runtime, shape);
    }
}

#[test]
fn resnet_and_mobilenetv2_shrink_at_ratio_0_3_and_run() {
    // ResNet: 21714 parameters; every group keeps ceil(0.7 c): 8→6, 16→12, 24→17.
    ratio_case(&data("resnet.onnx"), None, 12171, (8, 1));
    // MobileNetV2: 8412 parameters.
    ratio_case(&data("mobilenetv2.onnx"), None, 5256, (9, 1));
}

#[test]
fn yolov8n_detector_shrinks_at_ratio_0_3_and_runs() {
    let Some(model) = corpus_or_skip("nudenet/320n.onnx") else {
        return;
    };
    // 3009250 parameters. Before the C2f Split support: 39 of 64 groups prunable; now the
    // Split halves are groups of their own — 66 groups: the C2f blocks sharing a sizes
    // tensor (model.4/15, model.6/12/18, model.8/21) are no longer tied (58 before) — and
    // only the Detect head's groups (Shape/Reshape of the outputs) stay skipped. At one
    // ratio every C2f of a width gets the same sizes, so the shared tensors are rewritten
    // in place and the parameter count is the same as when they were tied.
    ratio_case(&model, Some("images=1x3x320x320"), 1494801, (59, 7));
}

/// `whittle prune MODEL --explain`.
fn explain(model: &Path) -> String {
    success_stdout(&whittle!("prune", model, "--explain"))
}

#[test]
fn explain_lists_split_sizes_split_attributes_and_slice_bounds() {
    let yolo = explain(&data("yolo_zero.onnx"));
    for line in [
        "  onnx::Split_138: Split sizes follow the channel count (Split -> \
         /model/4/Split_output_0, output 1); shared by 2 Splits: copied for this one when \
         its sizes change\n",
        "  onnx::Split_300: Split sizes follow the channel count (Split -> \
         /model/8/Split_output_0, output 0)\n",
    ] {
        assert!(yolo.contains(line), "{line}\n{yolo}");
    }
    let slices = explain(&data("slices_zero.onnx"));
    for line in [
        "  Split -> /Split_output_0: split attribute follows the channel count (output 1)\n",
        "  /Slice_f/starts, /Slice_f/ends: Slice bounds follow the channel count (channels \
         inside the Slice)\n",
    ] {
        assert!(slices.contains(line), "{line}\n{slices}");
    }
    // The same lines per group in --explain --json.
    let res = whittle!("prune", data("slices_zero.onnx"), "--explain", "--json");
    let groups: Value = serde_json::from_slice(&res.stdout).expect("--explain --json");
    assert_eq!(
        groups[0]["rewrites"],
        serde_json::json!([
            "Split -> /Split_output_0: split attribute follows the channel count (output 0)"
        ])
    );
}

#[test]
fn yolov8n_c2f_blocks_sharing_split_sizes_are_separate_groups() {
    let Some(model) = corpus_or_skip("nudenet/320n.onnx") else {
        return;
    };
    let text = explain(&model);
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("group ")).collect();
    assert_eq!(headers.len(), 66, "{text}");
    // model.4 and model.15 read the same `onnx::Split_158`: no group holds both.
    for h in &headers {
        assert!(
            !(h.contains("/model.4/cv1/") && h.contains("/model.15/cv1/")),
            "{h}"
        );
    }
    assert!(text.contains("onnx::Split_158: Split sizes follow the channel count (Split -> /model.15/Split_output_0, output 0); shared by 2 Splits"), "{text}");
}
