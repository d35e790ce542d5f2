//! Applying a static QDQ plan ([`super::static_qdq`]): Q/DQ pairs on activations, DQ of
//! weights, int32 biases and constants, folded activations removed.
//!
//! Invariants: every tensor of the plan gets its parameters from the calibration data (a
//! missing statistic is an error naming the value, never a guess); bias scales are exactly
//! `input scale × weight scale` with zero point 0 (the form onnxruntime's QDQ fusions take);
//! names of existing values never change, except that readers move to the DQ outputs.
use super::calib;
use super::needs;
use super::report::{QuantizeReport, Status};
use super::scheme::{self, Params, QuantType};
use super::static_qdq::{self, Source};
use super::weight_mode::drop_unused;
use super::{CalibrationData, MacTable, QuantizeOptions};
use crate::PassError;
use crate::cleanup::scope::{self, GraphCx};
use bytes::Bytes;
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::NodeProto;
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

fn failed(message: String) -> PassError {
    PassError::Failed {
        pass: "quantize".into(),
        message,
    }
}

pub fn run(
    model: &mut Model,
    opts: &QuantizeOptions,
    macs: &MacTable,
    calib: &CalibrationData,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let first = static_qdq::plan(model, opts, macs);
    let mut need = super::static_weights::subgraph_need(model, opts);
    let in_bodies = need.opset > 0;
    need.add((10, "QuantizeLinear".into()));
    for p in first.nodes.iter().filter_map(|p| p.as_ref().ok()) {
        if let Some(c) = &p.weight {
            need.add(needs::dq_opset(c.layout, opts.weight_type, c.weight_dtype));
        }
    }
    if in_bodies || first.nodes.iter().any(|p| p.is_ok()) {
        needs::ensure_opset(model, &need, report)?;
    }
    let plan = static_qdq::plan(model, opts, macs);
    let mut params: HashMap<String, Params> = HashMap::new();
    for (t, src) in &plan.tensors {
        let p = match src {
            Source::Stats(name) => {
                let s = calib.values.get(name).ok_or_else(|| {
                    failed(format!(
                        "no calibration statistics for value {name:?} (needed to quantize {t:?})"
                    ))
                })?;
                let (lo, hi) = calib::range(
                    s,
                    opts.calib_method,
                    opts.activation_type,
                    opts.symmetric_activations,
                );
                scheme::params_for_range(
                    lo as f32,
                    hi as f32,
                    opts.activation_type,
                    opts.symmetric_activations,
                    scheme::keep_f32,
                )
            }
            Source::SameAs(other) => *params.get(other).ok_or_else(|| {
                failed(format!(
                    "{t:?} shares the parameters of {other:?}, which has none"
                ))
            })?,
        };
        params.insert(t.clone(), p);
    }
    let cx = GraphCx::main(model);
    let mut taken = scope::all_names(&model.graph);
    let g = &mut model.graph;
    let mut edit = Edit::default();
    activations(
        g,
        &plan,
        &params,
        opts.activation_type,
        &mut taken,
        &mut edit,
    );
    let folded: HashSet<NodeIndex> = plan.folds.iter().map(|(ix, _, _)| *ix).collect();
    let folded_into: HashSet<&str> = plan.folds.iter().map(|(_, _, t)| t.as_str()).collect();
    let folded_values: HashMap<String, String> = plan
        .folds
        .iter()
        .map(|(_, r, t)| (r.clone(), t.clone()))
        .collect();
    // The weights are quantized side by side first (the slow part of the rewrite); the
    // sequential loop below only builds the nodes, so the output does not depend on threads.
    let mut weights = super::static_weights::quantize_weights(g, &plan.nodes, opts).into_iter();
    for item in plan.nodes {
        let pre = weights.next().flatten();
        let mut p = match item {
            Ok(p) => p,
            Err(e) => {
                report.nodes.push(e);
                continue;
            }
        };
        super::static_weights::node_constants(
            g,
            &mut p,
            pre,
            &params,
            &folded_values,
            opts,
            &mut taken,
            &mut edit,
        );
        p.entry.status = Status::Quantized;
        p.entry.integer = true;
        let w = p.weight.as_ref().map_or(String::new(), |c| {
            format!(
                ", {} {} {} weights",
                opts.weight_type.name(),
                c.layout.describe(),
                if opts.symmetric {
                    "symmetric"
                } else {
                    "asymmetric"
                }
            )
        });
        let fold = match p.entry.output.as_deref() {
            Some(o) if folded_into.contains(o) => " + activation folded",
            _ => "",
        };
        p.entry.form = Some(format!(
            "QDQ: {} activations{w}{fold}",
            opts.activation_type.name()
        ));
        report.nodes.push(p.entry);
    }
    if !plan.folds.is_empty() {
        report.notes.push(format!(
            "folded {} Relu/Clip activations into the quantization of their producer's output",
            plan.folds.len()
        ));
    }
    edit.apply(g, &cx, &folded, &plan.folds);
    super::static_weights::subgraph_weights(model, opts, macs, report)
}

