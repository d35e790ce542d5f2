//! `whittle compress`: the one-command pipeline — clean-up → pruning (optional) →
//! quantization → verification — with one before/after table.
//!
//! Every step reuses the stand-alone command's building blocks (clean-up, prune and
//! quantize passes; quantize's calibration; eval's labelled data; bench's timing; compare's
//! metrics). The output is written atomically and never over an input unless `--force`;
//! nothing is written when a step (or the accuracy budget) fails.
//!
//! Layout: [`plan`] checks the settings, [`stages`] runs pruning (+ `--reconstruct`) and
//! quantization (+ `--bias-correction`, the `--max-drop` fallback, then `--no-slower`),
//! [`measure`] and [`speed`] fill the table, [`print`] prints it, [`recipe`] is the TOML.
#[path = "compress/fallback.rs"]
mod fallback;
#[path = "compress/measure.rs"]
pub(crate) mod measure;
#[path = "compress/plan.rs"]
mod plan;
#[path = "compress/print.rs"]
mod print;
#[path = "compress/recipe.rs"]
pub mod recipe;
#[path = "compress/speed.rs"]
mod speed;
#[path = "compress/stages.rs"]
mod stages;

use super::backend_args::{BackendArgs, load_model, print_notes};
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result, bail};
use clap::Args;
use measure::Snapshot;
use plan::{Plan, plan};
use recipe::Recipe;
use std::path::PathBuf;
use whittle_ir::{Model, SaveOptions};
use whittle_passes::PassContext;

#[derive(Args)]
#[command(after_help = "\
Defaults: clean-up, no pruning, int8 — static (QDQ) when --calib is given, else weight-only.
fp16 keeps float32 inputs and outputs (Casts inside), so the result is a drop-in replacement.
Verification: with --eval, accuracy before and after (top-1, as `whittle eval`); otherwise
top-1 agreement, cosine and SNR of the first output against the original on --calib or 16
seeded samples. Latency: median of 20 runs on seeded inputs (as `whittle bench`), tract and
onnxruntime when its library is found. --max-drop: see the report's fallback section; layers
are restored to float most-sensitive first (output SNR with only that layer quantized).
--reconstruct (with --prune and --calib): after pruning, the layers that lost input channels
are re-fitted by least squares on --calib, as `whittle prune --reconstruct` (ridge 1e-3).
--bias-correction (weight/static, needs --calib): each quantized layer's bias absorbs its
mean output error on --calib, as `whittle quantize --bias-correction`.
--gptq (weight mode, needs --calib): weights are rounded with GPTQ against their layers'
inputs on --calib, as `whittle quantize --gptq`.
--no-slower: last, after any --max-drop fallback, the result is timed against the input on
onnxruntime (else tract) with the table's seeded-input median; when slower, op types are kept
in float (grouped Conv, Conv, ConvTranspose, MatMul, Gemm) and the fastest not-slower try is
kept, else the float model — as `whittle quantize --no-slower`; the table says which.
Recipe keys: cleanup, prune, reconstruct, quantize, mode, bias_correction, gptq, calib,
eval, max_drop, no_slower; flags override them.")]
pub struct CompressArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the compressed model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Fraction of each prunable group's channels to remove (0 to 1).
    #[arg(long, value_name = "R")]
    pub prune: Option<f64>,
    /// After pruning, re-fit the layers that lost input channels by least squares on
    /// --calib (needs --prune and --calib).
    #[arg(long)]
    pub reconstruct: bool,
    /// int8, int4, fp16 or none.
    #[arg(long, value_name = "TYPE")]
    pub quantize: Option<String>,
    /// weight, dynamic or static.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Shift each quantized layer's bias by its mean output error on --calib (weight or
    /// static mode).
    #[arg(long)]
    pub bias_correction: bool,
    /// Round weights with GPTQ against their layers' inputs on --calib (weight mode).
    #[arg(long)]
    pub gptq: bool,
    /// Keep op types in float until the result is not slower than the input.
    #[arg(long)]
    pub no_slower: bool,
    /// Calibration set (.npz keyed by input name).
    #[arg(long, value_name = "FILE.npz")]
    pub calib: Option<PathBuf>,
    /// Labelled set (.npz with `input` and `label`): report accuracy before/after.
    #[arg(long, value_name = "FILE.npz")]
    pub eval: Option<PathBuf>,
    /// Accuracy budget in percentage points (needs --eval).
    #[arg(long, value_name = "PCT")]
    pub max_drop: Option<f64>,
    /// Skip the clean-up passes.
    #[arg(long)]
    pub no_cleanup: bool,
    /// Read the steps and options from a TOML recipe (flags override it).
    #[arg(long, value_name = "FILE.toml")]
    pub recipe: Option<PathBuf>,
    /// Write the recipe for the settings given (then run as usual).
    #[arg(long, value_name = "FILE")]
    pub emit_recipe: Option<PathBuf>,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON (no progress lines).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Everything the table (and `--json`) shows.
