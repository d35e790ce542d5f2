//! Each clean-up pass on a small handmade graph that needs it: the canonical text before
//! and after plus the pass report (insta snapshots), and onnxruntime agreeing that the
//! rewritten model computes the same outputs.
mod cleanup_common;

use cleanup_common::*;
use whittle_ir::Model;

/// Snapshots `passes` on `m` and checks the result numerically.
fn check(name: &str, m: Model, passes: &[&str], atol: f64) {
    let before = m.clone();
    let mut after = m;
    let text = run_passes(&mut after, passes);
    insta::assert_snapshot!(name, text);
    assert_same_in_ort(&before, &after, atol, &[]);
}

#[test]
fn dce_removes_dead_nodes_initializers_and_value_info() {
    // The If's branches read `a` from the outer graph: `a` stays; the dead Neg inside
    // the then-branch goes.
    let then_b = graph(
        "then",
        vec![],
        vec![vi("t", "f32[2,3]")],
        vec![],
        vec![
            n("Relu", "a", "t", vec![]),
            n("Neg", "a", "dead_inner", vec![]),
        ],
    );
    let else_b = graph(
        "else",
        vec![],
        vec![vi("e", "f32[2,3]")],
        vec![],
        vec![n("Neg", "a", "e", vec![])],
    );
    let mut g = graph(
        "dce",
        vec![vi("x", "f32[2,3]"), vi("cond", "bool[]")],
        vec![vi("y", "f32[2,3]")],
        vec![f32r("w", &[2, 3], 1), f32r("unused", &[3], 2)],
        vec![
            n("Add", "x, w", "a", vec![]),
            n("Relu", "x", "dead1", vec![]),
            n("Neg", "dead1", "dead2", vec![]),
            n(
                "If",
                "cond",
                "y",
                vec![
                    graph_attr("then_branch", then_b),
                    graph_attr("else_branch", else_b),
                ],
            ),
        ],
    );
    g.proto.value_info = vec![vi("a", "f32[2,3]"), vi("dead2", "f32[2,3]")];
    check("dce", model(g, 17), &["dce"], 0.0);
}

#[test]
fn identity_elimination_rewires_and_keeps_graph_outputs() {
    let g = graph(
        "identity",
        vec![vi("x", "f32[N,4]")],
        vec![
            vi("y", "f32[N,4]"),
            vi("y2", "f32[N,4]"),
            vi("dm", "f32[N,4]"),
            vi("mask", "bool[N,4]"),
        ],
        vec![
            i64v("keep_shape", &[2], &[0, -1]),
            i64v("zero_pads", &[4], &[0, 0, 0, 0]),
            i64v("same", &[2], &[1, 4]),
            i64v("start", &[1], &[0]),
            i64v("end", &[1], &[i64::MAX]),
            i64v("axis1", &[1], &[1]),
        ],
        vec![
            n("Identity", "x", "i1", vec![]),
            n("Dropout", "i1", "d", vec![]),
            n("Cast", "d", "c", vec![int("to", 1)]),
            n("Reshape", "c, keep_shape", "r", vec![]),
            n("Transpose", "r", "t", vec![ints("perm", &[0, 1])]),
            n("Pad", "t, zero_pads", "p", vec![]),
            n("Expand", "p, same", "e", vec![]),
            n("Slice", "e, start, end, axis1", "s", vec![]),
            n("Relu", "s", "r2", vec![]),
            // A graph output: the Relu above takes the name `y` instead.
            n("Identity", "r2", "y", vec![]),
            // Input → output: nothing to rename, kept.
            n("Identity", "x", "y2", vec![]),
            // The mask is used: kept.
            n("Dropout", "x", "dm, mask", vec![]),
        ],
    );
    check("identity", model(g, 17), &["identity"], 0.0);
}

#[test]
fn constants_become_initializers_also_in_subgraphs() {
    let then_b = graph(
        "then",
        vec![],
        vec![vi("t", "f32[2]")],
        vec![],
        vec![
            n(
                "Constant",
                "",
                "k",
                vec![tensor("value", f32v("", &[2], &[2.0, 3.0]))],
            ),
            n("Mul", "z, k", "t", vec![]),
        ],
    );
    let else_b = graph(
        "else",
        vec![],
        vec![vi("e", "f32[2]")],
        vec![],
        vec![n("Identity", "z", "e", vec![])],
    );
    let g = graph(
        "constants",
        vec![vi("x", "f32[2]"), vi("cond", "bool[]")],
        vec![vi("y", "f32[2]"), vi("shape_out", "i64[2]")],
        vec![],
        vec![
            n(
                "Constant",
                "",
                "w",
                vec![tensor("value", f32v("", &[2], &[0.5, -1.0]))],
            ),
            n("Constant", "", "f", vec![float("value_float", 4.0)]),
            n(
                "Constant",
                "",
                "shape_out",
                vec![ints("value_ints", &[1, 2])],
            ),
            n("Add", "x, w", "a", vec![]),
            n("Mul", "a, f", "z", vec![]),
            n(
                "If",
                "cond",
                "y",
                vec![
                    graph_attr("then_branch", then_b),
                    graph_attr("else_branch", else_b),
                ],
            ),
        ],
    );
    check("constants", model(g, 17), &["constants"], 0.0);
}

