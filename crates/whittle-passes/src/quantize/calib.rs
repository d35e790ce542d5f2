//! Calibration statistics handed in by the caller (plain data: the passes never run a
//! model), and the methods that turn them into activation ranges.
//!
//! Definitions (histogram bins are taken at their centres):
//! - `minmax`: the observed `[min, max]`;
//! - `percentile p`: the values at the `(100-p)%` and `p%` points of the cumulative
//!   histogram (onnxruntime's rule), clamped to `[min, max]`;
//! - `entropy`: TensorRT's KL-divergence search on the histogram of `|x|` (2048 bins folded
//!   from the value histogram, 128 quantized bins): the threshold `T` whose clipped and
//!   quantized distribution is closest to the observed one; the range is `[min, max]`
//!   clipped to `[-T, T]`;
//! - `mse`: the range `[a·min, a·max]`, `a` in 100 steps over `(0, 1]`, whose quantize →
//!   dequantize error over the histogram (clipping included) is smallest.
//!
//! Every method falls back to min/max when the histogram is missing or empty, and every
//! range it returns lies within `[min, max]` (so never wider than what was seen).
use super::options::CalibMethod;
use super::scheme::{self, QuantType};
use std::collections::BTreeMap;

/// Equal-width histogram bins over `[lo, lo + counts.len()·width]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    pub lo: f64,
    pub width: f64,
    pub counts: Vec<u64>,
}

impl Histogram {
    fn centers(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(k, &c)| (self.lo + (k as f64 + 0.5) * self.width, c))
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What calibration saw of one value.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ValueStats {
    pub min: f64,
    pub max: f64,
    pub histogram: Option<Histogram>,
}

/// Statistics by value name.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CalibrationData {
    pub values: BTreeMap<String, ValueStats>,
    /// Per-channel means of layer inputs, for `--bias-correction`: one mean per index of the
    /// axis [`super::bias_correct::targets`] names for the value (all other axes averaged).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub means: BTreeMap<String, Vec<f64>>,
    /// Input second moments of layers for `--gptq`, by weight name ([`super::gptq`]).
    #[serde(skip)]
    pub hessians: BTreeMap<String, super::gptq::LayerHessian>,
}

/// The range `method` picks for a value quantized to `t`.
pub fn range(s: &ValueStats, method: CalibMethod, t: QuantType, symmetric: bool) -> (f64, f64) {
    let full = (s.min, s.max);
    let Some(h) = s
        .histogram
        .as_ref()
        .filter(|h| h.total() > 0 && h.width > 0.0)
    else {
        return full;
    };
    let (lo, hi) = match method {
        CalibMethod::MinMax => full,
        CalibMethod::Percentile { percentile } => percentile_range(h, percentile),
        CalibMethod::Entropy => {
            let t = entropy_threshold(h, s.min.abs().max(s.max.abs()));
            (-t, t)
        }
        CalibMethod::Mse => mse_range(h, s, t, symmetric),
    };
    (lo.max(s.min), hi.min(s.max))
}

fn percentile_range(h: &Histogram, p: f64) -> (f64, f64) {
    let total = h.total() as f64;
    let (lo_q, hi_q) = ((100.0 - p) / 100.0, p / 100.0);
    let (mut lo, mut hi) = (h.lo, h.lo + h.counts.len() as f64 * h.width);
    let mut acc = 0.0;
    let mut lo_set = false;
    for (k, &c) in h.counts.iter().enumerate() {
        acc += c as f64;
        let edge = h.lo + (k + 1) as f64 * h.width;
        if !lo_set && acc / total >= lo_q {
            lo = h.lo + k as f64 * h.width;
            lo_set = true;
        }
        if acc / total >= hi_q {
            hi = edge;
            break;
        }
    }
    (lo, hi)
}

/// The |x| histogram with `bins` bins over `[0, absmax]`, from the value histogram.
fn abs_histogram(h: &Histogram, absmax: f64, bins: usize) -> Vec<f64> {
    let mut out = vec![0.0; bins];
    if absmax <= 0.0 {
        return out;
    }
    for (c, n) in h.centers() {
        let k = ((c.abs() / absmax) * bins as f64) as usize;
        out[k.min(bins - 1)] += n as f64;
    }
    out
}

/// A normalised distribution with zeros replaced by `eps` (taken from the non-zero bins), as
/// onnxruntime's entropy calibrator smooths before the divergence.
fn smooth(p: &[f64]) -> Option<Vec<f64>> {
    const EPS: f64 = 1e-4;
    let total: f64 = p.iter().sum();
    let zeros = p.iter().filter(|&&x| x == 0.0).count();
    let nonzeros = p.len() - zeros;
    if total <= 0.0 || nonzeros == 0 {
        return None;
    }
    let eps1 = EPS * zeros as f64 / nonzeros as f64;
    Some(
        p.iter()
            .map(|&x| if x == 0.0 { EPS } else { x / total - eps1 })
            .collect(),
    )
}

