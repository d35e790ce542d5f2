//! compress's model-changing steps after clean-up: pruning (with the optional least-squares
//! re-fit), calibration (with bias-correction means), quantization, the `--max-drop`
//! fallback and the `--no-slower` search — each the stand-alone command's own code.
//!
//! Order matters and is why this is one module: the fallback runs on the full
//! quantization, and `--no-slower` runs last on what the fallback kept, so layers the
//! budget restored to float stay in float in every configuration it times.
use super::super::backend_args::BackendArgs;
use super::super::quantize::{calibrate, gptq_moments, no_slower};
use super::fallback::{self, FallbackReport};
use super::measure;
use super::plan::Plan;
use anyhow::{Context, Result};
use std::path::Path;
use whittle_ir::Model;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::prune::PruneOptions;
use whittle_passes::quantize::{CalibrationData, Mode, QuantizeOptions};

// `whittle prune --reconstruct`'s data side: compress re-fits with the same code.
pub(crate) use super::super::prune::reconstruct;

/// `whittle prune`'s default ridge (`--ridge`): compress re-fits exactly as prune does.
const RIDGE: f64 = 1e-3;

/// Prunes `model` with the `whittle prune` defaults and, with `reconstruct_on`, re-fits
/// the consumers of the pruned groups on that calibration set.
pub fn prune(
    model: &Model,
    ratio: f64,
    reconstruct_on: Option<&Path>,
    backend: &BackendArgs,
    quiet: bool,
) -> Result<(Model, Option<reconstruct::ReconstructReport>)> {
    // L2 ranking, at least one channel per group.
    let opts = PruneOptions {
        ratio,
        round_to: 1,
        min_channels: 1,
        ..Default::default()
    };
    let (mut pruned, (report, _)) =
        super::super::prune::prune_once(model, opts).context("pruning failed")?;
    let fit = match reconstruct_on {
        Some(calib) => Some(
            reconstruct::reconstruct(
                model,
                &mut pruned,
                &report.groups,
                calib,
                RIDGE,
                backend,
                quiet,
            )
            .context("least-squares reconstruction failed")?,
        ),
        None => None,
    };
    Ok((pruned, fit))
}

/// What the quantization phase did (besides the model it returns).
pub struct Quantized {
    pub quantized_layers: usize,
    pub fallback: Option<FallbackReport>,
    pub no_slower: Option<NoSlower>,
    /// Layers whose bias `--bias-correction` shifted.
    pub bias_corrected: Option<usize>,
    pub steps: Vec<String>,
}

/// `--no-slower`'s decision and the runtime it timed on (onnxruntime when its library is
/// found, else tract — as `whittle quantize --no-slower`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct NoSlower {
    pub runtime: &'static str,
    #[serde(flatten)]
    pub decision: no_slower::Decision,
}

/// What the quantization phase reads besides the model.
pub struct Phase<'a> {
    pub plan: &'a Plan,
    /// The user's input: what accuracy and latency are compared against.
    pub original: &'a Model,
    pub accuracy_before: Option<f64>,
    /// The flags' runtime settings (calibration, accuracy).
    pub backend: &'a BackendArgs,
    /// The same plus the data's input shapes: what the table times with, so `--no-slower`
    /// decides on the same seeded-input medians the table reports.
    pub timing_backend: &'a BackendArgs,
    pub progress: &'a dyn Fn(&str),
}

/// Statistics for static/fp16 calibration and, with bias correction, the layer-input
/// means — computed as `whittle quantize` computes them.
fn calibration(
    model: &Model,
    opts: &QuantizeOptions,
    calib: Option<&Path>,
    cx: &Phase,
    notes: &mut Vec<String>,
) -> Result<Option<CalibrationData>> {
    let Some(path) = calib else {
        return Ok(None);
    };
    // As `whittle quantize` calibrates: onnxruntime unless a runtime was asked for.
    let backend = &cx.backend.for_calibration(model);
    let mut data = None;
    if matches!(opts.mode, Mode::Static | Mode::Fp16) {
        (cx.progress)("calibration");
        // compress reports its phases itself: no bars inside them.
        data = Some(calibrate::statistics(
            model,
            opts,
            path,
            calibrate::Prefetch::none(),
            backend,
            true,
            notes,
        )?);
    }
    if opts.gptq {
        (cx.progress)("layer-input moments for GPTQ");
        let d = data.get_or_insert_with(Default::default);
        d.hessians = gptq_moments::hessians(model, opts, path, backend, true, notes)?;
    }
    if opts.bias_correction {
        (cx.progress)("layer-input means for bias correction");
        let d = data.get_or_insert_with(Default::default);
        calibrate::means(model, opts, path, backend, d, notes)?;
    }
    Ok(data)
}

