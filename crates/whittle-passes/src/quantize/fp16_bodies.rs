//! `--mode fp16` inside If/Loop/Scan bodies: the nodes holding subgraphs stay float32 (see
//! [`super::fp16_plan`]), so their bodies compute in float32, but the bodies' float32
//! weights are stored as float16 and cast back to float32 at the top of the body. Weight
//! storage halves; the numbers a body computes with are the weights rounded to float16.
//!
//! Invariants:
//! - a converted initializer `W` becomes `W_fp16` (a fresh name) and a `Cast(to=float)` at
//!   the start of its body writes `W` again, so every reader — in the body and in the
//!   subgraphs nested in it — keeps reading the same name, type and shape;
//! - the same for a float32 `Constant` node in a body: its value becomes float16, its output
//!   `W_fp16`, and a Cast right after it writes `W`;
//! - only constants of the body itself are converted (not initializers a graph input can
//!   override, not initializers of legacy pre-IR-4 bodies, which mirror inputs), only when
//!   every value is finite and within the float16 range, and only when a node reads them;
//! - tensors under [`MIN_ELEMENTS`] stay float32: they save less than the Cast costs.
use super::fp16::{cast, to_f16_bytes};
use super::fp16_plan::F16_MAX;
use super::report::{NodeEntry, QuantizeReport, Status};
use super::{GraphWalk, scheme};
use crate::PassError;
use crate::cleanup::scope::{self, GraphCx};
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

/// Smallest body initializer stored as float16.
pub const MIN_ELEMENTS: u64 = 16;

/// What the report says of a node in a body whose weight is stored as float16.
pub const BODY_NOTE: &str = "inside a subgraph: weights stored as float16, cast to float32 in the body (compute stays float32)";

/// Converts the weights of every subgraph body of `model`; entries and a note go to `report`.
pub fn run(model: &mut Model, report: &mut QuantizeReport) -> Result<(), PassError> {
    let mut walk = GraphWalk::new(model);
    let mut graph = std::mem::take(&mut model.graph);
    let (mut count, mut before, mut after) = (0usize, 0u64, 0u64);
    let result = walk.visit_mut(&mut graph, &mut |g, cx, path, taken| {
        if path.is_empty() {
            return Ok(());
        }
        for (b, a) in convert_body(g, &cx, path, taken, report) {
            count += 1;
            before += b;
            after += a;
        }
        Ok(())
    });
    model.graph = graph;
    result?;
    if count > 0 {
        report.notes.push(format!(
            "stored {count} weights inside subgraphs as float16 ({before} → {after} bytes), \
             cast back to float32 in their bodies: compute there stays float32"
        ));
    }
    Ok(())
}

/// Where a body weight is stored.
#[derive(Clone, Copy, Debug)]
enum Holder {
    Initializer,
    /// A `Constant` node (its `value` tensor), and the node after it, if any.
    Constant(NodeIndex, Option<NodeIndex>),
}

/// A body weight to store as float16.
struct Convert {
    name: String,
    holder: Holder,
    values: Vec<f32>,
    sqnr: Option<f64>,
}

/// The values of `t` when it qualifies (see the module invariants), with their SQNR.
fn qualifies(t: &Tensor) -> Option<(Vec<f32>, Option<f64>)> {
    if t.dtype() != DataType::FLOAT || t.num_elements().unwrap_or(0) < MIN_ELEMENTS {
        return None;
    }
    let values = t.to_f32_vec().ok()?;
    if values
        .iter()
        .any(|x| !x.is_finite() || f64::from(x.abs()) > F16_MAX)
    {
        return None;
    }
    let h: Vec<f32> = values.iter().map(|&x| scheme::through_f16(x)).collect();
    let sqnr = scheme::sqnr_db(&values, &h);
    Some((values, sqnr))
}

