//! Rules for layout, slicing and reduction ops; expectations computed by hand.
use super::testutil::*;
use crate::dtype::DataType;
use crate::tensor::Tensor;

fn x(dims: &str) -> G {
    G::new().input("x", F32, dims)
}

#[test]
fn reshape_zero_and_minus_one() {
    let reshape = |input: &str, shape: &[i64]| {
        let g = x(input).init(i64_tensor("s", shape));
        one_node(17, g, node("Reshape", &["x", "s"], &["y"], vec![]))
    };
    assert_eq!(reshape("N,16,4,4", &[0, -1]), "f32[N,256]");
    assert_eq!(reshape("N,16,4,4", &[-1, 256]), "f32[N,256]");
    assert_eq!(reshape("N,S,64", &[0, 0, 4, 16]), "f32[N,S,4,16]");
    assert_eq!(reshape("N,S,64", &[0, -1, 4, 16]), "f32[N,S,4,16]");
    assert_eq!(reshape("2,3,4", &[4, -1]), "f32[4,6]");
    assert_eq!(reshape("2,3,4", &[5, -1]), "f32[5,?]");
    assert_eq!(reshape("N,M", &[-1]), "f32[?]");
    assert_eq!(reshape("?,4", &[2, -1]), "f32[2,?]");
    // A shape that is not constant: only the rank is known.
    let g = x("2,3").input("s", DataType::INT64, "3");
    assert_eq!(
        one_node(17, g, node("Reshape", &["x", "s"], &["y"], vec![])),
        "f32[?,?,?]"
    );
    // Opset 1–4: the shape is an attribute.
    assert_eq!(
        one_node(
            4,
            x("2,6"),
            node("Reshape", &["x"], &["y"], vec![ints("shape", &[3, -1])])
        ),
        "f32[3,4]"
    );
}

#[test]
fn flatten_transpose_concat() {
    assert_eq!(
        one_node(17, x("N,16,4,4"), node("Flatten", &["x"], &["y"], vec![])),
        "f32[N,256]"
    );
    assert_eq!(
        one_node(
            17,
            x("N,16,4,4"),
            node("Flatten", &["x"], &["y"], vec![int("axis", 0)])
        ),
        "f32[1,?]"
    );
    assert_eq!(
        one_node(
            17,
            x("2,3,4"),
            node("Flatten", &["x"], &["y"], vec![int("axis", -1)])
        ),
        "f32[6,4]"
    );
    assert_eq!(
        one_node(
            17,
            x("N,S,H"),
            node("Transpose", &["x"], &["y"], vec![ints("perm", &[0, 2, 1])])
        ),
        "f32[N,H,S]"
    );
    assert_eq!(
        one_node(17, x("2,3,4"), node("Transpose", &["x"], &["y"], vec![])),
        "f32[4,3,2]"
    );
    let g = x("N,3,8").input("z", F32, "N,5,8");
    assert_eq!(
        one_node(
            17,
            g,
            node("Concat", &["x", "z"], &["y"], vec![int("axis", 1)])
        ),
        "f32[N,8,8]"
    );
    let g = x("N,3").input("z", F32, "N,K");
    assert_eq!(
        one_node(
            17,
            g,
            node("Concat", &["x", "z"], &["y"], vec![int("axis", -1)])
        ),
        "f32[N,?]"
    );
}

#[test]
fn squeeze_unsqueeze_attribute_and_input_forms() {
    let sq = |opset, attrs, with_input: bool| {
        let mut g = x("N,1,4,1");
        let mut inputs = vec!["x"];
        if with_input {
            g = g.init(i64_tensor("axes", &[1, -1]));
            inputs.push("axes");
        }
        one_node(opset, g, node("Squeeze", &inputs, &["y"], attrs))
    };
    assert_eq!(sq(11, vec![ints("axes", &[1, 3])], false), "f32[N,4]");
    assert_eq!(sq(13, vec![], true), "f32[N,4]");
    // No axes: which dims are 1 is not known while N is a symbol.
    assert_eq!(sq(13, vec![], false), "f32[..]");
    assert_eq!(
        one_node(13, x("1,4,1"), node("Squeeze", &["x"], &["y"], vec![])),
        "f32[4]"
    );
    let g = x("N,4").init(i64_tensor("axes", &[0, -1]));
    assert_eq!(
        one_node(13, g, node("Unsqueeze", &["x", "axes"], &["y"], vec![])),
        "f32[1,N,4,1]"
    );
    assert_eq!(
        one_node(
            11,
            x("N,4"),
            node("Unsqueeze", &["x"], &["y"], vec![ints("axes", &[1])])
        ),
        "f32[N,1,4]"
    );
}

