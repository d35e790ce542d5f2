//! Ops that lay channels out along an axis: Concat (groups end to end), Flatten and
//! Reshape to `[N, -1]` (a channel becomes a run of features), and Split and Slice: on
//! another axis they pass channels through; on the channel axis each output takes the
//! groups between its bounds, and their int64 size/bound initializers are rewritten when
//! those groups shrink.
//!
//! A bound inside one group (YOLOv8's C2f: `Split` of one Conv's output into halves) cuts
//! that group in two ([`Builder::cut`]): each side becomes its own group, pruned on its own,
//! and the producer's weight rows of each side map back through the side's offset.
//!
//! Invariants: sizes/bounds must be int64 initializers (or a Split's `split` attribute,
//! opset < 13, rewritten by `split_sizes::fix_split_attributes`); Slice bounds are used by this node
//! only; a Split sizes tensor shared by several Splits does not tie them: each Split whose
//! sizes change gets its own copy at apply time (`split_sizes`), so they prune independently;
//! a Split with no sizes splits equally, so its outputs' groups are tied to stay equal.
use super::groups::{Builder, Layout};
use whittle_ir::shape::Dim;
use whittle_ir::{DataType, Node};

/// An integer initializer to rewrite once the kept channels are known; `G` is a space id
/// during the analysis and a group id after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntFix<G> {
    /// Split sizes: entry i is the channel count of the groups going to output i.
    /// `split` names the Split node by its first output (node names may be empty).
    SplitSizes {
        tensor: String,
        split: String,
        outputs: Vec<Vec<G>>,
    },
    /// Slice start/end at index `pos`: start = channels of `before`, end = start + `inside`.
    SliceBounds {
        starts: String,
        ends: String,
        pos: usize,
        before: Vec<G>,
        inside: Vec<G>,
    },
}

impl<G: Copy> IntFix<G> {
    pub fn map<H>(&self, mut f: impl FnMut(G) -> H) -> IntFix<H> {
        let mut all = |v: &[G]| v.iter().map(|&g| f(g)).collect::<Vec<H>>();
        match self {
            IntFix::SplitSizes {
                tensor,
                split,
                outputs,
            } => IntFix::SplitSizes {
                tensor: tensor.clone(),
                split: split.clone(),
                outputs: outputs.iter().map(|o| all(o)).collect(),
            },
            IntFix::SliceBounds {
                starts,
                ends,
                pos,
                before,
                inside,
            } => IntFix::SliceBounds {
                starts: starts.clone(),
                ends: ends.clone(),
                pos: *pos,
                before: all(before),
                inside: all(inside),
            },
        }
    }
}

/// The values of an int64 initializer used by exactly one node input.
fn own_ints(b: &Builder, name: &str) -> Result<Vec<i64>, String> {
    let uses = b
        .model
        .graph
        .nodes()
        .flat_map(|(_, n)| n.inputs())
        .filter(|i| *i == name)
        .count();
    if uses != 1 {
        return Err(format!("{name:?} is shared with another use"));
    }
    ints(b, name)
}

