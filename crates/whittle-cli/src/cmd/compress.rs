//! `whittle compress`: the one-command pipeline — clean-up → pruning (optional) →
//! quantization → verification — with one before/after table.
//!
//! Every step reuses the stand-alone command's building blocks (clean-up, prune and
//! quantize passes; quantize's calibration; eval's labelled data; bench's timing; compare's
//! metrics). The output is written atomically and never over an input unless `--force`;
//! nothing is written when a step (or the accuracy budget) fails.
#[path = "compress/fallback.rs"]
mod fallback;
#[path = "compress/measure.rs"]
pub(crate) mod measure;
#[path = "compress/print.rs"]
mod print;
#[path = "compress/recipe.rs"]
pub mod recipe;
#[path = "compress/speed.rs"]
mod speed;

use super::backend_args::{BackendArgs, load_model, print_notes};
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result, bail};
use clap::Args;
use measure::Snapshot;
use recipe::Recipe;
use std::path::PathBuf;
use whittle_ir::{Model, SaveOptions};
use whittle_passes::PassContext;
use whittle_passes::prune::PruneOptions;
use whittle_passes::quantize::{Mode, QuantType, QuantizeOptions};

#[derive(Args)]
#[command(after_help = "\
Defaults: clean-up, no pruning, int8 — static (QDQ) when --calib is given, else weight-only.
fp16 keeps float32 inputs and outputs (Casts inside), so the result is a drop-in replacement.
Verification: with --eval, accuracy before and after (top-1, as `whittle eval`); otherwise
top-1 agreement, cosine and SNR of the first output against the original on --calib or 16
seeded samples. Latency: median of 20 runs on seeded inputs (as `whittle bench`), tract and
onnxruntime when its library is found. --max-drop: see the report's fallback section; layers
are restored to float most-sensitive first (output SNR with only that layer quantized).
Recipe keys: cleanup, prune, quantize, mode, calib, eval, max_drop; flags override them.")]
pub struct CompressArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the compressed model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Fraction of each prunable group's channels to remove (0 to 1).
    #[arg(long, value_name = "R")]
    pub prune: Option<f64>,
    /// int8, int4, fp16 or none.
    #[arg(long, value_name = "TYPE")]
    pub quantize: Option<String>,
    /// weight, dynamic or static.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
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

/// The checked settings.
struct Plan {
    cleanup: bool,
    prune: Option<f64>,
    quantize: Option<QuantizeOptions>,
    recipe: Recipe,
}

