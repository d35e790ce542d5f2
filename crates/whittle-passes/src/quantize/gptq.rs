//! `--gptq`: weight rounding that compensates each rounding error with the weights not yet
//! rounded (Frantar et al., "GPTQ", 2022), from the second moments of the layer's inputs on
//! the calibration set. Round-to-nearest minimises ‖W − Q‖ per weight; GPTQ minimises the
//! layer's output error ‖(W − Q) X‖ over the calibration inputs X, which is what the model
//! sees. On PP-OCRv4 rec, weight-only int8 per-channel goes from 15.8 to 24.3 dB SNR on text
//! lines like its calibration set (`bench/quantize_variants.py`).
//!
//! Invariants:
//! - the format does not change: the scales and zero points are the round-to-nearest ones
//!   (from the weight's own min/max; per channel, per block along the reduction axis or per
//!   tensor), only which integer each weight gets differs, so every value is still in range
//!   and the file has the same size and DequantizeLinear form;
//! - rows (output channels) are independent given H = Σ x xᵀ, so they are rounded in
//!   parallel and the result does not depend on the thread count;
//! - H is damped by [`DAMP`] × mean(diag H) (the GPTQ default); an input that is zero on
//!   every calibration row (diag 0) gets a unit diagonal, so its weights are rounded to
//!   nearest and neither give nor take compensation;
//! - the calibration inputs are the float model's (no layer sees quantized upstream layers).
//!
//! The data side: [`targets`] names the layers and what to read; the CLI streams each
//! layer's input through [`accumulate`] into a [`LayerHessian`] and hands the finished ones
//! in through [`super::CalibrationData::hessians`].
use super::QuantizeOptions;
use super::candidates::{self, Candidate, WEIGHT_OPS};
use super::scheme::{self, QuantType};
use super::weights::{self, Layout, Quantized};
use crate::cleanup::scope::GraphCx;
use crate::im2col;
use nalgebra::{Cholesky, DMatrix};
use rayon::prelude::*;
use whittle_ir::Model;

/// Damping of H, relative to its mean diagonal (the reference implementation's default).
pub const DAMP: f64 = 0.01;

/// Why a quantized weight without input moments was rounded to nearest.
pub const NOT_COVERED: &str = "no input moments: GPTQ covers main-graph Conv (1-D/2-D), Gemm \
    (transA = 0) and MatMul with a 2-D weight";

/// How a layer turns its input into rows of features (one row per output position).
#[derive(Clone, Debug, PartialEq)]
pub enum Rows {
    /// Gemm (transA = 0) / MatMul: the input's last axis, one row per leading position.
    Dense,
    /// 2-D Conv (1-D as height 1): im2col patches per group, `(C/g)·kh·kw` features in
    /// weight order.
    Conv {
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        /// Pads `[top, left, bottom, right]`, or `None` for SAME_* (derived from the sizes).
        pads: Option<[usize; 4]>,
        same_upper: bool,
        group: usize,
    },
}

/// A layer whose weight GPTQ can round.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub node: String,
    pub weight: String,
    /// The value the layer reads.
    pub input: String,
    pub rows: Rows,
    /// The weight's output axis: 0 (Conv, Gemm with transB) or 1 (MatMul, Gemm).
    pub output_axis: usize,
    /// Features per group (the size of each H).
    pub features: usize,
    pub groups: usize,
}

/// Σ x xᵀ of one layer's input rows, one matrix per group, and how many rows went in.
#[derive(Clone, Debug)]
pub struct LayerHessian {
    pub groups: Vec<DMatrix<f64>>,
    pub rows: u64,
    pub output_axis: usize,
    /// The factors GPTQ steps with, computed once from the finished sums (bias correction
    /// and the rewrite both round the weight).
    factors: std::sync::OnceLock<Option<Vec<DMatrix<f64>>>>,
}

impl PartialEq for LayerHessian {
    fn eq(&self, other: &Self) -> bool {
        (&self.groups, self.rows, self.output_axis)
            == (&other.groups, other.rows, other.output_axis)
    }
}

impl LayerHessian {
    pub fn new(t: &Target) -> LayerHessian {
        LayerHessian {
            groups: vec![DMatrix::zeros(t.features, t.features); t.groups],
            rows: 0,
            output_axis: t.output_axis,
            factors: std::sync::OnceLock::new(),
        }
    }

