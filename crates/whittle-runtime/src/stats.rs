//! Running statistics of one tensor over many batches (activation calibration).
//!
//! Invariants and definitions:
//! - Values are taken as f64 ([`HostTensor::to_f64_vec`]). NaN and ±inf are counted in
//!   `nonfinite` and otherwise ignored (they would make every range infinite).
//! - `min`, `max` and `mean_abs = Σ|x| / count` are exact over all finite values seen.
//! - The histogram has a fixed, even number of bins of equal width over `[lo, top]`
//!   (bins half-open, the last one closed). The first batch sets `lo = min`, `top = max`.
//!   When a later value falls outside, the range *doubles* — downward (keeping `top`) when
//!   something is below `lo`, otherwise upward (keeping `lo`) — until everything fits. A
//!   doubling merges pairs of adjacent bins, so no count is ever split or interpolated: the
//!   histogram stays exact for its (coarser) bins, up to float rounding at bin edges. The
//!   price is resolution: after k doublings the bins are 2^k times wider than the first
//!   batch's. Feeding a representative batch first (or the whole range) keeps them fine.
//! - Per-channel statistics (optional axis) keep min/max/mean|x| per index along that
//!   axis; every batch must have the same size along it.

use crate::tensor::HostTensor;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("tensor \"{name}\": histogram needs an even, non-zero number of bins, got {bins}")]
    BadBins { name: String, bins: usize },
    #[error("tensor \"{name}\": channel axis {axis} but the batch has rank {rank}")]
    AxisOutOfRange {
        name: String,
        axis: usize,
        rank: usize,
    },
    #[error(
        "tensor \"{name}\": {expected} channels along axis {axis} so far, this batch has {got}"
    )]
    ChannelCountChanged {
        name: String,
        axis: usize,
        expected: usize,
        got: usize,
    },
}

/// What to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsConfig {
    /// Histogram bins (even, ≥ 2). Default 2048.
    pub bins: usize,
    /// Also keep per-channel min/max/mean|x| along this axis.
    pub channel_axis: Option<usize>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            bins: 2048,
            channel_axis: None,
        }
    }
}

/// min / max / Σ|x| / count of a set of finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub min: f64,
    pub max: f64,
    pub sum_abs: f64,
    pub count: u64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum_abs: 0.0,
            count: 0,
        }
    }
}

impl Summary {
    fn add(&mut self, x: f64) {
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.sum_abs += x.abs();
        self.count += 1;
    }

    /// Mean of |x|; 0 when empty.
    pub fn mean_abs(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_abs / self.count as f64
        }
    }
}

/// Equal-width bins over `[lo, lo + counts.len()·width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub lo: f64,
    pub width: f64,
    pub counts: Vec<u64>,
    /// How many of the values in the last bin sit exactly on the top edge (kept so an
    /// upward doubling can move them to the bin that starts there).
    at_top: u64,
}

impl Histogram {
    fn new(lo: f64, hi: f64, bins: usize) -> Self {
        let fallback = lo.abs().max(1.0) / 1024.0 / bins as f64;
        let width = (hi - lo) / bins as f64;
        Histogram {
            lo,
            // a single value (or a range too narrow for the bins) gets a small, non-zero span
            width: if width > 0.0 { width } else { fallback },
            counts: vec![0; bins],
            at_top: 0,
        }
    }

    /// Upper edge of the last bin.
    pub fn top(&self) -> f64 {
        self.lo + self.counts.len() as f64 * self.width
    }

    /// Bin edges, `counts.len() + 1` of them.
    pub fn edges(&self) -> Vec<f64> {
        (0..=self.counts.len())
            .map(|k| self.lo + k as f64 * self.width)
            .collect()
    }

    fn index(&self, x: f64) -> usize {
        let k = ((x - self.lo) / self.width).floor();
        (k.max(0.0) as usize).min(self.counts.len() - 1)
    }

    fn add(&mut self, x: f64) {
        let k = self.index(x);
        self.counts[k] += 1;
        if x == self.top() {
            self.at_top += 1;
        }
    }