/// Checks the settings and fills in the defaults, so an emitted recipe keeps meaning the
/// same pipeline even if a default changes later.
fn plan(mut recipe: Recipe) -> Result<Plan> {
    if let Some(r) = recipe.prune
        && !(0.0..1.0).contains(&r)
    {
        bail!("--prune {r}: expected a fraction in 0..1");
    }
    if recipe.max_drop.is_some() && recipe.eval.is_none() {
        bail!("--max-drop needs a labelled set to measure accuracy on: --eval FILE.npz");
    }
    if let Some(d) = recipe.max_drop
        && (d.is_nan() || d < 0.0)
    {
        bail!("--max-drop {d}: expected a number of percentage points ≥ 0");
    }
    let mode = match recipe.mode.as_deref() {
        None => None,
        Some("weight") => Some(Mode::Weight),
        Some("dynamic") => Some(Mode::Dynamic),
        Some("static") => Some(Mode::Static),
        Some(m) => bail!("--mode {m:?}: expected weight, dynamic or static"),
    };
    let quant = recipe
        .quantize
        .clone()
        .unwrap_or_else(|| "int8".to_string());
    let mut opts = QuantizeOptions::default();
    match quant.as_str() {
        "none" => {
            recipe.cleanup = Some(recipe.cleanup.unwrap_or(true));
            recipe.quantize = Some("none".into());
            return Ok(Plan {
                cleanup: recipe.cleanup.unwrap_or(true),
                prune: recipe.prune,
                quantize: None,
                recipe,
            });
        }
        "fp16" => {
            if mode.is_some() {
                bail!("--quantize fp16 takes no --mode (weights and compute become float16)");
            }
            opts.mode = Mode::Fp16;
            // A drop-in replacement: float32 inputs and outputs, Casts inside.
            opts.keep_io_types = true;
        }
        "int8" => {
            let default = if recipe.calib.is_some() {
                Mode::Static
            } else {
                Mode::Weight
            };
            opts.mode = mode.unwrap_or(default);
        }
        "int4" => {
            opts.weight_type = QuantType::Int4;
            opts.mode = mode.unwrap_or(Mode::Weight);
            if opts.mode != Mode::Weight {
                bail!("--quantize int4 is weight-only: use --mode weight");
            }
        }
        q => bail!("--quantize {q:?}: expected int8, int4, fp16 or none"),
    }
    if opts.mode == Mode::Static && recipe.calib.is_none() {
        bail!("--mode static needs a calibration set: --calib FILE.npz");
    }
    recipe.cleanup = Some(recipe.cleanup.unwrap_or(true));
    recipe.quantize = Some(quant);
    recipe.mode = match opts.mode {
        Mode::Weight => Some("weight".into()),
        Mode::Dynamic => Some("dynamic".into()),
        Mode::Static => Some("static".into()),
        Mode::Fp16 => None,
    };
    Ok(Plan {
        cleanup: recipe.cleanup.unwrap_or(true),
        prune: recipe.prune,
        quantize: Some(opts),
        recipe,
    })
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
        quantize: args.quantize.clone(),
        mode: args.mode.clone(),
        calib: args.calib.clone(),
        eval: args.eval.clone(),
        max_drop: args.max_drop,
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
    if let Some(ratio) = plan.prune {
        progress("pruning");
        // The `whittle prune` defaults: L2 ranking, at least one channel per group.
        let opts = PruneOptions {
            ratio,
            round_to: 1,
            min_channels: 1,
            ..Default::default()
        };
        let (pruned, _) = super::prune::prune_once(&model, opts)
            .with_context(|| format!("{label}: pruning failed"))?;
        model = pruned;
        steps.push(format!("prune (ratio {ratio}, L2)"));
    }
    let accuracy_before = match &plan.recipe.eval {
        Some(path) => {
            progress("accuracy of the original");
            Some(measure::accuracy(original, path, &args.backend)?)
        }
        None => None,
    };
    let mut fallback = None;
    let mut quantized_layers = 0;
    if let Some(opts) = &plan.quantize {
        let shapes = whittle_ir::shape::ShapeOverrides::default();
        let calib = match &plan.recipe.calib {
            Some(path) if matches!(opts.mode, Mode::Static | Mode::Fp16) => {
                progress("calibration");
                Some(super::quantize::calibrate::statistics(
                    &model,
                    opts,
                    path,
                    &args.backend,
                    &mut notes,
                )?)
            }
            _ => None,
        };
        progress("quantization");
        let float_model = model;
        let (q, report) =
            fallback::quantize_model(&float_model, opts, &shapes, calib.as_ref(), &[])
                .with_context(|| format!("{label}: cannot quantize"))?;
        steps.push(format!("quantize ({})", report.scheme));
        model = q;
        quantized_layers = report.quantized();
        if let (Some(budget), Some(eval), Some(before)) =
            (plan.recipe.max_drop, &plan.recipe.eval, accuracy_before)
        {
            let acc = measure::accuracy(&model, eval, &args.backend)?;
            if (before - acc) * 100.0 > budget + 1e-9 {
                progress("over the accuracy budget: measuring layer sensitivity");
                let data = (
                    super::eval::labelled_dataset(
                        &float_model,
                        eval,
                        None,
                        "label",
                        &args.backend,
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
                    backend: &args.backend,
                    accuracy_before: before,
                    max_drop: budget,
                };
                let (m, r, _, f) = fallback::fit(&b, (model, report, acc))?;
                steps.push(format!(
                    "fallback ({} layers kept in float)",
                    f.kept_float.len()
                ));
                model = m;
                quantized_layers = r.quantized();
                fallback = Some(f);
            }
        }
    }
    // Measure first, write last: nothing is written when a measurement fails.
    progress("measuring");
    let data_files: Vec<&std::path::Path> = [&plan.recipe.calib, &plan.recipe.eval]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .collect();
    let (backend, shapes) = measure::with_data_shapes(original, &args.backend, &data_files)?;
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
    let speed = speed::speed_verdicts(&before, &after, plan.quantize.as_ref().map(|o| o.mode));
    let report = Report {
        input: args.input.clone(),
        output: args.output.clone(),
        recipe: plan.recipe.clone(),
        steps,
        before,
        after,
        agreement,
        fallback,
        quantized_layers,
        speed,
        notes,
    };
    Ok(report)
}