#[test]
fn fold_evaluates_constant_subgraphs_and_static_shapes() {
    let g = graph(
        "fold",
        vec![vi("x", "f32[2,3]")],
        vec![vi("y", "f32[2,3]"), vi("big", "f32[512,1024]")],
        vec![
            i64v("zero", &[], &[0]),
            i64v("axes0", &[1], &[0]),
            i64v("minus1", &[1], &[-1]),
            f32v("two", &[3], &[2.0, 2.0, 2.0]),
            f32v("half", &[3], &[0.5, 1.0, 1.5]),
            i64v("big_shape", &[2], &[512, 1024]),
        ],
        vec![
            n("Shape", "x", "sh", vec![]),
            n("Gather", "sh, zero", "rows", vec![]),
            n("Unsqueeze", "rows, axes0", "rows1", vec![]),
            n("Concat", "rows1, minus1", "target", vec![int("axis", 0)]),
            n("Reshape", "x, target", "r", vec![]),
            n("Add", "two, half", "k", vec![]),
            n("Sqrt", "k", "sk", vec![]),
            n("Mul", "r, sk", "y", vec![]),
            // 2 MiB of zeros: over the 1 MiB fold limit, left as a node.
            n("ConstantOfShape", "big_shape", "big", vec![]),
        ],
    );
    check("fold", model(g, 17), &["fold"], 0.0);
}

#[test]
fn batchnorm_folds_into_conv_convtranspose_and_gemm() {
    let bn = |c: i64, s: u64| {
        vec![
            f32r(&format!("scale{s}"), &[c], s),
            f32r(&format!("shift{s}"), &[c], s + 1),
            f32r(&format!("mean{s}"), &[c], s + 2),
            f32v(
                &format!("var{s}"),
                &[c],
                &(0..c).map(|i| 0.5 + i as f32).collect::<Vec<_>>(),
            ),
        ]
    };
    let mut inits = vec![
        f32r("wc", &[4, 2, 3, 3], 10),
        f32r("wt", &[2, 1, 2, 2], 11),
        f32r("bt", &[2], 12),
        f32r("wg", &[3, 8], 13),
    ];
    inits.extend(bn(4, 20));
    inits.extend(bn(2, 30));
    inits.extend(bn(3, 40));
    inits.extend(bn(4, 50));
    let bn_node = |x: &str, s: u64, out: &str| {
        n(
            "BatchNormalization",
            &format!("{x}, scale{s}, shift{s}, mean{s}, var{s}"),
            out,
            vec![float("epsilon", 1e-3)],
        )
    };
    let g = graph(
        "bn",
        vec![vi("x", "f32[1,2,5,5]"), vi("v", "f32[2,8]")],
        vec![
            vi("yc", "f32[1,4,3,3]"),
            vi("yt", "f32[1,2,10,10]"),
            vi("yg", "f32[2,3]"),
            vi("c2", "f32[1,4,3,3]"),
            vi("yc2", "f32[1,4,3,3]"),
        ],
        inits,
        vec![
            n("Conv", "x, wc", "c", vec![ints("kernel_shape", &[3, 3])]),
            bn_node("c", 20, "yc"),
            n(
                "ConvTranspose",
                "x, wt, bt",
                "t",
                vec![int("group", 2), ints("strides", &[2, 2])],
            ),
            bn_node("t", 30, "yt"),
            n("Gemm", "v, wg", "gm", vec![int("transB", 1)]),
            bn_node("gm", 40, "yg"),
            // The conv output is also a graph output: not folded.
            n("Conv", "x, wc", "c2", vec![ints("kernel_shape", &[3, 3])]),
            bn_node("c2", 50, "yc2"),
        ],
    );
    check("fuse_bn", model(g, 17), &["fuse-bn"], 1e-5);
}