    /// Doubles the range until `[min, max]` fits (see the module docs).
    fn grow_to(&mut self, min: f64, max: f64) {
        let n = self.counts.len();
        while min < self.lo || max > self.top() {
            if !(self.width.is_finite() && self.width > 0.0) {
                break;
            }
            let mut merged = vec![0u64; n];
            if min < self.lo {
                // keep top: old bin j lands in (n + j) / 2
                for (j, &c) in self.counts.iter().enumerate() {
                    merged[(n + j) / 2] += c;
                }
                self.lo -= n as f64 * self.width;
                self.width *= 2.0;
            } else {
                // keep lo: old bins 2k, 2k+1 land in k; values on the old top move up
                let old_top = self.top();
                let moved = std::mem::take(&mut self.at_top);
                self.counts[n - 1] -= moved;
                for (j, &c) in self.counts.iter().enumerate() {
                    merged[j / 2] += c;
                }
                self.width *= 2.0;
                self.counts = merged;
                let k = self.index(old_top);
                self.counts[k] += moved;
                continue;
            }
            self.counts = merged;
        }
    }
}

/// Running statistics of one tensor (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStats {
    name: String,
    config: StatsConfig,
    overall: Summary,
    nonfinite: u64,
    histogram: Option<Histogram>,
    channels: Vec<Summary>,
}

impl RunningStats {
    /// `name` labels errors (the tensor's graph name).
    pub fn new(name: &str, config: StatsConfig) -> Result<Self, StatsError> {
        if config.bins == 0 || !config.bins.is_multiple_of(2) {
            return Err(StatsError::BadBins {
                name: name.to_string(),
                bins: config.bins,
            });
        }
        Ok(RunningStats {
            name: name.to_string(),
            config,
            overall: Summary::default(),
            nonfinite: 0,
            histogram: None,
            channels: Vec::new(),
        })
    }

    /// Folds one batch in.
    pub fn update(&mut self, batch: &HostTensor) -> Result<(), StatsError> {
        let channel_of = self.channel_layout(batch.shape())?;
        let values = batch.to_f64_vec();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (i, &x) in values.iter().enumerate() {
            if !x.is_finite() {
                self.nonfinite += 1;
                continue;
            }
            lo = lo.min(x);
            hi = hi.max(x);
            self.overall.add(x);
            if let Some((inner, n)) = channel_of {
                self.channels[(i / inner) % n].add(x);
            }
        }
        if lo > hi {
            return Ok(()); // nothing finite in this batch
        }
        let bins = self.config.bins;
        let hist = self
            .histogram
            .get_or_insert_with(|| Histogram::new(lo, hi, bins));
        hist.grow_to(lo, hi);
        values
            .iter()
            .filter(|x| x.is_finite())
            .for_each(|&x| hist.add(x));
        Ok(())
    }

    /// `(inner size, channel count)` for the per-channel axis, creating the channels on the
    /// first batch.
    fn channel_layout(&mut self, shape: &[usize]) -> Result<Option<(usize, usize)>, StatsError> {
        let Some(axis) = self.config.channel_axis else {
            return Ok(None);
        };
        let Some(&n) = shape.get(axis) else {
            return Err(StatsError::AxisOutOfRange {
                name: self.name.clone(),
                axis,
                rank: shape.len(),
            });
        };
        if self.overall.count == 0 && self.channels.is_empty() {
            self.channels = vec![Summary::default(); n];
        } else if self.channels.len() != n {
            return Err(StatsError::ChannelCountChanged {
                name: self.name.clone(),
                axis,
                expected: self.channels.len(),
                got: n,
            });
        }
        let inner = shape[axis + 1..].iter().product::<usize>().max(1);
        Ok((n > 0).then_some((inner, n)))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// min/max/mean|x| over every finite value seen.
    pub fn summary(&self) -> &Summary {
        &self.overall
    }
    /// Count of NaN/±inf values skipped.
    pub fn nonfinite(&self) -> u64 {
        self.nonfinite
    }
    /// None until a batch with a finite value arrives.
    pub fn histogram(&self) -> Option<&Histogram> {
        self.histogram.as_ref()
    }
    /// One summary per channel (empty without a channel axis).
    pub fn channels(&self) -> &[Summary] {
        &self.channels
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
