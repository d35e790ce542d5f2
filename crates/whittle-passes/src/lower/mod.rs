//! Lowering for verification: rewrites that keep a model's meaning exactly but replace
//! what tract cannot run by what it can.
//!
//! Used only on the copy of a model handed to a verification backend, never on a model
//! the user gets back. Each rewrite is exact: folding `DequantizeLinear` of constants
//! computes the same floats the runtime would; inlining an `If` with a constant condition
//! runs the same nodes.
mod dequantize;
mod if_inline;

use crate::{Pass, PassContext, PassError, PassReport};
use whittle_ir::{Graph, Model};

/// Folds `DequantizeLinear` of constant weights and inlines `If`s with constant conditions,
/// in the main graph and every subgraph, until nothing changes.
pub struct LowerForVerification;

fn lower_graph(g: &mut Graph, report: &mut PassReport) -> Result<(), PassError> {
    // Inlining can expose more constant conditions; bound the rounds by the If count.
    for _ in 0..=g.node_count() {
        let before = report.changes.len();
        if_inline::inline_graph(g, report);
        if report.changes.len() == before {
            break;
        }
    }
    dequantize::fold_graph(g, report)?;
    drop_unused_initializers(g, report);
    for n in g.nodes_mut() {
        for sub in n.subgraphs_mut() {
            lower_graph(sub, report)?;
        }
    }
    Ok(())
}

/// Names read by the nodes of `g` and of its subgraphs (outer-scope reads included).
fn used_names(g: &Graph, out: &mut std::collections::HashSet<String>) {
    for (_, n) in g.nodes() {
        out.extend(n.inputs().iter().cloned());
        for s in n.subgraphs() {
            used_names(s, out);
            out.extend(s.output_names().map(String::from));
        }
    }
    out.extend(g.output_names().map(String::from));
}

/// Folded quantized weights are left unread; tract refuses some of their dtypes (int4)
/// even unread, so they go.
fn drop_unused_initializers(g: &mut Graph, report: &mut PassReport) {
    let mut used = std::collections::HashSet::new();
    used_names(g, &mut used);
    let before = g.initializers.len();
    g.initializers.retain(|t| used.contains(t.name()));
    let dropped = before - g.initializers.len();
    if dropped > 0 {
        report
            .changes
            .push(format!("dropped {dropped} initializers no node reads"));
    }
}

impl Pass for LowerForVerification {
    fn name(&self) -> &'static str {
        "lower-for-verification"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        lower_graph(&mut model.graph, &mut report)?;
        Ok(report)
    }
}