#[test]
fn per_channel_mul_add_fold_into_conv() {
    let g = graph(
        "affine",
        vec![vi("x", "f32[1,2,4,4]")],
        vec![vi("y", "f32[1,3,4,4]"), vi("z", "f32[1,3,4,4]")],
        vec![
            f32r("w", &[3, 2, 1, 1], 1),
            f32r("b", &[3], 2),
            f32r("k", &[3, 1, 1], 3),
            f32r("d", &[1, 3, 1, 1], 4),
            f32r("spatial", &[1, 1, 4, 4], 5),
        ],
        vec![
            n("Conv", "x, w, b", "c", vec![]),
            n("Mul", "c, k", "m", vec![]),
            n("Add", "d, m", "y", vec![]),
            // Not per channel: left alone.
            n("Conv", "x, w", "c2", vec![]),
            n("Mul", "c2, spatial", "z", vec![]),
        ],
    );
    // Run twice: the Add is next to the conv only after the Mul is folded.
    check(
        "fuse_conv_affine",
        model(g, 17),
        &["fuse-conv-affine", "fuse-conv-affine"],
        1e-5,
    );
}

#[test]
fn matmul_add_becomes_gemm_when_a_is_2d() {
    let g = graph(
        "gemm",
        vec![vi("a", "f32[N,4]"), vi("a3", "f32[N,5,4]")],
        vec![vi("y", "f32[N,3]"), vi("y3", "f32[N,5,3]")],
        vec![f32r("w", &[4, 3], 1), f32r("bias", &[3], 2)],
        vec![
            n("MatMul", "a, w", "mm", vec![]),
            n("Add", "mm, bias", "y", vec![]),
            n("MatMul", "a3, w", "mm3", vec![]),
            n("Add", "mm3, bias", "y3", vec![]),
        ],
    );
    check("fuse_gemm", model(g, 17), &["fuse-gemm"], 1e-5);
}

#[test]
fn duplicate_initializers_merge_by_content() {
    let mut g = graph(
        "dedup",
        vec![vi("x", "f32[3]"), vi("e", "f32[3]")],
        vec![vi("y", "f32[3]")],
        vec![
            f32v("a", &[3], &[1.0, 2.0, 3.0]),
            f32v("b", &[3], &[1.0, 2.0, 3.0]),
            f32v("c", &[3], &[1.0, 2.0, 4.0]),
            f32v("b2", &[1, 3], &[1.0, 2.0, 3.0]),
            // An input with a default: overridable, never merged.
            f32v("e", &[3], &[1.0, 2.0, 3.0]),
        ],
        vec![
            n("Add", "x, a", "s1", vec![]),
            n("Mul", "s1, b", "s2", vec![]),
            n("Sub", "s2, c", "s3", vec![]),
            n("Add", "s3, b2", "s4", vec![]),
            n("Add", "s4, e", "y0", vec![]),
            n(
                "ReduceSum",
                "y0",
                "y",
                vec![int("keepdims", 0), ints("axes", &[0])],
            ),
        ],
    );
    g.proto.output = vec![vi("y", "f32[]")];
    check("dedup", model(g, 11), &["dedup"], 0.0);
}

#[test]
fn repeated_computations_merge() {
    let g = graph(
        "cse",
        vec![vi("x", "f32[2,2]")],
        vec![vi("y", "f32[2,2]"), vi("z", "f32[2,2]")],
        vec![],
        vec![
            n("Relu", "x", "r1", vec![]),
            n("Relu", "x", "r2", vec![]),
            n("Neg", "r1", "n1", vec![]),
            n("Neg", "r2", "n2", vec![]),
            n("Add", "n1, n2", "y", vec![]),
            // Different attributes: different results.
            n("Transpose", "x", "t1", vec![ints("perm", &[1, 0])]),
            n("Transpose", "x", "t2", vec![ints("perm", &[0, 1])]),
            n("Sub", "t1, t2", "z", vec![]),
        ],
    );
    check("cse", model(g, 17), &["cse"], 0.0);
}

#[test]
fn consecutive_slices_on_different_axes_merge() {
    let g = graph(
        "slices",
        vec![vi("x", "f32[4,6]")],
        vec![vi("y", "f32[2,3]")],
        vec![
            i64v("s0", &[1], &[1]),
            i64v("e0", &[1], &[3]),
            i64v("a0", &[1], &[0]),
            i64v("s1", &[1], &[0]),
            i64v("e1", &[1], &[i64::MAX]),
            i64v("a1", &[1], &[-1]),
            i64v("st1", &[1], &[2]),
        ],
        vec![
            n("Slice", "x, s0, e0, a0", "h", vec![]),
            n("Slice", "h, s1, e1, a1, st1", "y", vec![]),
        ],
    );
    check("merge_slices", model(g, 17), &["merge-slices"], 0.0);
}
