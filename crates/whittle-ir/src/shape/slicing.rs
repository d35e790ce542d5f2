//! Ops that select or resize along axes: Gather, GatherElements, GatherND, Slice (attributes before
//! opset 10, inputs from 10), Split (attribute / input / `num_outputs`), Pad, Resize and
//! Upsample. Sizes come from constant inputs only; a non-constant one makes the affected
//! dims unknown.
use super::cx::{Cx, Inferred};
use super::dim::{Dim, ValueShape, ceil_div, norm_axis};
use super::values::{self, Range, small_dims};

/// The rules of this module; `None` for other ops.
pub fn infer(cx: &Cx) -> Option<Inferred> {
    Some(match cx.node.op_type() {
        "Gather" => gather(cx),
        "GatherElements" => Inferred::one(ValueShape {
            dtype: cx.dtype(0),
            dims: cx.dims(1).map(<[Dim]>::to_vec),
        }),
        "GatherND" => gather_nd(cx),
        "Slice" => slice(cx),
        "Split" => split(cx),
        "Pad" => pad(cx),
        "Resize" | "Upsample" => resize(cx),
        _ => return None,
    })
}

fn gather(cx: &Cx) -> Inferred {
    let axis = cx.attr_int("axis", 0);
    let dims = match (cx.dims(0), cx.dims(1)) {
        (Some(x), Some(q)) => norm_axis(axis, x.len()).map(|a| {
            let mut d = x[..a].to_vec();
            d.extend_from_slice(q);
            d.extend_from_slice(&x[a + 1..]);
            d
        }),
        _ => None,
    };
    let value = match (cx.values(0), cx.ints(1), cx.dims(0)) {
        (Some(data), Some(idx), Some(x)) if x.len() == 1 => idx
            .iter()
            .map(|&i| {
                let n = i64::try_from(data.len()).ok()?;
                let i = usize::try_from(if i < 0 { i + n } else { i }).ok()?;
                data.get(i).cloned()
            })
            .collect(),
        _ => None,
    };
    Inferred::one(cx.like0(dims)).with_value(value)
}

/// GatherND: `indices[..q-1] ++ data[batch_dims + k..]`, `k` the last dim of indices.
fn gather_nd(cx: &Cx) -> Inferred {
    let b = usize::try_from(cx.attr_int("batch_dims", 0)).ok();
    let dims = match (cx.dims(0), cx.dims(1), b) {
        (Some(data), Some(idx), Some(b)) => idx.last().and_then(Dim::known).and_then(|k| {
            let from = b.checked_add(usize::try_from(k).ok()?)?;
            let mut d = idx[..idx.len() - 1].to_vec();
            d.extend_from_slice(data.get(from..)?);
            Some(d)
        }),
        _ => None,
    };
    Inferred::one(cx.like0(dims))
}

/// Elements a slice `start:end:step` keeps of an axis of length `n`, as indices.
fn slice_indices(n: i64, start: i64, end: i64, step: i64) -> Option<(i64, i64)> {
    let adj = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    if n <= 0 {
        return (step != 0).then_some((0, 0));
    }
    if step > 0 {
        let s = adj(start).clamp(0, n);
        let e = adj(end).clamp(0, n);
        Some((s, if e > s { ceil_div(e - s, step) } else { 0 }))
    } else if step < 0 {
        let s = adj(start).clamp(0, n - 1);
        let e = adj(end).clamp(-1, n - 1);
        Some((
            s,
            if s > e {
                ceil_div(s - e, step.checked_neg()?)
            } else {
                0
            },
        ))
    } else {
        None
    }
}

/// Slice parameters: `(starts, ends, axes, steps)`; `None` when any is not constant.
type SliceParams = (Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>);

fn slice_params(cx: &Cx) -> Option<SliceParams> {
    if cx.opset < 10 {
        return Some((
            cx.attr_ints("starts")?,
            cx.attr_ints("ends")?,
            cx.attr_ints("axes"),
            None,
        ));
    }
    let optional = |i: usize| {
        if cx.has_input(i) {
            cx.ints(i).map(Some)
        } else {
            Some(None)
        }
    };
    Some((cx.ints(1)?, cx.ints(2)?, optional(3)?, optional(4)?))
}

fn slice(cx: &Cx) -> Inferred {
    let Some(x) = cx.dims(0) else {
        return Inferred::one(cx.like0(None));
    };
    let Some((starts, ends, axes, steps)) = slice_params(cx) else {
        return Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
    }
    let mut dims = x.to_vec();
    let mut ranges: Vec<Option<Range>> = vec![None; x.len()];
    for j in 0..starts.len() {
        let Some(a) = norm_axis(axes[j], x.len()) else {
            return Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
        };
        let (start, end, step) = (starts[j], ends[j], steps[j]);
        let picked = x[a]
            .known()
            .and_then(|n| i64::try_from(n).ok())
            .and_then(|n| slice_indices(n, start, end, step));
        ranges[a] = picked.map(|(start, len)| Range { start, len, step });
        dims[a] = match &x[a] {
            Dim::Known(_) => picked.map_or(Dim::Unknown, |(_, len)| Dim::from_i64(len)),
            // The whole axis: start 0, step 1, an end at or past any real size.
            d @ Dim::Symbolic(_) if start == 0 && step == 1 && end >= i64::from(i32::MAX) => {
                d.clone()
            }
            _ => Dim::Unknown,
        };
    }
    let value = match (cx.values(0), small_dims(x)) {
        (Some(v), Some(sizes)) => values::slice(v, &sizes, &ranges),
        _ => None,
    };
    Inferred::one(cx.like0(Some(dims))).with_value(value)
}

