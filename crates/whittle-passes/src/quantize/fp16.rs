//! `--mode fp16`: float32 weights and compute become float16, with `Cast` wherever a value
//! crosses between a float16 node and a float32 one ([`super::fp16_plan`] decides which).
//!
//! Invariants:
//! - every float32 value is produced in one precision; a consumer that needs the other one
//!   reads a `Cast` of it, made once per value and precision and placed before its first
//!   reader (reads from inside a kept node's subgraphs are renamed to the cast);
//! - graph inputs and outputs keep their names; with `keep_io_types` they stay float32
//!   (inputs are cast on the way in, outputs cast back on the way out), else their declared
//!   type becomes float16;
//! - declared types (`value_info`, inputs, outputs) follow the values they describe;
//! - `Cast(to=float)`, `Constant` and `ConstantOfShape` values of float16 nodes become
//!   float16; other dtype-producing ops are kept in float32.
use super::candidates::WEIGHT_OPS;
use super::fp16_plan::{self, Plan};
use super::report::{NodeEntry, QuantizeReport, Status};
use super::{CalibrationData, MacTable, QuantizeOptions, scheme};
use crate::PassError;
use crate::cleanup::attrs::int_attribute;
use crate::cleanup::scope;
use bytes::Bytes;
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::proto::{AttributeProto, NodeProto, ValueInfoProto, type_proto};
use whittle_ir::shape::{ShapeOverrides, infer_shapes};
use whittle_ir::{Attribute, DataType, Graph, Model, Node, Tensor};

/// The main-graph values whose ranges fp16 can use (every node output shape inference
/// does not know to be of another type than float32: statistics of integer values are
/// useless here and break the calibration taps), in order.
pub fn targets(model: &Model) -> Vec<String> {
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    let not_float = |o: &str| {
        shapes
            .get(o)
            .and_then(|s| s.dtype)
            .is_some_and(|d| d != DataType::FLOAT)
    };
    let mut seen = HashSet::new();
    model
        .graph
        .nodes()
        .flat_map(|(_, n)| n.outputs().iter().cloned())
        .filter(|o| !o.is_empty() && !not_float(o) && seen.insert(o.clone()))
        .collect()
}

pub fn run(
    model: &mut Model,
    opts: &QuantizeOptions,
    calib: Option<&CalibrationData>,
    macs: &MacTable,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    let mut taken = scope::all_names(&model.graph);
    let opset = model.opset("").unwrap_or(0);
    let g = &mut model.graph;
    let mut plan = fp16_plan::plan(g, opset, &shapes, opts, calib);
    for o in &plan.overflow {
        report.notes.push(format!("kept in float32: {o}"));
    }
    entries(g, &plan, macs, report);
    let output_casts = fix_outputs(g, &mut plan, opts, &mut taken);
    let original: Vec<NodeIndex> = g.nodes().map(|(ix, _)| ix).collect();
    insert_casts(g, &plan, &mut taken);
    let flushed = convert_initializers(g, &plan);
    if flushed > 0 {
        report.notes.push(format!(
            "{flushed} non-zero weight values are below the float16 range and became 0"
        ));
    }
    for ix in original
        .into_iter()
        .filter(|ix| !plan.keep_f32.contains_key(ix))
    {
        if let Some(n) = g.node(ix).cloned()
            && let Some(slot) = g.node_mut(ix)
        {
            *slot = retype_node(n);
        }
    }
    g.push_nodes(output_casts);
    retype_declarations(g, &plan);
    g.rebuild_edges();
    super::fp16_bodies::run(model, report)
}

/// One report entry per node that reads or writes a float32 value.
fn entries(g: &Graph, plan: &Plan, macs: &MacTable, report: &mut QuantizeReport) {
    for (pos, (ix, n)) in g.nodes().enumerate() {
        let touches = n
            .inputs()
            .iter()
            .chain(n.outputs())
            .any(|v| plan.floats.contains(v.as_str()));
        if !touches {
            continue;
        }
        let mut e = NodeEntry::new(n.label(pos), n.op_type());
        e.output = n.outputs().first().cloned();
        e.macs = macs.get("", n);
        match plan.keep_f32.get(&ix) {
            Some(why) => {
                e.status = Status::KeptFloat32;
                e.reason = Some(why.clone());
            }
            None => {
                e.status = Status::Float16;
                e.form = Some("float16".into());
                if WEIGHT_OPS.contains(&n.op_type()) {
                    weight_error(g, n, plan, &mut e);
                }
            }
        }
        report.nodes.push(e);
    }
}

