//! The numeric side of `quantize`, through whittle-runtime: activation statistics over the
//! calibration set (handed to the pass as plain data), and the error of the quantized model
//! against the float one, per quantized layer and at the outputs.
//!
//! Per-layer errors read the layers' output values out of both models (values the two
//! graphs share by name) over the first [`LAYER_SAMPLES`] calibration samples; output errors
//! use the whole set.
use super::super::backend_args::BackendArgs;
use anyhow::{Context, Result};
use std::path::Path;
use whittle_ir::Model;
use whittle_passes::quantize::{
    self, CalibrationData, Histogram, QuantizeOptions, QuantizeReport, Status, ValueStats,
};
use whittle_runtime::model::{
    BatchOptions, Dataset, Runner, Taps, collect_stats, collect_tensors,
    compare_models, input_specs, slice_axis0,
};
use whittle_runtime::{StatsConfig, Tolerance, read_npz};

/// Samples the per-layer comparison reads (layer values of every sample are held at once).
pub const LAYER_SAMPLES: usize = 16;

/// Error of the quantized model against the float model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorReport {
    pub backend: &'static str,
    pub samples: usize,
    pub layer_samples: usize,
    pub outputs: Vec<ValueError>,
    /// Quantized layers, in graph order.
    pub layers: Vec<ValueError>,
}

/// How far one value of the quantized model is from the float model's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValueError {
    /// The node (layers) or output name.
    pub name: String,
    pub value: String,
    /// SNR in dB; null when the two are equal.
    pub snr_db: Option<f64>,
    pub max_abs: f64,
    pub mean_abs: f64,
    pub cosine: f64,
    /// Share of rows whose argmax agrees (class-score shaped outputs).
    pub top1_agreement: Option<f64>,
}

fn value_error(name: String, value: String, m: &whittle_runtime::Metrics) -> ValueError {
    ValueError {
        name,
        value,
        snr_db: m.snr_db.is_finite().then_some(m.snr_db),
        max_abs: m.max_abs,
        mean_abs: m.mean_abs,
        cosine: m.cosine,
        top1_agreement: m.top1_agreement,
    }
}

fn dataset(model: &Model, path: &Path, backend: &BackendArgs, limit: Option<usize>) -> Result<Dataset> {
    let specs = input_specs(model)?;
    let mut arrays = read_npz(path)?;
    if let Some(n) = limit {
        for (_, t) in arrays.iter_mut() {
            if t.shape().first().is_some_and(|&rows| rows > n) {
                *t = slice_axis0(t, 0, n, false).map_err(anyhow::Error::msg)?;
            }
        }
    }
    Dataset::from_arrays(&specs, &arrays, &backend.overrides()?, &BatchOptions::default())
        .with_context(|| format!("{}: cannot feed the model", path.display()))
}

/// Statistics of the values the pass asks for, over the calibration set.
pub fn statistics(
    model: &Model,
    opts: &QuantizeOptions,
    path: &Path,
    backend: &BackendArgs,
    notes: &mut Vec<String>,
) -> Result<CalibrationData> {
    let targets = quantize::calibration_targets(model, opts);
    let data = dataset(model, path, backend, None)?;
    notes.extend(data.notes.iter().cloned());
    let (rt, threads) = backend.backend()?;
    let stats = collect_stats(
        model,
        &Taps::Values(targets.clone()),
        &data,
        rt.as_ref(),
        threads,
        &StatsConfig::default(),
        None,
    )
    .with_context(|| format!("{}: calibration failed", path.display()))?;
    notes.push(format!(
        "calibrated {} values on {} samples of {} ({})",
        targets.len(),
        data.samples(),
        path.display(),
        rt.name()
    ));
    let mut out = CalibrationData::default();
    for s in stats {
        let sum = s.summary();
        let histogram = s.histogram().map(|h| Histogram {
            lo: h.lo,
            width: h.width,
            counts: h.counts.clone(),
        });
        out.values.insert(
            s.name().to_string(),
            ValueStats {
                min: if sum.count > 0 { sum.min } else { 0.0 },
                max: if sum.count > 0 { sum.max } else { 0.0 },
                histogram,
            },
        );
    }
    Ok(out)
}

/// Runs both models on the calibration set and measures the quantized one's error.
pub fn measure(
    float_model: &Model,
    quantized: &Model,
    report: &QuantizeReport,
    path: &Path,
    backend: &BackendArgs,
    notes: &mut Vec<String>,
) -> Result<ErrorReport> {
    let (rt, threads) = backend.backend()?;
    let data = dataset(float_model, path, backend, None)?;
    let qdata = dataset(quantized, path, backend, None)?;
    let r = Runner::for_dataset(float_model, None, rt.as_ref(), &data)?;
    let c = Runner::for_dataset(quantized, None, rt.as_ref(), &qdata)
        .context("cannot run the quantized model to measure its error")?;
    notes.extend(c.file().notes.iter().map(|n| format!("quantized model: {n}")));
    let loose = Tolerance {
        atol: f64::INFINITY,
        rtol: 0.0,
        min_cosine: -1.0,
    };
    let cmp = compare_models(&r, &data, &c, &qdata, &loose, threads, None)?;
    let outputs = cmp
        .outputs
        .iter()
        .map(|o| value_error(o.output.clone(), o.candidate_output.clone(), &o.metrics))
        .collect();
    let layers_of: Vec<(String, String)> = report
        .nodes
        .iter()
        .filter(|n| n.status == Status::Quantized && !n.node.contains('/'))
        .filter_map(|n| Some((n.node.clone(), n.output.clone()?)))
        .filter(|(_, v)| produced(float_model, v) && produced(quantized, v))
        .collect();
    let small = dataset(float_model, path, backend, Some(LAYER_SAMPLES))?;
    let qsmall = dataset(quantized, path, backend, Some(LAYER_SAMPLES))?;
    let names: Vec<String> = layers_of.iter().map(|(_, v)| v.clone()).collect();
    let mut layers = Vec::new();
    if !names.is_empty() {
        let taps = Taps::Values(names);
        let a = collect_tensors(float_model, &taps, &small, rt.as_ref(), threads, None)?;
        let b = collect_tensors(quantized, &taps, &qsmall, rt.as_ref(), threads, None)?;
        for ((node, value), ((_, x), (_, y))) in layers_of.into_iter().zip(a.iter().zip(&b)) {
            let m = whittle_runtime::compare(&value, x, y)?;
            layers.push(value_error(node, value, &m));
        }
    }
    Ok(ErrorReport {
        backend: cmp.backend,
        samples: cmp.samples,
        layer_samples: small.samples(),
        outputs,
        layers,
    })
}

/// Whether a main-graph node of `m` produces `value`.
fn produced(m: &Model, value: &str) -> bool {
    m.graph.nodes().any(|(_, n)| n.outputs().iter().any(|o| o == value))
}
