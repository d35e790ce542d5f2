//! `--mode static`: QuantizeLinear → DequantizeLinear pairs on the activations around the
//! ops onnxruntime fuses into integer kernels (Conv, Gemm, MatMul, Add, Mul, pooling,
//! Concat), DequantizeLinear of constant weights (int8 per channel by default) and of int32
//! biases, with activation ranges from calibration statistics.
//!
//! Planning (this module) decides which nodes and tensors are quantized; the rewrite is in
//! [`super::static_rewrite`]. Rules:
//! - each quantized tensor gets exactly one Q→DQ pair, right before its first reader, and
//!   every main-graph reader then reads the DQ output (so the producer feeds only the Q, the
//!   pattern runtimes fuse); graph outputs keep the float value, and an output of a quantized
//!   node that is only a graph output is not quantized at all;
//! - a `Relu` (or `Clip` with a constant lower bound ≥ 0) that is the only reader of a
//!   Conv/Gemm/MatMul/Add output is folded: the output is quantized with the activation's
//!   range (zero point at its lower bound, so the saturation does what the activation did)
//!   and the activation node is removed, as onnxruntime's quantizer does;
//! - `MaxPool`'s output shares its input's scale and zero point (max commutes with the
//!   monotonic quantization), every other tensor gets its own from its statistics;
//! - the main graph only: values inside subgraphs cannot be calibrated (their weights get
//!   the weight-mode rewrite instead, in `static_weights::subgraph_weights`).
use super::candidates::{self, Candidate};
use super::report::NodeEntry;
use super::{MacTable, QuantizeOptions};
use crate::cleanup::scope::{GraphCx, Uses};
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::{ShapeMap, ShapeOverrides, infer_shapes};
use whittle_ir::{DataType, Graph, Model, Node};

/// The ops static mode quantizes.
pub const STATIC_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Concat",
];
const WEIGHTED: &[&str] = &["Conv", "Gemm", "MatMul"];
const FOLDS_INTO: &[&str] = &["Conv", "Gemm", "MatMul", "Add"];

/// Where a tensor's scale and zero point come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The statistics of this value (the tensor itself, or the activation folded into it).
    Stats(String),
    /// The same parameters as this (earlier) tensor.
    SameAs(String),
}

/// A node to quantize.
#[derive(Clone, Debug)]
pub struct Planned {
    pub ix: NodeIndex,
    pub entry: NodeEntry,
    /// The constant weight, for Conv/Gemm/MatMul.
    pub weight: Option<Candidate>,
    /// Input slots holding activations (quantized through their Q/DQ pair).
    pub activations: Vec<usize>,
    /// Input slots holding float constants (quantized with their own range).
    pub constants: Vec<usize>,
}

/// The whole plan for the main graph.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every candidate in graph order: planned, or skipped with its entry.
    pub nodes: Vec<Result<Planned, NodeEntry>>,
    /// Tensors getting a Q/DQ pair, in order, with the source of their parameters.
    pub tensors: Vec<(String, Source)>,
    /// Folded activations: (node, its output, the tensor now quantized in its place).
    pub folds: Vec<(NodeIndex, String, String)>,
}

