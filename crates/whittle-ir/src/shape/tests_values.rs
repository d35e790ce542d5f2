//! Tracked contents of small tensors: shape arithmetic feeding Reshape, constants,
//! computed pads, and `If`s whose condition is a tracked constant.
use super::testutil::*;
use crate::dtype::DataType;
use crate::tensor::Tensor;

fn x(dims: &str) -> G {
    G::new().input("x", F32, dims)
}

#[test]
fn shape_arithmetic_feeds_reshape_with_symbols() {
    // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) on x: [N, 4, 4].
    let m = x("N,4,4")
        .init(i64_tensor("zero", &[0]))
        .init(i64_tensor("minus1", &[-1]))
        .node(node("Shape", &["x"], &["s"], vec![]))
        .node(node("Gather", &["s", "zero"], &["n"], vec![]))
        .node(node(
            "Concat",
            &["n", "minus1"],
            &["target"],
            vec![int("axis", 0)],
        ))
        .node(node("Reshape", &["x", "target"], &["y"], vec![]))
        .node(node("Size", &["y"], &["size"], vec![]))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "s"), "i64[3]");
    assert_eq!(shape_text(&map, "n"), "i64[1]");
    assert_eq!(shape_text(&map, "target"), "i64[2]");
    assert_eq!(shape_text(&map, "y"), "f32[N,16]");
    assert_eq!(shape_text(&map, "size"), "i64[]");
}

#[test]
fn constants_and_constant_of_shape() {
    let m = G::new()
        .node(node(
            "Constant",
            &[],
            &["c"],
            vec![ints("value_ints", &[2, 3])],
        ))
        .node(node(
            "ConstantOfShape",
            &["c"],
            &["z"],
            vec![tensor_attr("value", i64_tensor("", &[0]))],
        ))
        .node(node(
            "Constant",
            &[],
            &["t"],
            vec![tensor_attr("value", f32_tensor("", &[4, 5]))],
        ))
        .node(node("Range", &["lo", "hi", "step"], &["r"], vec![]))
        .init(Tensor::new_raw(
            "lo",
            DataType::INT64,
            vec![],
            bytes::Bytes::from(1i64.to_le_bytes().to_vec()),
        ))
        .init(Tensor::new_raw(
            "hi",
            DataType::INT64,
            vec![],
            bytes::Bytes::from(10i64.to_le_bytes().to_vec()),
        ))
        .init(Tensor::new_raw(
            "step",
            DataType::INT64,
            vec![],
            bytes::Bytes::from(4i64.to_le_bytes().to_vec()),
        ))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "c"), "i64[2]");
    assert_eq!(shape_text(&map, "z"), "i64[2,3]");
    assert_eq!(shape_text(&map, "t"), "f32[4,5]");
    // 1, 5, 9: ceil((10 − 1) / 4) = 3.
    assert_eq!(shape_text(&map, "r"), "i64[3]");
}

#[test]
fn computed_pads_and_constant_if_conditions_resolve() {
    // PyTorch's F.pad export: pads = Reshape(Transpose(Slice(Reshape(Concat(p,
    // ConstantOfShape([2])), [2,2]), step -1)), [-1]) — all tracked, so Pad is known.
    let m = x("1,512")
        .init(i64_tensor("p", &[32, 32]))
        .init(i64_tensor("two", &[2]))
        .init(i64_tensor("shape22", &[2, 2]))
        .init(i64_tensor("minus1", &[-1]))
        .init(i64_tensor("zero", &[0]))
        .init(i64_tensor("big_neg", &[i64::MIN]))
        .node(node(
            "ConstantOfShape",
            &["two"],
            &["zeros"],
            vec![tensor_attr("value", i64_tensor("", &[0]))],
        ))
        .node(node(
            "Concat",
            &["p", "zeros"],
            &["cat"],
            vec![int("axis", 0)],
        ))
        .node(node("Reshape", &["cat", "shape22"], &["m"], vec![]))
        .node(node(
            "Slice",
            &["m", "minus1", "big_neg", "zero", "minus1"],
            &["rev"],
            vec![],
        ))
        .node(node(
            "Transpose",
            &["rev"],
            &["t"],
            vec![ints("perm", &[1, 0])],
        ))
        .node(node("Reshape", &["t", "minus1"], &["pads"], vec![]))
        .node(node("Pad", &["x", "pads"], &["y"], vec![]))
        .model(17);
    // cat = [32,32,0,0] → m = [[32,32],[0,0]] → rev = [[0,0],[32,32]] → t = [[0,32],[0,32]]
    // → pads [0,32,0,32]: begin (0, 32), end (0, 32) → [1, 576].
    assert_eq!(shape_text(&infer(&m), "y"), "f32[1,576]");

    // If(Not(Equal(Size(Shape(x)), 2))): rank 2, so the else branch runs.
    let then_g = G::new()
        .output("t", F32, "..")
        .node(node("Unsqueeze", &["x", "zero"], &["t"], vec![]))
        .graph();
    let else_g = G::new()
        .output("e", F32, "..")
        .node(node("Identity", &["x"], &["e"], vec![]))
        .graph();
    let m = x("N,128")
        .init(i64_tensor("zero", &[0]))
        .init(Tensor::new_raw(
            "two",
            DataType::INT64,
            vec![],
            bytes::Bytes::from(2i64.to_le_bytes().to_vec()),
        ))
        .node(node("Shape", &["x"], &["s"], vec![]))
        .node(node("Size", &["s"], &["rank"], vec![]))
        .node(node("Equal", &["rank", "two"], &["is2"], vec![]))
        .node(node("Not", &["is2"], &["not2"], vec![]))
        .node(node("Cast", &["not2"], &["c"], vec![int("to", 9)]))
        .node(node(
            "If",
            &["c"],
            &["y"],
            vec![
                graph_attr("then_branch", then_g),
                graph_attr("else_branch", else_g),
            ],
        ))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "t"), "f32[1,N,128]");
    assert_eq!(shape_text(&map, "y"), "f32[N,128]");
}
