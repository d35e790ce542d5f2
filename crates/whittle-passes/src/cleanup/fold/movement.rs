//! Data-movement kernels: they copy elements as bytes, so every whole-byte dtype folds.
//! `Reshape`, `Flatten`, `Transpose`, `Concat`, `Squeeze`, `Unsqueeze`, `Gather`, `Slice`,
//! `Expand`, `Tile`, `Split`.
use super::value::{
    FoldResult, Value, broadcast_dims, broadcast_index, elem_size, invalid, norm_axis, numel,
    strides,
};

/// The output dims of `Reshape(data of dims, shape)` (`0` copies the input dim unless
/// `allow_zero`, one `-1` is inferred).
pub fn reshape_dims(dims: &[usize], shape: &[i64], allow_zero: bool) -> FoldResult<Vec<usize>> {
    let total = numel(dims)?;
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(*dims.get(i).ok_or_else(|| {
                super::value::FoldError::Invalid(format!(
                    "Reshape: 0 at position {i} past the input rank"
                ))
            })?),
            s if s >= 0 => out.push(s as usize),
            s => return invalid(format!("Reshape: bad dim {s}")),
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return invalid(format!(
                "Reshape: cannot infer -1 for {total} elements into {shape:?}"
            ));
        }
        out[i] = total / known;
    } else if known != total {
        return invalid(format!("Reshape: {total} elements do not fit {shape:?}"));
    }
    Ok(out)
}

pub fn reshape(a: &Value, shape: &[i64], allow_zero: bool) -> FoldResult<Value> {
    let dims = reshape_dims(&a.dims, shape, allow_zero)?;
    Ok(Value { dims, ..a.clone() })
}

pub fn flatten(a: &Value, axis: i64) -> FoldResult<Value> {
    let r = a.rank() as i64;
    let ax = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&ax) {
        return invalid(format!("Flatten axis {axis} for rank {r}"));
    }
    let (outer, inner) = a.dims.split_at(ax as usize);
    Ok(Value {
        dims: vec![outer.iter().product(), inner.iter().product()],
        ..a.clone()
    })
}

pub fn transpose(a: &Value, perm: Option<&[i64]>) -> FoldResult<Value> {
    let r = a.rank();
    let perm: Vec<usize> = match perm {
        Some(p) => p
            .iter()
            .map(|&x| norm_axis(x, r))
            .collect::<FoldResult<_>>()?,
        None => (0..r).rev().collect(),
    };
    let mut seen = vec![false; r];
    for &p in &perm {
        if std::mem::replace(&mut seen[p], true) {
            return invalid(format!("Transpose perm {perm:?} repeats an axis"));
        }
    }
    if perm.len() != r {
        return invalid(format!("Transpose perm {perm:?} for rank {r}"));
    }
    let size = elem_size(a.dtype)?;
    let out_dims: Vec<usize> = perm.iter().map(|&p| a.dims[p]).collect();
    let in_strides = strides(&a.dims);
    let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n = a.numel();
    let mut bytes = Vec::with_capacity(n * size);
    let mut counter = vec![0usize; r];
    let mut flat = 0usize;
    for _ in 0..n {
        bytes.extend_from_slice(&a.bytes[flat * size..(flat + 1) * size]);
        for ax in (0..r).rev() {
            counter[ax] += 1;
            flat += src_strides[ax];
            if counter[ax] < out_dims[ax] {
                break;
            }
            flat -= src_strides[ax] * counter[ax];
            counter[ax] = 0;
        }
    }
    Ok(Value {
        dtype: a.dtype,
        dims: out_dims,
        bytes,
    })
}

