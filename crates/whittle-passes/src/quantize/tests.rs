//! Unit tests of the quantize pass on tiny handmade graphs (numeric checks against
//! onnxruntime live in the end-to-end suites `tests/tests/quantize_*.rs`).
use super::*;
use crate::cleanup::attrs::int_attribute;
use bytes::Bytes;
use whittle_ir::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto, type_proto,
};
use whittle_ir::shape::{Dim, tensor_value_info};
use whittle_ir::{Attribute, DataType, Graph, Model, Node, Tensor};

pub(super) fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Known(d as u64)).collect();
    tensor_value_info(name, DataType::FLOAT, Some(&dims))
}

pub(super) fn f32t(name: &str, dims: &[i64], v: &[f32]) -> Tensor {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Tensor::new_raw(name, DataType::FLOAT, dims.to_vec(), Bytes::from(data))
}

pub(super) fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attributes: Vec<Attribute>,
) -> Node {
    Node {
        proto: NodeProto {
            name: Some(name.into()),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        },
        attributes,
    }
}

pub(super) fn graph(
    name: &str,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<Tensor>,
    nodes: Vec<Node>,
) -> Graph {
    let proto = GraphProto {
        name: Some(name.into()),
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    Graph::new(proto, inits, nodes)
}

pub(super) fn model(g: Graph, opset: i64) -> Model {
    Model {
        proto: ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            ..Default::default()
        },
        graph: g,
        path: None,
        source_len: None,
    }
}

/// y = x·W1 and z = x·W1 (shared weight), u = x·W2 with W2 tiny.
fn two_matmuls() -> Model {
    let w1 = [1.0f32, -0.5, 0.25, 2.54, -1.27, 0.0];
    model(
        graph(
            "mm",
            vec![vi("x", &[1, 2])],
            vec![vi("y", &[1, 3]), vi("z", &[1, 3]), vi("u", &[1, 1])],
            vec![f32t("W1", &[2, 3], &w1), f32t("W2", &[2, 1], &[0.5, 0.25])],
            vec![
                node("MatMul", "mm_y", &["x", "W1"], "y", vec![]),
                node("MatMul", "mm_z", &["x", "W1"], "z", vec![]),
                node("MatMul", "mm_u", &["x", "W2"], "u", vec![]),
            ],
        ),
        17,
    )
}

fn run(m: &mut Model, opts: &QuantizeOptions) -> QuantizeReport {
    let r = quantize(m, opts, &Default::default(), None).unwrap();
    whittle_ir::verify::verify(m).unwrap();
    r
}

fn int8_values(m: &Model, name: &str) -> Vec<i8> {
    let t = m.graph.initializer(name).unwrap();
    t.le_bytes().unwrap().iter().map(|&b| b as i8).collect()
}

#[test]
fn per_channel_weights_are_the_onnx_formula_and_shared_weights_quantize_once() {
    let mut m = two_matmuls();
    let opts = QuantizeOptions {
        min_elements: 3,
        ..Default::default()
    };
    let r = run(&mut m, &opts);
    // Columns of W1 [2, 3] (MatMul's output axis 1): absmax 2.54, 1.27, 0.25 → scales /127.
    // q = rint(w / s): 1/(2.54/127) = 50, 2.54 → 127; -0.5/(1.27/127) = -50, -1.27 → -127;
    // 0.25/(0.25/127) = 127, 0 → 0.
    assert_eq!(
        int8_values(&m, "W1_quantized"),
        vec![50, -50, 127, 127, -127, 0]
    );
    let dqs: Vec<&Node> = m
        .graph
        .nodes()
        .map(|(_, n)| n)
        .filter(|n| n.op_type() == "DequantizeLinear")
        .collect();
    assert_eq!(dqs.len(), 1, "the shared weight is dequantized once");
    assert_eq!(dqs[0].attr_int("axis"), Some(1));
    assert!(
        m.graph.initializer("W1").is_none(),
        "the float weight is gone"
    );
    let status: Vec<(&str, Status)> = r
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.status))
        .collect();
    assert_eq!(status[0].1, Status::Quantized);
    assert_eq!(status[1].1, Status::Quantized);
    assert!(r.nodes[1].form.as_deref().unwrap_or("").contains("shared"));
    assert_eq!(status[2].1, Status::Skipped);
    assert_eq!(
        r.nodes[2].reason.as_deref(),
        Some("weight has 2 elements (< --min-elements 3)")
    );
    assert!(m.graph.initializer("W2").is_some());
}