/// The values of an int64 initializer.
fn ints(b: &Builder, name: &str) -> Result<Vec<i64>, String> {
    let t = b
        .model
        .graph
        .initializer(name)
        .ok_or(format!("{name:?} is not an initializer"))?;
    if t.dtype() != DataType::INT64 {
        return Err(format!("{name:?} is not int64"));
    }
    let bytes = t.le_bytes().map_err(|e| e.to_string())?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

fn norm_axis(axis: i64, rank: usize) -> i64 {
    if axis < 0 { axis + rank as i64 } else { axis }
}

/// Splits `l.segs` at channel boundaries `[start, end)`; `None` when a bound is inside a group.
fn segs_between(b: &Builder, l: &Layout, start: u64, end: u64) -> Option<(Vec<usize>, Vec<usize>)> {
    let (mut before, mut inside, mut at) = (Vec::new(), Vec::new(), 0u64);
    let mut bounds_ok = (start == 0, end == 0);
    for &s in &l.segs {
        let next = at + b.space_size(s);
        if next <= start {
            before.push(s);
        } else if at >= start && next <= end {
            inside.push(s);
        } else if at < end {
            return None;
        }
        at = next;
        bounds_ok.0 |= at == start;
        bounds_ok.1 |= at == end;
    }
    (bounds_ok.0 && bounds_ok.1).then_some((before, inside))
}

/// Cuts the spaces of `x`'s layout so that channel `at` falls between two spaces; returns
/// the layout after the cut (`None`: `x` carries no channels).
fn cut_at(b: &mut Builder, x: &str, at: u64) -> Option<Layout> {
    let l = b.layouts.get(x)?.clone();
    let mut start = 0u64;
    for &s in &l.segs {
        let end = start + b.space_size(s);
        if start < at && at < end {
            b.cut(s, at - start);
            return b.layouts.get(x).cloned();
        }
        start = end;
    }
    Some(l)
}

pub(super) fn split(b: &mut Builder, n: &Node, label: &str) -> Result<(), String> {
    let x = n.inputs().first().cloned().unwrap_or_default();
    let Some(l) = b.layouts.get(&x).cloned() else {
        return Ok(());
    };
    let axis = norm_axis(n.attr_int("axis").unwrap_or(0), l.rank);
    let outs: Vec<String> = n.outputs().to_vec();
    if axis != l.axis as i64 {
        for o in outs.iter().filter(|o| !o.is_empty()) {
            let same = b.dims(o).and_then(|d| d.get(l.axis)?.known());
            if same.is_none() || same != b.dims(&x).and_then(|d| d.get(l.axis)?.known()) {
                return Err("cannot prove Split keeps the channel axis".into());
            }
            b.layouts.insert(o.clone(), l.clone());
        }
        return Ok(());
    }
    if l.run != 1 {
        return Err("Split of flattened channels".into());
    }
    let total: u64 = l.segs.iter().map(|&s| b.space_size(s)).sum();
    let tensor = n.inputs().get(1).filter(|s| !s.is_empty()).cloned();
    let attr = n.attr_ints("split").map(<[i64]>::to_vec);
    let to_u64 = |v: &[i64]| -> Result<Vec<u64>, String> {
        v.iter()
            .map(|&v| u64::try_from(v).map_err(|_| "negative split size".to_string()))
            .collect()
    };
    let sizes: Vec<u64> = match (&tensor, &attr) {
        (Some(t), _) => to_u64(&ints(b, t)?)?,
        (None, Some(a)) => to_u64(a)?,
        (None, None) => {
            let parts = outs.len() as u64;
            if parts == 0 || !total.is_multiple_of(parts) {
                return Err(format!("equal Split of {total} channels in {parts}"));
            }
            vec![total / parts; outs.len()]
        }
    };
    if sizes.len() != outs.len() || sizes.iter().sum::<u64>() != total {
        return Err(format!(
            "Split sizes {sizes:?} do not cover {total} channels"
        ));
    }
    let mut at = 0u64;
    for &size in &sizes {
        at += size;
        cut_at(b, &x, at);
    }
    let l = b
        .layouts
        .get(&x)
        .cloned()
        .ok_or("Split input lost its channels")?;
    let mut outputs = Vec::new();
    let mut at = 0u64;
    for (o, &size) in outs.iter().zip(&sizes) {
        let (_, inside) =
            segs_between(b, &l, at, at + size).ok_or("Split bound inside one channel group")?;
        at += size;
        if !o.is_empty() {
            let layout = Layout {
                segs: inside.clone(),
                ..l.clone()
            };
            b.layouts.insert(o.clone(), layout);
        }
        outputs.push(inside);
    }
    match (tensor, attr) {
        (Some(tensor), _) => b.add_int_fix(IntFix::SplitSizes {
            tensor,
            split: outs[0].clone(),
            outputs,
        }),
        (None, Some(_)) => b.add_split_attr(&outs[0], outputs),
        // No sizes to rewrite: the parts stay equal only if they lose the same indices.
        (None, None) => tie_equal_parts(b, label, &outputs)?,
    }
    Ok(())
}

fn tie_equal_parts(b: &mut Builder, label: &str, outputs: &[Vec<usize>]) -> Result<(), String> {
    for part in &outputs[1..] {
        if part.len() != outputs[0].len() {
            return Err("equal Split whose parts hold different groups".into());
        }
        for (x, y) in outputs[0].iter().zip(part) {
            b.union(*x, *y, label);
        }
    }
    Ok(())
}

pub(super) fn slice(b: &mut Builder, n: &Node) -> Result<(), String> {
    let x = n.inputs().first().cloned().unwrap_or_default();
    let Some(l) = b.layouts.get(&x).cloned() else {
        return Ok(());
    };
    let input = |i: usize| n.inputs().get(i).filter(|s| !s.is_empty()).cloned();
    let o = n.outputs().first().cloned().unwrap_or_default();
    let (starts, ends) = (
        input(1).ok_or("Slice without starts")?,
        input(2).ok_or("Slice without ends")?,
    );
    let axes: Vec<i64> = match input(3) {
        Some(a) => b
            .model
            .graph
            .initializer(&a)
            .and_then(|t| t.to_f32_vec().ok())
            .ok_or("Slice axes are not constant")?
            .iter()
            .map(|&v| norm_axis(v as i64, l.rank))
            .collect(),
        None => (0..own_ints(b, &starts)?.len() as i64).collect(),
    };
    let Some(pos) = axes.iter().position(|&a| a == l.axis as i64) else {
        let same = b.dims(&o).and_then(|d| d.get(l.axis)?.known());
        if same.is_none() || same != b.dims(&x).and_then(|d| d.get(l.axis)?.known()) {
            return Err("cannot prove Slice keeps the channel axis".into());
        }
        b.layouts.insert(o, l);
        return Ok(());
    };
    if let Some(steps) = input(4) {
        let s = b
            .model
            .graph
            .initializer(&steps)
            .and_then(|t| t.to_f32_vec().ok());
        if s.and_then(|s| s.get(pos).copied()) != Some(1.0) {
            return Err("Slice of channels with a step other than 1".into());
        }
    }
    if l.run != 1 {
        return Err("Slice of flattened channels".into());
    }
    let total: u64 = l.segs.iter().map(|&s| b.space_size(s)).sum();
    let clamp = |v: i64| -> u64 {
        let v = if v < 0 { v + total as i64 } else { v };
        v.clamp(0, total as i64) as u64
    };
    let start = clamp(*own_ints(b, &starts)?.get(pos).ok_or("short starts")?);
    let end = clamp(*own_ints(b, &ends)?.get(pos).ok_or("short ends")?);
    if start >= end {
        return Err("empty Slice of channels".into());
    }
    cut_at(b, &x, start);
    cut_at(b, &x, end);
    let l = b
        .layouts
        .get(&x)
        .cloned()
        .ok_or("Slice input lost its channels")?;
    let (before, inside) =
        segs_between(b, &l, start, end).ok_or("Slice bound inside one channel group")?;
    b.layouts.insert(
        o,
        Layout {
            segs: inside.clone(),
            ..l
        },
    );
    b.add_int_fix(IntFix::SliceBounds {
        starts,
        ends,
        pos,
        before,
        inside,
    });
    Ok(())
}

pub(super) fn concat(b: &mut Builder, n: &Node) -> Result<(), String> {
    let o = n.outputs().first().cloned().unwrap_or_default();
    let inputs: Vec<&String> = n.inputs().iter().filter(|x| !x.is_empty()).collect();
    let tracked: Vec<Option<Layout>> = inputs.iter().map(|x| b.layouts.get(*x).cloned()).collect();
    let Some(first) = tracked.iter().flatten().next().cloned() else {
        return Ok(());
    };
    let rank = first.rank as i64;
    let axis = n.attr_int("axis").unwrap_or(0);
    let axis = if axis < 0 { axis + rank } else { axis };
    if axis != first.axis as i64 {
        return Err("Concat on an axis other than the channels".into());
    }
    let mut segs = Vec::new();
    for l in &tracked {
        match l {
            Some(l) if l.axis == first.axis && l.run == 1 && l.rank == first.rank => {
                segs.extend(l.segs.iter().copied())
            }
            _ => return Err("Concat of channels with untracked ones".into()),
        }
    }
    b.layouts.insert(o, Layout { segs, ..first });
    Ok(())
}

/// Flatten (axis 1) or Reshape to `[N, -1]`: channel c becomes features `c·S .. (c+1)·S`.
pub(super) fn flatten(b: &mut Builder, n: &Node) -> Result<(), String> {
    let x = n.inputs().first().cloned().unwrap_or_default();
    let Some(l) = b.layouts.get(&x).cloned() else {
        return Ok(());
    };
    let o = n.outputs().first().cloned().unwrap_or_default();
    let dims = b.dims(&x).ok_or("input of unknown shape")?.to_vec();
    if l.axis != 1 || b.dims(&o).map(<[Dim]>::len) != Some(2) {
        return Err(format!("{} that mixes channels", n.op_type()));
    }
    if n.op_type() == "Flatten" && n.attr_int("axis").unwrap_or(1) != 1 {
        return Err("Flatten on an axis other than 1".into());
    }
    if n.op_type() == "Reshape" {
        let shape = n.inputs().get(1).and_then(|s| b.model.graph.initializer(s));
        let v = shape.and_then(|t| t.to_f32_vec().ok()).unwrap_or_default();
        if v.len() != 2 || v[1] != -1.0 {
            return Err("Reshape that is not [N, -1]".into());
        }
    }
    let spatial = whittle_ir::shape::product(&dims[2..]).ok_or("unknown spatial size")?;
    b.layouts.insert(
        o,
        Layout {
            axis: 1,
            rank: 2,
            segs: l.segs,
            run: l.run * spatial,
        },
    );
    Ok(())
}