fn weight_error(g: &Graph, n: &Node, plan: &Plan, e: &mut NodeEntry) {
    let Some(w) = n
        .inputs()
        .get(1)
        .filter(|w| plan.as_f16.contains(w.as_str()))
    else {
        return;
    };
    let Some(t) = g.initializer(w) else { return };
    let Ok(v) = t.to_f32_vec() else { return };
    let h: Vec<f32> = v.iter().map(|&x| scheme::through_f16(x)).collect();
    e.weight = Some(w.clone());
    e.weight_sqnr_db = scheme::sqnr_db(&v, &h);
    e.weight_bytes_before = Some(t.data_byte_len());
    e.weight_bytes_after = Some(t.data_byte_len() / 2);
}

/// Graph outputs produced in the wrong precision: the producer writes a renamed value and a
/// Cast (returned, added last) writes the output name.
fn fix_outputs(
    g: &mut Graph,
    plan: &mut Plan,
    opts: &QuantizeOptions,
    taken: &mut HashSet<String>,
) -> Vec<Node> {
    let mut casts = Vec::new();
    let outputs: Vec<String> = g.output_names().map(String::from).collect();
    for o in outputs {
        if !plan.floats.contains(&o) {
            continue;
        }
        let have16 = plan.as_f16.contains(&o);
        let want16 = !opts.keep_io_types && !plan.too_big.contains(&o);
        if have16 == want16 {
            continue;
        }
        let Some(producer) = g
            .nodes()
            .find(|(_, n)| n.outputs().contains(&o))
            .map(|(ix, _)| ix)
        else {
            continue;
        };
        let inner = scope::unique_name(
            taken,
            &format!("{o}_{}", if have16 { "fp16" } else { "fp32" }),
        );
        let map = HashMap::from([(o.clone(), inner.clone())]);
        scope::rename_uses(g, &map, false);
        if let Some(n) = g.node_mut(producer) {
            for out in n.proto.output.iter_mut().filter(|x| **x == o) {
                *out = inner.clone();
            }
        }
        scope::fix_value_info(g, &HashSet::new(), &map);
        plan.floats.insert(inner.clone());
        if have16 {
            plan.as_f16.insert(inner.clone());
            plan.as_f16.remove(&o);
        } else {
            plan.as_f16.insert(o.clone());
        }
        let to = if have16 {
            DataType::FLOAT
        } else {
            DataType::FLOAT16
        };
        let name = scope::unique_name(taken, &format!("{o}_cast"));
        casts.push(cast(&name, &inner, &o, to));
    }
    casts
}

/// A `Cast` node of `input` to `to`, named `name`, writing `output`.
pub(super) fn cast(name: &str, input: &str, output: &str, to: DataType) -> Node {
    Node {
        proto: NodeProto {
            name: Some(name.to_string()),
            op_type: Some("Cast".into()),
            input: vec![input.to_string()],
            output: vec![output.to_string()],
            ..Default::default()
        },
        attributes: vec![int_attribute("to", i64::from(to.0))],
    }
}

/// Casts for every read that needs the other precision (collected, then applied).
fn insert_casts(g: &mut Graph, plan: &Plan, taken: &mut HashSet<String>) {
    let mut made: HashMap<(String, bool), String> = HashMap::new();
    let mut new_casts: Vec<(NodeIndex, Node)> = Vec::new();
    let mut reroutes: Vec<(NodeIndex, usize, String)> = Vec::new();
    let mut renames: Vec<(NodeIndex, HashMap<String, String>)> = Vec::new();
    let mut want =
        |v: &str, want16: bool, before: NodeIndex, new_casts: &mut Vec<(NodeIndex, Node)>| {
            made.entry((v.to_string(), want16))
                .or_insert_with(|| {
                    let out = scope::unique_name(
                        taken,
                        &format!("{v}_{}", if want16 { "fp16" } else { "fp32" }),
                    );
                    let name = scope::unique_name(taken, &format!("{out}_cast"));
                    let to = if want16 {
                        DataType::FLOAT16
                    } else {
                        DataType::FLOAT
                    };
                    new_casts.push((before, cast(&name, v, &out, to)));
                    out
                })
                .clone()
        };
    for (ix, n) in g.nodes() {
        let kept = plan.keep_f32.contains_key(&ix);
        for (k, v) in n.inputs().iter().enumerate() {
            if !plan.floats.contains(v.as_str()) {
                continue;
            }
            let need16 = !kept && !fp16_plan::always_float(n, k);
            if need16 != plan.as_f16.contains(v.as_str()) {
                reroutes.push((ix, k, want(v, need16, ix, &mut new_casts)));
            }
        }
        let implicit: HashMap<String, String> = scope::implicit_inputs(n)
            .into_iter()
            .filter(|v| plan.as_f16.contains(v.as_str()))
            .map(|v| {
                let c = want(&v, false, ix, &mut new_casts);
                (v, c)
            })
            .collect();
        if !implicit.is_empty() {
            renames.push((ix, implicit));
        }
    }
    g.insert_nodes_before(new_casts);
    for (ix, k, name) in reroutes {
        if let Some(n) = g.node_mut(ix) {
            n.proto.input[k] = name;
        }
    }
    for (ix, map) in renames {
        if let Some(n) = g.node_mut(ix) {
            for sub in n.subgraphs_mut() {
                scope::rename_uses(sub, &map, true);
            }
        }
    }
}

