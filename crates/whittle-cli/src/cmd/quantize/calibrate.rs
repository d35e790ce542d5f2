//! The numeric side of `quantize`, through whittle-runtime: activation statistics over the
//! calibration set (handed to the pass as plain data), and the error of the quantized model
//! against the float one, per quantized layer and at the outputs.
//!
//! Per-layer errors read the layers' output values out of both models (values the two
//! graphs share by name) over the first [`LAYER_SAMPLES`] calibration samples; output errors
//! use the whole set.
use super::super::backend_args::BackendArgs;
use crate::cmd::eval::progress_bar;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use whittle_ir::Model;
use whittle_passes::quantize::{
    self, CalibMethod, CalibrationData, Histogram, QuantizeOptions, QuantizeReport, Status,
    ValueStats, derive_range,
};
use whittle_runtime::model::BackendKind;
use whittle_runtime::model::{
    BatchOptions, Dataset, Runner, Taps, collect_stats, collect_tensors, compare_models,
    input_specs, slice_axis0,
};
use whittle_runtime::{NamedTensor, RunningStats, StatsConfig, Tolerance, read_npz};

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

/// The calibration file read — and the onnxruntime library loaded — on a background
/// thread started before the model is loaded and cleaned up: neither depends on the model,
/// and on a small model they are a fifth of the time before the first calibration run.
pub struct Prefetch(Option<std::thread::JoinHandle<Result<Vec<NamedTensor>>>>);

impl Prefetch {
    /// Starts reading `path`; with `--runtime onnxruntime`, loads the library too (once per
    /// process: the backend built later finds it loaded; a failure is reported there).
    pub fn start(path: &Path, backend: &BackendArgs) -> Prefetch {
        let (path, backend) = (path.to_path_buf(), backend.clone());
        let job = move || {
            if backend.kind() == BackendKind::Ort {
                let _ = backend.backend();
            }
            Ok(read_npz(&path)?)
        };
        // Without a thread the file is read when it is needed, as before.
        Prefetch(
            std::thread::Builder::new()
                .name("whittle-prefetch".into())
                .spawn(job)
                .ok(),
        )
    }

    /// Nothing read ahead: [`Prefetch::arrays`] reads the file.
    pub fn none() -> Prefetch {
        Prefetch(None)
    }

    /// The arrays of `path` (the file the prefetch was started with); errors name the file.
    pub fn arrays(mut self, path: &Path) -> Result<Vec<NamedTensor>> {
        match self.0.take() {
            Some(job) => job
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the calibration file panicked"))),
            None => Ok(read_npz(path)?),
        }
    }
}

impl Drop for Prefetch {
    /// A command that fails before calibrating still waits for the thread, so the process
    /// never exits while it is inside the runtime library's initialisation.
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            let _ = job.join();
        }
    }
}

pub fn dataset(
    model: &Model,
    path: &Path,
    backend: &BackendArgs,
    limit: Option<usize>,
) -> Result<Dataset> {
    dataset_from(model, Prefetch::none(), path, backend, limit)
}

/// [`dataset`] from arrays that may have been read ahead.
fn dataset_from(
    model: &Model,
    prefetch: Prefetch,
    path: &Path,
    backend: &BackendArgs,
    limit: Option<usize>,
) -> Result<Dataset> {
    let specs = input_specs(model)?;
    let mut arrays = prefetch.arrays(path)?;
    if let Some(n) = limit {
        for (_, t) in arrays.iter_mut() {
            if t.shape().first().is_some_and(|&rows| rows > n) {
                *t = slice_axis0(t, 0, n, false).map_err(anyhow::Error::msg)?;
            }
        }
    }
    // Enough runs to keep every worker busy (batch-1 runs side by side beat one big batch
    // on CNNs); at most the default batch.
    let rows = arrays
        .iter()
        .filter_map(|(_, t)| t.shape().first().copied())
        .max()
        .unwrap_or(1);
    let batch = BatchOptions {
        max_batch: rows
            .div_ceil(backend.workers())
            .clamp(1, BatchOptions::default().max_batch),
    };
    Dataset::from_arrays(&specs, &arrays, &backend.overrides()?, &batch)
        .with_context(|| format!("{}: cannot feed the model", path.display()))
}

