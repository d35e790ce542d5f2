//! Deciding the float16 conversion of the main graph: which nodes keep float32 and why,
//! and the precision every float32 value is produced in.
//!
//! Rules:
//! - a node runs in float16 unless it is kept in float32: another domain, a block-listed op
//!   (the default list, `--exclude-ops`), an excluded node, a node holding subgraphs (its
//!   bodies' weights are stored as float16 by [`super::fp16_bodies`]), an op
//!   whose output type comes from a `dtype` attribute, an output type shape inference does
//!   not know, or a value it reads or writes that exceeds the float16 range (constants
//!   always; activations when calibration statistics are given);
//! - a float32 value is produced in float16 when its producer runs in float16; graph inputs
//!   are float16 unless `keep_io_types`; initializers are float16 unless they overflow, or
//!   no float16 node reads them, or they are graph outputs kept in float32.
use super::calib::CalibrationData;
use super::options::QuantizeOptions;
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::ShapeMap;
use whittle_ir::{DataType, Graph, Node};

/// Largest finite float16.
pub const F16_MAX: f64 = 65504.0;

/// Ops kept in float32 by default: no float16 kernel or float16-unsafe semantics in
/// onnxruntime's converter list, random generators, sequences.
pub const DEFAULT_BLOCK_OPS: &[&str] = &[
    "Range",
    "CumSum",
    "TopK",
    "NonMaxSuppression",
    "RoiAlign",
    "Upsample",
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
    "EyeLike",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceInsert",
    "SequenceEmpty",
    "SplitToSequence",
    "ConcatFromSequence",
    "Optional",
    "OptionalGetElement",
    "DynamicQuantizeLinear",
];

/// Ops whose float type constraint has float16 only from this opset on.
const F16_SINCE: &[(&str, i64)] = &[("QuantizeLinear", 19), ("DequantizeLinear", 19)];

/// Inputs that must stay float32 whatever the node runs in (op, input slot).
pub const ALWAYS_FLOAT_INPUTS: &[(&str, usize)] = &[("Resize", 2)];

/// The decisions for one graph.
#[derive(Debug, Default)]
pub struct Plan {
    /// Nodes kept in float32, with the reason.
    pub keep_f32: HashMap<NodeIndex, String>,
    /// Every float32 value of the graph (inputs, initializers, node outputs).
    pub floats: HashSet<String>,
    /// Of those, the ones produced in float16.
    pub as_f16: HashSet<String>,
    /// Values kept in float32 because of their range, with the reason (for notes).
    pub overflow: Vec<String>,
    /// Their names.
    pub too_big: HashSet<String>,
}

/// Whether `input` slot `slot` of `n` must be float32 even in a float16 node.
pub fn always_float(n: &Node, slot: usize) -> bool {
    ALWAYS_FLOAT_INPUTS.contains(&(n.op_type(), slot))
        || (n.op_type() == "Resize" && slot == 1 && n.inputs().len() == 2)
}

fn max_abs(g: &Graph, name: &str, calib: Option<&CalibrationData>) -> Option<f64> {
    if let Some(t) = g.initializer(name) {
        let v = t.to_f32_vec().ok()?;
        return v.iter().map(|x| f64::from(x.abs())).reduce(f64::max);
    }
    let s = calib?.values.get(name)?;
    Some(s.min.abs().max(s.max.abs()))
}

