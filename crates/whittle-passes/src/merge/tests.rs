//! Unit tests of `merge` on tiny in-memory models and the committed fixtures; numeric and
//! CLI checks live in `tests/tests/merge*.rs`.
use super::*;
use bytes::Bytes;
use whittle_ir::proto::{NodeProto, OperatorSetIdProto, ValueInfoProto};
use whittle_ir::shape::{Dim, tensor_value_info};
use whittle_ir::{DataType, Node, Tensor};

fn vi(name: &str, dtype: DataType, dims: &[i64]) -> ValueInfoProto {
    let dims: Vec<Dim> = dims
        .iter()
        .map(|&d| match d {
            -1 => Dim::Symbolic("N".into()),
            d => Dim::Known(d as u64),
        })
        .collect();
    tensor_value_info(name, dtype, Some(&dims))
}

fn node(op: &str, inputs: &[&str], output: &str) -> Node {
    Node {
        proto: NodeProto {
            name: Some(format!("{op}_{output}")),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        },
        attributes: Vec::new(),
    }
}

fn weight(name: &str, v: &[f32]) -> Tensor {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Tensor::new_raw(
        name,
        DataType::FLOAT,
        vec![v.len() as i64],
        Bytes::from(bytes),
    )
}

/// `y = Relu(x + w)` (or `op`) at ai.onnx `opset`, x: f32[N,4].
fn tiny(opset: i64, x: ValueInfoProto, w: &[f32], op: &str, out: &str) -> Model {
    let proto = whittle_ir::proto::GraphProto {
        name: Some("tiny".into()),
        input: vec![x],
        output: vec![vi(out, DataType::FLOAT, &[-1, 4])],
        ..Default::default()
    };
    let graph = Graph::new(
        proto,
        vec![weight("w", w)],
        vec![node("Add", &["x", "w"], "h"), node(op, &["h"], out)],
    );
    Model {
        proto: whittle_ir::proto::ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            ..Default::default()
        },
        graph,
        path: None,
        source_len: None,
    }
}

fn x() -> ValueInfoProto {
    vi("x", DataType::FLOAT, &[-1, 4])
}

fn members(models: Vec<Model>) -> Vec<Member> {
    let files = ["a.onnx", "b.onnx", "c.onnx"];
    models
        .into_iter()
        .zip(files)
        .map(|(m, f)| Member::in_memory(m, f))
        .collect()
}

fn opts(combine: Combine) -> MergeOptions {
    MergeOptions {
        combine,
        ..Default::default()
    }
}

fn fixture(name: &str) -> Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    Model::load(&path).unwrap()
}

#[test]
fn equal_weights_are_stored_once_and_inputs_shared() {
    let a = tiny(17, x(), &[1.0, 2.0, 3.0, 4.0], "Relu", "y");
    let b = tiny(17, x(), &[1.0, 2.0, 3.0, 4.0], "Sigmoid", "y");
    let merged = merge(members(vec![a, b]), &opts(Combine::Mean)).unwrap();
    let g = &merged.model.graph;
    assert_eq!(g.input_names().collect::<Vec<_>>(), ["x"]);
    let inits: Vec<&str> = g.initializers.iter().map(|t| t.name()).collect();
    assert_eq!(inits, ["m0/w"]);
    let adds: Vec<&[String]> = g
        .nodes()
        .filter(|(_, n)| n.op_type() == "Add")
        .map(|(_, n)| n.inputs())
        .collect();
    assert_eq!(adds, [["x", "m0/w"], ["x", "m0/w"]]);
    assert_eq!(g.output_names().collect::<Vec<_>>(), ["y"]);
    let r = &merged.report;
    assert_eq!((r.shared.len(), r.shared_bytes), (1, 16));
    assert_eq!(r.shared[0].kept, "m0/w");
    assert_eq!(r.outputs[0].expr, "Mean(m0/y, m1/y)");
}

