//! Convolutions, pooling and matrix products: the ops whose MACs `inspect` counts.
//!
//! Output sizes follow the ONNX operator definitions: explicit `pads`, `auto_pad`
//! (`SAME_UPPER`/`SAME_LOWER`: `ceil(in / stride)`; `VALID`: no padding), `dilations`,
//! `ceil_mode` (with the rule that a last window starting in the right padding is
//! dropped). A symbolic spatial dim stays symbolic only where the output provably equals
//! the input (stride 1 and padding that exactly offsets the kernel); otherwise unknown.
use super::cx::{Cx, Inferred};
use super::dim::{Dim, ValueShape, broadcast, ceil_div};
use crate::dtype::DataType;

/// Window parameters of one spatial axis.
#[derive(Clone, Copy)]
struct Axis {
    kernel: i64,
    stride: i64,
    dilation: i64,
    pad_begin: i64,
    pad_end: i64,
}

impl Axis {
    fn effective_kernel(&self) -> Option<i64> {
        self.kernel
            .checked_sub(1)?
            .checked_mul(self.dilation)?
            .checked_add(1)
    }
}

/// The per-axis window of a node with `n` spatial axes, from its attributes; `None` when
/// the attributes are malformed (wrong lengths, non-positive strides).
fn axes(cx: &Cx, kernel: &[i64]) -> Option<Vec<Axis>> {
    let n = kernel.len();
    let get = |name: &str, len: usize, default: i64| -> Option<Vec<i64>> {
        match cx.attr_ints(name) {
            Some(v) if v.len() == len => Some(v),
            Some(v) if v.is_empty() => Some(vec![default; len]),
            Some(_) => None,
            None => Some(vec![default; len]),
        }
    };
    let strides = get("strides", n, 1)?;
    let dilations = get("dilations", n, 1)?;
    let pads = get("pads", 2 * n, 0)?;
    if strides.iter().chain(&dilations).any(|&v| v < 1) || kernel.iter().any(|&k| k < 1) {
        return None;
    }
    Some(
        (0..n)
            .map(|i| Axis {
                kernel: kernel[i],
                stride: strides[i],
                dilation: dilations[i],
                pad_begin: pads[i],
                pad_end: pads[i + n],
            })
            .collect(),
    )
}

/// Output size of one axis of a convolution or pooling window.
fn window_out(input: &Dim, a: Axis, auto_pad: &str, ceil_mode: bool) -> Dim {
    let same = auto_pad.starts_with("SAME");
    let (pb, pe) = if auto_pad == "VALID" {
        (0, 0)
    } else {
        (a.pad_begin, a.pad_end)
    };
    let keeps_size = a.stride == 1
        && (same
            || a.effective_kernel()
                .is_some_and(|eff| pb.checked_add(pe).and_then(|p| p.checked_add(1)) == Some(eff)));
    match input {
        Dim::Known(n) => i64::try_from(*n)
            .ok()
            .and_then(|n| window_len(n, a, (pb, pe), same, ceil_mode))
            .map_or(Dim::Unknown, Dim::from_i64),
        Dim::Symbolic(_) if keeps_size => input.clone(),
        _ => Dim::Unknown,
    }
}

/// The window count along one axis of known size `n` (checked: absurd attributes give
/// `None`, never an overflow).
fn window_len(n: i64, a: Axis, (pb, pe): (i64, i64), same: bool, ceil_mode: bool) -> Option<i64> {
    if same {
        return Some(ceil_div(n, a.stride));
    }
    let total = n
        .checked_add(pb)?
        .checked_add(pe)?
        .checked_sub(a.effective_kernel()?)?;
    if total < 0 {
        return None;
    }
    let steps = if ceil_mode {
        ceil_div(total, a.stride)
    } else {
        total / a.stride
    };
    let mut out = steps.checked_add(1)?;
    if ceil_mode && (out - 1).checked_mul(a.stride)? >= n.checked_add(pb)? {
        out -= 1;
    }
    Some(out)
}

