//! Unit tests of quantization inside If/Loop/Scan bodies: static mode gives body weights
//! the weight-mode rewrite (and says why), fp16 stores body weights as float16.
use super::tests::{f32t, graph, model, node, vi};
use super::*;
use crate::cleanup::attrs::int_attribute;
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::proto::{AttributeProto, type_proto};
use whittle_ir::{Attribute, DataType, Graph, Model};

fn branch(name: &str, g: Graph) -> Attribute {
    Attribute {
        proto: AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Graph as i32),
            ..Default::default()
        },
        t: None,
        tensors: vec![],
        g: Some(g),
        graphs: vec![],
    }
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 - n as f32 / 2.0) * scale)
        .collect()
}

/// h = x·W0 (main graph), then y = If(cond, then: h·Wt, else: Gemm(h, We, transB=1)).
pub(super) fn if_model() -> Model {
    let then_b = graph(
        "then",
        vec![],
        vec![vi("t", &[1, 8])],
        vec![f32t("Wt", &[4, 8], &ramp(32, 0.1))],
        vec![node("MatMul", "mm_then", &["h", "Wt"], "t", vec![])],
    );
    let else_b = graph(
        "else",
        vec![],
        vec![vi("e", &[1, 8])],
        vec![f32t("We", &[8, 4], &ramp(32, -0.05))],
        vec![node(
            "Gemm",
            "gemm_else",
            &["h", "We"],
            "e",
            vec![int_attribute("transB", 1)],
        )],
    );
    let iff = node(
        "If",
        "branch",
        &["cond"],
        "y",
        vec![branch("then_branch", then_b), branch("else_branch", else_b)],
    );
    let mut cond = vi("cond", &[]);
    if let Some(type_proto::Value::TensorType(t)) =
        cond.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(DataType::BOOL.0);
    }
    model(
        graph(
            "if_model",
            vec![cond, vi("x", &[1, 4])],
            vec![vi("y", &[1, 8])],
            vec![f32t("W0", &[4, 4], &ramp(16, 0.2))],
            vec![node("MatMul", "mm_main", &["x", "W0"], "h", vec![]), iff],
        ),
        17,
    )
}

fn body(m: &Model, k: usize) -> &Graph {
    let (_, iff) = m
        .graph
        .nodes()
        .find(|(_, n)| n.op_type() == "If")
        .expect("the If is kept");
    iff.subgraphs().nth(k).expect("the If has two branches")
}

fn calib_for(m: &Model, opts: &QuantizeOptions) -> CalibrationData {
    let mut calib = CalibrationData::default();
    for t in calibration_targets(m, opts) {
        let stats = ValueStats {
            min: -2.0,
            max: 2.0,
            histogram: None,
        };
        calib.values.insert(t, stats);
    }
    calib
}

#[test]
fn static_mode_quantizes_body_weights_weight_only_and_says_why() {
    let mut m = if_model();
    let opts = QuantizeOptions {
        mode: Mode::Static,
        ..Default::default()
    };
    let calib = calib_for(&m, &opts);
    assert!(calib.values.contains_key("x") && calib.values.contains_key("h"));
    let r = quantize(&mut m, &opts, &Default::default(), Some(&calib)).unwrap();
    whittle_ir::verify::verify(&m).unwrap();
    // The main graph is QDQ: x gets a Q→DQ pair, W0 a DQ.
    let main_ops: Vec<&str> = m.graph.nodes().map(|(_, n)| n.op_type()).collect();
    assert!(main_ops.contains(&"QuantizeLinear"), "{main_ops:?}");
    let main = r.nodes.iter().find(|n| n.node.contains("mm_main")).unwrap();
    assert!(main.integer && main.form.as_deref().unwrap().starts_with("QDQ"));
    for (k, w) in [(0, "Wt"), (1, "We")] {
        let b = body(&m, k);
        let q = b
            .initializer(&format!("{w}_quantized"))
            .unwrap_or_else(|| panic!("{w} is quantized"));
        assert_eq!(q.dtype(), DataType::INT8);
        assert!(b.initializer(w).is_none(), "float {w} is dropped");
        let dq = b
            .nodes()
            .find(|(_, n)| n.op_type() == "DequantizeLinear")
            .map(|(_, n)| n.outputs()[0].clone())
            .unwrap();
        assert!(b.nodes().any(|(_, n)| n.inputs().get(1) == Some(&dq)));
        // Activations stay float inside the body.
        assert!(!b.nodes().any(|(_, n)| n.op_type() == "QuantizeLinear"));
    }
    for label in ["mm_then", "gemm_else"] {
        let e = r.nodes.iter().find(|n| n.node.contains(label)).unwrap();
        assert_eq!(e.status, Status::Quantized, "{e:?}");
        assert!(!e.integer);
        assert_eq!(
            e.reason.as_deref(),
            Some("inside a subgraph: weights only (activations there cannot be calibrated)")
        );
        assert!(e.form.as_deref().unwrap().contains("per-channel"), "{e:?}");
    }
}

