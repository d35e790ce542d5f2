//! Ops that rearrange dims without computing on elements: Reshape (0 and −1 rules),
//! Flatten, Transpose, Concat, Squeeze/Unsqueeze (attribute before opset 13, input from
//! 13), Expand, Tile, DepthToSpace/SpaceToDepth, and the shape-producing ops Shape, Size,
//! ConstantOfShape and Range (whose contents are tracked, so shape arithmetic feeding a
//! Reshape resolves).
use super::cx::{Cx, Inferred, MAX_TRACKED, Sv, tensor_ints};
use super::dim::{Dim, ValueShape, add_dims, broadcast, norm_axis, product_dim};
use super::values::{self, small_dims};
use crate::dtype::DataType;

/// The rules of this module; `None` for other ops.
pub fn infer(cx: &Cx) -> Option<Inferred> {
    Some(match cx.node.op_type() {
        "Reshape" => reshape(cx),
        "Flatten" => flatten(cx),
        "Transpose" => transpose(cx),
        "Concat" => concat(cx),
        "Squeeze" => squeeze(cx),
        "Unsqueeze" => unsqueeze(cx),
        "Expand" => expand(cx),
        "Tile" => tile(cx),
        "DepthToSpace" | "SpaceToDepth" => depth_space(cx),
        "Shape" => shape(cx),
        "Size" => size(cx),
        "ConstantOfShape" => constant_of_shape(cx),
        "Range" => range(cx),
        _ => return None,
    })
}

/// Contents pass unchanged through ops that keep the row-major element order (Reshape,
/// Flatten, Squeeze, Unsqueeze) when the output's rank is known.
fn same_values(cx: &Cx, out_rank: Option<usize>) -> Option<Vec<Sv>> {
    out_rank.and(cx.values(0)).map(<[Sv]>::to_vec)
}

/// The rank given by a 1-D shape-like input whose contents are unknown.
fn rank_of_vector(cx: &Cx, i: usize) -> Option<usize> {
    let n = cx.dims(i)?.first()?.known()?;
    usize::try_from(n).ok()
}

fn reshape(cx: &Cx) -> Inferred {
    let target: Option<Vec<Sv>> = if cx.opset < 5 {
        cx.attr_ints("shape")
            .map(|v| v.into_iter().map(Sv::Int).collect())
    } else {
        cx.values(1).map(<[Sv]>::to_vec)
    };
    let Some(target) = target else {
        let rank = if cx.opset < 5 {
            None
        } else {
            rank_of_vector(cx, 1)
        };
        return Inferred::one(cx.like0(rank.map(|r| vec![Dim::Unknown; r])));
    };
    let allowzero = cx.attr_int("allowzero", 0) != 0;
    let input = cx.dims(0);
    let mut infer_at = None;
    let mut dims: Vec<Dim> = Vec::with_capacity(target.len());
    for (i, v) in target.iter().enumerate() {
        dims.push(match v {
            Sv::Int(0) if !allowzero => input
                .and_then(|x| x.get(i))
                .cloned()
                .unwrap_or(Dim::Unknown),
            Sv::Int(-1) if infer_at.is_none() => {
                infer_at = Some(i);
                Dim::Unknown
            }
            other => other.to_dim(),
        });
    }
    if let (Some(at), Some(x)) = (infer_at, input) {
        dims[at] = infer_minus_one(x, &dims, at);
    }
    let value = same_values(cx, Some(dims.len()));
    Inferred::one(cx.like0(Some(dims))).with_value(value)
}

/// Splits dims into their known product and the symbols among them; `None` if a dim is
/// unknown.
fn factor<'a>(dims: impl Iterator<Item = &'a Dim>) -> Option<(u64, Vec<&'a str>)> {
    let mut known = 1u64;
    let mut symbols = Vec::new();
    for d in dims {
        match d {
            Dim::Known(n) => known = known.checked_mul(*n)?,
            Dim::Symbolic(s) => symbols.push(s.as_str()),
            Dim::Unknown => return None,
        }
    }
    Some((known, symbols))
}