    /// The upper factors U of every group (see [`inverse_factor`]), each stored transposed
    /// so that row j of U — what rounding column j subtracts from the rest — is one
    /// contiguous column (nalgebra is column-major: reading U's row would stride by d and
    /// miss the cache on every element). `None` when one is not positive definite.
    /// Computed on first use: add no rows after that.
    fn factors(&self) -> Option<&Vec<DMatrix<f64>>> {
        self.factors
            .get_or_init(|| {
                self.groups
                    .iter()
                    .map(|h| inverse_factor(h).map(|u| u.transpose()))
                    .collect()
            })
            .as_ref()
    }

    /// Bytes the matrices take (to budget how many layers are read in one pass).
    pub fn bytes(t: &Target) -> usize {
        t.groups * t.features * t.features * 8
    }
}

/// The main-graph layers weight mode will quantize whose weights GPTQ can round, in node
/// order. Weights in Constant nodes count as the quantizer will see them (as initializers).
pub fn targets(model: &Model, opts: &QuantizeOptions) -> Vec<Target> {
    let m = super::as_rewritten(model, opts);
    let g = &m.graph;
    let cx = GraphCx::main(&m);
    let mut out = Vec::new();
    for (pos, (ix, n)) in g.nodes().enumerate() {
        let label = candidates::node_label("", n, pos);
        let Some(Ok(c)) = candidates::examine(g, &cx, ix, label, opts, WEIGHT_OPS) else {
            continue;
        };
        let Some(input) = n.inputs().first().filter(|i| !i.is_empty()) else {
            continue;
        };
        // MatMulNBits replaces MatMuls only: the other layers stay float.
        if opts.format == super::Format::OrtNbits && n.op_type() != "MatMul" {
            continue;
        }
        if let Some(t) = target_of(n, &c, input) {
            out.push(t);
        }
    }
    out
}

fn target_of(n: &whittle_ir::Node, c: &Candidate, input: &str) -> Option<Target> {
    if n.inputs().get(1).map(String::as_str) != Some(c.weight.as_str()) {
        return None;
    }
    let dims = &c.dims;
    let (rows, output_axis, features, groups) = match n.op_type() {
        "Conv" if dims.len() == 4 || dims.len() == 3 => {
            let group = usize::try_from(n.attr_int("group").unwrap_or(1)).ok()?;
            if group == 0 || !dims[0].is_multiple_of(group) {
                return None;
            }
            // A 1-D Conv is a 2-D one of height 1.
            let one_d = dims.len() == 3;
            let pair = |name: &str, default: usize| match (n.attr_ints(name), one_d) {
                (None, _) => Some([default; 2]),
                (Some([a, b]), false) if *a >= 0 && *b >= 0 => Some([*a as usize, *b as usize]),
                (Some([a]), true) if *a >= 0 => Some([default, *a as usize]),
                _ => None,
            };
            let auto = n.attribute("auto_pad").and_then(|a| a.proto.s.as_deref());
            let (pads, same_upper) = match auto.unwrap_or(b"NOTSET") {
                b"SAME_UPPER" => (None, true),
                b"SAME_LOWER" => (None, false),
                b"VALID" => (Some([0; 4]), false),
                _ => match n.attr_ints("pads") {
                    None => (Some([0; 4]), false),
                    Some(p) if p.iter().any(|&v| v < 0) => return None,
                    Some(&[t, l, b, r]) if !one_d => {
                        (Some([t, l, b, r].map(|v| v as usize)), false)
                    }
                    Some(&[b, e]) if one_d => (Some([0, b as usize, 0, e as usize]), false),
                    Some(_) => return None,
                },
            };
            let kernel = if one_d {
                [1, dims[2]]
            } else {
                [dims[2], dims[3]]
            };
            let rows = Rows::Conv {
                kernel,
                strides: pair("strides", 1)?,
                dilations: pair("dilations", 1)?,
                pads,
                same_upper,
                group,
            };
            (rows, 0, dims[1] * kernel[0] * kernel[1], group)
        }
        "Gemm" if dims.len() == 2 && n.attr_int("transA").unwrap_or(0) == 0 => {
            let trans_b = n.attr_int("transB").unwrap_or(0) != 0;
            if trans_b {
                (Rows::Dense, 0, dims[1], 1)
            } else {
                (Rows::Dense, 1, dims[0], 1)
            }
        }
        "MatMul" if dims.len() == 2 => (Rows::Dense, 1, dims[0], 1),
        _ => return None,
    };
    Some(Target {
        node: c.entry.node.clone(),
        weight: c.weight.clone(),
        input: input.to_string(),
        rows,
        output_axis,
        features,
        groups,
    })
}

