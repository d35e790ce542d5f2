//! Quantizing one constant tensor: per tensor, per channel (one scale per index along an
//! axis) or block-wise (opset 21: blocks of `block` consecutive elements along an axis,
//! one scale per block and per index of every other axis).
//!
//! Invariants: the scale/zero-point tensors have exactly the shapes `DequantizeLinear`
//! expects for the layout (rank 0; `[dims[axis]]`; `dims` with `dims[axis]` replaced by
//! `ceil(dims[axis] / block)`), element `i` of the tensor uses the group [`group_of`] names,
//! and `dequantized` holds exactly what `DequantizeLinear` computes from the written tensors
//! (rounded to the weight's float type).
use super::scheme::{self, Params, QuantType};
use bytes::Bytes;
use whittle_ir::{DataType, Tensor};

/// How a tensor is split into quantization groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    PerTensor,
    PerAxis { axis: usize },
    Blocked { axis: usize, block: usize },
}

impl Layout {
    pub fn describe(self) -> String {
        match self {
            Layout::PerTensor => "per-tensor".into(),
            Layout::PerAxis { axis } => format!("per-channel (axis {axis})"),
            Layout::Blocked { axis, block } => format!("block {block} (axis {axis})"),
        }
    }
}

/// A quantized tensor and what it dequantizes to.
#[derive(Clone, Debug)]
pub struct Quantized {
    pub values: Vec<i32>,
    pub params: Vec<Params>,
    /// Dims of the scale and zero-point tensors.
    pub param_dims: Vec<i64>,
    pub dequantized: Vec<f32>,
}

/// Number of groups and the dims of the parameter tensors.
pub fn param_dims(dims: &[usize], layout: Layout) -> Vec<usize> {
    match layout {
        Layout::PerTensor => vec![],
        Layout::PerAxis { axis } => vec![dims[axis]],
        Layout::Blocked { axis, block } => dims
            .iter()
            .enumerate()
            .map(|(k, &d)| if k == axis { d.div_ceil(block) } else { d })
            .collect(),
    }
}

/// The group element `i` (row-major index into `dims`) belongs to.
pub fn group_of(dims: &[usize], layout: Layout, i: usize) -> usize {
    match layout {
        Layout::PerTensor => 0,
        Layout::PerAxis { axis } => {
            let inner: usize = dims[axis + 1..].iter().product();
            (i / inner) % dims[axis]
        }
        Layout::Blocked { axis, block } => {
            let inner: usize = dims[axis + 1..].iter().product();
            let along = (i / inner) % dims[axis];
            let outer = i / (inner * dims[axis]);
            let blocks = dims[axis].div_ceil(block);
            (outer * blocks + along / block) * inner + i % inner
        }
    }
}

/// [`group_of`] for every element of a tensor of shape `dims`, in order — built by counting,
/// without the two divisions per element `group_of` costs (a third of the time of
/// quantizing a model's weights).
pub fn group_indices(dims: &[usize], layout: Layout) -> Vec<usize> {
    let len: usize = dims.iter().product();
    let (axis, block) = match layout {
        Layout::PerTensor => return vec![0; len],
        Layout::PerAxis { axis } => (axis, None),
        Layout::Blocked { axis, block } => (axis, Some(block.max(1))),
    };
    let inner: usize = dims[axis + 1..].iter().product();
    let along = dims[axis];
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::with_capacity(len);
    for o in 0..outer {
        for a in 0..along {
            match block {
                None => out.extend(std::iter::repeat_n(a, inner)),
                Some(b) => {
                    let first = (o * along.div_ceil(b) + a / b) * inner;
                    out.extend(first..first + inner);
                }
            }
        }
    }
    out
}