#[test]
fn reductions() {
    let red = |op: &str, opset, attrs, axes: Option<&[i64]>| {
        let mut g = x("N,3,8,8");
        let mut inputs = vec!["x"];
        if let Some(a) = axes {
            g = g.init(i64_tensor("axes", a));
            inputs.push("axes");
        }
        one_node(opset, g, node(op, &inputs, &["y"], attrs))
    };
    assert_eq!(
        red("ReduceMean", 17, vec![ints("axes", &[2, 3])], None),
        "f32[N,3,1,1]"
    );
    assert_eq!(
        red(
            "ReduceMean",
            17,
            vec![ints("axes", &[-1]), int("keepdims", 0)],
            None
        ),
        "f32[N,3,8]"
    );
    assert_eq!(
        red("ReduceSum", 13, vec![int("keepdims", 0)], Some(&[1])),
        "f32[N,8,8]"
    );
    assert_eq!(red("ReduceMax", 18, vec![], Some(&[0])), "f32[1,3,8,8]");
    assert_eq!(
        red("ReduceMean", 17, vec![int("keepdims", 0)], None),
        "f32[]"
    );
    assert_eq!(
        red("ReduceSum", 13, vec![int("noop_with_empty_axes", 1)], None),
        "f32[N,3,8,8]"
    );
    assert_eq!(
        red("ArgMax", 17, vec![int("axis", 1), int("keepdims", 0)], None),
        "i64[N,8,8]"
    );
}

#[test]
fn gather_shape_slice() {
    let g = G::new()
        .input("emb", F32, "1000,64")
        .input("ids", DataType::INT64, "N,S");
    assert_eq!(
        one_node(17, g, node("Gather", &["emb", "ids"], &["y"], vec![])),
        "f32[N,S,64]"
    );
    let g = x("N,3,8").init(Tensor::new_raw(
        "i",
        DataType::INT64,
        vec![],
        bytes::Bytes::from(2i64.to_le_bytes().to_vec()),
    ));
    assert_eq!(
        one_node(
            17,
            g,
            node("Gather", &["x", "i"], &["y"], vec![int("axis", 1)])
        ),
        "f32[N,8]"
    );
    let g = x("1,128").input("i", DataType::INT64, "1,1,1,128,2");
    assert_eq!(
        one_node(17, g, node("GatherND", &["x", "i"], &["y"], vec![])),
        "f32[1,1,1,128]"
    );
    let g = x("N,5,7").input("i", DataType::INT64, "N,3,1");
    assert_eq!(
        one_node(
            17,
            g,
            node("GatherND", &["x", "i"], &["y"], vec![int("batch_dims", 1)])
        ),
        "f32[N,3,7]"
    );
    assert_eq!(
        one_node(
            17,
            x("N,3,8"),
            node("Shape", &["x"], &["y"], vec![int("start", 1)])
        ),
        "i64[2]"
    );
    let slice = |input: &str, starts: &[i64], ends: &[i64], axes: &[i64], steps: &[i64]| {
        let g = x(input)
            .init(i64_tensor("starts", starts))
            .init(i64_tensor("ends", ends))
            .init(i64_tensor("axes", axes))
            .init(i64_tensor("steps", steps));
        one_node(
            17,
            g,
            node(
                "Slice",
                &["x", "starts", "ends", "axes", "steps"],
                &["y"],
                vec![],
            ),
        )
    };
    assert_eq!(
        slice("N,10,10", &[2, 0], &[8, i64::MAX], &[1, 2], &[2, 1]),
        "f32[N,3,10]"
    );
    assert_eq!(slice("N,10", &[-3], &[100], &[-1], &[1]), "f32[N,3]");
    assert_eq!(slice("N,10", &[9], &[-100], &[1], &[-2]), "f32[N,5]");
    assert_eq!(slice("N,10", &[0], &[i64::MAX], &[0], &[1]), "f32[N,10]");
    assert_eq!(slice("N,10", &[1], &[i64::MAX], &[0], &[1]), "f32[?,10]");
    let g = x("2,8");
    let attrs = vec![ints("starts", &[1]), ints("ends", &[5]), ints("axes", &[1])];
    assert_eq!(
        one_node(9, g, node("Slice", &["x"], &["y"], attrs)),
        "f32[2,4]"
    );
}

