//! DQ of the constants of a statically quantized node: its weight (per channel by default),
//! its bias as int32 with scale `input scale × weight scale` and zero point 0, and float
//! constant inputs of Add/Mul/Concat (per tensor, with their own range); and the weights of
//! nodes inside If/Loop/Scan bodies, which get the weight-mode rewrite
//! ([`super::weight_mode`], same weight type, layout and symmetry) because values inside
//! a body cannot be made graph outputs, so their activations cannot be calibrated.
use super::needs::Need;
use super::options::Format;
use super::report::QuantizeReport;
use super::scheme::{self, Params};
use super::static_qdq::Planned;
use super::static_rewrite::{Edit, node};
use super::weight_mode::{self, Graphs};
use super::weight_mode::{dq_node, weight_values};
use super::weights::{self, Layout};
use super::{MacTable, QuantizeOptions};
use crate::PassError;
use crate::cleanup::attrs::int_attribute;
use crate::cleanup::scope;
use bytes::Bytes;
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

/// What the report says of every node quantized inside a subgraph.
pub const SUBGRAPH_NOTE: &str =
    "inside a subgraph: weights only (activations there cannot be calibrated)";

/// Subgraph bodies always get `DequantizeLinear` weights, whatever the main graph's format.
fn body_options(opts: &QuantizeOptions) -> QuantizeOptions {
    QuantizeOptions {
        format: Format::Qdq,
        ..opts.clone()
    }
}

/// The opset the weights inside subgraphs need (opset 0 when there are none).
pub(super) fn subgraph_need(model: &Model, opts: &QuantizeOptions) -> Need {
    weight_mode::need_in(model, &body_options(opts), Graphs::SubgraphsOnly)
}

/// The weight-mode rewrite of every subgraph; its entries say why they are weights only.
pub(super) fn subgraph_weights(
    model: &mut Model,
    opts: &QuantizeOptions,
    macs: &MacTable,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let first = report.nodes.len();
    weight_mode::rewrite_graphs(
        model,
        &body_options(opts),
        macs,
        Graphs::SubgraphsOnly,
        None,
        report,
    )?;
    for e in &mut report.nodes[first..] {
        if e.status == super::Status::Quantized {
            e.form = e.form.take().map(|f| format!("{f}; {SUBGRAPH_NOTE}"));
            e.reason = Some(SUBGRAPH_NOTE.into());
        }
    }
    Ok(())
}

/// A weight's float values and their quantization.
pub(super) type QuantizedWeight = (Vec<f32>, weights::Quantized);

/// The quantized weight of every planned node (`None` for skipped nodes and nodes without
/// a readable constant weight), in `nodes` order, computed in parallel.
pub(super) fn quantize_weights(
    g: &Graph,
    nodes: &[Result<Planned, super::report::NodeEntry>],
    opts: &QuantizeOptions,
) -> Vec<Option<QuantizedWeight>> {
    use rayon::prelude::*;
    nodes
        .par_iter()
        .map(|item| {
            let c = item.as_ref().ok()?.weight.as_ref()?;
            let values = weight_values(g.initializer(&c.weight)?).ok()?;
            let q = weight_mode::quantize_candidate(&values, c, opts, scheme::keep_f32);
            Some((values, q))
        })
        .collect()
}

