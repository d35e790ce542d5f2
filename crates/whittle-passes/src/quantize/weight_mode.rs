//! `--mode weight`: each candidate's weight becomes an integer initializer plus its scales
//! (and zero points), read through a `DequantizeLinear` placed right before the consumer;
//! activations stay float. With `--format ort-nbits`, MatMul weights become com.microsoft
//! `MatMulNBits` instead ([`super::nbits`]).
//!
//! Invariants: a weight shared by several candidates with the same layout is quantized
//! once and read through one `DequantizeLinear`; the float original is removed only when
//! nothing else (another node, a subgraph, a graph output) still reads it; new names never
//! clash with any name of the model (all graphs).
use super::candidates::{self, Candidate, WEIGHT_OPS};
use super::needs::{self, Need};
use super::options::{Format, QuantizeOptions};
use super::report::{NodeEntry, QuantizeReport, Status};
use super::weights::{self, Layout, Quantized};
use super::{GraphWalk, MacTable, nbits, scheme};
use crate::PassError;
use crate::cleanup::attrs::int_attribute;
use crate::cleanup::scope::{self, GraphCx};
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::NodeProto;
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

/// Which graphs a weight rewrite visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Graphs {
    /// The main graph and every subgraph (`--mode weight`).
    All,
    /// Only the bodies of If/Loop/Scan (static mode, whose main graph gets QDQ instead).
    SubgraphsOnly,
}

impl Graphs {
    fn visits(self, path: &str) -> bool {
        self == Graphs::All || !path.is_empty()
    }
}

/// The ai.onnx opset the candidates of `model` need in this mode.
pub fn need(model: &Model, opts: &QuantizeOptions) -> Need {
    need_in(model, opts, Graphs::All)
}

/// The ai.onnx opset the candidates of the graphs `which` selects need.
pub(super) fn need_in(model: &Model, opts: &QuantizeOptions, which: Graphs) -> Need {
    let mut need = Need::default();
    GraphWalk::new(model).visit(&model.graph, &mut |g, cx, path| {
        if !which.visits(path) {
            return;
        }
        for (ix, _) in g.nodes() {
            if let Some(Ok(c)) = candidates::examine(g, &cx, ix, String::new(), opts, WEIGHT_OPS) {
                if opts.format == Format::OrtNbits {
                    continue;
                }
                need.add(needs::dq_opset(c.layout, opts.weight_type, c.weight_dtype));
            }
        }
    });
    need
}

/// Rewrites every graph of `model`; entries go to `report`.
pub fn run(
    model: &mut Model,
    opts: &QuantizeOptions,
    macs: &MacTable,
    hessians: Option<&Hessians>,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    needs::ensure_opset(model, &need(model, opts), report)?;
    rewrite_graphs(model, opts, macs, Graphs::All, hessians, report)
}

/// `--gptq` input moments by weight name (main graph only).
pub type Hessians = std::collections::BTreeMap<String, super::gptq::LayerHessian>;

/// The weight rewrite of the graphs `which` selects (the opset must already be high
/// enough: see [`need_in`]).
pub(super) fn rewrite_graphs(
    model: &mut Model,
    opts: &QuantizeOptions,
    macs: &MacTable,
    which: Graphs,
    hessians: Option<&Hessians>,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let mut walk = GraphWalk::new(model);
    let mut uses_nbits = false;
    let mut graph = std::mem::take(&mut model.graph);
    let result = walk.visit_mut(&mut graph, &mut |g, cx, path, taken| {
        if !which.visits(path) {
            return Ok(());
        }
        let mut found = Vec::new();
        for (pos, (ix, n)) in g.nodes().enumerate() {
            let label = candidates::node_label(path, n, pos);
            match candidates::examine(g, &cx, ix, label, opts, WEIGHT_OPS) {
                None => {}
                Some(Err(mut e)) => {
                    e.macs = macs.get(path, n);
                    found.push(Err(e));
                }
                Some(Ok(mut c)) => {
                    c.entry.macs = macs.get(path, n);
                    found.push(Ok(c));
                }
            }
        }
        // Values inside a body cannot be read out, so only the main graph has moments.
        let hessians = hessians.filter(|_| path.is_empty() && opts.gptq);
        if opts.format == Format::OrtNbits {
            uses_nbits |= nbits::rewrite(g, &cx, found, opts, hessians, taken, report)?;
        } else {
            rewrite(g, &cx, found, opts, hessians, taken, report);
        }
        Ok(())
    });
    model.graph = graph;
    result?;
    if uses_nbits {
        needs::import_domain(model, "com.microsoft", 1);
    }
    Ok(())
}