/// The rewrites, collected before any is applied.
#[derive(Default)]
pub(super) struct Edit {
    /// Nodes to insert, each before the given node.
    pub(super) nodes: Vec<(NodeIndex, Node)>,
    pub(super) tensors: Vec<Tensor>,
    /// (node, input slot) → new input.
    pub(super) reroutes: Vec<(NodeIndex, usize, String)>,
    /// Old value → DQ output, for every main-graph reader.
    pub(super) rename: HashMap<String, String>,
    pub(super) stale: HashSet<String>,
}

impl Edit {
    fn apply(
        self,
        g: &mut Graph,
        cx: &GraphCx,
        folded: &HashSet<NodeIndex>,
        folds: &[(NodeIndex, String, String)],
    ) {
        let readers: Vec<NodeIndex> = g.nodes().map(|(ix, _)| ix).collect();
        g.insert_nodes_before(self.nodes);
        for t in self.tensors {
            scope::add_initializer(g, t, cx);
        }
        let mut rename = self.rename;
        for (_, r, t) in folds {
            if let Some(dq) = rename.get(t).cloned() {
                rename.insert(r.clone(), dq);
            }
        }
        for ix in readers.into_iter().filter(|ix| !folded.contains(ix)) {
            if let Some(n) = g.node_mut(ix) {
                for i in n.proto.input.iter_mut() {
                    if let Some(to) = rename.get(i.as_str()) {
                        *i = to.clone();
                    }
                }
            }
        }
        for (ix, slot, name) in self.reroutes {
            if let Some(n) = g.node_mut(ix) {
                n.proto.input[slot] = name;
            }
        }
        let doomed: Vec<NodeIndex> = folded.iter().copied().collect();
        g.remove_nodes(&doomed);
        let gone: HashSet<String> = folds.iter().map(|(_, r, _)| r.clone()).collect();
        scope::fix_value_info(g, &gone, &HashMap::new());
        drop_unused(g, cx, &self.stale);
    }
}

pub(super) fn node(
    name: String,
    op: &str,
    inputs: Vec<String>,
    output: String,
    attributes: Vec<whittle_ir::Attribute>,
) -> Node {
    Node {
        proto: NodeProto {
            name: Some(name),
            op_type: Some(op.into()),
            input: inputs,
            output: vec![output],
            ..Default::default()
        },
        attributes,
    }
}

fn scalar_params(
    t: &str,
    p: Params,
    qt: QuantType,
    taken: &mut HashSet<String>,
) -> (Tensor, Tensor) {
    let s = Tensor::new_raw(
        &scope::unique_name(taken, &format!("{t}_scale")),
        DataType::FLOAT,
        vec![],
        Bytes::copy_from_slice(&p.scale.to_le_bytes()),
    );
    let z = Tensor::new_raw(
        &scope::unique_name(taken, &format!("{t}_zero_point")),
        qt.dtype(),
        vec![],
        scheme::pack(&[p.zero_point], qt),
    );
    (s, z)
}

/// A Q→DQ pair for every planned tensor, before its first reader.
fn activations(
    g: &Graph,
    plan: &static_qdq::Plan,
    params: &HashMap<String, Params>,
    qt: QuantType,
    taken: &mut HashSet<String>,
    edit: &mut Edit,
) {
    let folded: HashMap<&str, &str> = plan
        .folds
        .iter()
        .map(|(_, r, t)| (r.as_str(), t.as_str()))
        .collect();
    let mut first_reader: HashMap<String, NodeIndex> = HashMap::new();
    for (ix, n) in g.nodes() {
        for i in n.inputs() {
            let t = folded.get(i.as_str()).copied().unwrap_or(i.as_str());
            first_reader.entry(t.to_string()).or_insert(ix);
        }
    }
    for (t, _) in &plan.tensors {
        let (Some(&at), Some(&p)) = (first_reader.get(t), params.get(t)) else {
            continue;
        };
        let (s, z) = scalar_params(t, p, qt, taken);
        let q = scope::unique_name(taken, &format!("{t}_quantized"));
        let dq = scope::unique_name(taken, &format!("{t}_dequantized"));
        let inputs = |x: &str| vec![x.to_string(), s.name().to_string(), z.name().to_string()];
        edit.nodes.push((
            at,
            node(
                scope::unique_name(taken, &format!("{t}_QuantizeLinear")),
                "QuantizeLinear",
                inputs(t),
                q.clone(),
                vec![],
            ),
        ));
        edit.nodes.push((
            at,
            node(
                scope::unique_name(taken, &format!("{t}_DequantizeLinear")),
                "DequantizeLinear",
                inputs(&q),
                dq.clone(),
                vec![],
            ),
        ));
        edit.tensors.extend([s, z]);
        edit.rename.insert(t.clone(), dq);
    }
}
