//! Opset conversion of the default (`ai.onnx`) domain, up or down, between opsets 7 and 21
//! (sources from opset 6).
//!
//! Each node walks its operator's schema history one version at a time
//! (`history.rs`, generated from the onnx schemas). Additive steps need nothing upwards and a
//! check downwards (`Edit::generic_down`); every other step has a hand-written
//! rule (`rules/`) or the node is refused.
//!
//! Invariants:
//! - **All or nothing.** The conversion runs on a copy; if any node is refused the model is
//!   left exactly as it was and the error names the first refused node, its op and the
//!   versions (and how many more were refused).
//! - **Unknown is untouched.** Nodes of other domains pass through as they are; the report
//!   counts them. An unknown op in the default domain is refused, not guessed at.
//! - **Subgraphs too.** If/Loop/Scan bodies are converted with the same rules; model-local
//!   function bodies and training graphs too, as long as no rule needs new nodes or
//!   constants there.
//! - After conversion the ai.onnx opset import is the target and the IR version is at
//!   least [`min_ir_version`] of the target (it is never lowered).
//! - New values get fresh names derived from the node they belong to; new constants are
//!   initializers (or `Constant` nodes below IR 4). Constants and initializers a rule stopped
//!   reading are removed when nothing else reads them.
//! - Deterministic: the same model and target give the same bytes.
//!
//! Limits: element types and ranks are inferred best effort (`scope.rs`); a downgrade's
//! check that a node uses no newly added element type only sees the types it can tell.
//! Below opset 17 LayerNormalization is expanded into its function body (equal within
//! float rounding, not bit for bit); every other rule is exact.
mod edit;
mod graph;
mod history;
mod rules;
mod scope;
mod table;
#[cfg(test)]
mod tests;
mod values;

pub use table::min_ir_version;

use crate::{Pass, PassContext, PassError, PassReport};
use whittle_ir::Model;
use whittle_ir::proto::OperatorSetIdProto;

/// The lowest opset a model can be converted to.
pub const MIN_TARGET: i64 = 7;
/// The highest opset a model can be converted to (and from).
pub const MAX_TARGET: i64 = history::MAX_OPSET;
/// The lowest opset a model can be converted from.
pub const MIN_SOURCE: i64 = 6;

const PASS: &str = "convert-opset";

/// The pass form of [`convert_opset`], for a [`crate::PassManager`].
pub struct ConvertOpset {
    pub target: i64,
}

impl Pass for ConvertOpset {
    fn name(&self) -> &'static str {
        PASS
    }
    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        convert_opset(model, self.target)
    }
}

fn failed(message: String) -> PassError {
    PassError::Failed {
        pass: PASS.into(),
        message,
    }
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// Converts the model's ai.onnx opset to `target`. On error the model is unchanged.
pub fn convert_opset(model: &mut Model, target: i64) -> Result<PassReport, PassError> {
    if !(MIN_TARGET..=MAX_TARGET).contains(&target) {
        return Err(failed(format!(
            "target opset {target} is outside the range whittle converts to ({MIN_TARGET} to {MAX_TARGET})"
        )));
    }
    let has_default_nodes = {
        let mut any = false;
        model
            .graph
            .walk(&mut |g, _| any |= g.nodes().any(|(_, n)| n.domain().is_empty()));
        any
    };
    let source = match model.opset("") {
        Some(v) => v,
        None if has_default_nodes => {
            return Err(failed(
                "the model has ai.onnx nodes but imports no ai.onnx opset".into(),
            ));
        }
        None => target,
    };
    if !(MIN_SOURCE..=MAX_TARGET).contains(&source) {
        return Err(failed(format!(
            "the model's ai.onnx opset {source} is outside the range whittle converts from ({MIN_SOURCE} to {MAX_TARGET})"
        )));
    }
    if model.opset("") == Some(target) {
        let note = format!("ai.onnx opset is already {target}: nothing to convert");
        return Ok(PassReport {
            pass: PASS.into(),
            changes: vec![note],
            ..Default::default()
        });
    }
    let ir_before = model.proto.ir_version.unwrap_or(0);
    let ir_after = ir_before.max(min_ir_version(target));
    let mut work = model.clone();
    let mut cx = graph::Cx::new(&work, source, target, ir_after >= 4);
    graph::convert_main(&mut work, &mut cx);
    if let Some(first) = cx.refusals.first() {
        let more = match cx.refusals.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more node{})", if n == 1 { "" } else { "s" }),
        };
        return Err(failed(format!("{first}{more}; nothing was converted")));
    }
    let mut report = PassReport {
        pass: PASS.into(),
        ..Default::default()
    };
    report.changes = std::mem::take(&mut cx.changes);
    report.skipped = cx.skipped();
    if cx.bumped > 0 {
        let (s, they) = if cx.bumped == 1 {
            ("", "it is")
        } else {
            ("s", "they are")
        };
        report.changes.push(format!(
            "{} other ai.onnx node{s} kept as {they} (no signature change between the versions)",
            cx.bumped
        ));
    }
    let mut imported = false;
    for o in work
        .proto
        .opset_import
        .iter_mut()
        .filter(|o| is_default_domain(o.domain()))
    {
        o.version = Some(target);
        imported = true;
    }
    if !imported {
        work.proto.opset_import.push(OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(target),
        });
    }
    report
        .changes
        .push(format!("ai.onnx opset {source} -> {target}"));
    if ir_after != ir_before {
        work.proto.ir_version = Some(ir_after);
        report.changes.push(format!(
            "IR version {ir_before} -> {ir_after} (opset {target} needs it)"
        ));
    }
    *model = work;
    Ok(report)
}