#[test]
fn int4_blocks_pack_two_values_a_byte_and_raise_the_opset() {
    let w: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 8.0).collect();
    let mut m = model(
        graph(
            "blk",
            vec![vi("x", &[1, 32])],
            vec![vi("y", &[1, 2])],
            vec![f32t("W", &[32, 2], &w)],
            vec![node("MatMul", "mm", &["x", "W"], "y", vec![])],
        ),
        17,
    );
    let opts = QuantizeOptions {
        weight_type: QuantType::Int4,
        granularity: Granularity::Block(16),
        ..Default::default()
    };
    let r = run(&mut m, &opts);
    assert_eq!(m.opset(""), Some(21));
    assert!(
        r.notes.iter().any(|n| n.contains("from 17 to 21")),
        "{:?}",
        r.notes
    );
    let q = m.graph.initializer("W_quantized").unwrap();
    assert_eq!(q.dtype(), DataType(22));
    assert_eq!(q.le_bytes().unwrap().len(), 32);
    let s = m.graph.initializer("W_scale").unwrap();
    assert_eq!(s.dims(), &[2, 2]);
    let dq = m
        .graph
        .nodes()
        .find(|(_, n)| n.op_type() == "DequantizeLinear")
        .unwrap()
        .1;
    assert_eq!(
        (dq.attr_int("axis"), dq.attr_int("block_size")),
        (Some(0), Some(16))
    );
}