#[test]
fn split_pad_expand_tile_resize() {
    let m = x("N,10")
        .init(i64_tensor("sizes", &[3, 7]))
        .node(node(
            "Split",
            &["x", "sizes"],
            &["a", "b"],
            vec![int("axis", 1)],
        ))
        .node(node("Split", &["x"], &["c", "d"], vec![int("axis", 1)]))
        .node(node(
            "Split",
            &["x"],
            &["e", "f", "g"],
            vec![int("axis", 1), int("num_outputs", 3)],
        ))
        .model(18);
    let map = infer(&m);
    let got: Vec<String> = ["a", "b", "c", "d", "e", "g"]
        .iter()
        .map(|n| shape_text(&map, n))
        .collect();
    assert_eq!(
        got,
        [
            "f32[N,3]", "f32[N,7]", "f32[N,5]", "f32[N,5]", "f32[N,4]", "f32[N,2]"
        ]
    );
    let g = x("N,3,8,8").init(i64_tensor("pads", &[0, 0, 1, 2, 0, 0, 1, 2]));
    assert_eq!(
        one_node(17, g, node("Pad", &["x", "pads"], &["y"], vec![])),
        "f32[N,3,10,12]"
    );
    let g = x("N,3,8,8");
    assert_eq!(
        one_node(
            2,
            g,
            node(
                "Pad",
                &["x"],
                &["y"],
                vec![ints("pads", &[0, 0, 1, 1, 0, 0, 1, 1])]
            )
        ),
        "f32[N,3,10,10]"
    );
    let g = x("N,1,4").init(i64_tensor("shape", &[1, 3, 1]));
    assert_eq!(
        one_node(17, g, node("Expand", &["x", "shape"], &["y"], vec![])),
        "f32[N,3,4]"
    );
    let g = x("2,N").init(i64_tensor("r", &[3, 1]));
    assert_eq!(
        one_node(17, g, node("Tile", &["x", "r"], &["y"], vec![])),
        "f32[6,N]"
    );
    let g = x("N,3,8,8")
        .init(f32_values("scales", &[1.0, 1.0, 2.0, 2.5]))
        .init(f32_values("roi", &[]));
    assert_eq!(
        one_node(
            13,
            g,
            node("Resize", &["x", "roi", "scales"], &["y"], vec![])
        ),
        "f32[N,3,16,20]"
    );
    let g = x("N,3,8,8").init(i64_tensor("sizes", &[1, 3, 5, 6]));
    assert_eq!(
        one_node(
            13,
            g,
            node("Resize", &["x", "", "", "sizes"], &["y"], vec![])
        ),
        "f32[1,3,5,6]"
    );
    let g = x("1,3,4,4");
    assert_eq!(
        one_node(
            7,
            g,
            node(
                "Upsample",
                &["x"],
                &["y"],
                vec![floats("scales", &[1.0, 1.0, 2.0, 2.0])]
            )
        ),
        "f32[1,3,8,8]"
    );
}

#[test]
fn recurrent_and_normalization() {
    let g = x("S,N,16")
        .init(f32_tensor("w", &[2, 128, 16]))
        .init(f32_tensor("r", &[2, 128, 32]));
    let lstm = node(
        "LSTM",
        &["x", "w", "r"],
        &["y", "yh", "yc"],
        vec![int("hidden_size", 32), string("direction", "bidirectional")],
    );
    let map = infer(&g.node(lstm).model(17));
    assert_eq!(shape_text(&map, "y"), "f32[S,2,N,32]");
    assert_eq!(shape_text(&map, "yc"), "f32[2,N,32]");
    let m = x("N,S,16")
        .node(node(
            "LayerNormalization",
            &["x", "g"],
            &["y", "mean", "inv"],
            vec![int("axis", -1)],
        ))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "y"), "f32[N,S,16]");
    assert_eq!(shape_text(&map, "mean"), "f32[N,S,1]");
}