/// Statistics of the values the pass asks for, over the calibration set.
pub fn statistics(
    model: &Model,
    opts: &QuantizeOptions,
    path: &Path,
    prefetch: Prefetch,
    backend: &BackendArgs,
    quiet: bool,
    notes: &mut Vec<String>,
) -> Result<CalibrationData> {
    let targets = quantize::calibration_targets(model, opts);
    // Graph inputs are read straight from the data; the rest comes out of the model.
    let inputs: Vec<String> = model.graph.input_names().map(String::from).collect();
    let (fed, computed): (Vec<String>, Vec<String>) =
        targets.iter().cloned().partition(|t| inputs.contains(t));
    let minmax = opts.calib_method == CalibMethod::MinMax;
    let derivation =
        (minmax && !computed.is_empty()).then(|| derive_range::plan(model, &computed, &fed));
    // onnxruntime does not specialise a model to input shapes, so the sessions of the
    // min/max run are built while the calibration set is read (tract needs its shapes).
    let early = derivation
        .as_ref()
        .filter(|_| backend.kind() == BackendKind::Ort)
        .map(|(measured, _)| measured);
    let (data, early) = std::thread::scope(|scope| {
        let job =
            early.map(|measured| scope.spawn(|| MinMaxRun::start(model, measured, backend, None)));
        let data = dataset_from(model, prefetch, path, backend, None);
        let early = job.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "building the calibration sessions panicked"
                ))
            })
        });
        (data, early)
    });
    let data = data?;
    notes.extend(data.notes.iter().cloned());
    let early = early.transpose()?;
    // The histogram methods read whole activations through `collect_stats`.
    let (rt, threads) = if derivation.is_none() && !computed.is_empty() {
        let (rt, threads) = backend.backend()?;
        (Some(rt), threads)
    } else {
        (None, 0)
    };
    let mut out = CalibrationData::default();
    let mut stats = Vec::new();
    for name in &fed {
        let tensors = data
            .batches()
            .iter()
            .filter_map(|b| b.iter().find(|(n, _)| n == name).map(|(_, t)| t));
        if minmax {
            // No histogram to fill: a plain pass over the data.
            out.values.insert(name.clone(), finite_range(tensors));
            continue;
        }
        let mut s = RunningStats::new(name, StatsConfig::default())?;
        for t in tensors {
            s.update(t)?;
        }
        stats.push(s);
    }
    let mut derived_count = 0;
    let mut runtime = "";
    if let Some((measured, derived)) = &derivation {
        // Min/max needs no histogram: a plain f32 reduction, far cheaper per element; and
        // what follows exactly from other ranges is not measured at all.
        let run = match early {
            Some(run) => run,
            None => MinMaxRun::start(model, measured, backend, Some(&data))?,
        };
        runtime = run.backend;
        let mut ranges: HashMap<String, (f64, f64)> = out
            .values
            .iter()
            .map(|(k, v)| (k.clone(), (v.min, v.max)))
            .collect();
        let bar = progress_bar(data.samples() as u64, quiet);
        ranges.extend(run.ranges(measured, &data, &bar)?);
        bar.finish_and_clear();
        crate::deferred::drop_later(run);
        derive_range::apply(derived, &mut ranges);
        derived_count = derived.len();
        for name in &computed {
            let (min, max) = ranges.get(name).copied().unwrap_or((0.0, 0.0));
            out.values.insert(
                name.clone(),
                ValueStats {
                    min,
                    max,
                    histogram: None,
                },
            );
        }
    } else if let (false, Some(rt)) = (computed.is_empty(), &rt) {
        runtime = rt.name();
        stats.extend(
            collect_stats(
                model,
                &Taps::Values(computed),
                &data,
                rt.as_ref(),
                threads,
                &StatsConfig::default(),
                None,
            )
            .with_context(|| format!("{}: calibration failed", path.display()))?,
        );
    }
    let derived_note = if derived_count > 0 {
        format!(", {derived_count} of them derived from others' min/max instead of measured")
    } else {
        String::new()
    };
    notes.push(format!(
        "calibrated {} values on {} samples of {} ({}){derived_note}",
        targets.len(),
        data.samples(),
        path.display(),
        if runtime.is_empty() {
            "read from the data"
        } else {
            runtime
        }
    ));
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

