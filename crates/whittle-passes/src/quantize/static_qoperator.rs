//! `--mode static --format qoperator`: the QDQ groups around `Conv` and `MatMul` that
//! onnxruntime runs with CPU integer kernels become `QLinearConv` / `QLinearMatMul`; the
//! rest of the graph keeps its QDQ form (QuantizeLinear/DequantizeLinear at the boundaries
//! of every QLinear run, so float ops in between still read floats).
//!
//! A group is `DQ(x_q) → Conv|MatMul ← DQ(w_q) [← DQ(b_i32)] → Q(y)` where:
//! - the activation DQ has an explicit zero point and its quantized input is uint8
//!   (onnxruntime's QLinear kernels take u8 activations);
//! - the weight DQ reads int8/uint8 (`QLinearConv`: per tensor or per output channel, axis
//!   0; `QLinearMatMul`: per tensor, or the second input per column of a 2-D weight);
//! - the Conv bias (when present) is an int32 DQ with zero point 0 and scale exactly
//!   `x_scale · w_scale` (what static mode writes), so its integers go in unchanged;
//! - the float output has exactly one reader, a QuantizeLinear, and is not a graph output.
//!
//! Invariants: the QLinear node computes what the runtime's fused QDQ kernel computes (same
//! integers, same scales; nothing is re-quantized); it takes the place of the float node and
//! writes the Q's output name, so readers are untouched; DequantizeLinear nodes and float
//! tensors nothing reads any more are removed; a group that does not match is left in QDQ
//! form and its report entry says why.
use super::report::QuantizeReport;
use super::static_rewrite::node;
use super::weight_mode::drop_unused;
use crate::cleanup::scope::{self, GraphCx, Uses};
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::{DataType, Graph, Model, Node};

/// One group to fuse.
struct Fuse {
    float: NodeIndex,
    quantize: NodeIndex,
    qlinear: Node,
    /// DQ outputs the group read (dropped when nothing else does).
    dqs: Vec<String>,
}

/// Rewrites the matching QDQ groups of the main graph; updates the entries of `report`.
pub fn run(model: &mut Model, report: &mut QuantizeReport) {
    let cx = GraphCx::main(model);
    let mut taken = scope::all_names(&model.graph);
    let g = &model.graph;
    let uses = Uses::of(g);
    let producer: HashMap<&str, NodeIndex> = g
        .nodes()
        .flat_map(|(ix, n)| n.outputs().iter().map(move |o| (o.as_str(), ix)))
        .collect();
    let mut fuses = Vec::new();
    let mut why_not: HashMap<String, String> = HashMap::new();
    for (ix, n) in g.nodes() {
        if !n.domain().is_empty() || !matches!(n.op_type(), "Conv" | "MatMul") {
            continue;
        }
        let Some(out) = n.outputs().first() else {
            continue;
        };
        match group(g, &uses, &producer, ix, n, &mut taken) {
            Ok(f) => fuses.push(f),
            Err(why) => {
                why_not.insert(out.clone(), why);
            }
        }
    }
    let fused: HashMap<String, String> = fuses
        .iter()
        .filter_map(|f| {
            let n = g.node(f.float)?;
            Some((n.outputs().first()?.clone(), n.op_type().to_string()))
        })
        .collect();
    for e in report.nodes.iter_mut().filter(|e| e.integer) {
        let Some(out) = e.output.as_deref() else {
            continue;
        };
        if let (Some(op), Some(form)) = (fused.get(out), e.form.as_mut()) {
            *form = form.replacen("QDQ", &format!("QLinear{op}"), 1);
        } else if let (Some(why), Some(form)) = (why_not.get(out), e.form.as_mut()) {
            form.push_str(&format!(" (kept QDQ: {why})"));
        }
    }
    report.notes.push(format!(
        "--format qoperator: {} Conv/MatMul groups written as QLinearConv/QLinearMatMul, {} kept in QDQ form",
        fuses.len(),
        why_not.len()
    ));
    apply(&mut model.graph, &cx, fuses);
}

fn apply(g: &mut Graph, cx: &GraphCx, fuses: Vec<Fuse>) {
    let mut doomed = Vec::new();
    let mut gone = HashSet::new();
    let mut dqs = HashSet::new();
    let mut qlinear = Vec::new();
    for f in fuses {
        if let Some(n) = g.node(f.float) {
            gone.extend(n.outputs().iter().cloned());
        }
        qlinear.push((f.float, f.qlinear));
        doomed.extend([f.float, f.quantize]);
        dqs.extend(f.dqs);
    }
    g.insert_nodes_before(qlinear);
    g.remove_nodes(&doomed);
    g.rebuild_edges();
    // DequantizeLinear nodes only the fused groups read, and then their float-side tensors.
    let uses = Uses::of(g);
    let dead: Vec<NodeIndex> = g
        .nodes()
        .filter(|(_, n)| n.op_type() == "DequantizeLinear")
        .filter(|(_, n)| {
            n.outputs()
                .iter()
                .all(|o| dqs.contains(o) && !uses.is_used(o))
        })
        .map(|(ix, _)| ix)
        .collect();
    let inputs: HashSet<String> = dead
        .iter()
        .filter_map(|&ix| g.node(ix))
        .flat_map(|n| n.inputs().iter().cloned())
        .collect();
    for &ix in &dead {
        if let Some(n) = g.node(ix) {
            gone.extend(n.outputs().iter().cloned());
        }
    }
    g.remove_nodes(&dead);
    g.rebuild_edges();
    scope::fix_value_info(g, &gone, &HashMap::new());
    drop_unused(g, cx, &inputs);
}