/// Adds the rows of one batch of the layer's input (`x`, row-major, shape `shape`) to `h`,
/// at most `max_positions` evenly spaced output positions per sample (Conv) or rows per
/// sample (Dense), the same ones for every sample.
pub fn accumulate(
    t: &Target,
    h: &mut LayerHessian,
    x: &[f32],
    shape: &[usize],
    max_positions: usize,
) -> Result<(), String> {
    if shape.iter().product::<usize>() != x.len() {
        return Err(format!(
            "{}: input has {} values for shape {shape:?}",
            t.node,
            x.len()
        ));
    }
    match &t.rows {
        Rows::Dense => {
            let d = t.features;
            if shape.last() != Some(&d) {
                return Err(format!(
                    "{}: input shape {shape:?} does not end in {d}",
                    t.node
                ));
            }
            let n = x.len() / d.max(1);
            let take = spaced(
                n,
                max_positions.max(1) * shape.first().copied().unwrap_or(1),
            );
            let rows: Vec<f64> = take
                .iter()
                .flat_map(|&r| x[r * d..(r + 1) * d].iter().map(|&v| f64::from(v)))
                .collect();
            add_gram(&mut h.groups[0], &rows, d);
            h.rows += take.len() as u64;
        }
        Rows::Conv {
            kernel,
            strides,
            dilations,
            pads,
            same_upper,
            group,
        } => {
            let (n, c, ih, iw) = match *shape {
                [n, c, ih, iw] => (n, c, ih, iw),
                [n, c, len] if kernel[0] == 1 => (n, c, 1, len),
                _ => {
                    return Err(format!(
                        "{}: input shape {shape:?} does not fit the Conv",
                        t.node
                    ));
                }
            };
            if c != t.features / (kernel[0] * kernel[1]) * group {
                return Err(format!(
                    "{}: input has {c} channels, the weight expects {}",
                    t.node,
                    t.features / (kernel[0] * kernel[1]) * group
                ));
            }
            let span = |k: usize, d: usize| (k - 1) * d + 1;
            // (begin, end) pads per axis; SAME_* has none until the size is known.
            let out = |i: usize, k: usize, s: usize, d: usize, p: Option<(usize, usize)>| match p {
                Some((b, e)) => (i + b + e).checked_sub(span(k, d)).map(|v| v / s + 1),
                None => Some(i.div_ceil(s)),
            };
            let (p0, p1) = (pads.map(|p| (p[0], p[2])), pads.map(|p| (p[1], p[3])));
            let (Some(oh), Some(ow)) = (
                out(ih, kernel[0], strides[0], dilations[0], p0),
                out(iw, kernel[1], strides[1], dilations[1], p1),
            ) else {
                return Ok(());
            };
            if oh == 0 || ow == 0 {
                return Ok(());
            }
            let window = im2col::Window {
                kernel: *kernel,
                strides: *strides,
                dilations: *dilations,
            };
            let begin = match pads {
                Some(p) => [p[0], p[1]],
                None => window.same_begin(*same_upper, [ih, iw], [oh, ow]),
            };
            let cg = c / group;
            let positions = spaced(oh * ow, max_positions.max(1));
            let d = t.features;
            let mut patches = Vec::with_capacity(positions.len() * d);
            let mut rows = Vec::with_capacity(positions.len() * d);
            for s in 0..n {
                let sample = &x[s * c * ih * iw..(s + 1) * c * ih * iw];
                for (gi, hg) in h.groups.iter_mut().enumerate() {
                    patches.clear();
                    for &p in &positions {
                        let at = [p / ow, p % ow];
                        window.patch(
                            sample,
                            [ih, iw],
                            gi * cg..(gi + 1) * cg,
                            begin,
                            at,
                            &mut patches,
                        );
                    }
                    rows.clear();
                    rows.extend(patches.iter().map(|&v| f64::from(v)));
                    add_gram(hg, &rows, d);
                }
                h.rows += positions.len() as u64;
            }
        }
    }
    Ok(())
}

