//! The numbers in compress's before/after table, each measured the way the stand-alone
//! commands measure it: sizes and MACs as `inspect` counts them, latency as `bench` times
//! it (seeded inputs, 3 warm-up + 20 timed runs, median), accuracy as `eval` scores it and
//! agreement as `compare` measures it.
use super::super::backend_args::BackendArgs;
use super::super::eval::labelled_dataset;
use super::super::quantize::calibrate;
use anyhow::{Context, Result};
use whittle_ir::Model;
use whittle_ir::inspect::InspectReport;
use whittle_ir::shape::ShapeOverrides;
use whittle_runtime::bench::{BenchConfig, bench};
use whittle_runtime::inputs::{Dim, InputSpec};
use whittle_runtime::model::{
    BackendKind, BatchOptions, Dataset, Runner, compare_models, evaluate, input_specs,
};
use whittle_runtime::{InputFact, ShapeOverride, Tolerance, resolve_shapes, seeded_inputs};

/// Seeded samples compared when there is no calibration set.
const SEEDED_SAMPLES: usize = 16;

/// One side of the table.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Snapshot {
    pub file_bytes: u64,
    pub parameters: u64,
    /// Batch 1; null when some node's MACs are unknown.
    pub macs: Option<u64>,
    pub nodes: u64,
    /// Median latency in ms (tract, single sample).
    pub tract_ms: Option<f64>,
    /// Median latency in ms (onnxruntime, when its library is found).
    pub ort_ms: Option<f64>,
    /// Accuracy on `--eval` (0..1).
    pub accuracy: Option<f64>,
}

/// Parameters, MACs (batch 1 plus `--shape` overrides of whole inputs) and node count.
pub fn static_counts(model: &Model, backend: &BackendArgs, snap: &mut Snapshot) -> Result<()> {
    let inputs: Vec<&str> = model.graph.input_names().collect();
    let mut overrides = ShapeOverrides {
        batch: Some(1),
        ..Default::default()
    };
    for o in backend.overrides()? {
        if inputs.contains(&o.name.as_str()) {
            let dims = o.dims.iter().map(|&d| d as u64).collect();
            overrides.inputs.insert(o.name, dims);
        }
    }
    let r = InspectReport::new(model, &overrides).context("cannot count parameters and MACs")?;
    snap.parameters = r.parameters.total;
    snap.macs = r.macs.total;
    snap.nodes = r.nodes.total;
    Ok(())
}

/// Median latency of `model` on seeded inputs (as `whittle bench`) with `kind`; None when that runtime is
/// unavailable (onnxruntime without its library).
pub fn latency(model: &Model, backend: &BackendArgs, kind: BackendKind) -> Result<Option<f64>> {
    let specs = input_specs(model)?;
    let overrides = with_batch(&specs, backend.overrides()?, 1);
    let shapes = resolve_shapes(&specs, &overrides)?;
    let inputs = seeded_inputs(&specs, &shapes, 0)?;
    let rt = match backend.backend_with(kind, 1) {
        Ok(rt) => rt,
        Err(_) if kind == BackendKind::Ort => return Ok(None),
        Err(e) => return Err(e),
    };
    let facts: Vec<InputFact> = inputs.iter().map(|(n, t)| InputFact::of(n, t)).collect();
    let runner = Runner::load(model, None, rt.as_ref(), &[facts])?;
    let r = bench(runner.loaded_for(&inputs), &inputs, &BenchConfig::default())?;
    Ok(Some(r.median_ms))
}

/// Top-1 accuracy of `model` on the labelled set (as `whittle eval` computes it).
pub fn accuracy(model: &Model, eval: &std::path::Path, backend: &BackendArgs) -> Result<f64> {
    let (data, labels) = labelled_dataset(model, eval, None, "label", backend)?;
    let (rt, threads) = backend.backend()?;
    let runner = Runner::for_dataset(model, None, rt.as_ref(), &data)?;
    Ok(evaluate(&runner, &data, &labels, None, 1, threads, None)?.accuracy)
}

/// How close the compressed model's first output is to the original's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Agreement {
    /// `calibration set` or `seeded inputs`.
    pub inputs: String,
    pub samples: usize,
    pub top1_agreement: Option<f64>,
    pub cosine: f64,
    pub snr_db: Option<f64>,
}

/// The inputs both models are compared on: the calibration set when given, else 16
/// seeded samples (batch 1 each).
pub fn comparison_data(
    model: &Model,
    calib: Option<&std::path::Path>,
    backend: &BackendArgs,
) -> Result<(Dataset, String)> {
    if let Some(path) = calib {
        let data = calibrate::dataset(model, path, backend, None)?;
        let n = data.samples();
        return Ok((
            data,
            format!("calibration set {} ({n} samples)", path.display()),
        ));
    }
    let specs = input_specs(model)?;
    let overrides = with_batch(&specs, backend.overrides()?, SEEDED_SAMPLES);
    let mut shapes = resolve_shapes(&specs, &overrides)?;
    // A batch the user pinned with --shape (e.g. x=1x3x48x192) still gets 16 samples:
    // generated on axis 0 and run one batch at a time.
    for (spec, shape) in specs.iter().zip(&mut shapes) {
        if matches!(spec.dims.first(), Some(Dim::Symbolic(_) | Dim::Unknown))
            && let Some(first) = shape.first_mut()
            && *first == 1
        {
            *first = SEEDED_SAMPLES;
        }
    }
    let arrays = seeded_inputs(&specs, &shapes, 0)?;
    let data = Dataset::from_arrays(&specs, &arrays, &overrides, &BatchOptions::default())?;
    let n = data.samples();
    Ok((data, format!("{n} seeded samples (seed 0)")))
}