/// The −1 of a Reshape: input elements over the other output dims, with symbols that
/// appear on both sides cancelling (`[N,4,4] → [N,-1]` gives `[N,16]`).
fn infer_minus_one(input: &[Dim], dims: &[Dim], at: usize) -> Dim {
    let others = dims
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, d)| d);
    let (Some((k_in, mut s_in)), Some((k_out, s_out))) = (factor(input.iter()), factor(others))
    else {
        return Dim::Unknown;
    };
    for s in s_out {
        match s_in.iter().position(|x| *x == s) {
            Some(p) => {
                s_in.remove(p);
            }
            None => return Dim::Unknown,
        }
    }
    if k_out == 0 || k_in % k_out != 0 {
        return Dim::Unknown;
    }
    match (k_in / k_out, s_in.as_slice()) {
        (q, []) => Dim::Known(q),
        (1, [s]) => Dim::Symbolic((*s).to_string()),
        _ => Dim::Unknown,
    }
}

fn flatten(cx: &Cx) -> Inferred {
    let dims = cx.dims(0).and_then(|x| {
        let r = i64::try_from(x.len()).ok()?;
        let axis = cx.attr_int("axis", 1);
        let axis = usize::try_from(if axis < 0 { axis + r } else { axis }).ok()?;
        (axis <= x.len()).then(|| vec![product_dim(&x[..axis]), product_dim(&x[axis..])])
    });
    let value = same_values(cx, dims.as_ref().map(Vec::len));
    Inferred::one(cx.like0(dims)).with_value(value)
}

fn transpose(cx: &Cx) -> Inferred {
    let Some(x) = cx.dims(0) else {
        return Inferred::one(cx.like0(None));
    };
    let perm: Option<Vec<usize>> = match cx.attr_ints("perm") {
        Some(p) => p.iter().map(|&a| usize::try_from(a).ok()).collect(),
        None => Some((0..x.len()).rev().collect()),
    };
    let Some(perm) = perm.filter(|p| p.len() == x.len()) else {
        return Inferred::one(cx.like0(None));
    };
    let dims = perm.iter().map(|&a| x.get(a).cloned()).collect();
    let value = match (cx.values(0), small_dims(x)) {
        (Some(v), Some(sizes)) => values::transpose(v, &sizes, &perm),
        _ => None,
    };
    Inferred::one(cx.like0(dims)).with_value(value)
}

fn concat(cx: &Cx) -> Inferred {
    let n = cx.node.inputs().len();
    let shapes: Option<Vec<&[Dim]>> = (0..n).map(|i| cx.dims(i)).collect();
    let dims = shapes.and_then(|shapes| {
        let rank = shapes.first()?.len();
        let axis = norm_axis(cx.attr_int("axis", 0), rank)?;
        if shapes.iter().any(|s| s.len() != rank) {
            return None;
        }
        let dims = (0..rank).map(|p| {
            if p == axis {
                shapes
                    .iter()
                    .fold(Dim::Known(0), |acc, s| add_dims(&acc, &s[p]))
            } else {
                let pick =
                    |f: fn(&Dim) -> bool| shapes.iter().map(|s| &s[p]).find(|d| f(d)).cloned();
                pick(|d| matches!(d, Dim::Known(_)))
                    .or_else(|| pick(|d| matches!(d, Dim::Symbolic(_))))
                    .unwrap_or(Dim::Unknown)
            }
        });
        Some(dims.collect::<Vec<_>>())
    });
    let value = (0..n)
        .map(|i| {
            cx.values(i)
                .filter(|_| cx.dims(i).is_some_and(|d| d.len() == 1))
        })
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.concat());
    Inferred::one(ValueShape {
        dtype: (0..n).find_map(|i| cx.dtype(i)),
        dims,
    })
    .with_value(value)
}