fn split(cx: &Cx) -> Inferred {
    let outs = cx.node.outputs().len();
    let Some(x) = cx.dims(0) else {
        return Inferred::many(vec![cx.like0(None); outs]);
    };
    let Some(axis) = norm_axis(cx.attr_int("axis", 0), x.len()) else {
        return Inferred::many(vec![cx.like0(None); outs]);
    };
    let given = cx.has_attr_or_input("split", 1, 13);
    let sizes: Vec<Dim> = match cx.ints_attr_or_input("split", 1, 13) {
        Some(s) if s.len() == outs => s.into_iter().map(Dim::from_i64).collect(),
        None if !given => equal_split(&x[axis], outs, cx.node.attr_int("num_outputs").is_some()),
        _ => vec![Dim::Unknown; outs],
    };
    let shapes = sizes
        .into_iter()
        .map(|s| {
            let mut d = x.to_vec();
            d[axis] = s;
            cx.like0(Some(d))
        })
        .collect();
    Inferred::many(shapes)
}

/// Sizes of an even split into `n` parts; with `num_outputs` (opset 18) an uneven length
/// gives `ceil(len / n)` to all but the last part.
fn equal_split(d: &Dim, n: usize, num_outputs: bool) -> Vec<Dim> {
    let (Some(len), Ok(k)) = (d.known(), u64::try_from(n)) else {
        return if n == 1 {
            vec![d.clone()]
        } else {
            vec![Dim::Unknown; n]
        };
    };
    if k == 0 {
        return Vec::new();
    }
    if len % k == 0 {
        return vec![Dim::Known(len / k); n];
    }
    if !num_outputs {
        return vec![Dim::Unknown; n];
    }
    let chunk = len.div_ceil(k);
    let mut v = vec![Dim::Known(chunk); n];
    v[n - 1] = chunk
        .checked_mul(k - 1)
        .and_then(|used| len.checked_sub(used))
        .map_or(Dim::Unknown, Dim::Known);
    v
}

fn pad(cx: &Cx) -> Inferred {
    let Some(x) = cx.dims(0) else {
        return Inferred::one(cx.like0(None));
    };
    let pads = if cx.opset < 11 {
        cx.attr_ints("pads").or_else(|| cx.attr_ints("paddings"))
    } else {
        cx.ints(1)
    };
    let axes: Option<Vec<usize>> = match (cx.opset >= 18 && cx.has_input(3), cx.ints(3)) {
        (false, _) => Some((0..x.len()).collect()),
        (true, Some(a)) => a.iter().map(|&a| norm_axis(a, x.len())).collect(),
        (true, None) => None,
    };
    let (Some(pads), Some(axes)) = (pads, axes) else {
        return Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
    };
    if pads.len() != 2 * axes.len() {
        return Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
    }
    let mut dims = x.to_vec();
    for (j, &a) in axes.iter().enumerate() {
        let grow = pads[j].checked_add(pads[j + axes.len()]);
        dims[a] = match (&x[a], grow) {
            (d, Some(0)) => d.clone(),
            (Dim::Known(n), Some(g)) => i64::try_from(*n)
                .ok()
                .and_then(|n| n.checked_add(g))
                .map_or(Dim::Unknown, Dim::from_i64),
            _ => Dim::Unknown,
        };
    }
    Inferred::one(cx.like0(Some(dims)))
}

/// Resize/Upsample with constant `sizes` (all axes) or constant `scales`
/// (`floor(in · scale)`; a symbolic dim survives a scale of exactly 1).
fn resize(cx: &Cx) -> Inferred {
    let Some(x) = cx.dims(0) else {
        return Inferred::one(cx.like0(None));
    };
    let unknown = || Inferred::one(cx.like0(Some(vec![Dim::Unknown; x.len()])));
    let upsample = cx.node.op_type() == "Upsample";
    let sizes_given = !upsample && cx.opset >= 11 && cx.has_input(3);
    if sizes_given {
        let stretch = cx
            .attr_str("keep_aspect_ratio_policy")
            .is_none_or(|p| p == "stretch");
        return match cx.ints(3) {
            Some(s) if s.len() == x.len() && stretch && cx.node.attribute("axes").is_none() => {
                Inferred::one(cx.like0(Some(s.into_iter().map(Dim::from_i64).collect())))
            }
            _ => unknown(),
        };
    }
    let scales: Option<Vec<f32>> = if upsample && cx.opset < 9 {
        cx.node.attribute("scales").map(|a| a.proto.floats.clone())
    } else {
        let at = if upsample || cx.opset < 11 { 1 } else { 2 };
        cx.float_values(at).map(<[f32]>::to_vec)
    };
    match scales {
        Some(s) if s.len() == x.len() && cx.node.attribute("axes").is_none() => {
            let dims = x.iter().zip(s).map(|(d, s)| scale_dim(d, s)).collect();
            Inferred::one(cx.like0(Some(dims)))
        }
        _ => unknown(),
    }
}

fn scale_dim(d: &Dim, scale: f32) -> Dim {
    match d {
        _ if scale == 1.0 => d.clone(),
        Dim::Known(n) => {
            let v = (*n as f64 * f64::from(scale)).floor();
            if (0.0..9.0e15).contains(&v) {
                Dim::Known(v as u64)
            } else {
                Dim::Unknown
            }
        }
        _ => Dim::Unknown,
    }
}
