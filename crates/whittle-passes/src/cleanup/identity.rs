//! Identity elimination: removes `Identity`, inference `Dropout`, and `Cast`, `Reshape`,
//! `Transpose`, `Pad`, `Expand`, `Slice`, single-input `Concat` that change nothing (rules
//! in [`super::noop`]), rewiring their consumers to the input.
//!
//! Invariants:
//! - graph output names never change: when the removed node's output is a graph output,
//!   the producer of its input is renamed to that output instead — only when the input is
//!   produced by a node of the same graph and is not itself a graph output; otherwise the
//!   node stays (and the report says why);
//! - a node whose other outputs (e.g. the Dropout mask) are used stays;
//! - a rename never lets a subgraph capture a different value of the new name
//!   ([`scope::rename_is_safe`]); subgraphs are cleaned first.
use super::noop::{NoopCx, is_noop};
use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::ShapeMap;
use whittle_ir::{Graph, Model, Tensor};

/// The identity-elimination pass.
#[derive(Default)]
pub struct IdentityElimination;

impl Pass for IdentityElimination {
    fn name(&self) -> &'static str {
        "identity"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let cx = GraphCx::main(model);
        let shapes =
            whittle_ir::shape::infer_shapes(model, &Default::default()).unwrap_or_default();
        let mut report = PassReport::default();
        eliminate(
            &mut model.graph,
            cx,
            &HashMap::new(),
            &shapes,
            "",
            &mut report,
        );
        Ok(report)
    }
}

fn eliminate(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    path: &str,
    report: &mut PassReport,
) {
    let inner_outer = scope::visible_constants(g, &cx, outer);
    for (k, n) in g.nodes_mut().enumerate() {
        let label = format!("{path}{}/", n.label(k));
        for sub in n.subgraphs_mut() {
            eliminate(sub, cx.sub(), &inner_outer, shapes, &label, report);
        }
    }
    bypass(g, &cx, outer, shapes, path, report);
    take_over_outputs(g, &cx, outer, shapes, path, report);
}

/// The no-op nodes of `g` with their description, when their other outputs are unused.
fn candidates(
    g: &Graph,
    cx: &GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    uses: &Uses,
) -> Vec<(usize, &'static str)> {
    let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
    let consts = scope::constants(g, cx, &refs);
    let ncx = NoopCx {
        consts: &consts,
        shapes,
        opset: cx.opset,
    };
    let mut out = Vec::new();
    for (pos, (_, n)) in g.nodes().enumerate() {
        if n.domain() != "" || n.outputs().first().is_none_or(String::is_empty) {
            continue;
        }
        if n.outputs()[1..]
            .iter()
            .any(|o| !o.is_empty() && uses.is_used(o))
        {
            continue;
        }
        if let Some(what) = is_noop(n, &ncx) {
            out.push((pos, what));
        }
    }
    out
}

/// Removes no-ops whose output is not a graph output: consumers read the input instead.
fn bypass(
    g: &mut Graph,
    cx: &GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    path: &str,
    report: &mut PassReport,
) {
    let uses = Uses::of(g);
    let nodes: Vec<_> = g.nodes().map(|(ix, n)| (ix, n.clone())).collect();
    let mut map: HashMap<String, String> = HashMap::new();
    let mut doomed = Vec::new();
    let mut lines = Vec::new();
    for (pos, what) in candidates(g, cx, outer, shapes, &uses) {
        let (ix, n) = &nodes[pos];
        let (x, y) = (&n.inputs()[0], &n.outputs()[0]);
        if uses.is_output(y) {
            continue;
        }
        map.insert(y.clone(), x.clone());
        doomed.push((*ix, pos, what));
    }
    // Drop renames a subgraph would capture (checked against the final target of chains).
    let unsafe_: HashSet<String> = map
        .iter()
        .filter(|(y, _)| !scope::rename_is_safe(g, y, scope::resolve(&map, y)))
        .map(|(y, _)| y.clone())
        .collect();
    for y in &unsafe_ {
        map.remove(y);
    }
    let mut removed = Vec::new();
    for (ix, pos, what) in doomed {
        let n = &nodes[pos].1;
        if unsafe_.contains(&n.outputs()[0]) {
            report.skipped.push(format!(
                "{path}{}: a subgraph defines {:?} itself",
                n.label(pos),
                n.inputs()[0]
            ));
            continue;
        }
        lines.push(format!(
            "{path}removed {}, {what}: consumers of {:?} read {:?}",
            n.label(pos),
            n.outputs()[0],
            scope::resolve(&map, &n.outputs()[0])
        ));
        removed.push(ix);
    }
    scope::rename_uses(g, &map, false);
    g.remove_nodes(&removed);
    let dropped: HashSet<String> = map.keys().cloned().collect();
    scope::fix_value_info(g, &dropped, &HashMap::new());
    report.changes.extend(lines);
}

/// Removes no-ops whose output is a graph output, by renaming the producer of the input.
fn take_over_outputs(
    g: &mut Graph,
    cx: &GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    path: &str,
    report: &mut PassReport,
) {
    let uses = Uses::of(g);
    let mut producer: HashMap<String, (petgraph::stable_graph::NodeIndex, usize)> = HashMap::new();
    for (ix, n) in g.nodes() {
        for (slot, o) in n
            .outputs()
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.is_empty())
        {
            producer.insert(o.clone(), (ix, slot));
        }
    }
    let nodes: Vec<_> = g.nodes().map(|(ix, n)| (ix, n.clone())).collect();
    let mut claimed: HashSet<String> = HashSet::new();
    let mut renames: Vec<(petgraph::stable_graph::NodeIndex, usize, String)> = Vec::new();
    let mut map: HashMap<String, String> = HashMap::new();
    let mut removed = Vec::new();
    for (pos, what) in candidates(g, cx, outer, shapes, &uses) {
        let (ix, n) = &nodes[pos];
        let (x, y) = (&n.inputs()[0], &n.outputs()[0]);
        if !uses.is_output(y) {
            continue;
        }
        let why_not = match producer.get(x) {
            None => Some(format!(
                "its input {x:?} is not produced by a node of this graph"
            )),
            Some(_) if uses.is_output(x) => Some(format!("its input {x:?} is a graph output too")),
            Some(_) if claimed.contains(x) => {
                Some(format!("{x:?} already takes over another output"))
            }
            Some(_) if !scope::rename_is_safe(g, x, y) => {
                Some(format!("a subgraph defines {y:?} itself"))
            }
            Some(_) => None,
        };
        if let Some(why) = why_not {
            report
                .skipped
                .push(format!("{path}{}, {what}, kept: {why}", n.label(pos)));
            continue;
        }
        let &(p, slot) = &producer[x];
        claimed.insert(x.clone());
        renames.push((p, slot, y.clone()));
        map.insert(x.clone(), y.clone());
        removed.push(*ix);
        report.changes.push(format!(
            "{path}removed {}, {what}: graph output {y:?} is now produced directly (was {x:?})",
            n.label(pos)
        ));
    }
    if removed.is_empty() {
        return;
    }
    for (p, slot, y) in renames {
        if let Some(node) = g.node_mut(p) {
            node.proto.output[slot] = y;
        }
    }
    scope::rename_uses(g, &map, false);
    g.remove_nodes(&removed);
    let dropped: HashSet<String> = map.keys().cloned().collect();
    scope::fix_value_info(g, &dropped, &HashMap::new());
}