/// float32 → float16 for the initializers the plan makes float16; returns how many
/// non-zero values flushed to zero.
fn convert_initializers(g: &mut Graph, plan: &Plan) -> usize {
    let mut flushed = 0;
    for t in g
        .initializers
        .iter_mut()
        .filter(|t| plan.as_f16.contains(t.name()))
    {
        let Ok(v) = t.to_f32_vec() else { continue };
        let (data, z) = to_f16_bytes(&v);
        flushed += z;
        t.set_raw(data);
        t.proto.data_type = Some(DataType::FLOAT16.0);
    }
    flushed
}

pub(super) fn to_f16_bytes(v: &[f32]) -> (Bytes, usize) {
    let mut zeros = 0;
    let mut out = Vec::with_capacity(v.len() * 2);
    for &x in v {
        let h = half::f16::from_f32(x);
        if x != 0.0 && h.to_f32() == 0.0 {
            zeros += 1;
        }
        out.extend_from_slice(&h.to_le_bytes());
    }
    (Bytes::from(out), zeros)
}

fn f16_tensor(t: &Tensor) -> Option<Tensor> {
    let v = t.to_f32_vec().ok()?;
    let mut out = Tensor::new_raw(
        t.name(),
        DataType::FLOAT16,
        t.dims().to_vec(),
        to_f16_bytes(&v).0,
    );
    out.proto.doc_string = t.proto.doc_string.clone();
    Some(out)
}

fn tensor_attribute(name: &str, t: Tensor) -> Attribute {
    Attribute {
        proto: AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Tensor as i32),
            ..Default::default()
        },
        t: Some(t),
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}

/// A float16 node's attributes that name float32 types or hold float32 values.
fn retype_node(mut n: Node) -> Node {
    let op = n.op_type().to_string();
    for a in n.attributes.iter_mut() {
        match (op.as_str(), a.proto.name()) {
            ("Cast", "to") if a.proto.i == Some(i64::from(DataType::FLOAT.0)) => {
                a.proto.i = Some(i64::from(DataType::FLOAT16.0));
            }
            ("Constant" | "ConstantOfShape", "value") => {
                if let Some(t) = a.t.as_ref().filter(|t| t.dtype() == DataType::FLOAT) {
                    a.t = f16_tensor(t).or(a.t.take());
                }
            }
            _ => {}
        }
    }
    if op == "Constant" {
        let scalar = n
            .attribute("value_float")
            .and_then(|a| a.proto.f)
            .map(|f| (vec![], vec![f]));
        let list = n
            .attribute("value_floats")
            .map(|a| (vec![a.proto.floats.len() as i64], a.proto.floats.clone()));
        if let Some((dims, values)) = scalar.or(list) {
            let t = Tensor::new_raw("", DataType::FLOAT16, dims, to_f16_bytes(&values).0);
            n.attributes
                .retain(|a| !matches!(a.proto.name(), "value_float" | "value_floats"));
            n.attributes.push(tensor_attribute("value", t));
        }
    }
    if op == "ConstantOfShape" && n.attribute("value").is_none() {
        let zero = Tensor::new_raw("", DataType::FLOAT16, vec![1], Bytes::from_static(&[0, 0]));
        n.attributes.push(tensor_attribute("value", zero));
    }
    n
}

fn set_elem(v: &mut ValueInfoProto, to: DataType) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut())
        && (t.elem_type == Some(DataType::FLOAT.0) || t.elem_type == Some(DataType::FLOAT16.0))
    {
        t.elem_type = Some(to.0);
    }
}

/// Declared types of inputs, outputs and value_info follow the values' precision.
fn retype_declarations(g: &mut Graph, plan: &Plan) {
    let p = &mut g.proto;
    for v in p
        .input
        .iter_mut()
        .chain(p.output.iter_mut())
        .chain(p.value_info.iter_mut())
    {
        let name = v.name().to_string();
        if plan.floats.contains(&name) {
            let to = if plan.as_f16.contains(&name) {
                DataType::FLOAT16
            } else {
                DataType::FLOAT
            };
            set_elem(v, to);
        }
    }
}