/// The producer of `name` when it is a default-domain DequantizeLinear.
fn dq_of<'g>(g: &'g Graph, producer: &HashMap<&str, NodeIndex>, name: &str) -> Option<&'g Node> {
    let n = g.node(*producer.get(name)?)?;
    (n.op_type() == "DequantizeLinear" && n.domain().is_empty()).then_some(n)
}

fn dtype(g: &Graph, name: &str, shapes_of_q: &HashMap<&str, NodeIndex>) -> Option<DataType> {
    if let Some(t) = g.initializer(name) {
        return Some(t.dtype());
    }
    // A QuantizeLinear output has its zero point's type.
    let q = g.node(*shapes_of_q.get(name)?)?;
    if q.op_type() != "QuantizeLinear" {
        return None;
    }
    g.initializer(q.inputs().get(2)?).map(|t| t.dtype())
}

fn f32s(g: &Graph, name: &str) -> Option<Vec<f32>> {
    let t = g.initializer(name)?;
    (t.dtype() == DataType::FLOAT).then(|| t.to_f32_vec().ok())?
}

/// The fused node for the group around `ix`, or why the group stays QDQ.
fn group(
    g: &Graph,
    uses: &Uses,
    producer: &HashMap<&str, NodeIndex>,
    ix: NodeIndex,
    n: &Node,
    taken: &mut HashSet<String>,
) -> Result<Fuse, String> {
    let conv = n.op_type() == "Conv";
    let ins = n.inputs();
    let out = n.outputs().first().ok_or("no output")?;
    let x = dq_of(g, producer, ins.first().ok_or("no input")?).ok_or("input is not dequantized")?;
    let w =
        dq_of(g, producer, ins.get(1).ok_or("no weight")?).ok_or("weight is not dequantized")?;
    for d in [x, w] {
        if d.inputs().len() < 3 || d.inputs()[2].is_empty() {
            return Err("a DequantizeLinear without a zero point".into());
        }
    }
    if dtype(g, &x.inputs()[0], producer) != Some(DataType::UINT8) {
        return Err("activation is not uint8 (onnxruntime's QLinear kernels take u8)".into());
    }
    match dtype(g, &w.inputs()[0], producer) {
        Some(DataType::INT8) | Some(DataType::UINT8) => {}
        _ => return Err("weight is not int8/uint8".into()),
    }
    let axis = w.attr_int("axis").unwrap_or(1);
    let w_scales = g
        .initializer(&w.inputs()[1])
        .ok_or("weight scale is not a constant")?;
    let per_channel = !w_scales.dims().is_empty() && w_scales.num_elements().unwrap_or(1) > 1;
    if w.attribute("block_size").is_some() {
        return Err("block-wise weights".into());
    }
    if per_channel {
        let rank = g.initializer(&w.inputs()[0]).map_or(0, |t| t.dims().len());
        let ok = if conv {
            axis == 0
        } else {
            rank == 2 && axis == 1
        };
        if !ok {
            return Err(format!("weight scales along axis {axis}"));
        }
    }
    let [one] = uses.consumers(out) else {
        return Err("its output has several readers".into());
    };
    let q = g.node(one.node).ok_or("reader vanished")?;
    if q.op_type() != "QuantizeLinear" || uses.is_output(out) || q.inputs().len() < 3 {
        return Err("its output is not quantized".into());
    }
    if dtype(g, &q.inputs()[2], producer) != Some(DataType::UINT8) {
        return Err("output is not uint8".into());
    }
    let mut dqs = vec![ins[0].clone(), ins[1].clone()];
    let mut inputs: Vec<String> = x.inputs()[..3].to_vec();
    inputs.extend(w.inputs()[..3].iter().cloned());
    inputs.extend(q.inputs()[1..3].iter().cloned());
    if let Some(b) = ins.get(2).filter(|b| !b.is_empty()) {
        if !conv {
            return Err("MatMul with a third input".into());
        }
        let d = dq_of(g, producer, b).ok_or("bias is not an int32 DequantizeLinear")?;
        check_bias(g, d, x, w)?;
        inputs.push(d.inputs()[0].clone());
        dqs.push(b.clone());
    }
    let op = if conv { "QLinearConv" } else { "QLinearMatMul" };
    let name = scope::unique_name(taken, &format!("{}_{op}", n.name()));
    let attributes = if conv { n.attributes.clone() } else { vec![] };
    let out_q = q
        .outputs()
        .first()
        .ok_or("QuantizeLinear without output")?
        .clone();
    Ok(Fuse {
        float: ix,
        quantize: one.node,
        qlinear: node(name, op, inputs, out_q, attributes),
        dqs,
    })
}

/// The bias DQ must be int32, zero point 0, scale `x_scale · w_scale` (per channel or not).
fn check_bias(g: &Graph, b: &Node, x: &Node, w: &Node) -> Result<(), String> {
    let bad = |why: &str| Err(format!("bias: {why}"));
    let Some(t) = g.initializer(&b.inputs()[0]) else {
        return bad("not a constant");
    };
    if t.dtype() != DataType::INT32 {
        return bad("not int32");
    }
    if b.inputs().get(2).is_some_and(|z| !z.is_empty()) {
        return bad("has a zero point");
    }
    let (Some(bs), Some(xs), Some(ws)) = (
        f32s(g, &b.inputs()[1]),
        f32s(g, &x.inputs()[1]),
        f32s(g, &w.inputs()[1]),
    ) else {
        return bad("scales are not float32 constants");
    };
    let xs = xs.first().copied().unwrap_or(0.0);
    let same = bs.len() == ws.len()
        && bs
            .iter()
            .zip(&ws)
            .all(|(&b, &w)| (b - xs * w).abs() <= 1e-6 * b.abs().max(f32::MIN_POSITIVE));
    if same {
        Ok(())
    } else {
        bad("scale is not x_scale · w_scale")
    }
}
