//! `whittle prune --criterion activation`: per-channel importance measured on calibration
//! data through the runtime (the pass itself never runs a model).
//!
//! Invariant: scores are keyed by each prunable group's `activation_value` (the value
//! carrying exactly that group's channels on axis 1), which is what
//! `Criterion::External` looks them up by.
use crate::cmd::backend_args::BackendArgs;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use whittle_ir::Model;
use whittle_passes::prune::analyse_model;
use whittle_runtime::StatsConfig;
use whittle_runtime::model::{Taps, collect_stats};

/// Mean |x| per channel (axis 1) of each prunable group's activation value over `calib`.
pub fn activation_scores(
    model: &Model,
    calib: &Path,
    backend: &BackendArgs,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let analysis = analyse_model(model);
    let values: Vec<String> = analysis
        .groups
        .iter()
        .filter(|g| g.blockers.is_empty())
        .filter_map(|g| g.activation_value.clone())
        .collect();
    if values.is_empty() {
        return Ok(BTreeMap::new());
    }
    let data = crate::cmd::quantize::calibrate::dataset(model, calib, backend, None)?;
    let (runtime, threads) = backend.backend()?;
    let config = StatsConfig {
        bins: 2,
        channel_axis: Some(1),
    };
    let stats = collect_stats(
        model,
        &Taps::Values(values),
        &data,
        runtime.as_ref(),
        threads,
        &config,
        None,
    )
    .context("cannot collect activation statistics")?;
    Ok(stats
        .iter()
        .map(|s| {
            let per_channel = s.channels().iter().map(|c| c.mean_abs() as f32).collect();
            (s.name().to_string(), per_channel)
        })
        .collect())
}
