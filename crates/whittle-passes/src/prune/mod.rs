//! Structured channel pruning: find the groups of channels that must go together
//! ([`groups::analyse`]), rank the channels of each group ([`select`]), and physically
//! shrink every coupled tensor ([`apply`]).
//!
//! Invariants:
//! - the analysis is data a user can read (`whittle prune --explain`): every group lists
//!   each coupled tensor and axis, and a group the analysis does not fully understand is
//!   never touched — it is reported with the reasons;
//! - removing channel k of a group removes index k (mapped through Concat offsets and
//!   Flatten runs) from every member, so the pruned graph computes exactly what the
//!   original computes with those channels' outputs forced to zero upstream of the
//!   consumers (exact when those outputs already were zero);
//! - integers that follow channel counts (depthwise `group`, Split sizes and `split`
//!   attributes, Slice bounds) are rewritten with them and listed by `--explain`; a Split
//!   sizes tensor shared by several Splits never ties them (`split_sizes`);
//! - weights must be initializers: callers with weights in `Constant` nodes run the
//!   `constants` clean-up first (the CLI does);
//! - the pass needs no runtime: data-driven scores come in as [`PruneOptions::scores`].
mod apply;
mod checks;
mod explain;
pub mod groups;
mod ops;
pub mod reconstruct;
pub mod select;
pub mod slicing;
mod split_sizes;
mod transpose;

pub use explain::{explain, rewrites};
pub use groups::{Analysis, ChannelGroup, Member, Role, analyse};
pub use select::Criterion;
pub use slicing::IntFix;

use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::BTreeMap;
use whittle_ir::Model;
use whittle_ir::shape::{ShapeOverrides, infer_shapes};

/// What to prune and how.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// Fraction of each group's channels to remove (with `global`: of all prunable
    /// channels, ranked together after normalising each group's scores by their mean).
    pub ratio: f64,
    pub global: bool,
    pub criterion: Criterion,
    /// Keep channel counts multiples of this (0 or 1: no rounding).
    pub round_to: u64,
    pub min_channels: u64,
    /// Groups with any member node of these names are left alone.
    pub protect: Vec<String>,
    /// Per-channel scores for [`Criterion::External`], keyed by each group's
    /// [`ChannelGroup::activation_value`].
    pub scores: BTreeMap<String, Vec<f32>>,
}

/// What happened to one group.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupOutcome {
    pub id: usize,
    pub producers: Vec<String>,
    pub channels_before: u64,
    pub channels_after: u64,
    pub removed: Vec<usize>,
    /// Lowest and highest importance in the group.
    pub importance: Option<(f32, f32)>,
    /// Why it was left alone (absent when pruned or when the ratio removed nothing).
    pub skipped: Option<String>,
}

/// The pass's detailed report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PruneReport {
    pub groups: Vec<GroupOutcome>,
    pub tensor_changes: Vec<String>,
}

/// The pruning pass. After [`Pass::run`], [`Prune::last_report`] holds the details.
pub struct Prune {
    pub options: PruneOptions,
    report: std::cell::RefCell<PruneReport>,
}

impl Prune {
    pub fn new(options: PruneOptions) -> Prune {
        Prune {
            options,
            report: Default::default(),
        }
    }

    pub fn last_report(&self) -> PruneReport {
        self.report.borrow().clone()
    }
}

/// The dependency groups of a model (shapes inferred with no overrides).
pub fn analyse_model(model: &Model) -> Analysis {
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    analyse(model, &shapes)
}

/// Chooses the kept channels of every group and says what happened to each.
pub fn plan(
    model: &Model,
    analysis: &Analysis,
    o: &PruneOptions,
) -> (apply::Keep, Vec<GroupOutcome>) {
    let mut outcomes = Vec::new();
    let mut scored: Vec<(usize, Vec<f32>)> = Vec::new();
    for g in &analysis.groups {
        let mut out = GroupOutcome {
            id: g.id,
            producers: g.producers.clone(),
            channels_before: g.channels,
            channels_after: g.channels,
            removed: Vec::new(),
            importance: None,
            skipped: None,
        };
        let protected = g
            .members
            .iter()
            .map(|m| &m.node)
            .chain(&g.producers)
            .find(|n| o.protect.contains(n));
        if !g.blockers.is_empty() {
            out.skipped = Some(g.blockers.join("; "));
        } else if let Some(n) = protected {
            out.skipped = Some(format!("protected ({n})"));
        } else {
            match select::importance(model, g, o.criterion, &o.scores) {
                Err(e) => out.skipped = Some(format!("no importance: {e}")),
                Ok(scores) => {
                    let lo = scores.iter().copied().fold(f32::INFINITY, f32::min);
                    let hi = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    out.importance = Some((lo, hi));
                    scored.push((outcomes.len(), scores));
                }
            }
        }
        outcomes.push(out);
    }
    let removals = if o.global {
        select::global_removals(&scored, o.ratio)
    } else {
        scored
            .iter()
            .map(|(_, s)| (s.len() as f64 * o.ratio.clamp(0.0, 1.0)).floor() as u64)
            .collect()
    };
    let mut keep = apply::Keep::new();
    for ((at, scores), remove) in scored.iter().zip(removals) {
        let out = &mut outcomes[*at];
        let c = out.channels_before;
        let k = select::kept_count(
            c,
            remove as f64 / c.max(1) as f64,
            o.min_channels,
            o.round_to,
        );
        let kept = select::choose(scores, k as usize);
        out.removed = (0..scores.len()).filter(|i| !kept.contains(i)).collect();
        out.channels_after = kept.len() as u64;
        if !out.removed.is_empty() {
            keep.insert(out.id, kept);
        }
    }
    (keep, outcomes)
}

impl Pass for Prune {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn run(&self, model: &mut Model, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let fail = |message: String| PassError::Failed {
            pass: "prune".into(),
            message,
        };
        let analysis = analyse_model(model);
        let (keep, outcomes) = plan(model, &analysis, &self.options);
        let tensor_changes = apply::apply(model, &analysis, &keep).map_err(fail)?;
        let mut report = PassReport::default();
        for o in &outcomes {
            let who = o.producers.join(", ");
            match &o.skipped {
                Some(why) => report
                    .skipped
                    .push(format!("group {} ({who}): {why}", o.id)),
                None if o.removed.is_empty() => {}
                None => report.changes.push(format!(
                    "group {} ({who}): {} -> {} channels, removed {:?}",
                    o.id, o.channels_before, o.channels_after, o.removed
                )),
            }
        }
        *self.report.borrow_mut() = PruneReport {
            groups: outcomes,
            tensor_changes,
        };
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