/// Output error of `candidate` against `reference` on `data` (both take the same inputs).
pub fn agreement(
    reference: &Model,
    candidate: &Model,
    data: &(Dataset, String),
    backend: &BackendArgs,
) -> Result<Agreement> {
    let (rt, threads) = backend.backend()?;
    let r = Runner::for_dataset(reference, None, rt.as_ref(), &data.0)?;
    let c = Runner::for_dataset(candidate, None, rt.as_ref(), &data.0)
        .context("cannot run the compressed model")?;
    let loose = Tolerance {
        atol: f64::INFINITY,
        rtol: 0.0,
        min_cosine: -1.0,
    };
    let cmp = compare_models(&r, &data.0, &c, &data.0, &loose, threads, None)?;
    let first = cmp
        .outputs
        .first()
        .context("the models have no outputs to compare")?;
    let m = &first.metrics;
    Ok(Agreement {
        inputs: data.1.clone(),
        samples: cmp.samples,
        top1_agreement: m.top1_agreement,
        cosine: m.cosine,
        snr_db: m.snr_db.is_finite().then_some(m.snr_db),
    })
}

/// `overrides` plus `N=n` for every symbolic leading dim the user did not fix.
fn with_batch(
    specs: &[InputSpec],
    mut overrides: Vec<ShapeOverride>,
    n: usize,
) -> Vec<ShapeOverride> {
    for s in specs {
        if let Some(Dim::Symbolic(sym)) = s.dims.first()
            && !overrides.iter().any(|o| &o.name == sym || o.name == s.name)
        {
            overrides.push(ShapeOverride {
                name: sym.clone(),
                dims: vec![n],
            });
        }
    }
    overrides
}

/// The bytes on disk of a model: its file plus its external-data files.
pub fn file_size(path: &std::path::Path, model: &Model) -> u64 {
    let len = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    len(path) + model.external_files().iter().map(|p| len(p)).sum::<u64>()
}

/// Counts and latencies of `model` (file bytes and accuracy are filled in by the caller).
/// A runtime that cannot time the model leaves its latency empty and says why in `notes`.
pub fn snapshot(model: &Model, backend: &BackendArgs, notes: &mut Vec<String>) -> Result<Snapshot> {
    let mut s = Snapshot::default();
    static_counts(model, backend, &mut s)?;
    for kind in [BackendKind::Tract, BackendKind::Ort] {
        let ms = match latency(model, backend, kind) {
            Ok(ms) => ms,
            Err(e) => {
                notes.push(format!(
                    "{}: latency not measured on {}: {}",
                    model.label(),
                    kind.label(),
                    crate::output::error_chain(&e)
                ));
                None
            }
        };
        match kind {
            BackendKind::Tract => s.tract_ms = ms,
            BackendKind::Ort => s.ort_ms = ms,
        }
    }
    Ok(s)
}

/// `backend` plus a `--shape` for every input whose dims the model leaves open and the user
/// did not fix, taken from the first of `data` files that holds an array for it (one
/// sample: batch 1). So a model declared `[batch, 3, height, width]` is timed and counted
/// at the size it is calibrated or evaluated on, instead of not at all. Returns the added
/// shapes (for a note) with the arguments.
pub fn with_data_shapes(
    model: &Model,
    backend: &BackendArgs,
    data: &[&std::path::Path],
) -> Result<(BackendArgs, Vec<String>)> {
    let specs = input_specs(model)?;
    let given = backend.overrides()?;
    let open: Vec<&InputSpec> = specs
        .iter()
        .filter(|s| s.dims.iter().skip(1).any(|d| !matches!(d, Dim::Fixed(_))))
        .filter(|s| !given.iter().any(|o| o.name == s.name))
        .collect();
    let mut out = backend.clone();
    let mut added = Vec::new();
    if open.is_empty() {
        return Ok((out, added));
    }
    let mut arrays = Vec::new();
    for path in data {
        arrays.extend(
            whittle_runtime::read_npz(path)
                .with_context(|| format!("{}: cannot read", path.display()))?,
        );
    }
    for spec in open {
        let Some((_, arr)) = arrays.iter().find(|(k, _)| *k == spec.name) else {
            continue;
        };
        let shape = arr.shape();
        let sample: Vec<usize> = match shape.len() {
            r if r == spec.dims.len() + 1 => shape[1..].to_vec(),
            r if r == spec.dims.len() && r > 0 => std::iter::once(1)
                .chain(shape[1..].iter().copied())
                .collect(),
            _ => continue,
        };
        let dims: Vec<String> = sample.iter().map(|d| d.to_string()).collect();
        let text = format!("{}={}", spec.name, dims.join("x"));
        out.shapes.push(text.clone());
        added.push(text);
    }
    Ok((out, added))
}