/// Quantizes `values` (shape `dims`) with one set of parameters per group.
pub fn quantize(
    values: &[f32],
    dims: &[usize],
    layout: Layout,
    t: QuantType,
    symmetric: bool,
    round: fn(f32) -> f32,
) -> Quantized {
    let pdims = param_dims(dims, layout);
    let groups: usize = pdims.iter().product();
    let (q, params) = match runs(dims, layout) {
        Some((run, along)) => {
            let mut lo = vec![f32::INFINITY; groups];
            let mut hi = vec![f32::NEG_INFINITY; groups];
            for (k, xs) in values.chunks(run).enumerate() {
                let (a, b) = xs
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    });
                lo[k % along] = lo[k % along].min(a);
                hi[k % along] = hi[k % along].max(b);
            }
            let params = group_params(&lo, &hi, t, symmetric, round);
            let mut q = Vec::with_capacity(values.len());
            for (k, xs) in values.chunks(run).enumerate() {
                let p = params[k % along];
                q.extend(xs.iter().map(|&x| scheme::quantize_value(x, p, t)));
            }
            (q, params)
        }
        None => {
            let group = group_indices(dims, layout);
            debug_assert_eq!(group.len(), values.len());
            let mut lo = vec![f32::INFINITY; groups];
            let mut hi = vec![f32::NEG_INFINITY; groups];
            for (&x, &g) in values.iter().zip(&group) {
                lo[g] = lo[g].min(x);
                hi[g] = hi[g].max(x);
            }
            let params = group_params(&lo, &hi, t, symmetric, round);
            let q = values
                .iter()
                .zip(&group)
                .map(|(&x, &g)| scheme::quantize_value(x, params[g], t))
                .collect();
            (q, params)
        }
    };
    let dequantized = dequantize(&q, dims, layout, &params, round);
    Quantized {
        values: q,
        params,
        param_dims: pdims.iter().map(|&d| d as i64).collect(),
        dequantized,
    }
}

/// Per-tensor and per-axis groups are runs of consecutive elements: `Some((run, along))`
/// when run `k` (of `run` elements) belongs to group `k % along`; `None` for blocks, whose
/// neighbouring elements belong to different groups.
fn runs(dims: &[usize], layout: Layout) -> Option<(usize, usize)> {
    match layout {
        Layout::PerTensor => Some((dims.iter().product::<usize>().max(1), 1)),
        Layout::PerAxis { axis } => Some((
            dims[axis + 1..].iter().product::<usize>().max(1),
            dims[axis].max(1),
        )),
        Layout::Blocked { .. } => None,
    }
}

/// Each group's parameters from its range (an empty group, lo > hi, gets those of 0).
fn group_params(
    lo: &[f32],
    hi: &[f32],
    t: QuantType,
    symmetric: bool,
    round: fn(f32) -> f32,
) -> Vec<Params> {
    lo.iter()
        .zip(hi)
        .map(|(&a, &b)| {
            let (a, b) = if a > b { (0.0, 0.0) } else { (a, b) };
            scheme::params_for_range(a, b, t, symmetric, round)
        })
        .collect()
}

/// What `DequantizeLinear` computes from `q`, rounded to the weight's float type by `round`.
fn dequantize(
    q: &[i32],
    dims: &[usize],
    layout: Layout,
    params: &[Params],
    round: fn(f32) -> f32,
) -> Vec<f32> {
    let mut out: Vec<f32> = match runs(dims, layout) {
        Some((run, along)) => {
            let mut out = Vec::with_capacity(q.len());
            for (k, vs) in q.chunks(run).enumerate() {
                let p = params[k % along];
                out.extend(vs.iter().map(|&v| scheme::dequantize_value(v, p)));
            }
            out
        }
        None => q
            .iter()
            .zip(group_indices(dims, layout))
            .map(|(&v, g)| scheme::dequantize_value(v, params[g]))
            .collect(),
    };
    // float32 weights keep the product as it is: skip a call per element.
    if !std::ptr::fn_addr_eq(round, scheme::keep_f32 as fn(f32) -> f32) {
        out.iter_mut().for_each(|x| *x = round(*x));
    }
    out
}

/// The float tensor of the scales, in `float_type` (f32 or f16).
pub fn scale_tensor(name: &str, q: &Quantized, float_type: DataType) -> Tensor {
    let data: Vec<u8> = if float_type == DataType::FLOAT16 {
        q.params
            .iter()
            .flat_map(|p| half::f16::from_f32(p.scale).to_le_bytes())
            .collect()
    } else {
        q.params
            .iter()
            .flat_map(|p| p.scale.to_le_bytes())
            .collect()
    };
    Tensor::new_raw(name, float_type, q.param_dims.clone(), Bytes::from(data))
}

/// The zero-point tensor (type `t`).
pub fn zero_point_tensor(name: &str, q: &Quantized, t: QuantType) -> Tensor {
    let zps: Vec<i32> = q.params.iter().map(|p| p.zero_point).collect();
    Tensor::new_raw(name, t.dtype(), q.param_dims.clone(), scheme::pack(&zps, t))
}