#[test]
fn a_dtype_mismatch_names_both_members_and_the_input() {
    let a = tiny(17, x(), &[1.0; 4], "Relu", "y");
    let b = tiny(
        17,
        vi("x", DataType::DOUBLE, &[-1, 4]),
        &[1.0; 4],
        "Relu",
        "y",
    );
    let e = merge(members(vec![a, b]), &opts(Combine::Mean))
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("input \"x\": m0 (a.onnx) has f32[N,4] but m1 (b.onnx) has f64[N,4] (element types differ)"), "{e}");
}

#[test]
fn static_shapes_must_agree_but_a_fixed_dim_refines_a_symbol() {
    let a = tiny(
        17,
        vi("x", DataType::FLOAT, &[-1, 4]),
        &[1.0; 4],
        "Relu",
        "y",
    );
    let b = tiny(
        17,
        vi("x", DataType::FLOAT, &[2, 4]),
        &[1.0; 4],
        "Relu",
        "y",
    );
    let merged = merge(members(vec![a.clone(), b]), &opts(Combine::Max)).unwrap();
    let t = whittle_ir::types::value_info_string(&merged.model.graph.proto.input[0]);
    assert_eq!(t, "x: f32[2,4]");
    let c = tiny(
        17,
        vi("x", DataType::FLOAT, &[-1, 5]),
        &[1.0; 4],
        "Relu",
        "y",
    );
    let e = merge(members(vec![a, c]), &opts(Combine::Max))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("(static shapes differ)") && e.contains("m1 (b.onnx)"),
        "{e}"
    );
}

#[test]
fn input_map_feeds_a_differently_named_input() {
    let a = tiny(17, x(), &[1.0; 4], "Relu", "y");
    let mut b = tiny(
        17,
        vi("image", DataType::FLOAT, &[-1, 4]),
        &[2.0; 4],
        "Relu",
        "y",
    );
    for n in b.graph.nodes_mut() {
        for i in &mut n.proto.input {
            if i == "x" {
                *i = "image".into();
            }
        }
    }
    b.graph.rebuild_edges();
    let mut o = opts(Combine::Stack);
    o.input_map = vec!["1:image=x".parse().unwrap()];
    let merged = merge(members(vec![a, b]), &o).unwrap();
    assert_eq!(merged.model.graph.input_names().collect::<Vec<_>>(), ["x"]);
    assert_eq!(merged.report.inputs[0].feeds, ["m0:x", "m1:image"]);
    o.input_map = vec!["0:image=x".parse().unwrap()];
    let again = tiny(17, x(), &[1.0; 4], "Relu", "y");
    let e = merge(members(vec![again.clone(), again]), &o)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("m0 (a.onnx) has no input \"image\" (its inputs: x)"),
        "{e}"
    );
}

#[test]
fn outputs_match_by_name_then_position_or_are_refused() {
    let a = tiny(17, x(), &[1.0; 4], "Relu", "scores");
    let b = tiny(17, x(), &[2.0; 4], "Relu", "logits");
    let merged = merge(members(vec![a.clone(), b]), &opts(Combine::Mean)).unwrap();
    assert_eq!(merged.report.outputs[0].expr, "Mean(m0/scores, m1/logits)");
    let mut two = tiny(17, x(), &[2.0; 4], "Relu", "scores");
    two.graph
        .proto
        .output
        .push(vi("h", DataType::FLOAT, &[-1, 4]));
    let e = merge(members(vec![a, two]), &opts(Combine::Mean))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "cannot match the outputs by name or position: m0 (a.onnx) has [scores], m1 (b.onnx) has [scores, h]"
    );
}

#[test]
fn different_opsets_are_converted_and_recorded() {
    let a = tiny(13, x(), &[1.0; 4], "Relu", "y");
    let b = tiny(18, x(), &[1.0; 4], "Relu", "y");
    let merged = merge(members(vec![a, b]), &opts(Combine::Vote)).unwrap();
    assert_eq!(merged.model.opset(""), Some(18));
    assert_eq!(merged.report.notes, ["m0 (a.onnx): ai.onnx opset 13 -> 18"]);
    let meta: Vec<String> = merged
        .model
        .proto
        .metadata_props
        .iter()
        .map(|e| format!("{}={}", e.key(), e.value()))
        .collect();
    assert!(
        meta.contains(&"whittle.merge.member.0.opset=13".to_string()),
        "{meta:?}"
    );
    assert!(
        meta.contains(&"whittle.merge.combine=vote".to_string()),
        "{meta:?}"
    );
    // ReduceMax takes its axes as an input at 18
    let rm = merged
        .model
        .graph
        .nodes()
        .find(|(_, n)| n.op_type() == "ReduceMax");
    assert_eq!(rm.map(|(_, n)| n.inputs().len()), Some(2));
}