#[derive(serde::Serialize)]
pub struct Report {
    input: PathBuf,
    output: PathBuf,
    recipe: Recipe,
    steps: Vec<String>,
    before: Snapshot,
    after: Snapshot,
    agreement: Option<measure::Agreement>,
    fallback: Option<fallback::FallbackReport>,
    /// `--reconstruct`: the least-squares re-fit after pruning, per layer.
    reconstruction: Option<stages::reconstruct::ReconstructReport>,
    /// `--bias-correction`: layers whose bias was shifted.
    bias_corrected: Option<usize>,
    /// `--no-slower`: every configuration timed and the one kept (null: float kept).
    no_slower: Option<stages::NoSlower>,
    quantized_layers: usize,
    /// The result against the original, per runtime: a slower model is called out.
    speed: Vec<speed::SpeedVerdict>,
    /// Calibration, lowering and measurement notes (printed on stderr without --json).
    notes: Vec<String>,
}

pub fn run(args: CompressArgs) -> Result<()> {
    let flags = Recipe {
        cleanup: args.no_cleanup.then_some(false),
        prune: args.prune,
        reconstruct: args.reconstruct.then_some(true),
        quantize: args.quantize.clone(),
        mode: args.mode.clone(),
        bias_correction: args.bias_correction.then_some(true),
        gptq: args.gptq.then_some(true),
        calib: args.calib.clone(),
        eval: args.eval.clone(),
        max_drop: args.max_drop,
        no_slower: args.no_slower.then_some(true),
    };
    let recipe = match &args.recipe {
        Some(path) => Recipe::load(path)?.overridden_by(flags),
        None => flags,
    };
    let plan = plan(recipe)?;
    let original = load_model(&args.input)?;
    if let Err(e) = whittle_ir::verify::verify(&original) {
        bail!(
            "{}: the input is not a valid model, so it cannot be compressed safely: {e}",
            args.input.display()
        );
    }
    let mut inputs = vec![args.input.clone()];
    inputs.extend(original.external_files());
    inputs.extend(plan.recipe.calib.iter().cloned());
    inputs.extend(plan.recipe.eval.iter().cloned());
    let outputs = vec![args.output.clone()];
    check_not_overwriting(&outputs, &inputs, args.force)?;
    if let Some(path) = &args.emit_recipe {
        check_not_overwriting(std::slice::from_ref(path), &inputs, args.force)?;
        plan.recipe.save(path)?;
    }
    let progress = |s: &str| {
        if !args.json {
            eprintln!("compress: {s}");
        }
    };
    let report = pipeline(&args, &plan, &original, &progress)?;
    if args.json {
        return print_json(&report);
    }
    print_notes(&report.notes);
    print::table(&report);
    Ok(())
}

