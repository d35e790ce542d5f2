//! The whole clean-up pipeline (run to a fixed point) on small graphs that look like
//! exporter output, with fixed input shapes, and on a pre-IR-4 model whose weights are
//! listed as graph inputs: snapshots of before → after, and onnxruntime agreement.
mod cleanup_common;

use cleanup_common::*;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::cleanup::CleanupOptions;

#[test]
fn batch_override_lets_folding_remove_shape_arithmetic() {
    let mut g = graph(
        "flatten",
        vec![vi("x", "f32[N,3,4,4]")],
        vec![vi("y", "f32[N,48]")],
        vec![
            i64v("zero", &[], &[0]),
            i64v("axes0", &[1], &[0]),
            i64v("minus1", &[1], &[-1]),
        ],
        vec![
            n("Shape", "x", "sh", vec![]),
            n("Gather", "sh, zero", "batch", vec![]),
            n("Unsqueeze", "batch, axes0", "batch1", vec![]),
            n("Concat", "batch1, minus1", "target", vec![int("axis", 0)]),
            n("Reshape", "x, target", "flat", vec![]),
            n("Relu", "flat", "y", vec![]),
        ],
    );
    g.proto.value_info = vec![vi("flat", "f32[N,48]")];
    let m = model(g, 17);
    // Without a batch the shape arithmetic depends on N and stays.
    let mut plain = m.clone();
    let untouched = run_pipeline(&mut plain, &CleanupOptions::default());
    assert!(untouched.contains("Gather(sh, zero)"), "{untouched}");
    let opts = CleanupOptions {
        overrides: ShapeOverrides {
            batch: Some(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut fixed = m.clone();
    insta::assert_snapshot!("batch_override", run_pipeline(&mut fixed, &opts));
    assert_same_in_ort(&m, &fixed, 0.0, &["--shape", "x=1x3x4x4"]);
}

#[test]
fn pipeline_cleans_exporter_noise() {
    let w = f32r("", &[4, 3, 3, 3], 1);
    let then_b = graph(
        "then",
        vec![],
        vec![vi("t", "f32[1,5]")],
        vec![],
        vec![n("Identity", "logits", "t", vec![])],
    );
    let else_b = graph(
        "else",
        vec![],
        vec![vi("e", "f32[1,5]")],
        vec![],
        vec![n("Neg", "logits", "e", vec![])],
    );
    let g = graph(
        "exported",
        vec![vi("image", "f32[1,3,6,6]"), vi("flip", "bool[]")],
        vec![vi("y", "f32[1,5]")],
        vec![
            f32r("gamma", &[4], 2),
            f32r("beta", &[4], 3),
            f32r("mu", &[4], 4),
            f32v("sigma2", &[4], &[0.5, 1.0, 1.5, 2.0]),
            f32r("fc_w", &[64, 5], 5),
            f32r("fc_b", &[5], 6),
            // A second copy of the fc bias, as exporters write for tied weights.
            f32r("fc_b_copy", &[5], 6),
        ],
        vec![
            n("Constant", "", "conv_w", vec![tensor("value", w)]),
            n(
                "Conv",
                "image, conv_w",
                "c",
                vec![ints("pads", &[0, 0, 0, 0])],
            ),
            n(
                "BatchNormalization",
                "c, gamma, beta, mu, sigma2",
                "bn",
                vec![],
            ),
            n("Relu", "bn", "act", vec![]),
            n("Identity", "act", "act_id", vec![]),
            n(
                "Constant",
                "",
                "flat_shape",
                vec![ints("value_ints", &[1, -1])],
            ),
            n("Reshape", "act_id, flat_shape", "flat", vec![]),
            n("Dropout", "flat", "drop", vec![]),
            n("MatMul", "drop, fc_w", "mm", vec![]),
            n("Add", "mm, fc_b", "logits0", vec![]),
            n("Add", "logits0, fc_b_copy", "logits", vec![]),
            // Dead: exporters leave debugging branches behind.
            n("Sigmoid", "logits", "unused_probs", vec![]),
            n(
                "If",
                "flip",
                "y",
                vec![
                    graph_attr("then_branch", then_b),
                    graph_attr("else_branch", else_b),
                ],
            ),
        ],
    );
    let m = model(g, 17);
    let mut after = m.clone();
    insta::assert_snapshot!(
        "exporter_noise",
        run_pipeline(&mut after, &CleanupOptions::default())
    );
    assert_same_in_ort(&m, &after, 1e-5, &[]);
}

#[test]
fn legacy_ir3_weights_listed_as_inputs_stay_in_step() {
    // IR 3: every initializer is also a graph input; onnxruntime treats them as weights.
    let mut g = graph(
        "legacy",
        vec![
            vi("x", "f32[1,2,3,3]"),
            vi("w", "f32[2,2,1,1]"),
            vi("s", "f32[2]"),
            vi("b", "f32[2]"),
            vi("m", "f32[2]"),
            vi("v", "f32[2]"),
            vi("shape", "i64[2]"),
        ],
        vec![vi("y", "f32[1,18]")],
        vec![
            f32r("w", &[2, 2, 1, 1], 1),
            f32r("s", &[2], 2),
            f32r("b", &[2], 3),
            f32r("m", &[2], 4),
            f32v("v", &[2], &[1.0, 2.0]),
            i64v("shape", &[2], &[1, 18]),
        ],
        vec![
            n("Conv", "x, w", "c", vec![]),
            n("BatchNormalization", "c, s, b, m, v", "bn", vec![]),
            n("Reshape", "bn, shape", "y", vec![]),
        ],
    );
    g.proto.name = Some("legacy".into());
    let mut m = model(g, 8);
    m.proto.ir_version = Some(3);
    let mut after = m.clone();
    let text = run_pipeline(&mut after, &CleanupOptions::default());
    insta::assert_snapshot!("legacy_ir3", text);
    // Every initializer is still listed as an input, and nothing else was dropped.
    let inputs: Vec<&str> = after.graph.input_names().collect();
    for t in &after.graph.initializers {
        assert!(
            inputs.contains(&t.name()),
            "{} is not listed as an input",
            t.name()
        );
    }
    assert!(inputs.contains(&"x"));
    assert_same_in_ort(&m, &after, 1e-5, &[]);
}

#[test]
fn folds_inside_branches_move_up_and_merge() {
    // Both branches reorder the same outer weight (as LSTM exports do per sample rate):
    // the folded copies move to the main graph, merge, and the original goes.
    let branch = |name: &str, out: &str, k: &str| {
        graph(
            name,
            vec![],
            vec![vi(out, "f32[2,4]")],
            vec![i64v(k, &[2], &[1, 0])],
            vec![
                n(
                    "Transpose",
                    "w",
                    &format!("{out}_wt"),
                    vec![ints("perm", &[1, 0])],
                ),
                n("MatMul", &format!("x, {out}_wt"), out, vec![]),
            ],
        )
    };
    let g = graph(
        "branches",
        vec![vi("x", "f32[2,3]"), vi("cond", "bool[]")],
        vec![vi("y", "f32[2,4]")],
        vec![f32r("w", &[4, 3], 7)],
        vec![n(
            "If",
            "cond",
            "y",
            vec![
                graph_attr("then_branch", branch("then", "t", "k1")),
                graph_attr("else_branch", branch("else", "e", "k2")),
            ],
        )],
    );
    let m = model(g, 17);
    let mut after = m.clone();
    insta::assert_snapshot!(
        "branch_folds_merge",
        run_pipeline(&mut after, &CleanupOptions::default())
    );
    assert_eq!(
        after.graph.initializers.len(),
        1,
        "one shared copy in the main graph"
    );
    assert_same_in_ort(&m, &after, 0.0, &[]);
    assert_same_in_ort(&m, &after, 0.0, &["--seed", "1"]);
}

#[test]
fn nonsense_constant_nodes_are_left_alone_with_reasons() {
    // Structurally valid, semantically broken: every pass must leave these nodes be
    // (and say why) rather than panic or write a wrong constant.
    let g = graph(
        "broken",
        vec![vi("x", "f32[2,3]")],
        vec![
            vi("y1", "f32[?]"),
            vi("y2", "f32[?]"),
            vi("y3", "f32[?]"),
            vi("y4", "i64[?]"),
            vi("y5", "f32[?]"),
            vi("y6", "f32[?]"),
        ],
        vec![
            f32r("data", &[2, 3], 1),
            i64v("far", &[1], &[7]),
            i64v("bad_shape", &[2], &[4, 4]),
            i64v("zero_step", &[1], &[0]),
            i64v("s", &[1], &[0]),
            i64v("big", &[1], &[i64::MAX]),
            i64v("zero", &[], &[0]),
            f32r("w0", &[0, 3, 1, 1], 2),
            f32v("short", &[1], &[1.0]),
        ],
        vec![
            n("Gather", "data, far", "y1", vec![]),
            n("Reshape", "data, bad_shape", "y2", vec![]),
            n("Slice", "data, s, big, s, zero_step", "y3", vec![]),
            n("Div", "far, zero", "y4", vec![]),
            n("Conv", "x, w0", "c", vec![]),
            n(
                "BatchNormalization",
                "c, short, short, short, short",
                "y5",
                vec![],
            ),
            n("Concat", "data, far", "y6", vec![int("axis", 5)]),
        ],
    );
    let mut m = model(g, 17);
    let text = run_pipeline(&mut m, &CleanupOptions::default());
    for node in ["y1", "y2", "y3", "y4", "y5", "y6"] {
        assert!(
            text.contains(&format!("-> {node}")),
            "{node} was rewritten:\n{text}"
        );
    }
    for why in [
        "out of range",
        "do not fit",
        "step 0",
        "division by zero",
        "axis 5 out of range",
        "do not have 1 output channels",
    ] {
        assert!(text.contains(why), "no report of {why:?}:\n{text}");
    }
}