#[test]
fn an_op_the_converter_refuses_is_named() {
    let a = tiny(13, x(), &[1.0; 4], "NotAnOnnxOp", "y");
    let b = tiny(17, x(), &[1.0; 4], "Relu", "y");
    let e = merge(members(vec![a, b]), &opts(Combine::Mean))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("m0 (a.onnx): cannot bring ai.onnx opset 13 to 17: "),
        "{e}"
    );
    assert!(e.contains("NotAnOnnxOp"), "{e}");
}

#[test]
fn colliding_domain_versions_are_refused() {
    let mut a = fixture("multi_domain.onnx");
    let b = a.clone();
    for o in &mut a.proto.opset_import {
        if o.domain() == "com.microsoft" {
            o.version = Some(2);
        }
    }
    let e = merge(members(vec![a, b]), &opts(Combine::All))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "domain \"com.microsoft\" is imported at version 2 by m0 (a.onnx) and at version 1 by m1 (b.onnx); whittle cannot convert between them"
    );
}

#[test]
fn functions_and_their_calls_are_prefixed() {
    let m = fixture("multi_domain.onnx");
    let merged = merge(members(vec![m.clone(), m]), &opts(Combine::All)).unwrap();
    let names: Vec<String> = merged
        .model
        .proto
        .functions
        .iter()
        .map(|f| format!("{}::{}", f.domain(), f.name()))
        .collect();
    assert_eq!(
        names,
        ["whittle.test::m0/ScaledRelu", "whittle.test::m1/ScaledRelu"]
    );
    let calls: Vec<&str> = merged
        .model
        .graph
        .nodes()
        .filter(|(_, n)| n.domain() == "whittle.test")
        .map(|(_, n)| n.op_type())
        .collect();
    assert_eq!(calls, ["m0/ScaledRelu", "m1/ScaledRelu"]);
}

#[test]
fn subgraphs_keep_reading_their_outer_values() {
    let m = fixture("if_nested.onnx");
    let merged = merge(members(vec![m.clone(), m]), &opts(Combine::Diff)).unwrap();
    // verify() inside merge already checks every outer reference resolves; check the
    // weight read two levels down is the single shared copy.
    let inits: Vec<&str> = merged
        .model
        .graph
        .initializers
        .iter()
        .map(|t| t.name())
        .collect();
    assert!(
        inits.contains(&"m0/W") && !inits.contains(&"m1/W"),
        "{inits:?}"
    );
    let mut reads_w = 0;
    merged.model.graph.walk(&mut |g, depth| {
        if depth > 0 {
            reads_w += g
                .nodes()
                .filter(|(_, n)| n.inputs().iter().any(|i| i == "m0/W"))
                .count();
        }
    });
    assert!(reads_w >= 4, "{reads_w}");
}

#[test]
fn combiner_checks_run_before_anything_is_built() {
    let a = tiny(17, x(), &[1.0; 4], "Relu", "y");
    let three = members(vec![a.clone(), a.clone(), a.clone()]);
    let e = merge(three, &opts(Combine::Diff))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, "diff compares two models, got 3");
    let w = opts(Combine::Weighted(vec![1.0]));
    let e = merge(members(vec![a.clone(), a.clone()]), &w)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, "weighted has 1 weights for 2 models");
    let mut o = opts(Combine::Concat);
    o.axis = 2;
    let e = merge(members(vec![a.clone(), a]), &o)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(e, "output \"y\": axis 2 is out of range for rank 2");
}
