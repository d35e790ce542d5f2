//! Whole-graph behaviour: unknown ops, value_info fallback, overrides (`--shape`,
//! `--batch`) and subgraphs.
use super::testutil::*;
use super::{ShapeError, ShapeOverrides, infer_shapes};
use crate::dtype::DataType;
use std::collections::BTreeMap;

#[test]
fn unknown_ops_stay_unknown_unless_declared() {
    let g = G::new().input("x", F32, "N,4").value_info("z", F32, "N,8");
    let m = g
        .node(node("MysteryOp", &["x"], &["y"], vec![]))
        .node(node("OtherMystery", &["x"], &["z"], vec![]))
        .node(node("Relu", &["y"], &["r"], vec![]))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "y"), "?[..]");
    assert_eq!(shape_text(&map, "r"), "?[..]");
    assert_eq!(shape_text(&map, "z"), "f32[N,8]");
}

#[test]
fn value_info_never_overrides_computed_dims() {
    // The file claims [N,99] for a Relu of [N,4]: the computed shape wins; the declared
    // one only fills a dim left unknown.
    let g = G::new()
        .input("x", F32, "N,4")
        .input("u", F32, "?,4")
        .value_info("r", F32, "N,99")
        .value_info("s", F32, "B,4");
    let m = g
        .node(node("Relu", &["x"], &["r"], vec![]))
        .node(node("Relu", &["u"], &["s"], vec![]))
        .model(17);
    let map = infer(&m);
    assert_eq!(shape_text(&map, "r"), "f32[N,4]");
    assert_eq!(shape_text(&map, "s"), "f32[B,4]");
}

#[test]
fn overrides_bind_symbols_and_check_fixed_dims() {
    let m = G::new()
        .input("x", F32, "N,3,H,W")
        .input("mask", F32, "N,?")
        .value_info("v", F32, "N,3")
        .node(node("Relu", &["x"], &["y"], vec![]))
        .node(node("Mystery", &["x"], &["v"], vec![]))
        .model(17);
    let batch = ShapeOverrides {
        batch: Some(2),
        ..Default::default()
    };
    let map = infer_shapes(&m, &batch).unwrap();
    assert_eq!(shape_text(&map, "y"), "f32[2,3,H,W]");
    assert_eq!(shape_text(&map, "mask"), "f32[2,?]");
    assert_eq!(shape_text(&map, "v"), "f32[2,3]");
    assert_eq!(map.bindings().get("N"), Some(&2));
    let shape = |dims: &[u64]| ShapeOverrides {
        inputs: BTreeMap::from([("x".to_string(), dims.to_vec())]),
        ..Default::default()
    };
    let map = infer_shapes(&m, &shape(&[1, 3, 224, 200])).unwrap();
    assert_eq!(shape_text(&map, "y"), "f32[1,3,224,200]");
    assert_eq!(shape_text(&map, "mask"), "f32[1,?]");
    assert!(matches!(
        infer_shapes(&m, &shape(&[1, 4, 2, 2])),
        Err(ShapeError::Fixed { index: 1, .. })
    ));
    assert!(matches!(
        infer_shapes(&m, &shape(&[1, 3])),
        Err(ShapeError::Rank { .. })
    ));
    let both = ShapeOverrides {
        batch: Some(5),
        ..shape(&[1, 3, 2, 2])
    };
    assert!(matches!(
        infer_shapes(&m, &both),
        Err(ShapeError::Conflict { .. })
    ));
    let wrong = ShapeOverrides {
        inputs: BTreeMap::from([("nope".to_string(), vec![1])]),
        ..Default::default()
    };
    let e = infer_shapes(&m, &wrong).unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("x, mask"), "{e}");
}

#[test]
fn batch_fixes_unnamed_leading_dims_only_in_that_input() {
    let m = G::new()
        .input("x", F32, "?,4")
        .input("z", F32, "-1,2")
        .input("q", F32, "1,'?','?'")
        .node(node("Relu", &["x"], &["y"], vec![]))
        .model(17);
    let map = infer_shapes(
        &m,
        &ShapeOverrides {
            batch: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(shape_text(&map, "y"), "f32[3,4]");
    // A negative dim_value (written by some exporters) is unknown, so --batch fixes it.
    assert_eq!(shape_text(&map, "z"), "f32[3,2]");
    // A dim_param "?" (as some exporters write for every unknown dim) binds nothing.
    let shape = ShapeOverrides {
        inputs: BTreeMap::from([("q".to_string(), vec![1, 48, 192])]),
        ..Default::default()
    };
    assert_eq!(
        shape_text(&infer_shapes(&m, &shape).unwrap(), "q"),
        "f32[1,48,192]"
    );
}

#[test]
fn subgraphs_read_outer_values_and_if_merges_branches() {
    let then_g = G::new()
        .output("t", F32, "..")
        .node(node("Relu", &["x"], &["t"], vec![]))
        .graph();
    let else_g = G::new()
        .output("e", F32, "..")
        .node(node("Add", &["x", "x"], &["e"], vec![]))
        .graph();
    let m = G::new()
        .input("c", DataType::BOOL, "")
        .input("x", F32, "N,4")
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
    assert_eq!(shape_text(&map, "t"), "f32[N,4]");
    assert_eq!(shape_text(&map, "e"), "f32[N,4]");
    assert_eq!(shape_text(&map, "y"), "f32[N,4]");
}
