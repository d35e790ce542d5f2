//! Channel importance and the choice of channels to remove in each group.
//!
//! Invariants: a group keeps at least `max(min_channels, 1)` channels, a multiple of
//! `round_to` when that fits, and only blocked-free, unprotected groups lose any; ties in
//! importance go to the lower index (deterministic).
use super::groups::{ChannelGroup, Role};
use std::collections::BTreeMap;
use whittle_ir::Model;

/// How channels are ranked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// L1 norm of the producer weight rows (each producer normalised by its mean).
    L1,
    /// L2 norm of the producer weight rows (each producer normalised by its mean).
    #[default]
    L2,
    /// |gamma| of the group's BatchNormalizations (falls back to L2 without one).
    BnScale,
    /// Scores handed in by the caller, keyed by the group's
    /// [`ChannelGroup::activation_value`] (e.g. mean |activation| on calibration data).
    External,
}

/// Per-channel scores of one group, or why none could be computed.
pub fn importance(
    model: &Model,
    group: &ChannelGroup,
    criterion: Criterion,
    external: &BTreeMap<String, Vec<f32>>,
) -> Result<Vec<f32>, String> {
    let c = group.channels as usize;
    match criterion {
        Criterion::External => {
            let value = group
                .activation_value
                .as_ref()
                .ok_or("no value carries the group's channels alone")?;
            let s = external
                .get(value)
                .ok_or(format!("no scores given for {value:?}"))?;
            if s.len() != c {
                return Err(format!("{} scores given for {c} channels", s.len()));
            }
            Ok(s.clone())
        }
        Criterion::BnScale => {
            let mut score = vec![0.0f32; c];
            let mut found = false;
            for m in group.members.iter().filter(|m| m.role == Role::BnScale) {
                let v = slice_norms(model, m, 1, c)?;
                add(&mut score, &v, false);
                found = true;
            }
            if found {
                Ok(score)
            } else {
                importance(model, group, Criterion::L2, external)
            }
        }
        Criterion::L1 | Criterion::L2 => {
            let p = if criterion == Criterion::L1 { 1 } else { 2 };
            let mut score = vec![0.0f32; c];
            for m in group.members.iter().filter(|m| m.role == Role::Producer) {
                let v = slice_norms(model, m, p, c)?;
                add(&mut score, &v, true);
            }
            Ok(score)
        }
    }
}

fn add(score: &mut [f32], v: &[f32], normalise: bool) {
    let mean = v.iter().sum::<f32>() / v.len().max(1) as f32;
    let k = if normalise && mean > 0.0 {
        1.0 / mean
    } else {
        1.0
    };
    for (s, x) in score.iter_mut().zip(v) {
        *s += x * k;
    }
}

/// The L`p` norm of each channel's slice of a member tensor (p = 1 or 2).
fn slice_norms(
    model: &Model,
    m: &super::groups::Member,
    p: u32,
    c: usize,
) -> Result<Vec<f32>, String> {
    let t = model
        .graph
        .initializer(&m.tensor)
        .ok_or(format!("{:?} is not an initializer", m.tensor))?;
    let data = t.to_f32_vec().map_err(|e| e.to_string())?;
    let dims: Vec<usize> = t.dims().iter().map(|&d| d.max(0) as usize).collect();
    let axis_len = *dims.get(m.axis).ok_or("axis out of range")?;
    let inner: usize = dims[m.axis + 1..].iter().product();
    let outer: usize = dims[..m.axis].iter().product();
    let channels = axis_len / m.run.max(1) as usize;
    let mut acc = vec![0.0f32; channels];
    for o in 0..outer {
        for a in 0..axis_len {
            let ch = a / m.run.max(1) as usize;
            let start = (o * axis_len + a) * inner;
            let slice = data
                .get(start..start + inner)
                .ok_or("tensor data too short")?;
            acc[ch] += slice
                .iter()
                .map(|x| if p == 1 { x.abs() } else { x * x })
                .sum::<f32>();
        }
    }
    if p == 2 {
        acc.iter_mut().for_each(|x| *x = x.sqrt());
    }
    let off = m.offset as usize;
    acc.get(off..off + c)
        .map(<[f32]>::to_vec)
        .ok_or(format!("{:?} has too few channels", m.tensor))
}

/// How many channels a group of `c` keeps when a fraction `ratio` is removed.
pub fn kept_count(c: u64, ratio: f64, min_channels: u64, round_to: u64) -> u64 {
    let remove = (c as f64 * ratio.clamp(0.0, 1.0)).floor() as u64;
    let mut keep = c - remove.min(c);
    if round_to > 1 {
        keep = keep.div_ceil(round_to) * round_to;
    }
    keep.max(min_channels).clamp(1, c)
}

/// How many channels each scored group loses when the lowest `ratio` of all channels go,
/// ranked by score divided by the group's mean score (ties: earlier group, lower index).
pub fn global_removals(scored: &[(usize, Vec<f32>)], ratio: f64) -> Vec<u64> {
    let mut pool: Vec<(f32, usize, usize)> = Vec::new();
    for (g, (_, s)) in scored.iter().enumerate() {
        let mean = s.iter().sum::<f32>() / s.len().max(1) as f32;
        let k = if mean > 0.0 { 1.0 / mean } else { 1.0 };
        pool.extend(s.iter().enumerate().map(|(i, x)| (x * k, g, i)));
    }
    pool.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let n = (pool.len() as f64 * ratio.clamp(0.0, 1.0)).floor() as usize;
    let mut removals = vec![0u64; scored.len()];
    for &(_, g, _) in &pool[..n] {
        removals[g] += 1;
    }
    removals
}

/// The indices kept: the `keep` highest scores, in ascending index order.
pub fn choose(scores: &[f32], keep: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let drop = scores.len().saturating_sub(keep);
    let mut kept: Vec<usize> = order[drop..].to_vec();
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_counts_round_and_floor() {
        assert_eq!(kept_count(16, 0.25, 0, 1), 12);
        assert_eq!(kept_count(16, 0.3, 0, 8), 16);
        assert_eq!(kept_count(16, 0.5, 0, 8), 8);
        assert_eq!(kept_count(16, 1.0, 0, 1), 1);
        assert_eq!(kept_count(16, 0.9, 4, 1), 4);
    }

    #[test]
    fn global_ranking_normalises_each_group() {
        // Group 1's scores are 100x larger but its first channel is relatively the weakest.
        let scored = vec![
            (0, vec![1.0, 1.0, 1.0, 1.0]),
            (1, vec![10.0, 100.0, 150.0, 140.0]),
        ];
        assert_eq!(global_removals(&scored, 0.25), vec![1, 1]);
        assert_eq!(global_removals(&scored, 0.125), vec![0, 1]);
    }

    #[test]
    fn lowest_scores_go_first_ties_by_index() {
        assert_eq!(choose(&[3.0, 0.1, 2.0, 0.1], 2), vec![0, 2]);
        assert_eq!(choose(&[1.0, 1.0, 1.0], 2), vec![1, 2]);
    }
}
