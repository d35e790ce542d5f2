//! Cutting tensors into batches along axis 0 and putting results back together.
//!
//! Row-major layout makes every operation here a contiguous copy: rows `start..start+len`
//! of a tensor are one slice of its data.

use crate::tensor::{HostTensor, TensorData, map_variant};

/// Rows `start..start + len` of `t` along axis 0 (rank ≥ 1). With `squeeze` (and `len`
/// 1) the axis is dropped, so a `[N, 3]` stack gives `[3]` samples.
pub fn slice_axis0(
    t: &HostTensor,
    start: usize,
    len: usize,
    squeeze: bool,
) -> Result<HostTensor, String> {
    let Some((&rows, rest)) = t.shape().split_first() else {
        return Err("a scalar has no axis 0 to slice".into());
    };
    if start.checked_add(len).is_none_or(|end| end > rows) {
        return Err(format!("rows {start}..{} out of {rows}", start + len));
    }
    let inner: usize = rest.iter().product();
    let (a, b) = (start * inner, (start + len) * inner);
    let data = map_variant!(t.data(), v => v[a..b].to_vec());
    let shape = if squeeze && len == 1 {
        rest.to_vec()
    } else {
        std::iter::once(len).chain(rest.iter().copied()).collect()
    };
    HostTensor::new(shape, data).map_err(|e| e.to_string())
}

/// Concatenates tensors of one dtype along axis 0; all must have the same dims past axis 0.
pub fn concat_axis0(parts: &[HostTensor]) -> Result<HostTensor, String> {
    let Some(first) = parts.first() else {
        return Err("nothing to concatenate".into());
    };
    let Some((_, rest)) = first.shape().split_first() else {
        return Err("scalars cannot be concatenated (stack them)".into());
    };
    let mut rows = 0usize;
    for p in parts {
        if p.dtype() != first.dtype() || p.shape().get(1..) != Some(rest) {
            return Err(format!(
                "{} {:?} does not fit {} [_, {}]",
                p.dtype(),
                p.shape(),
                first.dtype(),
                rest.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rows += p.shape()[0];
    }
    let shape: Vec<usize> = std::iter::once(rows).chain(rest.iter().copied()).collect();
    join_data(parts, shape)
}

/// Stacks equally shaped tensors along a new axis 0.
pub fn stack(parts: &[HostTensor]) -> Result<HostTensor, String> {
    let Some(first) = parts.first() else {
        return Err("nothing to stack".into());
    };
    if let Some(p) = parts
        .iter()
        .find(|p| p.dtype() != first.dtype() || p.shape() != first.shape())
    {
        return Err(format!(
            "{} {:?} and {} {:?} cannot be stacked",
            first.dtype(),
            first.shape(),
            p.dtype(),
            p.shape()
        ));
    }
    let shape: Vec<usize> = std::iter::once(parts.len())
        .chain(first.shape().iter().copied())
        .collect();
    join_data(parts, shape)
}

/// The parts' data back to back (dtypes already checked equal).
fn join_data(parts: &[HostTensor], shape: Vec<usize>) -> Result<HostTensor, String> {
    let total: usize = parts.iter().map(HostTensor::len).sum();
    let mut data = map_variant!(parts[0].data(), _v => Vec::with_capacity(total));
    for p in parts {
        extend(&mut data, p.data());
    }
    HostTensor::new(shape, data).map_err(|e| e.to_string())
}

fn extend(into: &mut TensorData, from: &TensorData) {
    macro_rules! ext {
        ($($v:ident),*) => {
            match (into, from) {
                $((TensorData::$v(a), TensorData::$v(b)) => a.extend_from_slice(b),)*
                _ => {}
            }
        };
    }
    ext!(F16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Bool);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: Vec<f32>) -> HostTensor {
        HostTensor::from_vec(shape.to_vec(), v).unwrap()
    }

    #[test]
    fn slice_concat_stack_round_trip() {
        let x = t(&[3, 2], vec![0., 1., 2., 3., 4., 5.]);
        let a = slice_axis0(&x, 0, 2, false).unwrap();
        let b = slice_axis0(&x, 2, 1, false).unwrap();
        assert_eq!(a.shape(), &[2, 2]);
        assert_eq!(b.to_f32_vec(), vec![4., 5.]);
        assert_eq!(concat_axis0(&[a, b.clone()]).unwrap(), x);
        let row = slice_axis0(&x, 1, 1, true).unwrap();
        assert_eq!(
            (row.shape(), row.to_f32_vec()),
            (&[2usize][..], vec![2., 3.])
        );
        let s = stack(&[row.clone(), row]).unwrap();
        assert_eq!(s.shape(), &[2, 2]);
        assert!(slice_axis0(&x, 2, 2, false).is_err());
        assert!(concat_axis0(&[x.clone(), t(&[1, 3], vec![0.; 3])]).is_err());
        assert!(stack(&[HostTensor::scalar(1f32), HostTensor::scalar(1i64)]).is_err());
    }
}