/// The quantized values as a tensor of type `t` and shape `dims`.
pub fn values_tensor(name: &str, q: &Quantized, t: QuantType, dims: &[i64]) -> Tensor {
    Tensor::new_raw(name, t.dtype(), dims.to_vec(), scheme::pack(&q.values, t))
}

/// The rounding a float type's stored scales go through.
pub fn rounding_for(float_type: DataType) -> fn(f32) -> f32 {
    if float_type == DataType::FLOAT16 {
        scheme::through_f16
    } else {
        scheme::keep_f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantize::scheme::keep_f32;

    #[test]
    fn groups_per_axis_and_blocked() {
        let got: Vec<usize> = (0..6)
            .map(|i| group_of(&[3, 2], Layout::PerAxis { axis: 0 }, i))
            .collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2]);
        let got: Vec<usize> = (0..6)
            .map(|i| group_of(&[3, 2], Layout::PerAxis { axis: 1 }, i))
            .collect();
        assert_eq!(got, vec![0, 1, 0, 1, 0, 1]);
        // [5, 2] blocked along axis 0 with block 2: params [3, 2]
        let l = Layout::Blocked { axis: 0, block: 2 };
        assert_eq!(param_dims(&[5, 2], l), vec![3, 2]);
        let got: Vec<usize> = (0..10).map(|i| group_of(&[5, 2], l, i)).collect();
        assert_eq!(got, vec![0, 1, 0, 1, 2, 3, 2, 3, 4, 5]);
    }

    #[test]
    fn quantize_equals_the_element_by_element_definition() {
        // Every layout: the group of each element from `group_of`, its range, its params,
        // and the formula per element — what `quantize` computes in runs.
        let dims = [3usize, 5, 2, 4];
        let values: Vec<f32> = (0..120)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013 * (1 + i % 7) as f32)
            .collect();
        let mut layouts = vec![Layout::PerTensor];
        for axis in 0..dims.len() {
            layouts.push(Layout::PerAxis { axis });
            layouts.push(Layout::Blocked { axis, block: 2 });
        }
        for layout in layouts {
            for (t, symmetric) in [(QuantType::Int8, true), (QuantType::Uint8, false)] {
                for round in [keep_f32 as fn(f32) -> f32, scheme::through_f16] {
                    let got = quantize(&values, &dims, layout, t, symmetric, round);
                    let groups: usize = param_dims(&dims, layout).iter().product();
                    let mut lo = vec![f32::INFINITY; groups];
                    let mut hi = vec![f32::NEG_INFINITY; groups];
                    for (i, &x) in values.iter().enumerate() {
                        let g = group_of(&dims, layout, i);
                        lo[g] = lo[g].min(x);
                        hi[g] = hi[g].max(x);
                    }
                    let params: Vec<Params> = (0..groups)
                        .map(|g| scheme::params_for_range(lo[g], hi[g], t, symmetric, round))
                        .collect();
                    assert_eq!(got.params, params, "{layout:?}");
                    for (i, &x) in values.iter().enumerate() {
                        let p = params[group_of(&dims, layout, i)];
                        let q = scheme::quantize_value(x, p, t);
                        assert_eq!(got.values[i], q, "{layout:?} element {i}");
                        let d = round(scheme::dequantize_value(q, p));
                        assert_eq!(got.dequantized[i].to_bits(), d.to_bits(), "{layout:?} {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn group_indices_equal_group_of_everywhere() {
        let dims = [3usize, 5, 2, 4];
        let mut layouts = vec![Layout::PerTensor];
        for axis in 0..dims.len() {
            layouts.push(Layout::PerAxis { axis });
            for block in [1, 2, 3, 8] {
                layouts.push(Layout::Blocked { axis, block });
            }
        }
        for l in layouts {
            let want: Vec<usize> = (0..120).map(|i| group_of(&dims, l, i)).collect();
            assert_eq!(group_indices(&dims, l), want, "{l:?}");
        }
    }

    #[test]
    fn per_channel_symmetric_int8() {
        let w = [1.0f32, -0.5, 0.25, 2.54, -1.27, 0.0];
        let q = quantize(
            &w,
            &[2, 3],
            Layout::PerAxis { axis: 0 },
            QuantType::Int8,
            true,
            keep_f32,
        );
        assert_eq!(q.param_dims, vec![2]);
        assert_eq!(q.params[0].scale, 1.0 / 127.0);
        assert_eq!(q.values[..3], [127, -64, 32]); // -63.5 → -64 (even), 31.75 → 32
        assert_eq!(q.values[3..], [127, -64, 0]); // -63.5 → -64
    }
}