/// Per-channel means of the layer inputs `--bias-correction` needs, into `out.means`.
pub fn means(
    model: &Model,
    opts: &QuantizeOptions,
    path: &Path,
    backend: &BackendArgs,
    out: &mut CalibrationData,
    notes: &mut Vec<String>,
) -> Result<()> {
    use quantize::bias_correct::FeatureAxis;
    use whittle_runtime::model::{ChannelAxis, collect_channel_means};
    let targets: Vec<(String, ChannelAxis)> = quantize::mean_targets(model, opts)
        .into_iter()
        .map(|t| {
            let axis = match t.axis {
                FeatureAxis::Axis(a) => ChannelAxis::Axis(a),
                FeatureAxis::Last => ChannelAxis::Last,
            };
            (t.value, axis)
        })
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let data = dataset(model, path, backend, None)?;
    let (rt, threads) = backend.backend()?;
    let means = collect_channel_means(model, &targets, &data, rt.as_ref(), threads, None)
        .with_context(|| format!("{}: measuring layer input means failed", path.display()))?;
    notes.push(format!(
        "bias correction: means of {} layer inputs over {} samples ({})",
        targets.len(),
        data.samples(),
        rt.name()
    ));
    for ((name, _), m) in targets.into_iter().zip(means) {
        out.means.insert(name, m);
    }
    Ok(())
}

/// Min and max of `xs` ignoring NaN (a comparison with NaN is false), over 16 independent
/// lanes so the compiler vectorises it; infinities are included.
fn lane_range(xs: &[f32]) -> (f32, f32) {
    const LANES: usize = 16;
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            if c[k] < lo[k] {
                lo[k] = c[k];
            }
            if c[k] > hi[k] {
                hi[k] = c[k];
            }
        }
    }
    for (k, &x) in rest.iter().enumerate() {
        if x < lo[k] {
            lo[k] = x;
        }
        if x > hi[k] {
            hi[k] = x;
        }
    }
    let fold = |v: [f32; LANES], f: fn(f32, f32) -> f32, start: f32| v.into_iter().fold(start, f);
    (
        fold(lo, f32::min, f32::INFINITY),
        fold(hi, f32::max, f32::NEG_INFINITY),
    )
}

/// Min and max of the finite values of `tensors` (0, 0 when there are none), no histogram.
fn finite_range<'a>(tensors: impl Iterator<Item = &'a whittle_runtime::HostTensor>) -> ValueStats {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for t in tensors {
        if let Some(xs) = t.as_slice::<f32>() {
            let (a, b) = match lane_range(xs) {
                // Infinities took part: redo it without them (rare, so slow is fine).
                (a, b) if !a.is_finite() || !b.is_finite() => xs
                    .iter()
                    .filter(|x| x.is_finite())
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    }),
                r => r,
            };
            (lo, hi) = (lo.min(a as f64), hi.max(b as f64));
        } else {
            for x in t.to_f64_vec().into_iter().filter(|x| x.is_finite()) {
                (lo, hi) = (lo.min(x), hi.max(x));
            }
        }
    }
    let (min, max) = if lo <= hi { (lo, hi) } else { (0.0, 0.0) };
    ValueStats {
        min,
        max,
        histogram: None,
    }
}

/// `model` with a ReduceMin and a ReduceMax (all axes, scalar) of every value in `names`
/// as extra outputs `NAME.min` / `NAME.max` — what onnxruntime's calibrator does, so each run
/// returns two scalars per value instead of the whole activation.
fn with_min_max(model: &Model, names: &[String]) -> (Model, Vec<(String, String)>) {
    use whittle_ir::proto::{NodeProto, TypeProto, ValueInfoProto, type_proto};
    let mut m = model.clone();
    let mut taken: std::collections::HashSet<String> =
        whittle_passes::cleanup::scope::all_names(&m.graph);
    let mut pairs = Vec::new();
    let mut reductions = Vec::new();
    for name in names {
        let mut outs = Vec::new();
        for op in ["ReduceMin", "ReduceMax"] {
            let out = whittle_passes::cleanup::scope::unique_name(
                &mut taken,
                &format!("{name}.{}", &op[6..].to_lowercase()),
            );
            reductions.push(whittle_ir::Node {
                proto: NodeProto {
                    name: Some(format!("{out}_{op}")),
                    op_type: Some(op.into()),
                    input: vec![name.clone()],
                    output: vec![out.clone()],
                    ..Default::default()
                },
                attributes: vec![whittle_passes::cleanup::attrs::int_attribute("keepdims", 0)],
            });
            m.graph.proto.output.push(ValueInfoProto {
                name: Some(out.clone()),
                r#type: Some(TypeProto {
                    value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                        elem_type: Some(1),
                        shape: None,
                    })),
                    ..Default::default()
                }),
                ..Default::default()
            });
            outs.push(out);
        }
        pairs.push((outs[0].clone(), outs[1].clone()));
    }
    m.graph.push_nodes(reductions);
    (m, pairs)
}

