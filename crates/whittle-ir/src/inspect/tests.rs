//! Parameter counting, MACs, rendering and DOT on small in-memory models.
use super::InspectReport;
use crate::shape::ShapeOverrides;
use crate::shape::testutil::*;
use whittle_proto::attribute_proto::AttributeType;
use whittle_proto::{AttributeProto, SparseTensorProto, TensorProto};

fn value_float(f: f32) -> crate::node::Attribute {
    wrap(AttributeProto {
        name: Some("value_float".into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    })
}

fn report(m: &crate::Model, batch: Option<u64>) -> InspectReport {
    InspectReport::new(
        m,
        &ShapeOverrides {
            batch,
            ..Default::default()
        },
    )
    .expect("overrides fit")
}

/// x[N,3,8,8] → Conv(16, 3×3, pad 1) → MatMul by [8,4] → Gemm-free tail.
fn conv_matmul() -> crate::Model {
    G::new()
        .input("x", F32, "N,3,8,8")
        .output("z", F32, "N,16,8,4")
        .init(f32_tensor("w", &[16, 3, 3, 3]))
        .init(f32_tensor("m", &[8, 4]))
        .node(node(
            "Conv",
            &["x", "w"],
            &["y"],
            vec![ints("pads", &[1, 1, 1, 1])],
        ))
        .node(node("MatMul", &["y", "m"], &["z"], vec![]))
        .model(17)
}

#[test]
fn macs_need_known_batch() {
    let m = conv_matmul();
    let r = report(&m, None);
    assert_eq!(r.macs.total, None);
    assert_eq!(r.macs.unknown_nodes, 2);
    let r = report(&m, Some(2));
    // Conv: 2·16·8·8 · 3·3·3 = 55296; MatMul: (2·16·8·4) · 8 = 8192.
    assert_eq!(r.macs.by_op["Conv"].macs, 55_296);
    assert_eq!(r.macs.by_op["MatMul"].macs, 8_192);
    assert_eq!(r.macs.total, Some(63_488));
    assert_eq!(r.macs.overrides.bindings.get("N"), Some(&2));
}

#[test]
fn gemm_and_conv_transpose_macs() {
    let m = G::new()
        .input("a", F32, "5,3")
        .input("x", F32, "1,4,6,6")
        .init(f32_tensor("b", &[7, 5]))
        .init(f32_tensor("w", &[4, 2, 3, 3]))
        .node(node(
            "Gemm",
            &["a", "b"],
            &["y"],
            vec![int("transA", 1), int("transB", 1)],
        ))
        .node(node(
            "ConvTranspose",
            &["x", "w"],
            &["t"],
            vec![int("group", 2)],
        ))
        .model(17);
    let r = report(&m, None);
    // Gemm: M=3, K=5, N=7 → 105. ConvTranspose: (1·4·6·6) · (2·3·3) = 2592.
    assert_eq!(r.macs.by_op["Gemm"].macs, 105);
    assert_eq!(r.macs.by_op["ConvTranspose"].macs, 2_592);
    assert_eq!(r.macs.total, Some(2_697));
}

#[test]
fn parameters_count_initializers_sparse_values_and_constants() {
    let mut g = G::new()
        .init(f32_tensor("w", &[2, 4]))
        .node(node(
            "Constant",
            &[],
            &["c1"],
            vec![tensor_attr("value", f32_tensor("", &[4]))],
        ))
        .node(node(
            "Constant",
            &[],
            &["c2"],
            vec![ints("value_ints", &[1, 2, 3])],
        ))
        .node(node("Constant", &[], &["c3"], vec![value_float(0.5)]));
    g.proto.sparse_initializer.push(SparseTensorProto {
        values: Some(TensorProto {
            name: Some("sp".into()),
            data_type: Some(F32.0),
            dims: vec![2],
            float_data: vec![1.0, 2.0],
            ..Default::default()
        }),
        dims: vec![100, 100],
        ..Default::default()
    });
    let r = report(&g.model(17), None);
    let p = &r.parameters;
    assert_eq!(
        (
            p.initializer_elements,
            p.sparse_initializer_elements,
            p.constant_node_elements
        ),
        (8, 2, 8)
    );
    assert_eq!(p.total, 18);
    assert_eq!(p.by_dtype["f32"].bytes, 4 * (8 + 2 + 4 + 1));
    assert_eq!(p.by_dtype["i64"].bytes, 24);
    assert_eq!(r.largest_tensors[0].name, "w");
    assert_eq!(r.largest_tensors[1].name, "c2");
    assert_eq!(
        r.largest_tensors
            .iter()
            .find(|t| t.name == "sp")
            .map(|t| t.shape.clone()),
        Some(vec![100, 100])
    );
}

#[test]
fn text_and_json_are_deterministic_and_say_unknown() {
    let m = conv_matmul();
    let r = report(&m, None);
    let text = r.to_text();
    assert_eq!(text, report(&m, None).to_text());
    assert!(text.contains("unknown (1 node)"), "{text}");
    assert!(text.contains("--batch N"), "{text}");
    let json = serde_json::to_value(&r).expect("serializes");
    assert_eq!(json["schema"], "whittle.inspect/1");
    assert_eq!(json["macs"]["total"], serde_json::Value::Null);
    assert_eq!(
        json["inputs"][0]["shape"],
        serde_json::json!(["N", 3, 8, 8])
    );
    let text = report(&m, Some(1)).to_text();
    assert!(text.contains("MACs with batch 1, N=1"), "{text}");
    assert!(text.contains("x  f32[N,3,8,8]  → [1,3,8,8]"), "{text}");
}

#[test]
fn thousands_separators() {
    assert_eq!(super::render::thousands(0), "0");
    assert_eq!(super::render::thousands(999), "999");
    assert_eq!(super::render::thousands(1_000), "1,000");
    assert_eq!(super::render::thousands(159_232), "159,232");
    assert_eq!(super::render::thousands(12_345_678), "12,345,678");
}

#[test]
fn dot_has_nodes_edges_and_clusters() {
    let then_g = G::new()
        .output("t", F32, "..")
        .node(node("Relu", &["x"], &["t"], vec![]))
        .graph();
    let else_g = G::new()
        .output("e", F32, "..")
        .node(node("Neg", &["x"], &["e"], vec![]))
        .graph();
    let m = G::new()
        .input("c", crate::DataType::BOOL, "")
        .input("x", F32, "N,4")
        .output("y", F32, "N,4")
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
    let dot = super::model_to_dot(&m);
    assert!(dot.starts_with("digraph "), "{dot}");
    assert!(dot.contains("label=\"If\\ny\""), "{dot}");
    assert!(
        dot.contains("subgraph \"cluster_g0_n0_then_branch\""),
        "{dot}"
    );
    // The branch reads the outer input x: an edge from the outer input vertex.
    assert!(
        dot.contains("\"g0_in1\" -> \"g1_n0\" [label=\"x\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"g1_out0\" -> \"g0_n0\" [label=\"then_branch\", style=dashed]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"g0_n0\" -> \"g0_out0\" [label=\"y\"]"),
        "{dot}"
    );
    assert_eq!(dot.matches('{').count(), dot.matches('}').count());
}