/// Quantizes `float_model` with `opts`, then the `--max-drop` fallback, then `--no-slower`.
pub fn quantize(
    cx: &Phase,
    float_model: Model,
    opts: &QuantizeOptions,
    notes: &mut Vec<String>,
) -> Result<(Model, Quantized)> {
    let shapes = ShapeOverrides::default();
    let recipe = &cx.plan.recipe;
    let calib = calibration(&float_model, opts, recipe.calib.as_deref(), cx, notes)?;
    (cx.progress)("quantization");
    let (mut model, mut report) =
        fallback::quantize_model(&float_model, opts, &shapes, calib.as_ref(), &[])
            .context("cannot quantize")?;
    let mut steps = vec![format!("quantize ({})", report.scheme)];
    let mut fallback_report = None;
    let mut decision = None;
    if let (Some(budget), Some(eval), Some(before)) =
        (recipe.max_drop, &recipe.eval, cx.accuracy_before)
    {
        let acc = measure::accuracy(&model, eval, cx.backend)?;
        if (before - acc) * 100.0 > budget + 1e-9 {
            (cx.progress)("over the accuracy budget: measuring layer sensitivity");
            let data = (
                super::super::eval::labelled_dataset(
                    &float_model,
                    eval,
                    None,
                    "label",
                    cx.backend,
                )?
                .0,
                format!("eval set {}", eval.display()),
            );
            let b = fallback::Budget {
                float_model: &float_model,
                opts,
                shapes: &shapes,
                calib: calib.as_ref(),
                eval,
                eval_data: &data,
                backend: cx.backend,
                accuracy_before: before,
                max_drop: budget,
            };
            let (m, r, _, f) = fallback::fit(&b, (model, report, acc))?;
            steps.push(format!(
                "fallback ({} layers kept in float)",
                f.kept_float.len()
            ));
            (model, report) = (m, r);
            fallback_report = Some(f);
        }
    }
    if cx.plan.no_slower {
        (cx.progress)("--no-slower: timing the quantized model against the original");
        // Layers the budget restored stay in float in every configuration timed.
        let mut kept = opts.clone();
        if let Some(f) = &fallback_report {
            kept.exclude_nodes.extend(f.kept_float.iter().cloned());
        }
        let inputs = no_slower::Inputs {
            original: cx.original,
            float_model: &float_model,
            opts: &kept,
            shapes: &shapes,
            calib: calib.as_ref(),
            backend: cx.timing_backend,
        };
        let (m, r, d, speed) = no_slower::apply(&inputs, model, report)?;
        steps.push(no_slower_step(&d, r.quantized()));
        (model, report) = (m, r);
        decision = Some(NoSlower {
            runtime: speed.backend,
            decision: d,
        });
    }
    // Counted on the final report: layers put back in float lose their correction.
    let bias_corrected = opts.bias_correction.then(|| {
        report
            .bias_correction
            .iter()
            .filter(|b| b.corrected)
            .count()
    });
    let q = Quantized {
        quantized_layers: report.quantized(),
        fallback: fallback_report,
        no_slower: decision,
        bias_corrected,
        steps,
    };
    Ok((model, q))
}

/// The table's step for a `--no-slower` decision; `quantized` is the layer count of what
/// it kept (a fallback can leave none, which is the float model under another name).
pub fn no_slower_step(d: &no_slower::Decision, quantized: usize) -> String {
    match d.chosen {
        Some(0) => "no-slower (full quantization kept)".into(),
        Some(_) if quantized == 0 => {
            "no-slower (every quantizable layer kept in float: float model kept)".into()
        }
        Some(k) => format!("no-slower ({} kept in float)", d.tries[k].kept_float),
        None => "no-slower (nothing quantized was faster: float model kept)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::no_slower::{Step, choose};
    use super::*;

    fn steps() -> Vec<Step> {
        ["grouped Conv", "Conv"]
            .iter()
            .map(|s| Step {
                kept_float: s.to_string(),
                exclude_ops: vec![],
                exclude_nodes: vec![],
            })
            .collect()
    }

    /// The decision path with injected timings (no runtime): each outcome gets the step
    /// line the table prints.
    #[test]
    fn each_decision_names_what_was_kept() {
        let timings = |full: f64, fb: [f64; 2]| {
            choose(10.0, &steps(), &mut |k| {
                Ok(match k {
                    None => full,
                    Some(k) => fb[k],
                })
            })
        };
        let d = timings(9.0, [1.0, 1.0]);
        assert_eq!(no_slower_step(&d, 3), "no-slower (full quantization kept)");
        let d = timings(13.0, [11.0, 9.5]);
        assert_eq!(no_slower_step(&d, 1), "no-slower (Conv kept in float)");
        assert!(no_slower_step(&d, 0).contains("float model kept"));
        let d = timings(13.0, [11.0, 12.0]);
        assert_eq!(d.chosen, None);
        assert!(no_slower_step(&d, 0).contains("float model kept"));
    }
}
