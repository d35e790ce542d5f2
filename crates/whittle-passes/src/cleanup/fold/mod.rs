//! Constant folding: a default-domain node whose inputs are all constant (initializers no
//! graph input overrides, or values folded earlier in the same run) is evaluated by the
//! small exact kernels of [`eval`] and replaced by initializers. `Shape` and `Size` of a
//! value whose dims shape inference knows fold too, and so does a `Gather`/`Slice` that
//! picks only known dims out of a partly known shape ([`partial`]).
//!
//! Invariants:
//! - folding never grows the file by more than the limit per output: an output larger
//!   than `limit` bytes folds only when its constant inputs are used by this node alone
//!   and the output is no larger than they are together (e.g. a `Transpose` of a weight);
//! - nodes with subgraphs, nodes of other domains and ops without a kernel are left
//!   alone; when all their inputs are constant the report says why they were not folded;
//! - subgraphs fold with the constants of their enclosing graphs in view; a result that
//!   depends on the enclosing graph's constants alone becomes an initializer of that
//!   graph (so `If` branches that rearrange the same outer weight share one copy after
//!   `dedup`), any other result an initializer of the graph that held the node.
pub mod elementwise;
pub mod eval;
pub mod movement;
pub mod partial;
mod plan;
#[cfg(test)]
mod tests;
pub mod value;

use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use plan::{Constants, Folded, plan};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::ShapeMap;
use whittle_ir::{Graph, Model, Tensor};

/// Default size limit: 1 MiB of new data per folded output.
pub const DEFAULT_FOLD_LIMIT: u64 = 1 << 20;

/// The constant-folding pass.
pub struct ConstantFolding {
    /// Bytes one folded output may add to the model (see the module docs).
    pub limit: u64,
}

impl Default for ConstantFolding {
    fn default() -> Self {
        ConstantFolding {
            limit: DEFAULT_FOLD_LIMIT,
        }
    }
}

impl Pass for ConstantFolding {
    fn name(&self) -> &'static str {
        "fold"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let cx = GraphCx::main(model);
        let shapes =
            whittle_ir::shape::infer_shapes(model, &Default::default()).unwrap_or_default();
        let mut report = PassReport::default();
        let defs = definition_counts(&model.graph);
        fold_graph(
            &mut model.graph,
            cx,
            &HashMap::new(),
            &shapes,
            self.limit,
            false,
            &defs,
            "",
            &mut report,
        );
        Ok(report)
    }
}

/// How often each name is defined across the model (all graphs).
fn definition_counts(g: &Graph) -> HashMap<String, usize> {
    let mut defs = HashMap::new();
    g.walk(&mut |sub, _| {
        for name in scope::defined_here(sub) {
            *defs.entry(name).or_insert(0) += 1;
        }
    });
    defs
}

/// Folds `g` and its subgraphs. Returns the initializers that belong to the enclosing
/// graph when `hoist_ok`: values folded here whose names are defined once in the whole
/// model (so moving them up can neither collide with nor shadow another value).
#[allow(clippy::too_many_arguments)]
fn fold_graph(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    limit: u64,
    hoist_ok: bool,
    defs: &HashMap<String, usize>,
    path: &str,
    report: &mut PassReport,
) -> Vec<Tensor> {
    let folded = {
        let outer_refs: HashMap<String, &Tensor> =
            outer.iter().map(|(k, v)| (k.clone(), v)).collect();
        let mut consts = Constants {
            tensors: scope::constants(g, &cx, &outer_refs),
            values: HashMap::new(),
            bad: HashSet::new(),
        };
        let uses = Uses::of(g);
        if cx.can_add_initializers() {
            // Lines are written without the graph path, then prefixed with it.
            let mut local = PassReport::default();
            let folded = plan(g, &cx, &mut consts, &uses, shapes, limit, &mut local);
            report
                .changes
                .extend(local.changes.into_iter().map(|l| format!("{path}{l}")));
            report
                .skipped
                .extend(local.skipped.into_iter().map(|l| format!("{path}{l}")));
            folded
        } else {
            Vec::new()
        }
    };
    let hoisted = apply(g, &cx, folded, hoist_ok, defs);
    // Subgraphs see this graph's constants (after folding) as outer constants.
    let inner_outer = scope::visible_constants(g, &cx, outer);
    let take = cx.can_add_initializers();
    let mut from_subgraphs = Vec::new();
    for (k, n) in g.nodes_mut().enumerate() {
        let label = format!("{path}{}/", n.label(k));
        for sub in n.subgraphs_mut() {
            let sub_cx = cx.sub();
            from_subgraphs.extend(fold_graph(
                sub,
                sub_cx,
                &inner_outer,
                shapes,
                limit,
                take,
                defs,
                &label,
                report,
            ));
        }
    }
    for t in from_subgraphs {
        scope::add_initializer(g, t, &cx);
    }
    hoisted
}

/// Removes the folded nodes and adds initializers for the outputs still in use; returns
/// those that belong to the enclosing graph instead (when `hoist_ok`).
fn apply(
    g: &mut Graph,
    cx: &GraphCx,
    folded: Vec<Folded>,
    hoist_ok: bool,
    defs: &HashMap<String, usize>,
) -> Vec<Tensor> {
    if folded.is_empty() {
        return Vec::new();
    }
    let doomed: HashSet<_> = folded.iter().map(|f| f.node).collect();
    let uses = Uses::of(g);
    let (mut new_inits, mut hoisted) = (Vec::new(), Vec::new());
    for f in &folded {
        for (name, v) in &f.outputs {
            let live = uses.is_output(name)
                || uses
                    .consumers(name)
                    .iter()
                    .any(|u| !doomed.contains(&u.node));
            let unique = defs.get(name) == Some(&1);
            match (live, f.hoist && hoist_ok && unique && !uses.is_output(name)) {
                (true, true) => hoisted.push(v.to_tensor(name)),
                (true, false) => new_inits.push(v.to_tensor(name)),
                _ => {}
            }
        }
    }
    let doomed: Vec<_> = doomed.into_iter().collect();
    g.remove_nodes(&doomed);
    for t in new_inits {
        scope::add_initializer(g, t, cx);
    }
    hoisted
}
