//! Error metrics between a reference output and a candidate output of the same shape.
//!
//! All arithmetic is in f64 after [`HostTensor::to_f64_vec`]. Definitions, with
//! `e_i = |r_i − c_i|` over the n elements:
//! - `max_abs = max e_i`, `mean_abs = Σ e_i / n` (0 for empty tensors).
//! - `max_rel = max e_i / d_i` with `d_i = max(|r_i|, 1e-6 · max_j |r_j|)`: relative to the
//!   reference value, but never to a value below a millionth of the tensor's largest
//!   magnitude, so exact zeros (ReLU outputs) do not turn a 1e-9 wobble into infinity.
//!   When `d_i = 0` (an all-zero reference): 0 if `e_i = 0`, else +inf.
//! - `cosine = Σ r·c / (‖r‖·‖c‖)`; both vectors all-zero → 1; exactly one all-zero → 0.
//! - `snr_db = 10·log10(Σ r² / Σ (r − c)²)`; +inf when identical, −inf when the reference
//!   is all zero and the candidate is not.
//! - NaN and infinities: a position where both sides are NaN, or both are the same infinity,
//!   counts as equal (error 0). A position where exactly one side is NaN, or an infinity
//!   meets anything else, is a *non-finite mismatch*: it is counted in
//!   `nonfinite_mismatches` and makes `max_abs`, `mean_abs` and `max_rel` +inf. Cosine and
//!   SNR are taken over the positions where both values are finite.
//! - Class scores: see [`topk`]; computed for float tensors shaped `[C]` or `[N, C]`, C ≥ 2.

pub mod topk;

#[cfg(test)]
mod tests;

use crate::tensor::{HostTensor, NamedTensor};

/// Relative-error floor as a fraction of the reference's largest magnitude.
pub const REL_FLOOR_FRACTION: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("output \"{output}\": reference shape {reference:?} but candidate shape {candidate:?}")]
    ShapeMismatch {
        output: String,
        reference: Vec<usize>,
        candidate: Vec<usize>,
    },
    #[error("output \"{output}\" is missing from the candidate outputs")]
    MissingOutput { output: String },
}

/// Everything measured between one reference and one candidate tensor. In JSON (serde),
/// infinite values (an SNR of two identical tensors) become `null`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub count: usize,
    pub max_abs: f64,
    pub mean_abs: f64,
    pub max_rel: f64,
    pub cosine: f64,
    pub snr_db: f64,
    /// Row-major index of the largest absolute error (None for empty tensors or no error).
    pub worst_index: Option<usize>,
    pub nonfinite_mismatches: usize,
    /// Fraction of rows whose argmax agrees (class-score shaped outputs only).
    pub top1_agreement: Option<f64>,
    /// Fraction of rows where the candidate's top-1 is among the reference's top-5.
    pub top5_containment: Option<f64>,
}

/// Compares two tensors; `output` names them in errors.
pub fn compare(
    output: &str,
    reference: &HostTensor,
    candidate: &HostTensor,
) -> Result<Metrics, MetricsError> {
    check_shapes(output, reference, candidate)?;
    let r = reference.to_f64_vec();
    let c = candidate.to_f64_vec();
    let mut m = compare_values(&r, &c);
    if reference.dtype().is_float()
        && let Some((rows, classes)) = topk::class_layout(reference.shape())
    {
        let agreement = topk::agreement(&r, &c, rows, classes);
        m.top1_agreement = Some(agreement.top1);
        m.top5_containment = Some(agreement.top5_containment);
    }
    Ok(m)
}

/// Compares every reference output with the candidate output of the same name, in
/// reference order.
pub fn compare_outputs(
    reference: &[NamedTensor],
    candidate: &[NamedTensor],
) -> Result<Vec<(String, Metrics)>, MetricsError> {
    reference
        .iter()
        .map(|(name, r)| {
            let c = candidate
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| MetricsError::MissingOutput {
                    output: name.clone(),
                })?;
            compare(name, r, c).map(|m| (name.clone(), m))
        })
        .collect()
}

fn check_shapes(output: &str, r: &HostTensor, c: &HostTensor) -> Result<(), MetricsError> {
    if r.shape() == c.shape() {
        Ok(())
    } else {
        Err(MetricsError::ShapeMismatch {
            output: output.to_string(),
            reference: r.shape().to_vec(),
            candidate: c.shape().to_vec(),
        })
    }
}

