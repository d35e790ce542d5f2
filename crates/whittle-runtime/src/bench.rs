//! Latency measurement of a loaded model.
//!
//! Definitions: `warmup` untimed runs, then `runs` timed runs, each timed with
//! `Instant` around one [`LoadedModel::run`] call (input conversion and output copies
//! included, as a caller sees them). Percentiles use the nearest-rank method on the sorted
//! samples: `p(q) = sorted[ceil(q·n) − 1]`; the median is `p(0.5)`.
//!
//! Peak memory is `VmHWM` from `/proc/self/status`: the high-water mark of the resident set
//! of the WHOLE PROCESS since it started — or since [`reset_peak_rss`] last reset it
//! (Linux: writing 5 to `/proc/self/clear_refs`), which is how a caller measuring several
//! backends in one process gives each its own peak (reset, load, run, read) — every
//! model, thread and allocation alive in that span, not this model alone. It is `None`
//! where `/proc` is unavailable (non-Linux).

use std::time::Instant;

use crate::backend::{BackendError, LoadedModel};
use crate::tensor::NamedTensor;

/// How many runs to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    pub warmup: usize,
    /// Timed runs; at least one is always made.
    pub runs: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            warmup: 3,
            runs: 20,
        }
    }
}

/// Latencies in milliseconds and the process's peak resident set size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchReport {
    pub backend: &'static str,
    pub runs: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Process-wide peak RSS in bytes (`VmHWM`), if readable.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `model` on `inputs` `warmup + runs` times and reports the timed runs.
pub fn bench(
    model: &dyn LoadedModel,
    inputs: &[NamedTensor],
    config: &BenchConfig,
) -> Result<BenchReport, BackendError> {
    for _ in 0..config.warmup {
        model.run(inputs)?;
    }
    let runs = config.runs.max(1);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        model.run(inputs)?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    Ok(BenchReport {
        backend: model.backend_name(),
        runs,
        min_ms: samples[0],
        median_ms: percentile(&samples, 0.5),
        p90_ms: percentile(&samples, 0.9),
        max_ms: samples[runs - 1],
        mean_ms: samples.iter().sum::<f64>() / runs as f64,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Nearest-rank percentile of sorted, non-empty samples (`q` in [0, 1]).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `VmHWM` of this process in bytes (see the module docs: process-wide).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// Resets the process's peak-RSS mark to its current RSS (Linux ≥ 4.0); false when the
/// kernel refuses or `/proc` is missing (then the peak stays process-wide).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let unit = match parts.next() {
        Some("kB") | None => 1024,
        Some("mB") | Some("MB") => 1024 * 1024,
        Some(_) => return None,
    };
    Some(value * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), 5.0); // ceil(5) = 5th
        assert_eq!(percentile(&s, 0.9), 9.0); // ceil(9) = 9th
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 1.0), 10.0);
        assert_eq!(percentile(&[3.0, 4.0, 8.0], 0.5), 4.0); // ceil(1.5) = 2nd
    }

    #[test]
    fn parses_vm_hwm() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 10 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 0);
        }
    }
}
