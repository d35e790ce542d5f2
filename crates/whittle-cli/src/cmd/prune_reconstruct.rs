//! `whittle prune --reconstruct`: after channels are removed, re-fit the consumer layers of
//! the pruned groups by least squares on the calibration set (see
//! `whittle_passes::prune::reconstruct` for the math and its invariants).
//!
//! The data side lives here: for each layer, in node order, the layer's input is read from
//! the *current* pruned model (earlier re-fits included, so their remaining error is
//! compensated downstream) and its output from the *original* model, batch by batch; only
//! the normal equations are kept between batches.
use crate::cmd::backend_args::BackendArgs;
use crate::cmd::eval::progress_bar;
use crate::cmd::quantize::calibrate;
use anyhow::{Context, Result};
use std::path::Path;
use whittle_ir::Model;
use whittle_passes::prune::reconstruct::{Batch, Layer, NormalEquations, SkippedLayer, consumers};
use whittle_passes::prune::{GroupOutcome, analyse_model};
use whittle_runtime::HostTensor;
use whittle_runtime::model::{Dataset, ModelError, Runner, with_outputs};

/// At most this many output positions per sample feed the fit (evenly spaced).
const MAX_POSITIONS: usize = 256;
/// Layers with more unknowns per output than this are skipped (XᵀX grows as its square).
const MAX_UNKNOWNS: usize = 8192;

/// How the fit went for one layer, on the calibration rows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerFit {
    pub node: String,
    pub op: String,
    pub rows: u64,
    /// Weights (+ bias) per output.
    pub unknowns: usize,
    pub outputs: usize,
    /// ‖output − original output‖ / ‖original output‖ with the pruned weights.
    pub error_before: f64,
    /// The same with the re-fitted weights.
    pub error_after: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ReconstructReport {
    pub calib: String,
    pub ridge: f64,
    pub backend: &'static str,
    pub layers: Vec<LayerFit>,
    pub skipped: Vec<SkippedLayer>,
}

/// Re-fits the consumers of the groups `outcomes` pruned, writing into `pruned`.
pub fn reconstruct(
    original: &Model,
    pruned: &mut Model,
    outcomes: &[GroupOutcome],
    calib: &Path,
    ridge: f64,
    backend: &BackendArgs,
    quiet: bool,
) -> Result<ReconstructReport> {
    let analysis = analyse_model(original);
    let (layers, mut skipped) = consumers(original, &analysis, outcomes);
    let data = calibrate::dataset(original, calib, backend, None)?;
    let (runtime, threads) = backend.backend()?;
    let mut report = ReconstructReport {
        calib: calib.display().to_string(),
        ridge,
        backend: runtime.name(),
        layers: Vec::new(),
        skipped: Vec::new(),
    };
    if layers.is_empty() {
        report.skipped = skipped;
        return Ok(report);
    }
    let targets: Vec<String> = layers.iter().map(|l| l.output.clone()).collect();
    let reference = Runner::for_dataset(
        &with_outputs(original, &targets)?,
        None,
        runtime.as_ref(),
        &data,
    )
    .context("cannot run the original model")?;
    let bar = progress_bar((layers.len() * data.samples()) as u64, quiet);
    for layer in &layers {
        bar.set_message(layer.node.clone());
        let run = Run {
            reference: &reference,
            data: &data,
            runtime: runtime.as_ref(),
            threads,
            bar: &bar,
        };
        match fit(layer, pruned, &run, ridge)? {
            Ok(fit) => report.layers.push(fit),
            Err(reason) => skipped.push(SkippedLayer {
                node: layer.node.clone(),
                reason,
            }),
        }
    }
    bar.finish_and_clear();
    report.skipped = skipped;
    Ok(report)
}

/// What every layer's fit runs with.
struct Run<'a> {
    /// The original model, with every layer's output as a graph output.
    reference: &'a Runner,
    data: &'a Dataset,
    runtime: &'a dyn whittle_runtime::Backend,
    threads: usize,
    bar: &'a indicatif::ProgressBar,
}

/// Fits one layer and writes its weights into `pruned`. The outer error is a failure to
/// run a model; the inner one a reason to leave this layer as it is.
fn fit(
    layer: &Layer,
    pruned: &mut Model,
    run: &Run,
    ridge: f64,
) -> Result<Result<LayerFit, String>> {
    let Run {
        reference,
        data,
        runtime,
        threads,
        bar,
    } = *run;
    let prior = match layer.prior(pruned) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if prior.nrows() > MAX_UNKNOWNS {
        return Ok(Err(format!(
            "{} unknowns per output (more than {MAX_UNKNOWNS})",
            prior.nrows()
        )));
    }
    let current = Runner::for_dataset(
        &with_outputs(pruned, std::slice::from_ref(&layer.input))?,
        None,
        runtime,
        data,
    )
    .with_context(|| format!("{}: cannot run the pruned model", layer.node))?;
    let mut ne = NormalEquations::new(prior.nrows(), prior.ncols());
    // The pruned model runs on `threads` workers; each batch's reference run and the
    // accumulation follow on this thread, in batch order (so the sums are deterministic).
    let mut failure = None;
    current.for_each_run(data, threads, None, |k, outputs| {
        if failure.is_some() {
            return Ok(());
        }
        let x = output(outputs, &layer.input)?;
        let y = output(reference.run(&data.batches()[k])?, &layer.output)?;
        let (xv, yv) = (x.to_f32_vec(), y.to_f32_vec());
        let xb = Batch {
            values: &xv,
            shape: x.shape(),
        };
        let yb = Batch {
            values: &yv,
            shape: y.shape(),
        };
        if let Err(e) = layer.accumulate(&mut ne, xb, yb, MAX_POSITIONS) {
            failure = Some(e.to_string());
        }
        bar.inc(data.sample_ranges()[k].len() as u64);
        Ok(())
    })?;
    if let Some(reason) = failure {
        return Ok(Err(reason));
    }
    let w = match ne.solve(&prior, ridge, &layer.node) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let result = LayerFit {
        node: layer.node.clone(),
        op: layer.op.clone(),
        rows: ne.rows(),
        unknowns: prior.nrows(),
        outputs: prior.ncols(),
        error_before: ne.relative_error(&prior),
        error_after: ne.relative_error(&w),
    };
    layer
        .write(pruned, &w)
        .with_context(|| format!("{}: cannot write the re-fitted weights", layer.node))?;
    Ok(Ok(result))
}

fn output(outputs: Vec<(String, HostTensor)>, name: &str) -> Result<HostTensor, ModelError> {
    outputs
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| ModelError::Tap(format!("the runtime returned no value {name:?}")))
}

/// The report as text lines.
pub fn print(r: &ReconstructReport) {
    println!(
        "reconstruction on {} ({}, ridge {}):",
        r.calib, r.backend, r.ridge
    );
    for l in &r.layers {
        println!(
            "  {} ({}): relative output error {:.4} -> {:.4} ({} rows, {} unknowns x {} outputs)",
            l.node, l.op, l.error_before, l.error_after, l.rows, l.unknowns, l.outputs
        );
    }
    for s in &r.skipped {
        println!("  {}: not re-fitted: {}", s.node, s.reason);
    }
}