/// The values whose statistics the plan needs, in order.
pub fn targets(model: &Model, opts: &QuantizeOptions) -> Vec<String> {
    // Which tensors get a Q/DQ pair does not depend on MACs: skip their shape inference.
    let plan = plan(model, opts, &MacTable::empty());
    let mut seen = HashSet::new();
    plan.tensors
        .iter()
        .filter_map(|(_, s)| match s {
            Source::Stats(n) => Some(n.clone()),
            Source::SameAs(_) => None,
        })
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

fn dtype_of(g: &Graph, shapes: &ShapeMap, name: &str) -> Option<DataType> {
    g.initializer(name)
        .map(|t| t.dtype())
        .or_else(|| shapes.get(name).and_then(|s| s.dtype))
}

/// Plans the quantization of the main graph.
pub fn plan(model: &Model, opts: &QuantizeOptions, macs: &MacTable) -> Plan {
    let g = &model.graph;
    let cx = GraphCx::main(model);
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    let mut plan = Plan::default();
    for (pos, (ix, n)) in g.nodes().enumerate() {
        if !n.domain().is_empty() || !STATIC_OPS.contains(&n.op_type()) {
            continue;
        }
        let mut entry = NodeEntry::new(candidates::node_label("", n, pos), n.op_type());
        entry.output = n.outputs().first().cloned();
        entry.macs = macs.get("", n);
        plan.nodes
            .push(examine(g, &cx, &shapes, ix, n, entry, opts));
    }
    fold_activations(g, &mut plan);
    plan.tensors = tensors(g, &shapes, &plan);
    plan
}

#[allow(clippy::result_large_err)] // the Err is the report entry, kept by value like the Ok
fn examine(
    g: &Graph,
    cx: &GraphCx,
    shapes: &ShapeMap,
    ix: NodeIndex,
    n: &Node,
    entry: NodeEntry,
    opts: &QuantizeOptions,
) -> Result<Planned, NodeEntry> {
    if opts.exclude_ops.iter().any(|o| o == n.op_type()) {
        return Err(entry.skipped("excluded by --exclude-ops"));
    }
    if opts.exclude_nodes.iter().any(|o| o == n.name()) {
        return Err(entry.skipped("excluded by --exclude-nodes"));
    }
    let inputs: Vec<(usize, &String)> = n
        .inputs()
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let op = n.op_type();
    let data_inputs = match op {
        "Conv" | "Gemm" | "MatMul" => 2,
        "MaxPool" | "AveragePool" | "GlobalAveragePool" => 1,
        _ => inputs.len(),
    };
    for &(_, name) in inputs.iter().take(data_inputs) {
        match dtype_of(g, shapes, name) {
            Some(DataType::FLOAT) => {}
            Some(d) => {
                return Err(entry.skipped(format!(
                    "input {name:?} is {d} (static mode quantizes float32)"
                )));
            }
            None => return Err(entry.skipped(format!("the type of input {name:?} is unknown"))),
        }
    }
    if n.outputs().iter().skip(1).any(|o| !o.is_empty()) {
        return Err(entry.skipped("has a second output (e.g. MaxPool indices)"));
    }
    let constant = |name: &str| candidates::constant_weight(g, cx, name).is_ok();
    let mut planned = Planned {
        ix,
        entry,
        weight: None,
        activations: vec![],
        constants: vec![],
    };
    if WEIGHTED.contains(&op) {
        match candidates::examine(g, cx, ix, planned.entry.node.clone(), opts, WEIGHTED) {
            Some(Ok(mut c)) => {
                planned.entry.weight = c.entry.weight.take();
                planned.entry.weight_bytes_before = c.entry.weight_bytes_before;
                c.entry = planned.entry.clone();
                planned.weight = Some(c);
                planned.activations.push(0);
            }
            Some(Err(_)) if op == "MatMul" && !constant(&n.inputs()[1]) => {
                planned.activations.extend([0, 1]);
            }
            Some(Err(e)) => {
                return Err(NodeEntry {
                    macs: planned.entry.macs,
                    output: planned.entry.output,
                    ..e
                });
            }
            None => return Err(planned.entry.skipped("not a node whittle quantizes")),
        }
        if constant(&n.inputs()[0]) {
            return Err(planned
                .entry
                .skipped("its input is a constant (fold it first)"));
        }
        return Ok(planned);
    }
    for &(slot, name) in inputs.iter().take(data_inputs) {
        if constant(name) {
            planned.constants.push(slot);
        } else {
            planned.activations.push(slot);
        }
    }
    if planned.activations.is_empty() {
        return Err(planned
            .entry
            .skipped("all its inputs are constants (fold them first)"));
    }
    Ok(planned)
}

/// The lower bound of a Relu/Clip activation, when it is a constant ≥ 0.
fn clamps_at_zero_or_above(g: &Graph, n: &Node) -> bool {
    match n.op_type() {
        "Relu" => true,
        "Clip" => {
            if let Some(min) = n.attribute("min").and_then(|a| a.proto.f) {
                return min >= 0.0;
            }
            let Some(name) = n.inputs().get(1).filter(|s| !s.is_empty()) else {
                return false;
            };
            g.initializer(name)
                .and_then(|t| t.to_f32_vec().ok())
                .is_some_and(|v| v.len() == 1 && v[0] >= 0.0)
        }
        _ => false,
    }
}

fn fold_activations(g: &Graph, plan: &mut Plan) {
    let uses = Uses::of(g);
    for p in plan.nodes.iter_mut().filter_map(|p| p.as_mut().ok()) {
        let Some(n) = g.node(p.ix) else { continue };
        let Some(t) = n.outputs().first() else {
            continue;
        };
        if !FOLDS_INTO.contains(&n.op_type()) || uses.is_output(t) {
            continue;
        }
        let [one] = uses.consumers(t) else { continue };
        let Some(act) = g.node(one.node) else {
            continue;
        };
        if one.slot != Some(0) || !act.domain().is_empty() || !clamps_at_zero_or_above(g, act) {
            continue;
        }
        let Some(r) = act.outputs().first() else {
            continue;
        };
        if uses.is_output(r) || uses.consumers(r).iter().any(|u| u.slot.is_none()) {
            continue;
        }
        plan.folds.push((one.node, r.clone(), t.clone()));
    }
}

fn tensors(g: &Graph, shapes: &ShapeMap, plan: &Plan) -> Vec<(String, Source)> {
    let folded: HashMap<&str, &str> = plan
        .folds
        .iter()
        .map(|(_, r, t)| (r.as_str(), t.as_str()))
        .collect();
    let stats_of: HashMap<&str, &str> = plan
        .folds
        .iter()
        .map(|(_, r, t)| (t.as_str(), r.as_str()))
        .collect();
    let outputs: HashSet<&str> = g.output_names().collect();
    let mut out: Vec<(String, Source)> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |t: &str, src: Source, out: &mut Vec<(String, Source)>| {
        if dtype_of(g, shapes, t) == Some(DataType::FLOAT) && seen.insert(t.to_string()) {
            out.push((t.to_string(), src));
        }
    };
    for p in plan.nodes.iter().filter_map(|p| p.as_ref().ok()) {
        let Some(n) = g.node(p.ix) else { continue };
        let mut first_input = None;
        for &slot in &p.activations {
            let name = n.inputs()[slot].as_str();
            let t = folded.get(name).copied().unwrap_or(name);
            let src = Source::Stats(stats_of.get(t).copied().unwrap_or(t).to_string());
            first_input.get_or_insert(t.to_string());
            push(t, src, &mut out);
        }
        let Some(o) = n.outputs().first() else {
            continue;
        };
        if let Some(r) = stats_of.get(o.as_str()) {
            push(o, Source::Stats(r.to_string()), &mut out);
        } else if outputs.contains(o.as_str()) {
            continue;
        } else if n.op_type() == "MaxPool" {
            if let Some(i) = first_input {
                push(o, Source::SameAs(i), &mut out);
            }
        } else {
            push(o, Source::Stats(o.clone()), &mut out);
        }
    }
    out
}