/// `h += Xᵀ X` for `x` holding rows of `d` features, row-major — one matrix product read
/// in place through strides (nalgebra would need X and a transposed copy as matrices).
fn add_gram(h: &mut DMatrix<f64>, x: &[f64], d: usize) {
    let rows = x.len() / d.max(1);
    if rows == 0 || h.nrows() != d || h.ncols() != d {
        return;
    }
    let c = h.as_mut_slice();
    // SAFETY: Xᵀ is d × rows with strides (1, d) and X is rows × d with strides (d, 1),
    // both inside `x` (rows · d elements); H is d × d column-major (strides 1, d) inside
    // `c`, which does not overlap `x`.
    unsafe {
        matrixmultiply::dgemm(
            d,
            rows,
            d,
            1.0,
            x.as_ptr(),
            1,
            d as isize,
            x.as_ptr(),
            d as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            1,
            d as isize,
        );
    }
}

/// `count` indices spread evenly over `0..n` (all of them when `n <= count`).
fn spaced(n: usize, count: usize) -> Vec<usize> {
    if n <= count {
        return (0..n).collect();
    }
    (0..count).map(|k| k * n / count).collect()
}

/// Re-rounds `q` (round-to-nearest of `values`, shape `dims`, parameters per `layout`) with
/// GPTQ against `h`. Only the integers and the dequantized values change.
pub fn round(
    values: &[f32],
    dims: &[usize],
    layout: Layout,
    t: QuantType,
    h: &LayerHessian,
    q: &mut Quantized,
) -> Result<(), String> {
    let len = values.len();
    let (rows, d) = match (h.output_axis, dims) {
        (0, [m, ..]) if *m > 0 => (*m, len / m),
        (1, [k, n]) => (*n, *k),
        _ => return Err(format!("weight dims {dims:?} do not fit the layer")),
    };
    let groups = h.groups.len();
    if rows * d != len || groups == 0 || rows % groups != 0 {
        return Err(format!(
            "weight dims {dims:?} do not split into {groups} groups"
        ));
    }
    if h.groups.iter().any(|g| g.nrows() != d) {
        return Err(format!(
            "the calibration gives {} features, the weight has {d}",
            h.groups[0].nrows()
        ));
    }
    if h.rows == 0 {
        return Err("no calibration rows reached the layer".into());
    }
    let index = |r: usize, j: usize| {
        if h.output_axis == 0 {
            r * d + j
        } else {
            j * rows + r
        }
    };
    let group = weights::group_indices(dims, layout);
    let per_group = rows / groups;
    let factors = h
        .factors()
        .ok_or("the input moments are not positive definite")?;
    let rounded: Vec<Vec<(i32, f32)>> = (0..rows)
        .into_par_iter()
        .map(|r| {
            let ut = factors[r / per_group].as_slice();
            let mut w: Vec<f64> = (0..d).map(|j| f64::from(values[index(r, j)])).collect();
            let mut out = Vec::with_capacity(d);
            for j in 0..d {
                let p = q.params[group[index(r, j)]];
                let v = scheme::quantize_value(w[j] as f32, p, t);
                let dq = scheme::dequantize_value(v, p);
                out.push((v, dq));
                // Row j of U, contiguous (see `LayerHessian::factors`).
                let u_row = &ut[j * d..(j + 1) * d];
                let err = (w[j] - f64::from(dq)) / u_row[j];
                for (wk, uk) in w[j + 1..].iter_mut().zip(&u_row[j + 1..]) {
                    *wk -= err * uk;
                }
            }
            out
        })
        .collect();
    for (r, row) in rounded.into_iter().enumerate() {
        for (j, (v, dq)) in row.into_iter().enumerate() {
            q.values[index(r, j)] = v;
            q.dequantized[index(r, j)] = dq;
        }
    }
    Ok(())
}