fn kl(p: &[f64], q: &[f64]) -> f64 {
    let (Some(p), Some(q)) = (smooth(p), smooth(q)) else {
        return f64::INFINITY;
    };
    p.iter()
        .zip(&q)
        .map(|(a, b)| {
            if *a > 0.0 && *b > 0.0 {
                a * (a / b).ln()
            } else {
                0.0
            }
        })
        .sum()
}

/// TensorRT's entropy calibration on |x|: for each candidate threshold bin `i`, `p` is the
/// histogram up to `i` with the values beyond added to its last bin, `q` the histogram up to
/// `i` (without them) merged into 128 bins and spread back over its non-empty bins; the
/// threshold of the smallest divergence (the first on ties) wins.
fn entropy_threshold(h: &Histogram, absmax: f64) -> f64 {
    const BINS: usize = 2048;
    const QBINS: usize = 128;
    let hist = abs_histogram(h, absmax, BINS);
    let width = absmax / BINS as f64;
    let (mut best, mut best_kl) = (BINS, f64::INFINITY);
    for i in (QBINS..=BINS).step_by(16) {
        let sliced = &hist[..i];
        let mut p = sliced.to_vec();
        p[i - 1] += hist[i..].iter().sum::<f64>();
        let mut q = vec![0.0; i];
        for j in 0..QBINS {
            let (a, b) = (j * i / QBINS, ((j + 1) * i / QBINS).min(i));
            let sum: f64 = sliced[a..b].iter().sum();
            let nonzero = sliced[a..b].iter().filter(|&&x| x > 0.0).count();
            for k in a..b {
                if sliced[k] > 0.0 {
                    q[k] = sum / nonzero as f64;
                }
            }
        }
        let d = kl(&p, &q);
        if d < best_kl {
            best_kl = d;
            best = i;
        }
    }
    (best as f64 + 0.5) * width
}

fn mse_range(h: &Histogram, s: &ValueStats, t: QuantType, symmetric: bool) -> (f64, f64) {
    let error = |lo: f64, hi: f64| -> f64 {
        let p = scheme::params_for_range(lo as f32, hi as f32, t, symmetric, scheme::keep_f32);
        h.centers()
            .filter(|(_, n)| *n > 0)
            .map(|(x, n)| {
                let d = scheme::dequantize_value(scheme::quantize_value(x as f32, p, t), p);
                let e = x - f64::from(d);
                e * e * n as f64
            })
            .sum()
    };
    // Coordinate descent: the best top with the bottom at min, then the best bottom.
    let pick = |f: &dyn Fn(f64) -> f64| {
        let mut best = (1.0, f64::INFINITY);
        for step in 1..=100 {
            let a = step as f64 / 100.0;
            let e = f(a);
            if e < best.1 {
                best = (a, e);
            }
        }
        best.0
    };
    let a_hi = pick(&|a| error(s.min, a * s.max));
    let hi = a_hi * s.max;
    let a_lo = pick(&|a| error(a * s.min, hi));
    (a_lo * s.min, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f64], bins: usize) -> ValueStats {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let width = (max - min) / bins as f64;
        let mut counts = vec![0u64; bins];
        for &x in values {
            counts[(((x - min) / width) as usize).min(bins - 1)] += 1;
        }
        ValueStats {
            min,
            max,
            histogram: Some(Histogram {
                lo: min,
                width,
                counts,
            }),
        }
    }

    /// 10 000 values in [-1, 1] (each counted 10 000 times, so that a fine grid over the
    /// bulk matters more than the one outlier at 50 even for the squared error).
    fn with_outlier() -> ValueStats {
        let mut v: Vec<f64> = (0..10_000).map(|i| (i as f64 / 5_000.0) - 1.0).collect();
        v.push(50.0);
        let mut s = stats(&v, 2048);
        if let Some(h) = s.histogram.as_mut() {
            let last = h.counts.len() - 1;
            for (k, c) in h.counts.iter_mut().enumerate() {
                if k != last {
                    *c *= 10_000;
                }
            }
        }
        s
    }

    #[test]
    fn minmax_is_the_observed_range() {
        let s = with_outlier();
        assert_eq!(
            range(&s, CalibMethod::MinMax, QuantType::Uint8, false),
            (-1.0, 50.0)
        );
    }

    #[test]
    fn clipping_methods_drop_the_outlier() {
        let s = with_outlier();
        for m in [
            CalibMethod::Percentile { percentile: 99.9 },
            CalibMethod::Entropy,
            CalibMethod::Mse,
        ] {
            let (lo, hi) = range(&s, m, QuantType::Uint8, false);
            assert!(lo >= -1.0 && hi < 10.0 && hi > 0.5, "{m:?}: {lo}..{hi}");
        }
    }

    #[test]
    fn no_histogram_falls_back_to_minmax() {
        let s = ValueStats {
            min: -2.0,
            max: 3.0,
            histogram: None,
        };
        assert_eq!(
            range(&s, CalibMethod::Entropy, QuantType::Uint8, false),
            (-2.0, 3.0)
        );
    }
}
