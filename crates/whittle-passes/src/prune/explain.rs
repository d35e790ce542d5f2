//! `whittle prune --explain`: the analysis as text, one block per group — its coupled
//! tensors and axes, its blockers, and every attribute or integer tensor that is rewritten
//! when the group shrinks (depthwise `group`, Split sizes tensors and `split` attributes,
//! Slice bounds).
//!
//! Invariant: this only reads the [`Analysis`]; what it lists is exactly what
//! `apply` would touch for the group.
use super::groups::{Analysis, ChannelGroup, Role};
use super::slicing::IntFix;
use std::collections::BTreeMap;

/// The groups as text, one block per group.
pub fn explain(analysis: &Analysis) -> String {
    if analysis.groups.is_empty() {
        return "no channel groups: no Conv, Gemm or MatMul has its weight as an initializer\n"
            .into();
    }
    let mut s = String::new();
    for g in &analysis.groups {
        let state = if g.blockers.is_empty() {
            "prunable"
        } else {
            "unprunable"
        };
        s += &format!(
            "group {}: {} channels, {state}, from {}\n",
            g.id,
            g.channels,
            g.producers.join(", ")
        );
        for b in &g.blockers {
            s += &format!("  blocked: {b}\n");
        }
        members(g, &mut s);
        for line in rewrites(analysis, g.id) {
            s += &format!("  {line}\n");
        }
    }
    s
}

fn members(g: &ChannelGroup, s: &mut String) {
    for m in &g.members {
        let role = match m.role {
            Role::Producer => "producer",
            Role::Bias => "bias",
            Role::BnScale => "bn-scale",
            Role::Param => "param",
            Role::Depthwise => "depthwise",
            Role::Consumer => "consumer",
        };
        *s += &format!("  {} axis {} {role} ({})", m.tensor, m.axis, m.node);
        if m.offset != 0 {
            *s += &format!(" offset {}", m.offset);
        }
        if m.run != 1 {
            *s += &format!(" x{} features", m.run);
        }
        *s += "\n";
    }
}

/// The outputs (by index) of a Split whose groups include `id`, as `output i, j`.
fn outputs_of(outputs: &[Vec<usize>], id: usize) -> String {
    let at: Vec<String> = (0..outputs.len())
        .filter(|&i| outputs[i].contains(&id))
        .map(|i| i.to_string())
        .collect();
    format!("output {}", at.join(", "))
}

/// Attributes and integer tensors that follow group `id`'s channel count (one line each,
/// as `--explain` prints them).
pub fn rewrites(analysis: &Analysis, id: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (node, gs) in &analysis.depthwise {
        if gs.contains(&id) {
            lines.push(format!("{node}: group attribute follows the channel count"));
        }
    }
    let mut readers: BTreeMap<&str, usize> = BTreeMap::new();
    for fix in &analysis.int_fixes {
        if let IntFix::SplitSizes { tensor, .. } = fix {
            *readers.entry(tensor.as_str()).or_default() += 1;
        }
    }
    for fix in &analysis.int_fixes {
        match fix {
            IntFix::SplitSizes {
                tensor,
                split,
                outputs,
            } if outputs.concat().contains(&id) => {
                let mut line = format!(
                    "{tensor}: Split sizes follow the channel count (Split -> {split}, {})",
                    outputs_of(outputs, id)
                );
                let n = readers.get(tensor.as_str()).copied().unwrap_or(1);
                if n > 1 {
                    line += &format!(
                        "; shared by {n} Splits: copied for this one when its sizes change"
                    );
                }
                lines.push(line);
            }
            IntFix::SliceBounds {
                starts,
                ends,
                before,
                inside,
                ..
            } if before.contains(&id) || inside.contains(&id) => {
                let place = if inside.contains(&id) {
                    "inside"
                } else {
                    "before"
                };
                lines.push(format!(
                    "{starts}, {ends}: Slice bounds follow the channel count (channels {place} the Slice)"
                ));
            }
            _ => {}
        }
    }
    for (first, outputs) in &analysis.split_attrs {
        if outputs.concat().contains(&id) {
            lines.push(format!(
                "Split -> {first}: split attribute follows the channel count ({})",
                outputs_of(outputs, id)
            ));
        }
    }
    lines
}