/// A weight's float values, its quantization, and whether GPTQ rounded it (or why not).
type Rounded = (Vec<f32>, weights::Quantized, Result<bool, String>);

/// Every distinct (weight, layout) of `found` quantized, side by side (GPTQ's rounding is
/// the slow part of the rewrite); the rewrite then only builds nodes, in order.
fn round_all(
    g: &Graph,
    found: &[Result<Candidate, NodeEntry>],
    opts: &QuantizeOptions,
    hessians: Option<&Hessians>,
) -> HashMap<(String, Layout), Result<Rounded, String>> {
    use rayon::prelude::*;
    let mut unique: Vec<&Candidate> = Vec::new();
    for c in found.iter().filter_map(|f| f.as_ref().ok()) {
        if !unique
            .iter()
            .any(|u| u.weight == c.weight && u.layout == c.layout)
        {
            unique.push(c);
        }
    }
    unique
        .par_iter()
        .filter_map(|c| {
            let t = g.initializer(&c.weight)?;
            let key = (c.weight.clone(), c.layout);
            let values = match weight_values(t) {
                Ok(v) => v,
                Err(why) => return Some((key, Err(why))),
            };
            let hessian = hessians.and_then(|h| h.get(&c.weight));
            let round = weights::rounding_for(c.weight_dtype);
            let (q, gptq) = super::gptq::quantize_weight(&values, c, opts, round, hessian);
            // With `--gptq`, a layer without moments says why it was rounded to nearest.
            let gptq = match gptq {
                Ok(false) if hessians.is_some() => Err(super::gptq::NOT_COVERED.to_string()),
                g => g,
            };
            Some((key, Ok((values, q, gptq))))
        })
        .collect()
}

/// One quantized weight, ready to be written.
struct Written {
    dq_output: String,
    bytes_after: u64,
    sqnr: Option<f64>,
    /// What the form says of GPTQ (empty without `--gptq`).
    gptq: String,
}

/// Applies the DequantizeLinear rewrite to one graph's candidates (collected first).
fn rewrite(
    g: &mut Graph,
    cx: &GraphCx,
    found: Vec<Result<Candidate, NodeEntry>>,
    opts: &QuantizeOptions,
    hessians: Option<&Hessians>,
    taken: &mut HashSet<String>,
    report: &mut QuantizeReport,
) {
    let mut done: HashMap<(String, Layout), Written> = HashMap::new();
    let mut new_nodes: Vec<(petgraph::stable_graph::NodeIndex, Node)> = Vec::new();
    let mut new_inits: Vec<Tensor> = Vec::new();
    let mut reroutes = Vec::new();
    let mut replaced = HashSet::new();
    let mut rounded = round_all(g, &found, opts, hessians);
    for item in found {
        let mut c = match item {
            Ok(c) => c,
            Err(e) => {
                report.nodes.push(e);
                continue;
            }
        };
        if !cx.can_add_initializers() {
            report.nodes.push(
                c.entry
                    .skipped("a pre-IR-4 subgraph cannot take new initializers"),
            );
            continue;
        }
        let key = (c.weight.clone(), c.layout);
        let shared = done.contains_key(&key);
        if !shared {
            let Some(t) = g.initializer(&c.weight) else {
                report
                    .nodes
                    .push(c.entry.skipped("weight is not an initializer"));
                continue;
            };
            let entry = rounded
                .remove(&key)
                .unwrap_or_else(|| Err("weight is not an initializer".into()));
            let (values, q, gptq) = match entry {
                Ok(r) => r,
                Err(why) => {
                    // Every other reader of this weight is skipped for the same reason.
                    rounded.insert(key.clone(), Err(why.clone()));
                    report.nodes.push(c.entry.skipped(why));
                    continue;
                }
            };
            let (node, tensors, out) = dq_node(&c, &q, opts, t.dims(), taken);
            let written = Written {
                dq_output: out,
                bytes_after: tensors.iter().map(Tensor::data_byte_len).sum(),
                sqnr: scheme::sqnr_db(&values, &q.dequantized),
                gptq: match gptq {
                    Ok(true) => ", GPTQ rounding".to_string(),
                    Ok(false) => String::new(),
                    Err(why) => format!(", rounded to nearest (GPTQ: {why})"),
                },
            };
            new_inits.extend(tensors);
            new_nodes.push((c.ix, node));
            done.insert(key.clone(), written);
        }
        let Some(w) = done.get(&key) else { continue };
        reroutes.push((c.ix, c.role.slot, w.dq_output.clone()));
        replaced.insert(c.weight.clone());
        c.entry.status = Status::Quantized;
        c.entry.form = Some(format!(
            "DequantizeLinear {} {} {}{}{}",
            opts.weight_type.name(),
            c.layout.describe(),
            if opts.symmetric {
                "symmetric"
            } else {
                "asymmetric"
            },
            w.gptq,
            if shared { " (shared weight)" } else { "" }
        ));
        c.entry.weight_sqnr_db = w.sqnr;
        if shared {
            c.entry.weight_bytes_before = None;
        } else {
            c.entry.weight_bytes_after = Some(w.bytes_after);
        }
        report.nodes.push(c.entry);
    }
    g.insert_nodes_before(new_nodes);
    for t in new_inits {
        scope::add_initializer(g, t, cx);
    }
    for (ix, slot, name) in reroutes {
        if let Some(n) = g.node_mut(ix) {
            n.proto.input[slot] = name;
        }
    }
    g.rebuild_edges();
    drop_unused(g, cx, &replaced);
}