/// Spatial output dims of a window op over input dims `x` (`[N, C, spatial…]`).
fn spatial_out(cx: &Cx, x: &[Dim], kernel: &[i64], ceil_mode: bool) -> Vec<Dim> {
    let auto_pad = cx.attr_str("auto_pad").unwrap_or_default();
    let spatial = x.get(2..).unwrap_or_default();
    match axes(cx, kernel) {
        Some(ax) if ax.len() == spatial.len() => spatial
            .iter()
            .zip(ax)
            .map(|(d, a)| window_out(d, a, &auto_pad, ceil_mode))
            .collect(),
        _ => vec![Dim::Unknown; spatial.len()],
    }
}

/// The kernel: attribute `kernel_shape`, else the weight's dims after the first two.
fn kernel(cx: &Cx, w: Option<&[Dim]>) -> Option<Vec<i64>> {
    cx.attr_ints("kernel_shape").or_else(|| {
        w?.get(2..)?
            .iter()
            .map(|d| d.known().and_then(|k| i64::try_from(k).ok()))
            .collect()
    })
}

/// `Conv`, `ConvInteger`, `QLinearConv`: `[N, M, out…]` with `M` the weight's first dim.
pub fn conv(cx: &Cx) -> Inferred {
    let (w_at, dtype) = match cx.node.op_type() {
        "ConvInteger" => (1, Some(DataType::INT32)),
        "QLinearConv" => (3, cx.dtype(7)),
        _ => (1, cx.dtype(0)),
    };
    let (x, w) = (cx.dims(0), cx.dims(w_at));
    let Some(x) = x.filter(|x| x.len() >= 2) else {
        return Inferred::one(ValueShape { dtype, dims: None });
    };
    let m = w.and_then(|w| w.first().cloned()).unwrap_or(Dim::Unknown);
    let spatial = match kernel(cx, w) {
        Some(k) => spatial_out(cx, x, &k, false),
        None => vec![Dim::Unknown; x.len() - 2],
    };
    let mut dims = vec![x[0].clone(), m];
    dims.extend(spatial);
    Inferred::one(ValueShape::new(dtype, dims))
}

/// `ConvTranspose`: `[N, W[1]·group, out…]`, `out = stride·(in−1) + output_padding +
/// (k−1)·dilation + 1 − pads`, or `output_shape` when given.
pub fn conv_transpose(cx: &Cx) -> Inferred {
    let (x, w) = (cx.dims(0), cx.dims(1));
    let Some(x) = x.filter(|x| x.len() >= 2) else {
        return Inferred::one(cx.like0(None));
    };
    let group = u64::try_from(cx.attr_int("group", 1)).unwrap_or(0);
    let m = match w.and_then(|w| w.get(1)) {
        Some(Dim::Known(c)) => c.checked_mul(group).map_or(Dim::Unknown, Dim::Known),
        _ => Dim::Unknown,
    };
    let n = x.len() - 2;
    let spatial = match (cx.attr_ints("output_shape"), kernel(cx, w)) {
        (Some(out), _) if out.len() >= n => out[out.len() - n..]
            .iter()
            .map(|&d| Dim::from_i64(d))
            .collect(),
        (_, Some(k)) => transpose_spatial(cx, &x[2..], &k),
        _ => vec![Dim::Unknown; n],
    };
    let mut dims = vec![x[0].clone(), m];
    dims.extend(spatial);
    Inferred::one(cx.like0(Some(dims)))
}