/// How one pair of values compares.
enum Pair {
    Equal,
    Finite(f64),
    NonFiniteMismatch,
}

fn classify(r: f64, c: f64) -> Pair {
    if r.is_nan() && c.is_nan() {
        Pair::Equal
    } else if r.is_finite() && c.is_finite() {
        Pair::Finite((r - c).abs())
    } else if r == c {
        Pair::Equal // the same infinity
    } else {
        Pair::NonFiniteMismatch
    }
}

/// The elementwise metrics over two equally long slices (top-k left as None).
pub fn compare_values(r: &[f64], c: &[f64]) -> Metrics {
    let scale = r
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    let floor = scale * REL_FLOOR_FRACTION;
    let (mut max_abs, mut sum_abs, mut max_rel) = (0.0f64, 0.0f64, 0.0f64);
    let mut worst_index = None;
    let (mut dot, mut rr, mut cc, mut noise) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut nonfinite = 0usize;
    for (i, (&a, &b)) in r.iter().zip(c).enumerate() {
        let e = match classify(a, b) {
            Pair::Equal => continue,
            Pair::NonFiniteMismatch => {
                nonfinite += 1;
                f64::INFINITY
            }
            Pair::Finite(e) => {
                dot += a * b;
                rr += a * a;
                cc += b * b;
                noise += e * e;
                e
            }
        };
        sum_abs += e;
        if e > max_abs {
            max_abs = e;
            worst_index = Some(i);
        }
        let d = a.abs().max(floor);
        let rel = if d > 0.0 && d.is_finite() {
            e / d
        } else if e == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        max_rel = max_rel.max(rel);
    }
    let n = r.len().min(c.len());
    Metrics {
        count: n,
        max_abs,
        mean_abs: if n == 0 { 0.0 } else { sum_abs / n as f64 },
        max_rel,
        cosine: cosine(dot, rr, cc),
        snr_db: snr_db(rr, noise),
        worst_index,
        nonfinite_mismatches: nonfinite,
        top1_agreement: None,
        top5_containment: None,
    }
}

fn cosine(dot: f64, rr: f64, cc: f64) -> f64 {
    match (rr == 0.0, cc == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        // sqrt(rr·cc) keeps identical vectors at exactly 1 (sqrt(fl(x²)) = |x| in IEEE
        // arithmetic); the split form only where the product would overflow. Clamp:
        // rounding can push |cos| a hair past 1.
        _ => {
            let norms = (rr * cc).sqrt();
            let norms = if norms.is_finite() {
                norms
            } else {
                rr.sqrt() * cc.sqrt()
            };
            (dot / norms).clamp(-1.0, 1.0)
        }
    }
}

fn snr_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else if signal == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// An allclose-style bound: every element must satisfy `|r − c| ≤ atol + rtol·|r|`
/// (NaN vs NaN passes, a non-finite mismatch fails), and the cosine similarity must be at
/// least `min_cosine`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
    pub min_cosine: f64,
}

/// The outcome of [`within_bounds`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BoundsReport {
    pub pass: bool,
    /// Elements outside `atol + rtol·|r|`.
    pub violations: usize,
    /// Row-major index of the first violating element.
    pub first_violation: Option<usize>,
    pub cosine: f64,
}

/// Checks `candidate` against `reference` under `tol`; `output` names them in errors.
pub fn within_bounds(
    output: &str,
    reference: &HostTensor,
    candidate: &HostTensor,
    tol: &Tolerance,
) -> Result<BoundsReport, MetricsError> {
    check_shapes(output, reference, candidate)?;
    let r = reference.to_f64_vec();
    let c = candidate.to_f64_vec();
    let mut violations = 0usize;
    let mut first_violation = None;
    for (i, (&a, &b)) in r.iter().zip(&c).enumerate() {
        let ok = match classify(a, b) {
            Pair::Equal => true,
            Pair::NonFiniteMismatch => false,
            Pair::Finite(e) => e <= tol.atol + tol.rtol * a.abs(),
        };
        if !ok {
            violations += 1;
            first_violation.get_or_insert(i);
        }
    }
    let cosine = compare_values(&r, &c).cosine;
    Ok(BoundsReport {
        pass: violations == 0 && cosine >= tol.min_cosine,
        violations,
        first_violation,
        cosine,
    })
}