fn pipeline(
    args: &CompressArgs,
    plan: &Plan,
    original: &Model,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let label = args.input.display().to_string();
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let mut model = original.clone();
    if plan.cleanup {
        progress("clean-up");
        let r = whittle_passes::cleanup::run_cleanup(
            &mut model,
            &whittle_passes::cleanup::CleanupOptions::default(),
            &mut PassContext::default(),
        )
        .with_context(|| format!("{label}: clean-up failed"))?;
        steps.push(format!(
            "clean-up ({} → {} nodes)",
            r.before.nodes, r.after.nodes
        ));
    }
    let mut reconstruction = None;
    if let Some(ratio) = plan.prune {
        progress("pruning");
        let refit = plan.recipe.calib.as_deref().filter(|_| plan.reconstruct);
        let (pruned, fit) = stages::prune(&model, ratio, refit, &args.backend, args.json)
            .with_context(|| label.clone())?;
        model = pruned;
        steps.push(format!("prune (ratio {ratio}, L2)"));
        if let Some(fit) = &fit {
            steps.push(format!(
                "reconstruct ({} layers re-fitted)",
                fit.layers.len()
            ));
        }
        reconstruction = fit;
    }
    let accuracy_before = match &plan.recipe.eval {
        Some(path) => {
            progress("accuracy of the original");
            Some(measure::accuracy(original, path, &args.backend)?)
        }
        None => None,
    };
    // The data's input shapes, for the table's timings and `--no-slower`'s alike.
    let data_files: Vec<&std::path::Path> = [&plan.recipe.calib, &plan.recipe.eval]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .collect();
    let (backend, shapes) = measure::with_data_shapes(original, &args.backend, &data_files)?;
    let mut quantized = None;
    if let Some(opts) = &plan.quantize {
        let phase = stages::Phase {
            plan,
            original,
            accuracy_before,
            backend: &args.backend,
            timing_backend: &backend,
            progress,
        };
        let (m, q) =
            stages::quantize(&phase, model, opts, &mut notes).with_context(|| label.clone())?;
        model = m;
        steps.extend(q.steps.iter().cloned());
        quantized = Some(q);
    }
    // Measure first, write last: nothing is written when a measurement fails.
    progress("measuring");
    if !shapes.is_empty() {
        notes.push(format!(
            "MACs and latency at the data's shape: --shape {}",
            shapes.join(" --shape ")
        ));
    }
    let backend = &backend;
    let mut before = measure::snapshot(original, backend, &mut notes)?;
    before.file_bytes = measure::file_size(&args.input, original);
    let mut after = measure::snapshot(&model, backend, &mut notes)?;
    if let Some(path) = &plan.recipe.eval {
        before.accuracy = accuracy_before;
        after.accuracy = Some(measure::accuracy(&model, path, backend)?);
    }
    let agreement = match plan.recipe.eval {
        Some(_) => None,
        None => {
            let data = measure::comparison_data(original, plan.recipe.calib.as_deref(), backend)?;
            Some(measure::agreement(original, &model, &data, backend)?)
        }
    };
    progress("writing");
    let saved = whittle_ir::save(&model, &args.output, &SaveOptions::default())
        .with_context(|| format!("{}: cannot write the model", args.output.display()))?;
    after.file_bytes = saved.model_bytes + saved.data_files.iter().map(|(_, s)| *s).sum::<u64>();
    let mut speed = speed::speed_verdicts(&before, &after, plan.quantize.as_ref().map(|o| o.mode));
    if let Some(q) = &quantized
        && let Some(d) = &q.no_slower
    {
        speed::explain_after_no_slower(&mut speed, d, q.quantized_layers);
    }
    let report = Report {
        input: args.input.clone(),
        output: args.output.clone(),
        recipe: plan.recipe.clone(),
        steps,
        before,
        after,
        agreement,
        fallback: quantized.as_ref().and_then(|q| q.fallback.clone()),
        reconstruction,
        bias_corrected: quantized.as_ref().and_then(|q| q.bias_corrected),
        no_slower: quantized.as_ref().and_then(|q| q.no_slower.clone()),
        quantized_layers: quantized.as_ref().map_or(0, |q| q.quantized_layers),
        speed,
        notes,
    };
    Ok(report)
}