/// Decides the conversion of `g` (the main graph).
pub fn plan(
    g: &Graph,
    opset: i64,
    shapes: &ShapeMap,
    opts: &QuantizeOptions,
    calib: Option<&CalibrationData>,
) -> Plan {
    let mut p = Plan::default();
    let is_float = |name: &str| {
        g.initializer(name)
            .map(|t| t.dtype())
            .or_else(|| shapes.get(name).and_then(|s| s.dtype))
            == Some(DataType::FLOAT)
    };
    for name in g
        .input_names()
        .chain(g.initializers.iter().map(|t| t.name()))
    {
        if is_float(name) {
            p.floats.insert(name.to_string());
        }
    }
    let mut too_big: HashSet<String> = HashSet::new();
    for i in g.input_names().filter(|i| p.floats.contains(*i)) {
        if let Some(m) = max_abs(g, i, calib).filter(|m| *m > F16_MAX) {
            too_big.insert(i.to_string());
            p.overflow
                .push(format!("{i:?} (max |x| = {m:.4e} > {F16_MAX})"));
        }
    }
    for (_, n) in g.nodes() {
        for v in n
            .inputs()
            .iter()
            .chain(n.outputs())
            .filter(|v| !v.is_empty())
        {
            if n.outputs().contains(v) && is_float(v) {
                p.floats.insert(v.clone());
            }
            if p.floats.contains(v.as_str())
                && !too_big.contains(v.as_str())
                && let Some(m) = max_abs(g, v, calib).filter(|m| *m > F16_MAX)
            {
                too_big.insert(v.clone());
                p.overflow
                    .push(format!("{v:?} (max |x| = {m:.4e} > {F16_MAX})"));
            }
        }
    }
    for (ix, n) in g.nodes() {
        if let Some(why) = keep_reason(n, opset, shapes, opts, &p.floats, &too_big) {
            p.keep_f32.insert(ix, why);
        }
    }
    let graph_outputs: HashSet<&str> = g.output_names().collect();
    for (ix, n) in g.nodes() {
        if !p.keep_f32.contains_key(&ix) {
            p.as_f16.extend(
                n.outputs()
                    .iter()
                    .filter(|o| p.floats.contains(o.as_str()))
                    .cloned(),
            );
        }
    }
    if !opts.keep_io_types {
        p.as_f16.extend(
            g.input_names()
                .filter(|i| {
                    p.floats.contains(*i) && g.initializer(i).is_none() && !too_big.contains(*i)
                })
                .map(String::from),
        );
    }
    for t in &g.initializers {
        let name = t.name();
        if !p.floats.contains(name) || too_big.contains(name) {
            continue;
        }
        if graph_outputs.contains(name) && opts.keep_io_types {
            continue;
        }
        let read_in_f16 = g.nodes().any(|(ix, n)| {
            !p.keep_f32.contains_key(&ix)
                && n.inputs()
                    .iter()
                    .enumerate()
                    .any(|(k, i)| i == name && !always_float(n, k))
        });
        if read_in_f16 || (graph_outputs.contains(name) && !opts.keep_io_types) {
            p.as_f16.insert(name.to_string());
        }
    }
    p.too_big = too_big;
    p
}

/// Why `n` keeps float32, or `None` when it runs in float16.
fn keep_reason(
    n: &Node,
    opset: i64,
    shapes: &ShapeMap,
    opts: &QuantizeOptions,
    floats: &HashSet<String>,
    too_big: &HashSet<String>,
) -> Option<String> {
    let op = n.op_type();
    if !n.domain().is_empty() {
        return Some(format!("op of domain {:?} (not converted)", n.domain()));
    }
    if opts.exclude_nodes.iter().any(|x| x == n.name()) {
        return Some("excluded by --exclude-nodes".into());
    }
    if opts.exclude_ops.iter().any(|x| x == op) {
        return Some("excluded by --exclude-ops".into());
    }
    if DEFAULT_BLOCK_OPS.contains(&op) {
        return Some(format!("{op} is on the float32 block list"));
    }
    if let Some((_, since)) = F16_SINCE.iter().find(|(o, v)| *o == op && opset < *v) {
        return Some(format!(
            "{op} takes float16 only from opset {since} (the model has {opset})"
        ));
    }
    if n.subgraphs().next().is_some() {
        return Some("holds subgraphs (kept in float32 with their bodies; large body weights are stored as float16)".into());
    }
    if n.attribute("dtype").is_some() {
        return Some("its output type comes from a dtype attribute".into());
    }
    if let Some(v) = n
        .inputs()
        .iter()
        .chain(n.outputs())
        .find(|v| too_big.contains(v.as_str()))
    {
        return Some(format!("{v:?} exceeds the float16 range"));
    }
    if op == "Constant" && n.attribute_tensors().any(|t| t.dtype() == DataType::FLOAT) {
        let big = n
            .attribute_tensors()
            .filter_map(|t| t.to_f32_vec().ok())
            .flatten()
            .any(|x| f64::from(x.abs()) > F16_MAX);
        if big {
            return Some("its value exceeds the float16 range".into());
        }
    }
    let unknown =
        n.outputs().iter().filter(|o| !o.is_empty()).find(|o| {
            shapes.get(o).and_then(|s| s.dtype).is_none() && !floats.contains(o.as_str())
        });
    if let Some(o) = unknown {
        return Some(format!("the type of output {o:?} is unknown"));
    }
    None
}
