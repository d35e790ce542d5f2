//! Rearranging tracked contents of small n-D tensors (row-major, flat): transposes and
//! strided slices. Exporters compute pads and shapes with such ops (PyTorch's `F.pad`
//! becomes `ConstantOfShape → Concat → Reshape → Slice(step −1) → Transpose → Reshape`),
//! so following them lets a `Pad` or `Reshape` downstream see constant numbers.
use super::cx::{MAX_TRACKED, Sv};
use super::dim::Dim;

/// The dims as sizes when all are known and the element count is small.
pub fn small_dims(dims: &[Dim]) -> Option<Vec<usize>> {
    let sizes: Vec<usize> = dims
        .iter()
        .map(|d| d.known().and_then(|n| usize::try_from(n).ok()))
        .collect::<Option<_>>()?;
    let count = sizes
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))?;
    (count as u64 <= MAX_TRACKED).then_some(sizes)
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Calls `f` with every multi-index of `dims`, in row-major order.
fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    if dims.contains(&0) {
        return;
    }
    let mut idx = vec![0; dims.len()];
    loop {
        f(&idx);
        let mut axis = dims.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < dims[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

/// Contents of `Transpose(values, perm)` for an input of `dims`.
pub fn transpose(values: &[Sv], dims: &[usize], perm: &[usize]) -> Option<Vec<Sv>> {
    if perm.len() != dims.len() || values.len() != dims.iter().product::<usize>() {
        return None;
    }
    let out_dims: Vec<usize> = perm
        .iter()
        .map(|&p| dims.get(p).copied())
        .collect::<Option<_>>()?;
    let in_strides = strides(dims);
    let mut out = Vec::with_capacity(values.len());
    for_each_index(&out_dims, |idx| {
        let at: usize = idx.iter().zip(perm).map(|(&i, &p)| i * in_strides[p]).sum();
        out.push(values.get(at).cloned().unwrap_or(Sv::Unknown));
    });
    Some(out)
}

/// One axis of a strided slice: first index, element count, step.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub start: i64,
    pub len: i64,
    pub step: i64,
}

/// Contents of a slice of an input of `dims` (`ranges[axis]`: `None` keeps the axis whole).
pub fn slice(values: &[Sv], dims: &[usize], ranges: &[Option<Range>]) -> Option<Vec<Sv>> {
    if ranges.len() != dims.len() || values.len() != dims.iter().product::<usize>() {
        return None;
    }
    let full = |n: usize| Range {
        start: 0,
        len: i64::try_from(n).unwrap_or(0),
        step: 1,
    };
    let ranges: Vec<Range> = ranges
        .iter()
        .zip(dims)
        .map(|(r, &n)| r.unwrap_or(full(n)))
        .collect();
    let out_dims: Vec<usize> = ranges
        .iter()
        .map(|r| usize::try_from(r.len).ok())
        .collect::<Option<_>>()?;
    let in_strides = strides(dims);
    let mut out = Vec::new();
    let mut ok = true;
    for_each_index(&out_dims, |idx| {
        let at = idx
            .iter()
            .zip(&ranges)
            .zip(&in_strides)
            .try_fold(0usize, |acc, ((&k, r), &s)| {
                let i = r
                    .start
                    .checked_add(i64::try_from(k).ok()?.checked_mul(r.step)?)?;
                acc.checked_add(usize::try_from(i).ok()?.checked_mul(s)?)
            });
        match at.and_then(|a| values.get(a)) {
            Some(v) => out.push(v.clone()),
            None => ok = false,
        }
    });
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Vec<Sv> {
        v.iter().map(|&i| Sv::Int(i)).collect()
    }

    #[test]
    fn transpose_and_reverse_slice_of_a_pad_matrix() {
        // [[a0, a1], [b0, b1]] as torch writes F.pad's (begin, end) pairs per axis.
        let m = ints(&[1, 2, 3, 4]);
        assert_eq!(transpose(&m, &[2, 2], &[1, 0]), Some(ints(&[1, 3, 2, 4])));
        let rev = Range {
            start: 1,
            len: 2,
            step: -1,
        };
        assert_eq!(
            slice(&m, &[2, 2], &[Some(rev), None]),
            Some(ints(&[3, 4, 1, 2]))
        );
        let cols = Range {
            start: 1,
            len: 1,
            step: 1,
        };
        assert_eq!(
            slice(&ints(&[1, 2, 3, 4, 5, 6]), &[2, 3], &[None, Some(cols)]),
            Some(ints(&[2, 5]))
        );
        assert_eq!(transpose(&m, &[2, 3], &[1, 0]), None);
    }
}