fn squeeze(cx: &Cx) -> Inferred {
    let axes = cx.ints_attr_or_input("axes", 1, 13);
    let given = cx.has_attr_or_input("axes", 1, 13);
    let dims = cx.dims(0).and_then(|x| match axes {
        Some(axes) if !axes.is_empty() => {
            let drop: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, x.len()))
                .collect::<Option<_>>()?;
            Some(
                x.iter()
                    .enumerate()
                    .filter(|(i, _)| !drop.contains(i))
                    .map(|(_, d)| d.clone())
                    .collect(),
            )
        }
        // No axes: every dim of size 1 goes, which needs every dim known.
        _ if !given || axes.is_some() => {
            let known: Vec<u64> = x.iter().map(Dim::known).collect::<Option<_>>()?;
            Some(
                known
                    .into_iter()
                    .filter(|&d| d != 1)
                    .map(Dim::Known)
                    .collect(),
            )
        }
        _ => None,
    });
    let value = same_values(cx, dims.as_ref().map(Vec::len));
    Inferred::one(cx.like0(dims)).with_value(value)
}

fn unsqueeze(cx: &Cx) -> Inferred {
    let axes = cx.ints_attr_or_input("axes", 1, 13);
    let dims = match (cx.dims(0), axes) {
        (Some(x), Some(axes)) => {
            let rank = x.len() + axes.len();
            let mut at: Option<Vec<usize>> = axes.iter().map(|&a| norm_axis(a, rank)).collect();
            if let Some(v) = at.as_mut() {
                v.sort_unstable();
            }
            at.filter(|v| v.windows(2).all(|w| w[0] != w[1])).map(|at| {
                let mut rest = x.iter();
                (0..rank)
                    .map(|i| {
                        if at.contains(&i) {
                            Dim::Known(1)
                        } else {
                            rest.next().cloned().unwrap_or(Dim::Unknown)
                        }
                    })
                    .collect()
            })
        }
        _ => None,
    };
    let value = same_values(cx, dims.as_ref().map(Vec::len));
    Inferred::one(cx.like0(dims)).with_value(value)
}

/// The dims given by a shape-like input (its contents, or unknowns of its length).
fn target_dims(cx: &Cx, i: usize) -> Option<Vec<Dim>> {
    match cx.values(i) {
        Some(v) => Some(v.iter().map(Sv::to_dim).collect()),
        None => rank_of_vector(cx, i).map(|r| vec![Dim::Unknown; r]),
    }
}

fn expand(cx: &Cx) -> Inferred {
    let dims = match (cx.dims(0), target_dims(cx, 1)) {
        (Some(x), Some(t)) => Some(broadcast(x, &t)),
        _ => None,
    };
    Inferred::one(cx.like0(dims))
}

fn tile(cx: &Cx) -> Inferred {
    let dims = cx.dims(0).map(|x| match cx.ints(1) {
        Some(r) if r.len() == x.len() => x
            .iter()
            .zip(r)
            .map(|(d, r)| match (d, u64::try_from(r)) {
                (d, Ok(1)) => d.clone(),
                (Dim::Known(n), Ok(r)) => n.checked_mul(r).map_or(Dim::Unknown, Dim::Known),
                _ => Dim::Unknown,
            })
            .collect(),
        _ => vec![Dim::Unknown; x.len()],
    });
    Inferred::one(cx.like0(dims))
}

fn depth_space(cx: &Cx) -> Inferred {
    let b = u64::try_from(cx.attr_int("blocksize", 0)).unwrap_or(0);
    let to_space = cx.node.op_type() == "DepthToSpace";
    let dims = cx.dims(0).filter(|x| x.len() == 4 && b > 0).map(|x| {
        let scale = |d: &Dim, up: bool, f: u64| match d.known() {
            Some(n) if up => n.checked_mul(f).map_or(Dim::Unknown, Dim::Known),
            Some(n) if n % f == 0 => Dim::Known(n / f),
            _ => Dim::Unknown,
        };
        let bb = b.saturating_mul(b);
        vec![
            x[0].clone(),
            scale(&x[1], !to_space, bb),
            scale(&x[2], to_space, b),
            scale(&x[3], to_space, b),
        ]
    });
    Inferred::one(cx.like0(dims))
}