#[test]
fn fp16_stores_body_weights_as_float16_cast_back_in_the_body() {
    let mut m = if_model();
    let opts = QuantizeOptions {
        mode: Mode::Fp16,
        ..Default::default()
    };
    let r = quantize(&mut m, &opts, &Default::default(), None).unwrap();
    whittle_ir::verify::verify(&m).unwrap();
    assert_eq!(
        m.graph.initializer("W0").map(|t| t.dtype()),
        Some(DataType::FLOAT16)
    );
    for (k, w) in [(0, "Wt"), (1, "We")] {
        let b = body(&m, k);
        let stored = b.initializer(&format!("{w}_fp16")).unwrap();
        assert_eq!(stored.dtype(), DataType::FLOAT16);
        assert_eq!(stored.data_byte_len(), 32 * 2);
        assert!(b.initializer(w).is_none());
        // The Cast comes first and writes the old name, so the reader is unchanged.
        let (_, cast) = b.nodes().next().unwrap();
        assert_eq!(cast.op_type(), "Cast");
        assert_eq!(cast.outputs(), [w.to_string()]);
        assert_eq!(cast.attr_int("to"), Some(i64::from(DataType::FLOAT.0)));
        // The outer float16 value h is read through a float32 cast.
        let reader = b.nodes().nth(1).unwrap().1;
        assert_eq!(reader.inputs()[1], w);
        assert_ne!(reader.inputs()[0], "h");
    }
    let e = r.nodes.iter().find(|n| n.node.contains("mm_then")).unwrap();
    assert_eq!(e.status, Status::KeptFloat32);
    assert_eq!(e.reason.as_deref(), Some(fp16_bodies::BODY_NOTE));
    assert_eq!(
        (e.weight_bytes_before, e.weight_bytes_after),
        (Some(128), Some(64))
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("stored 2 weights inside subgraphs"))
    );
}

#[test]
fn fp16_leaves_small_and_out_of_range_body_weights_in_float32() {
    let mut m = if_model();
    for sub in m.graph.nodes_mut().flat_map(|n| n.subgraphs_mut()) {
        for t in sub.initializers.iter_mut() {
            let mut v = t.to_f32_vec().unwrap();
            v[0] = 1.0e6;
            *t = f32t(t.name(), t.dims(), &v);
        }
    }
    let opts = QuantizeOptions {
        mode: Mode::Fp16,
        ..Default::default()
    };
    let r = quantize(&mut m, &opts, &Default::default(), None).unwrap();
    whittle_ir::verify::verify(&m).unwrap();
    assert_eq!(
        body(&m, 0).initializer("Wt").map(|t| t.dtype()),
        Some(DataType::FLOAT)
    );
    assert!(!r.notes.iter().any(|n| n.starts_with("stored")));
}

#[test]
fn fp16_stores_constant_node_weights_of_bodies_as_float16() {
    let mut m = if_model();
    // Move the then-branch weight into a Constant node, as exporters like spox write it.
    for sub in m.graph.nodes_mut().flat_map(|n| n.subgraphs_mut()).take(1) {
        let w = sub.initializers.remove(0);
        let value = Attribute {
            proto: AttributeProto {
                name: Some("value".into()),
                r#type: Some(AttributeType::Tensor as i32),
                ..Default::default()
            },
            t: Some(w),
            tensors: vec![],
            g: None,
            graphs: vec![],
        };
        let first = sub.nodes().next().map(|(ix, _)| ix).unwrap();
        sub.insert_node_before(first, node("Constant", "wt_const", &[], "Wt", vec![value]));
    }
    let opts = QuantizeOptions {
        mode: Mode::Fp16,
        ..Default::default()
    };
    let r = quantize(&mut m, &opts, &Default::default(), None).unwrap();
    whittle_ir::verify::verify(&m).unwrap();
    let b = body(&m, 0);
    let ops: Vec<(&str, &[String])> = b.nodes().map(|(_, n)| (n.op_type(), n.outputs())).collect();
    assert_eq!(ops[0], ("Constant", &["Wt_fp16".to_string()][..]));
    assert_eq!(ops[1], ("Cast", &["Wt".to_string()][..]));
    let (_, c) = b.nodes().next().unwrap();
    let t = c.attribute("value").and_then(|a| a.t.as_ref()).unwrap();
    assert_eq!((t.dtype(), t.data_byte_len()), (DataType::FLOAT16, 64));
    let e = r.nodes.iter().find(|n| n.node.contains("mm_then")).unwrap();
    assert_eq!(e.reason.as_deref(), Some(fp16_bodies::BODY_NOTE));
}

#[test]
fn fp16_calibration_targets_are_float_values_only() {
    let mut m = if_model();
    // An int64 value in the main graph: its statistics are of no use to fp16.
    m.graph
        .push_node(node("Shape", "shape", &["x"], "x_shape", vec![]));
    m.graph.rebuild_edges();
    let opts = QuantizeOptions {
        mode: Mode::Fp16,
        ..Default::default()
    };
    let targets = calibration_targets(&m, &opts);
    assert!(targets.contains(&"h".to_string()), "{targets:?}");
    assert!(!targets.contains(&"x_shape".to_string()), "{targets:?}");
}