pub fn concat(inputs: &[&Value], axis: i64) -> FoldResult<Value> {
    let Some(first) = inputs.first() else {
        return invalid("Concat without inputs");
    };
    let r = first.rank();
    let ax = norm_axis(axis, r)?;
    let size = elem_size(first.dtype)?;
    let mut out_dims = first.dims.clone();
    out_dims[ax] = 0;
    for v in inputs {
        let same = v.rank() == r && (0..r).all(|i| i == ax || v.dims[i] == first.dims[i]);
        if v.dtype != first.dtype || !same {
            return invalid("Concat inputs do not match");
        }
        out_dims[ax] += v.dims[ax];
    }
    let outer: usize = first.dims[..ax].iter().product();
    let mut bytes = Vec::with_capacity(numel(&out_dims)? * size);
    for o in 0..outer {
        for v in inputs {
            let chunk = v.dims[ax..].iter().product::<usize>() * size;
            bytes.extend_from_slice(&v.bytes[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(Value {
        dtype: first.dtype,
        dims: out_dims,
        bytes,
    })
}

pub fn unsqueeze(a: &Value, axes: &[i64]) -> FoldResult<Value> {
    let r = a.rank() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&x| norm_axis(x, r))
        .collect::<FoldResult<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return invalid("Unsqueeze axes repeat");
    }
    let mut dims = a.dims.clone();
    for ax in axes {
        dims.insert(ax, 1);
    }
    Ok(Value { dims, ..a.clone() })
}

pub fn squeeze(a: &Value, axes: Option<&[i64]>) -> FoldResult<Value> {
    let r = a.rank();
    let drop: Vec<usize> = match axes {
        Some(axes) => axes
            .iter()
            .map(|&x| norm_axis(x, r))
            .collect::<FoldResult<_>>()?,
        None => (0..r).filter(|&i| a.dims[i] == 1).collect(),
    };
    if drop.iter().any(|&i| a.dims[i] != 1) {
        return invalid("Squeeze of an axis whose size is not 1");
    }
    let dims = (0..r)
        .filter(|i| !drop.contains(i))
        .map(|i| a.dims[i])
        .collect();
    Ok(Value { dims, ..a.clone() })
}

pub fn gather(a: &Value, indices: &Value, axis: i64) -> FoldResult<Value> {
    let ax = norm_axis(axis, a.rank())?;
    let idx = indices.to_i64s()?;
    let size = elem_size(a.dtype)?;
    let len = a.dims[ax];
    let outer: usize = a.dims[..ax].iter().product();
    let inner: usize = a.dims[ax + 1..].iter().product::<usize>() * size;
    let mut out_dims = a.dims[..ax].to_vec();
    out_dims.extend_from_slice(&indices.dims);
    out_dims.extend_from_slice(&a.dims[ax + 1..]);
    let mut bytes = Vec::with_capacity(numel(&out_dims)? * size);
    for o in 0..outer {
        for &i in &idx {
            let j = if i < 0 { i + len as i64 } else { i };
            if !(0..len as i64).contains(&j) {
                return invalid(format!("Gather index {i} out of range for size {len}"));
            }
            let start = (o * len + j as usize) * inner;
            bytes.extend_from_slice(&a.bytes[start..start + inner]);
        }
    }
    Ok(Value {
        dtype: a.dtype,
        dims: out_dims,
        bytes,
    })
}

/// The resolved `(start, step, count)` of one sliced axis of size `dim`, clamped as the
/// ONNX `Slice` definition says.
pub fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> FoldResult<(i64, i64, usize)> {
    if step == 0 {
        return invalid("Slice step 0");
    }
    let d = dim as i64;
    if d == 0 {
        return Ok((0, step, 0));
    }
    let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (fix(start), fix(end));
    let (s, e) = if step > 0 {
        (s.clamp(0, d), e.clamp(0, d))
    } else {
        (s.clamp(0, d - 1), e.clamp(-1, d - 1))
    };
    // In i128: a step near i64::MAX (or MIN) must not overflow.
    let (s128, e128, st) = (i128::from(s), i128::from(e), i128::from(step));
    let count = if step > 0 && e > s {
        (e128 - s128 + st - 1) / st
    } else if step < 0 && s > e {
        (s128 - e128 - st - 1) / -st
    } else {
        0
    };
    Ok((s, step, count as usize))
}

pub fn slice(
    a: &Value,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> FoldResult<Value> {
    let r = a.rank();
    if starts.len() != ends.len() {
        return invalid("Slice starts and ends differ in length");
    }
    let mut ranges: Vec<(i64, i64, usize)> = a.dims.iter().map(|&d| (0, 1, d)).collect();
    for k in 0..starts.len() {
        let ax = norm_axis(
            axes.map_or(k as i64, |x| x.get(k).copied().unwrap_or(k as i64)),
            r,
        )?;
        let step = steps.and_then(|s| s.get(k).copied()).unwrap_or(1);
        ranges[ax] = slice_range(a.dims[ax], starts[k], ends[k], step)?;
    }
    let size = elem_size(a.dtype)?;
    let out_dims: Vec<usize> = ranges.iter().map(|r| r.2).collect();
    let n = numel(&out_dims)?;
    let st = strides(&a.dims);
    let mut bytes = Vec::with_capacity(n * size);
    let mut counter = vec![0usize; r];
    for _ in 0..n {
        let flat: i64 = (0..r)
            .map(|i| (ranges[i].0 + ranges[i].1 * counter[i] as i64) * st[i] as i64)
            .sum();
        let f = flat as usize;
        bytes.extend_from_slice(&a.bytes[f * size..(f + 1) * size]);
        for ax in (0..r).rev() {
            counter[ax] += 1;
            if counter[ax] < out_dims[ax] {
                break;
            }
            counter[ax] = 0;
        }
    }
    Ok(Value {
        dtype: a.dtype,
        dims: out_dims,
        bytes,
    })
}

/// Gathers elements of `a` at the flat indices `idx` into a value of dims `dims`.
fn take(a: &Value, idx: &[usize], dims: Vec<usize>) -> FoldResult<Value> {
    let size = elem_size(a.dtype)?;
    let mut bytes = Vec::with_capacity(idx.len() * size);
    for &i in idx {
        bytes.extend_from_slice(&a.bytes[i * size..(i + 1) * size]);
    }
    Ok(Value {
        dtype: a.dtype,
        dims,
        bytes,
    })
}

pub fn expand(a: &Value, shape: &[usize]) -> FoldResult<Value> {
    let out = broadcast_dims(&a.dims, shape)?;
    take(a, &broadcast_index(&a.dims, &out), out)
}

pub fn tile(a: &Value, repeats: &[usize]) -> FoldResult<Value> {
    if repeats.len() != a.rank() {
        return invalid("Tile repeats do not match the rank");
    }
    let out: Vec<usize> = a.dims.iter().zip(repeats).map(|(d, r)| d * r).collect();
    let n = numel(&out)?;
    let st = strides(&a.dims);
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; out.len()];
    for _ in 0..n {
        idx.push(
            (0..out.len())
                .map(|i| (counter[i] % a.dims[i].max(1)) * st[i])
                .sum(),
        );
        for ax in (0..out.len()).rev() {
            counter[ax] += 1;
            if counter[ax] < out[ax] {
                break;
            }
            counter[ax] = 0;
        }
    }
    take(a, &idx, out)
}

/// `Split` along `axis` into pieces of the given sizes.
pub fn split(a: &Value, axis: i64, sizes: &[usize]) -> FoldResult<Vec<Value>> {
    let ax = norm_axis(axis, a.rank())?;
    if sizes.iter().try_fold(0usize, |acc, &s| acc.checked_add(s)) != Some(a.dims[ax]) {
        return invalid(format!(
            "Split sizes {sizes:?} do not sum to {}",
            a.dims[ax]
        ));
    }
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0i64;
    for &s in sizes {
        let mut starts = vec![0i64; a.rank()];
        let mut ends: Vec<i64> = a.dims.iter().map(|&d| d as i64).collect();
        starts[ax] = start;
        ends[ax] = start + s as i64;
        out.push(slice(a, &starts, &ends, None, None)?);
        start += s as i64;
    }
    Ok(out)
}
