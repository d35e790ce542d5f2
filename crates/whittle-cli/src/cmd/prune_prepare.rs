//! Exact clean-up `whittle prune` runs before the channel analysis when a model keeps its
//! weights in `Constant` nodes (Paddle exports such as PP-OCR, spox): the analysis only
//! shrinks initializers, so without this such a model has no prunable group at all.
//!
//! Invariants: it runs only when the main graph has a default-domain `Constant` node, and
//! only passes that compute exactly what the model computes — `constants` (Constant →
//! initializer), `identity` (no-op nodes), `fold` (constant subexpressions such as Paddle's
//! `Reshape(bias, shape)`, evaluated in the tensor's own type, size-limited) and `dce`
//! (what no node reads any more). What it did is reported, never silent.
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use whittle_ir::Model;
use whittle_passes::PassContext;
use whittle_passes::cleanup::{CleanupOptions, run_cleanup};

/// The clean-up passes run, in order.
pub const PASSES: &[&str] = &["constants", "identity", "fold", "dce"];

/// What the preparation did: changes per pass, in pass order.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Prepared {
    pub passes: Vec<PassCount>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PassCount {
    pub pass: String,
    pub changes: usize,
}

fn has_constant_nodes(model: &Model) -> bool {
    model
        .graph
        .nodes()
        .any(|(_, n)| n.op_type() == "Constant" && n.domain().is_empty())
}

/// Runs the exact clean-up on `model` when it keeps tensors in Constant nodes; `None`
/// (model untouched) otherwise.
pub fn prepare(model: &mut Model) -> Result<Option<Prepared>> {
    if !has_constant_nodes(model) {
        return Ok(None);
    }
    let opts = CleanupOptions {
        passes: PASSES.iter().map(|p| p.to_string()).collect(),
        ..CleanupOptions::default()
    };
    let report = run_cleanup(model, &opts, &mut PassContext::default())
        .context("the clean-up before pruning (Constant nodes to initializers) failed")?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in &report.steps {
        *counts.entry(step.report.pass.as_str()).or_default() += step.report.changes.len();
    }
    let passes = PASSES
        .iter()
        .map(|&p| PassCount {
            pass: p.to_string(),
            changes: counts.get(p).copied().unwrap_or(0),
        })
        .collect();
    Ok(Some(Prepared { passes }))
}

impl Prepared {
    /// One line for the table output and for `--explain` (on stderr).
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .passes
            .iter()
            .map(|p| format!("{} {}", p.pass, p.changes))
            .collect();
        format!(
            "weights are in Constant nodes: ran the exact clean-up first (changes: {})",
            parts.join(", ")
        )
    }
}