fn shape(cx: &Cx) -> Inferred {
    let i64_of = |dims| ValueShape::new(Some(DataType::INT64), dims);
    let Some(x) = cx.dims(0) else {
        return Inferred::one(i64_of(vec![Dim::Unknown]));
    };
    let r = i64::try_from(x.len()).unwrap_or(0);
    let clamp = |v: i64| usize::try_from((if v < 0 { v + r } else { v }).clamp(0, r)).unwrap_or(0);
    let start = clamp(cx.attr_int("start", 0));
    let end = clamp(cx.attr_int("end", r)).max(start);
    let values: Vec<Sv> = x[start..end].iter().map(Sv::from_dim).collect();
    Inferred::one(i64_of(vec![Dim::Known(values.len() as u64)])).with_value(Some(values))
}

fn size(cx: &Cx) -> Inferred {
    let value = cx.dims(0).map(|x| vec![Sv::from_dim(&product_dim(x))]);
    Inferred::one(ValueShape::new(Some(DataType::INT64), vec![])).with_value(value)
}

fn constant_of_shape(cx: &Cx) -> Inferred {
    let fill = cx.node.attribute("value").and_then(|a| a.t.as_ref());
    let dtype = fill.map_or(DataType::FLOAT, |t| t.dtype());
    let dims = target_dims(cx, 0);
    // Integer fills (shape arithmetic) are tracked; the count is small by `small_dims`.
    let value = match (
        fill.and_then(tensor_ints).as_deref(),
        dims.as_deref().and_then(small_dims),
    ) {
        (Some([v]), Some(sizes)) => Some(vec![Sv::Int(*v); sizes.iter().product()]),
        _ => None,
    };
    Inferred::one(ValueShape {
        dtype: Some(dtype),
        dims,
    })
    .with_value(value)
}

fn range(cx: &Cx) -> Inferred {
    let scalar = |i: usize| cx.ints(i).filter(|v| v.len() == 1).map(|v| v[0]);
    let (len, value) = match (scalar(0), scalar(1), scalar(2)) {
        (Some(s), Some(l), Some(d)) if d != 0 => {
            let n = l.checked_sub(s).map(|span| {
                let q = span / d;
                let n = if span % d != 0 { q + 1 } else { q };
                n.max(0)
            });
            let value = n
                .filter(|&n| u64::try_from(n).is_ok_and(|n| n <= MAX_TRACKED))
                .map(|n| {
                    (0..n)
                        .map(|k| {
                            s.checked_add(k.saturating_mul(d))
                                .map_or(Sv::Unknown, Sv::Int)
                        })
                        .collect()
                });
            (n.map_or(Dim::Unknown, Dim::from_i64), value)
        }
        _ => (range_float_len(cx), None),
    };
    Inferred::one(cx.like0(Some(vec![len]))).with_value(value)
}

/// Length of a float Range with constant operands: `max(ceil((limit − start) / delta), 0)`.
fn range_float_len(cx: &Cx) -> Dim {
    let scalar = |i: usize| {
        cx.float_values(i)
            .filter(|v| v.len() == 1)
            .map(|v| f64::from(v[0]))
    };
    match (scalar(0), scalar(1), scalar(2)) {
        (Some(s), Some(l), Some(d)) if d != 0.0 => {
            let n = ((l - s) / d).ceil().max(0.0);
            if n.is_finite() && n < 9.0e15 {
                Dim::Known(n as u64)
            } else {
                Dim::Unknown
            }
        }
        _ => Dim::Unknown,
    }
}