/// DQ of the node's weight (quantized beforehand by [`quantize_weights`]), bias and
/// constant inputs.
#[allow(clippy::too_many_arguments)]
pub(super) fn node_constants(
    g: &Graph,
    p: &mut Planned,
    weight: Option<QuantizedWeight>,
    params: &HashMap<String, Params>,
    folded: &HashMap<String, String>,
    opts: &QuantizeOptions,
    taken: &mut HashSet<String>,
    edit: &mut Edit,
) {
    let Some(n) = g.node(p.ix) else { return };
    if let Some(c) = p.weight.as_ref() {
        let Some(t) = g.initializer(&c.weight) else {
            return;
        };
        let Some((values, q)) = weight else { return };
        let (dq, tensors, out) = dq_node(c, &q, opts, t.dims(), taken);
        p.entry.weight_sqnr_db = scheme::sqnr_db(&values, &q.dequantized);
        p.entry.weight_bytes_after = Some(tensors.iter().map(Tensor::data_byte_len).sum());
        edit.nodes.push((p.ix, dq));
        edit.tensors.extend(tensors);
        edit.reroutes.push((p.ix, 1, out));
        edit.stale.insert(c.weight.clone());
        let x_scale = n
            .inputs()
            .first()
            .map(|x| folded.get(x).unwrap_or(x))
            .and_then(|x| params.get(x.as_str()))
            .map(|p| p.scale);
        if let (Some(xs), Some(b)) = (x_scale, n.inputs().get(2).filter(|b| !b.is_empty())) {
            bias(g, n, p.ix, b, xs, &q.params, c.layout, taken, edit);
        }
    }
    for &slot in &p.constants {
        let name = &n.inputs()[slot];
        let Some(t) = g.initializer(name) else {
            continue;
        };
        let Ok(values) = weight_values(t) else {
            continue;
        };
        let dims: Vec<usize> = t.dims().iter().map(|&d| d.max(0) as usize).collect();
        let q = weights::quantize(
            &values,
            &dims,
            Layout::PerTensor,
            opts.activation_type,
            false,
            scheme::keep_f32,
        );
        let mut c = p
            .weight
            .clone()
            .unwrap_or_else(|| constant_candidate(p, name, &dims));
        c.weight = name.clone();
        c.layout = Layout::PerTensor;
        let qopts = QuantizeOptions {
            weight_type: opts.activation_type,
            ..opts.clone()
        };
        let (dq, tensors, out) = dq_node(&c, &q, &qopts, t.dims(), taken);
        edit.nodes.push((p.ix, dq));
        edit.tensors.extend(tensors);
        edit.reroutes.push((p.ix, slot, out));
        edit.stale.insert(name.clone());
    }
}

fn constant_candidate(p: &Planned, name: &str, dims: &[usize]) -> super::candidates::Candidate {
    super::candidates::Candidate {
        ix: p.ix,
        entry: p.entry.clone(),
        weight: name.to_string(),
        role: super::candidates::WeightRole {
            slot: 0,
            channel_axis: None,
            reduce_axis: None,
            conv: false,
        },
        layout: Layout::PerTensor,
        weight_dtype: DataType::FLOAT,
        dims: dims.to_vec(),
    }
}

/// An int32 bias with scale `x_scale · w_scale` (per channel when the weight is).
#[allow(clippy::too_many_arguments)]
fn bias(
    g: &Graph,
    n: &Node,
    ix: NodeIndex,
    name: &str,
    x_scale: f32,
    w: &[Params],
    layout: Layout,
    taken: &mut HashSet<String>,
    edit: &mut Edit,
) {
    let Some(t) = g.initializer(name) else { return };
    let Ok(b) = t.to_f32_vec() else { return };
    let per_channel = matches!(layout, Layout::PerAxis { .. });
    let beta = n.attribute("beta").and_then(|a| a.proto.f).unwrap_or(1.0);
    if t.dims().len() != 1 || beta != 1.0 || (per_channel && w.len() != b.len()) {
        return;
    }
    let scales: Vec<f32> = if per_channel {
        w.iter().map(|p| x_scale * p.scale).collect()
    } else {
        vec![x_scale * w[0].scale]
    };
    let q: Vec<i32> = b
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let s = scales[if per_channel { i } else { 0 }];
            let r = f64::from((x / s).round_ties_even());
            r.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect();
    let qname = scope::unique_name(taken, &format!("{name}_quantized"));
    let sname = scope::unique_name(taken, &format!("{name}_scale"));
    let out = scope::unique_name(taken, &format!("{name}_dequantized"));
    let sdims = if per_channel {
        vec![scales.len() as i64]
    } else {
        vec![]
    };
    edit.tensors.push(Tensor::new_raw(
        &qname,
        DataType::INT32,
        t.dims().to_vec(),
        Bytes::from(q.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()),
    ));
    edit.tensors.push(Tensor::new_raw(
        &sname,
        DataType::FLOAT,
        sdims,
        Bytes::from(
            scales
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        ),
    ));
    let attrs = if per_channel {
        vec![int_attribute("axis", 0)]
    } else {
        vec![]
    };
    edit.nodes.push((
        ix,
        node(
            scope::unique_name(taken, &format!("{name}_DequantizeLinear")),
            "DequantizeLinear",
            vec![qname, sname],
            out.clone(),
            attrs,
        ),
    ));
    edit.reroutes.push((ix, 2, out));
    edit.stale.insert(name.to_string());
}