/// The model with min/max reductions, loaded and ready to run over the calibration set.
struct MinMaxRun {
    runner: Option<Runner>,
    pairs: Vec<(String, String)>,
    threads: usize,
    backend: &'static str,
}

impl MinMaxRun {
    /// Chooses the backend and loads the augmented model; `data` gives the input shapes to
    /// backends that specialise on them (`None` is fine for onnxruntime).
    fn start(
        model: &Model,
        names: &[String],
        backend: &BackendArgs,
        data: Option<&Dataset>,
    ) -> Result<MinMaxRun> {
        let (rt, threads) = backend.backend()?;
        let mut run = MinMaxRun {
            runner: None,
            pairs: Vec::new(),
            threads,
            backend: rt.name(),
        };
        if names.is_empty() {
            return Ok(run);
        }
        let (augmented, pairs) = with_min_max(model, names);
        run.runner = Some(match data {
            Some(data) => Runner::for_dataset(&augmented, None, rt.as_ref(), data)?,
            None => Runner::load(&augmented, None, rt.as_ref(), &[])?,
        });
        run.pairs = pairs;
        Ok(run)
    }

    /// Min and max of `names` (the values the run was started with, in order) over the
    /// dataset; (0, 0) for a value that never had a finite range.
    fn ranges(
        &self,
        names: &[String],
        data: &Dataset,
        bar: &indicatif::ProgressBar,
    ) -> Result<Vec<(String, (f64, f64))>> {
        let Some(runner) = &self.runner else {
            return Ok(Vec::new());
        };
        let mut range: Vec<(f64, f64)> = vec![(f64::INFINITY, f64::NEG_INFINITY); names.len()];
        runner.for_each_run(data, self.threads, None, |k, outputs| {
            // One lookup table per run: a linear search per value is quadratic in the values.
            let by_name: HashMap<&str, &whittle_runtime::HostTensor> =
                outputs.iter().map(|(o, t)| (o.as_str(), t)).collect();
            let scalar = |n: &str| by_name.get(n).and_then(|t| t.to_f64_vec().first().copied());
            for (slot, (lo, hi)) in range.iter_mut().zip(&self.pairs) {
                if let (Some(a), Some(b)) = (scalar(lo), scalar(hi)) {
                    *slot = (slot.0.min(a), slot.1.max(b));
                }
            }
            bar.inc(data.sample_ranges()[k].len() as u64);
            Ok(())
        })?;
        Ok(range
            .into_iter()
            .zip(names)
            .map(|((lo, hi), name)| {
                let r = if lo <= hi && lo.is_finite() && hi.is_finite() {
                    (lo, hi)
                } else {
                    (0.0, 0.0)
                };
                (name.clone(), r)
            })
            .collect())
    }
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
    let lowered = c.file().notes.len();
    if lowered > 0 {
        notes.push(format!(
            "the quantized model was lowered for {} to measure it ({lowered} steps: constant DequantizeLinear folded, …)",
            rt.name()
        ));
    }
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
    m.graph
        .nodes()
        .any(|(_, n)| n.outputs().iter().any(|o| o == value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use whittle_runtime::HostTensor;

    #[test]
    fn finite_range_skips_nan_and_infinities_in_every_lane() {
        // 37 values: two full chunks of 16 and a remainder; extremes in the remainder.
        let mut xs: Vec<f32> = (0..37).map(|k| (k as f32 - 18.0) * 0.5).collect();
        xs[3] = f32::NAN;
        xs[36] = -20.0;
        let a = HostTensor::from_vec(vec![37], xs.clone()).unwrap();
        let r = finite_range([&a].into_iter());
        assert_eq!((r.min, r.max), (-20.0, 8.5));
        xs[0] = f32::INFINITY;
        xs[17] = f32::NEG_INFINITY;
        let b = HostTensor::from_vec(vec![37], xs).unwrap();
        let c = HostTensor::from_vec(vec![2], vec![30.0f32, -1.0]).unwrap();
        let r = finite_range([&b, &c].into_iter());
        assert_eq!((r.min, r.max), (-20.0, 30.0));
        let nothing = HostTensor::from_vec(vec![1], vec![f32::NAN]).unwrap();
        let r = finite_range([&nothing].into_iter());
        assert_eq!((r.min, r.max), (0.0, 0.0));
    }
}