/// The upper Cholesky factor U of (H + damping)⁻¹ = Uᵀ U, the matrix GPTQ steps with. Inputs
/// never seen (diag 0) get a unit diagonal so the matrix stays definite.
///
/// Without forming the inverse: with J the reversal permutation and J H J = L Lᵀ,
/// H⁻¹ = (J L⁻¹ J)ᵀ (J L⁻¹ J) and J L⁻¹ J is upper triangular with a positive diagonal, so
/// it *is* U — one Cholesky and one triangular inverse (⅔ d³, see [`cholesky_inverse`])
/// instead of two Cholesky factorisations and a full inverse (≈ 2 d³).
fn inverse_factor(h: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let d = h.nrows();
    let mean = (0..d).map(|i| h[(i, i)]).sum::<f64>() / d.max(1) as f64;
    let damp = if mean > 0.0 { DAMP * mean } else { 1.0 };
    let reversed = DMatrix::from_fn(d, d, |i, j| {
        let (a, b) = (d - 1 - i, d - 1 - j);
        let mut v = h[(a, b)];
        if a == b {
            if v <= 0.0 {
                v = 1.0;
            }
            v += damp;
        }
        v
    });
    let l_inv = cholesky_inverse(&reversed)?;
    let u = DMatrix::from_fn(d, d, |i, j| l_inv[(d - 1 - i, d - 1 - j)]);
    u.iter().all(|v| v.is_finite()).then_some(u)
}

/// Below this size a block is factorised element by element (nalgebra); above it, halved.
const LEAF: usize = 96;

/// L⁻¹ for the lower Cholesky factor L of `a` (symmetric positive definite; only its lower
/// triangle is read), by halves: with `a = [[A11, ·], [A21, A22]]`,
/// `L11⁻¹` of A11, `L21 = A21 L11⁻ᵀ`, `L22⁻¹` of the Schur complement `A22 − L21 L21ᵀ`,
/// and `(L⁻¹)21 = −L22⁻¹ L21 L11⁻¹`. Nearly all of the d³/3 multiply-adds are then matrix
/// products (matrixmultiply's blocked kernels) instead of nalgebra's column-by-column
/// factorisation and solves. `None` when `a` is not positive definite.
fn cholesky_inverse(a: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let n = a.nrows();
    if n <= LEAF {
        let l = Cholesky::new(a.clone())?.unpack();
        let mut inv = DMatrix::identity(n, n);
        return l.solve_lower_triangular_mut(&mut inv).then_some(inv);
    }
    let (h, rest) = (n / 2, n - n / 2);
    let i11 = cholesky_inverse(&a.view((0, 0), (h, h)).into_owned())?;
    let l21 = a.view((h, 0), (rest, h)) * i11.transpose();
    let mut schur = a.view((h, h), (rest, rest)).into_owned();
    schur.gemm(-1.0, &l21, &l21.transpose(), 1.0);
    let i22 = cholesky_inverse(&schur)?;
    let i21 = -(&i22 * (&l21 * &i11));
    let mut inv = DMatrix::zeros(n, n);
    inv.view_mut((0, 0), (h, h)).copy_from(&i11);
    inv.view_mut((h, 0), (rest, h)).copy_from(&i21);
    inv.view_mut((h, h), (rest, rest)).copy_from(&i22);
    Some(inv)
}

/// The quantized weight of `c` (`values`): round-to-nearest, then GPTQ when `hessian` is
/// given and the layout keeps one scale per output row, per block of a row, or per tensor.
/// Says whether GPTQ
/// was applied (or why not).
pub fn quantize_weight(
    values: &[f32],
    c: &Candidate,
    opts: &QuantizeOptions,
    round_to: fn(f32) -> f32,
    hessian: Option<&LayerHessian>,
) -> (Quantized, Result<bool, String>) {
    let mut q = super::weight_mode::quantize_candidate(values, c, opts, round_to);
    let Some(h) = hessian else {
        return (q, Ok(false));
    };
    // Blocks run along a reduction axis (`candidates::layout_for`), so like per-channel and
    // per-tensor scales they stay fixed while a row is rounded column by column.
    let fits = match c.layout {
        Layout::PerTensor | Layout::Blocked { .. } => true,
        Layout::PerAxis { axis } => axis == h.output_axis,
    };
    if !fits {
        return (
            q,
            Err("GPTQ needs scales per output channel, per block or per tensor".into()),
        );
    }
    let outcome = round(values, &c.dims, c.layout, opts.weight_type, h, &mut q);
    if outcome.is_ok() {
        for v in q.dequantized.iter_mut() {
            *v = round_to(*v);
        }
    }
    (q, outcome.map(|()| true))
}

#[cfg(test)]
pub(super) fn inverse_factor_for_tests(h: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    inverse_factor(h)
}

#[cfg(test)]
mod tests;