fn transpose_spatial(cx: &Cx, spatial: &[Dim], kernel: &[i64]) -> Vec<Dim> {
    let auto_pad = cx.attr_str("auto_pad").unwrap_or_default();
    let out_pad = cx.attr_ints("output_padding").unwrap_or_default();
    let Some(ax) = axes(cx, kernel).filter(|a| a.len() == spatial.len()) else {
        return vec![Dim::Unknown; spatial.len()];
    };
    spatial
        .iter()
        .zip(ax)
        .enumerate()
        .map(|(i, (d, a))| {
            let op = out_pad.get(i).copied().unwrap_or(0);
            let (pb, pe) = if auto_pad == "VALID" {
                (0, 0)
            } else {
                (a.pad_begin, a.pad_end)
            };
            let same = auto_pad.starts_with("SAME");
            let grow = || {
                a.effective_kernel()?
                    .checked_add(op)?
                    .checked_sub(pb)?
                    .checked_sub(pe)
            };
            match d {
                Dim::Known(n) => i64::try_from(*n)
                    .ok()
                    .and_then(|n| {
                        if same {
                            n.checked_mul(a.stride)
                        } else {
                            a.stride
                                .checked_mul(n.checked_sub(1)?)?
                                .checked_add(grow()?)
                        }
                    })
                    .map_or(Dim::Unknown, Dim::from_i64),
                Dim::Symbolic(_) if a.stride == 1 && (same || grow() == Some(1)) => d.clone(),
                _ => Dim::Unknown,
            }
        })
        .collect()
}

/// `MaxPool`, `AveragePool`, `LpPool`: `[N, C, out…]` (`MaxPool`'s indices alike, i64).
pub fn pool(cx: &Cx) -> Inferred {
    let Some(x) = cx.dims(0).filter(|x| x.len() >= 2) else {
        return Inferred::one(cx.like0(None));
    };
    let ceil_mode = cx.attr_int("ceil_mode", 0) != 0;
    let spatial = match cx.attr_ints("kernel_shape") {
        Some(k) => spatial_out(cx, x, &k, ceil_mode),
        None => vec![Dim::Unknown; x.len() - 2],
    };
    let mut dims = x[..2].to_vec();
    dims.extend(spatial);
    Inferred::many(vec![
        cx.like0(Some(dims.clone())),
        ValueShape::new(Some(DataType::INT64), dims),
    ])
}

/// `GlobalAveragePool` and friends: `[N, C, 1, …]`.
pub fn global_pool(cx: &Cx) -> Inferred {
    let dims = cx.dims(0).filter(|x| x.len() >= 2).map(|x| {
        let mut d = x[..2].to_vec();
        d.extend(std::iter::repeat_n(Dim::Known(1), x.len() - 2));
        d
    });
    Inferred::one(cx.like0(dims))
}

/// Output dims of a matrix product (numpy `matmul`: a 1-D operand is promoted to a
/// matrix and the added axis removed again; batch dims broadcast).
pub fn matmul_dims(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let one = Dim::Known(1);
    let a2: Vec<Dim> = if a.len() == 1 {
        vec![one.clone(), a[0].clone()]
    } else {
        a.to_vec()
    };
    let b2: Vec<Dim> = if b.len() == 1 {
        vec![b[0].clone(), one]
    } else {
        b.to_vec()
    };
    let mut out = broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    if a.len() > 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if b.len() > 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Some(out)
}

/// `MatMul`, `MatMulInteger` (i32 result), `QLinearMatMul` (operands 0 and 3).
pub fn matmul(cx: &Cx) -> Inferred {
    let (b_at, dtype) = match cx.node.op_type() {
        "MatMulInteger" => (1, Some(DataType::INT32)),
        "QLinearMatMul" => (3, cx.dtype(7)),
        _ => (1, cx.dtype(0)),
    };
    let dims = match (cx.dims(0), cx.dims(b_at)) {
        (Some(a), Some(b)) => matmul_dims(a, b),
        _ => None,
    };
    Inferred::one(ValueShape { dtype, dims })
}

/// `Gemm`: `[M, N]` from `A` (`[M,K]`, or `[K,M]` with `transA`) and `B` (`[K,N]` / `[N,K]`).
pub fn gemm(cx: &Cx) -> Inferred {
    let dims = match (cx.dims(0), cx.dims(1)) {
        (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
            let m = if cx.attr_int("transA", 0) != 0 {
                &a[1]
            } else {
                &a[0]
            };
            let n = if cx.attr_int("transB", 0) != 0 {
                &b[0]
            } else {
                &b[1]
            };
            Some(vec![m.clone(), n.clone()])
        }
        _ => None,
    };
    Inferred::one(cx.like0(dims))
}