#[test]
fn subgraph_weights_are_quantized_and_outer_ones_reported() {
    let then_b = graph(
        "then",
        vec![],
        vec![vi("t", &[1, 3])],
        vec![f32t("Wt", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
        vec![node("MatMul", "mm_then", &["x", "Wt"], "t", vec![])],
    );
    let else_b = graph(
        "else",
        vec![],
        vec![vi("e", &[1, 3])],
        vec![],
        vec![node("MatMul", "mm_else", &["x", "Wo"], "e", vec![])],
    );
    let branch = |name: &str, g: Graph| Attribute {
        proto: whittle_ir::proto::AttributeProto {
            name: Some(name.into()),
            r#type: Some(whittle_ir::proto::attribute_proto::AttributeType::Graph as i32),
            ..Default::default()
        },
        t: None,
        tensors: vec![],
        g: Some(g),
        graphs: vec![],
    };
    let mut iff = node(
        "If",
        "branch",
        &["cond"],
        "y",
        vec![branch("then_branch", then_b), branch("else_branch", else_b)],
    );
    iff.proto.input = vec!["cond".into()];
    let mut cond = vi("cond", &[]);
    if let Some(type_proto::Value::TensorType(t)) =
        cond.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(DataType::BOOL.0);
    }
    let mut m = model(
        graph(
            "sub",
            vec![cond, vi("x", &[1, 2])],
            vec![vi("y", &[1, 3])],
            vec![f32t("Wo", &[2, 3], &[1.0; 6])],
            vec![iff],
        ),
        17,
    );
    let r = run(&mut m, &QuantizeOptions::default());
    let by_name = |s: &str| r.nodes.iter().find(|n| n.node.contains(s)).unwrap();
    assert_eq!(by_name("mm_then").status, Status::Quantized);
    assert!(by_name("mm_then").node.starts_with("\"branch\" (If)/"));
    assert_eq!(
        by_name("mm_else").reason.as_deref(),
        Some("weight is defined in an enclosing graph")
    );
    let then_g = m
        .graph
        .nodes()
        .next()
        .unwrap()
        .1
        .subgraphs()
        .next()
        .unwrap()
        .clone();
    assert!(then_g.initializer("Wt_quantized").is_some());
    assert!(
        then_g
            .nodes()
            .any(|(_, n)| n.op_type() == "DequantizeLinear")
    );
}

#[test]
fn graph_input_weights_and_dynamic_weights_are_skipped_with_reasons() {
    let mut g = graph(
        "gi",
        vec![vi("x", &[1, 2]), vi("W", &[2, 2])],
        vec![vi("y", &[1, 2]), vi("z", &[1, 2])],
        vec![f32t("W", &[2, 2], &[1.0; 4])],
        vec![
            node("MatMul", "mm", &["x", "W"], "y", vec![]),
            node(
                "Transpose",
                "tr",
                &["W"],
                "Wt",
                vec![int_attribute("axis", 0)],
            ),
            node("MatMul", "mm2", &["x", "Wt"], "z", vec![]),
        ],
    );
    g.nodes_mut().nth(1).unwrap().attributes.clear();
    let mut m = model(g, 17);
    let r = run(&mut m, &QuantizeOptions::default());
    assert_eq!(
        r.nodes[0].reason.as_deref(),
        Some("weight is also a graph input (it can be fed at run time)")
    );
    assert_eq!(
        r.nodes[1].reason.as_deref(),
        Some("weight is computed at run time (output of Transpose)")
    );
    assert_eq!(r.quantized(), 0);
}

#[test]
fn fp16_rewrites_casts_and_constants_and_keeps_io_when_asked() {
    let mut m = model(
        graph(
            "f16",
            vec![vi("x", &[1, 2])],
            vec![vi("y", &[1, 2])],
            vec![f32t("b", &[2], &[1.0, 2.0])],
            vec![
                node("Cast", "c", &["x"], "xc", vec![int_attribute("to", 1)]),
                node("Add", "add", &["xc", "b"], "y", vec![]),
            ],
        ),
        17,
    );
    let opts = QuantizeOptions {
        mode: Mode::Fp16,
        keep_io_types: true,
        ..Default::default()
    };
    let r = run(&mut m, &opts);
    assert_eq!(r.quantized(), 2);
    assert_eq!(
        m.graph.initializer("b").map(|t| t.dtype()),
        Some(DataType::FLOAT16)
    );
    let text = whittle_ir::text::model_to_text(&m);
    assert!(
        text.contains("input  x: f32[1,2]") && text.contains("output y: f32[1,2]"),
        "{text}"
    );
    assert!(text.contains("c: Cast(x_fp16) -> xc {to=10}"), "{text}");
    assert!(text.contains("y_cast: Cast(y_fp16) -> y {to=1}"), "{text}");
}

#[test]
fn coverage_counts_macs_of_quantized_nodes() {
    let mut r = QuantizeReport::default();
    for (status, macs, integer) in [
        (Status::Quantized, 30, true),
        (Status::Skipped, 10, false),
        (Status::Quantized, 60, false),
    ] {
        let mut e = NodeEntry::new("n".into(), "MatMul");
        e.status = status;
        e.macs = Some(macs);
        e.integer = integer;
        r.nodes.push(e);
    }
    r.nodes.push(NodeEntry::new("unknown".into(), "Conv"));
    r.finish_coverage();
    let c = r.coverage;
    assert_eq!(
        (
            c.macs_total,
            c.macs_quantized_weights,
            c.macs_integer,
            c.nodes_unknown_macs
        ),
        (100, 90, 30, 1)
    );
    assert!((c.weight_coverage - 0.9).abs() < 1e-12 && (c.integer_coverage - 0.3).abs() < 1e-12);
}