/// The float values of a weight, or why they cannot be quantized.
pub fn weight_values(t: &Tensor) -> Result<Vec<f32>, String> {
    let v = t
        .to_f32_vec()
        .map_err(|e| format!("cannot read the weight: {e}"))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err("weight has NaN or infinite values".into());
    }
    Ok(v)
}

/// The DequantizeLinear node, its three initializers and its output name.
pub(super) fn dq_node(
    c: &Candidate,
    q: &Quantized,
    opts: &QuantizeOptions,
    dims: &[i64],
    taken: &mut HashSet<String>,
) -> (Node, Vec<Tensor>, String) {
    let base = &c.weight;
    let qname = scope::unique_name(taken, &format!("{base}_quantized"));
    let sname = scope::unique_name(taken, &format!("{base}_scale"));
    let zname = scope::unique_name(taken, &format!("{base}_zero_point"));
    let out = scope::unique_name(taken, &format!("{base}_dequantized"));
    let node_name = scope::unique_name(taken, &format!("{base}_DequantizeLinear"));
    let tensors = vec![
        weights::values_tensor(&qname, q, opts.weight_type, dims),
        weights::scale_tensor(&sname, q, c.weight_dtype),
        weights::zero_point_tensor(&zname, q, opts.weight_type),
    ];
    let attributes = match c.layout {
        Layout::PerTensor => vec![],
        Layout::PerAxis { axis } => vec![int_attribute("axis", axis as i64)],
        Layout::Blocked { axis, block } => vec![
            int_attribute("axis", axis as i64),
            int_attribute("block_size", block as i64),
        ],
    };
    let node = Node {
        proto: NodeProto {
            name: Some(node_name),
            op_type: Some("DequantizeLinear".into()),
            input: vec![qname, sname, zname],
            output: vec![out.clone()],
            ..Default::default()
        },
        attributes,
    };
    (node, tensors, out)
}

/// Removes the replaced float weights nothing reads any more (and their value_info).
pub fn drop_unused(g: &mut Graph, cx: &GraphCx, replaced: &HashSet<String>) {
    let uses = scope::Uses::of(g);
    let unused: HashSet<String> = replaced
        .iter()
        .filter(|w| !uses.is_used(w))
        .cloned()
        .collect();
    scope::remove_initializers(g, &unused, cx);
    scope::fix_value_info(g, &unused, &HashMap::new());
}

/// Whether `t` is a float type quantization writes scales in.
pub fn is_quantizable_float(t: DataType) -> bool {
    t == DataType::FLOAT || t == DataType::FLOAT16
}

/// `values`, the weight of `c`, quantized with its layout and the options' type and symmetry;
/// `round` is applied to the dequantized values (the float type they compare against).
pub(super) fn quantize_candidate(
    values: &[f32],
    c: &Candidate,
    opts: &QuantizeOptions,
    round: fn(f32) -> f32,
) -> weights::Quantized {
    weights::quantize(
        values,
        &c.dims,
        c.layout,
        opts.weight_type,
        opts.symmetric,
        round,
    )
}