/// The body's weights that qualify: constant initializers and `Constant` node values.
fn plan(g: &Graph, cx: &GraphCx) -> Vec<Convert> {
    let uses = scope::Uses::of(g);
    let read = |name: &str| !uses.consumers(name).is_empty();
    let mut out = Vec::new();
    // Legacy bodies list initializers as inputs: renaming one would change the signature.
    if !cx.legacy {
        for t in &g.initializers {
            if !scope::is_constant_init(g, t.name(), cx) || !read(t.name()) {
                continue;
            }
            if let Some((values, sqnr)) = qualifies(t) {
                let (name, holder) = (t.name().to_string(), Holder::Initializer);
                out.push(Convert {
                    name,
                    holder,
                    values,
                    sqnr,
                });
            }
        }
    }
    let order: Vec<(NodeIndex, &Node)> = g.nodes().collect();
    for (k, &(ix, n)) in order.iter().enumerate() {
        if n.op_type() != "Constant" || !n.domain().is_empty() || n.outputs().len() != 1 {
            continue;
        }
        let (Some(t), Some(name)) = (
            n.attribute("value").and_then(|a| a.t.as_ref()),
            n.outputs().first(),
        ) else {
            continue;
        };
        if !read(name) {
            continue;
        }
        if let Some((values, sqnr)) = qualifies(t) {
            let holder = Holder::Constant(ix, order.get(k + 1).map(|(next, _)| *next));
            out.push(Convert {
                name: name.clone(),
                holder,
                values,
                sqnr,
            });
        }
    }
    out
}

/// Converts one body's weights; returns their bytes before and after.
fn convert_body(
    g: &mut Graph,
    cx: &GraphCx,
    path: &str,
    taken: &mut HashSet<String>,
    report: &mut QuantizeReport,
) -> Vec<(u64, u64)> {
    let Some(first) = g.nodes().next().map(|(ix, _)| ix) else {
        return Vec::new();
    };
    let todo = plan(g, cx);
    let mut sizes: HashMap<String, (u64, u64, Option<f64>)> = HashMap::new();
    // (insert before this node, or at the end; the Cast)
    let mut casts: Vec<(Option<NodeIndex>, Node)> = Vec::new();
    for c in &todo {
        let stored = scope::unique_name(taken, &format!("{}_fp16", c.name));
        let data = to_f16_bytes(&c.values).0;
        let slot = match c.holder {
            Holder::Initializer => g.initializers.iter_mut().find(|t| t.name() == c.name),
            Holder::Constant(ix, _) => g
                .node_mut(ix)
                .and_then(|n| n.attributes.iter_mut().find(|a| a.proto.name() == "value"))
                .and_then(|a| a.t.as_mut()),
        };
        let Some(t) = slot else { continue };
        let name = match c.holder {
            Holder::Initializer => stored.clone(),
            Holder::Constant(..) => t.name().to_string(),
        };
        let mut h = Tensor::new_raw(&name, DataType::FLOAT16, t.dims().to_vec(), data);
        h.proto.doc_string = t.proto.doc_string.clone();
        sizes.insert(
            c.name.clone(),
            (t.data_byte_len(), h.data_byte_len(), c.sqnr),
        );
        *t = h;
        let cast_node = cast(
            &scope::unique_name(taken, &format!("{}_cast", c.name)),
            &stored,
            &c.name,
            DataType::FLOAT,
        );
        match c.holder {
            Holder::Initializer => casts.push((Some(first), cast_node)),
            Holder::Constant(ix, next) => {
                if let Some(n) = g.node_mut(ix) {
                    n.proto.output[0] = stored;
                }
                casts.push((next, cast_node));
            }
        }
    }
    entries(g, path, &sizes, report);
    // No anchor: at the end (`NodeIndex::end()` is never a node of the graph).
    g.insert_nodes_before(
        casts
            .into_iter()
            .map(|(before, cast)| (before.unwrap_or_else(NodeIndex::end), cast)),
    );
    sizes.values().map(|&(b, a, _)| (b, a)).collect()
}

/// One entry per node reading a converted weight (each weight's bytes on its first reader).
fn entries(
    g: &Graph,
    path: &str,
    sizes: &HashMap<String, (u64, u64, Option<f64>)>,
    report: &mut QuantizeReport,
) {
    let mut counted = HashSet::new();
    for (pos, (_, n)) in g.nodes().enumerate() {
        let read: Vec<&String> = n
            .inputs()
            .iter()
            .filter(|i| sizes.contains_key(i.as_str()))
            .collect();
        let Some(&w) = read.first() else { continue };
        let mut e = NodeEntry::new(format!("{path}{}", n.label(pos)), n.op_type());
        e.output = n.outputs().first().cloned();
        e.status = Status::KeptFloat32;
        e.reason = Some(BODY_NOTE.into());
        e.weight = Some(w.clone());
        e.weight_sqnr_db = sizes.get(w.as_str()).and_then(|s| s.2);
        for r in read {
            if let Some(&(b, a, _)) = sizes.get(r.as_str()).filter(|_| counted.insert(r.clone())) {
                *e.weight_bytes_before.get_or_insert(0) += b;
                *e.weight_bytes_after.get_or_insert(0) += a;
            }
        }
        report.nodes.push(e);
    }
}
