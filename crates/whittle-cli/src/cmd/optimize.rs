//! `whittle optimize`: run the clean-up passes to a fixed point and write the result.
//!
//! The output is written atomically (`whittle_ir::save`) and never over an input file
//! unless `--force`. Before writing, the result is checked numerically against the input on
//! seeded inputs (`--no-check` skips it; see `selfcheck`): a difference beyond float
//! rounding is an error and nothing is written.
use super::selfcheck::{CheckOutcome, check_against_original};
use crate::output::{check_not_overwriting, print_json, print_saved};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whittle_ir::shape::ShapeOverrides;
use whittle_ir::{Model, SaveOptions};
use whittle_passes::PassContext;
use whittle_passes::cleanup::{self, CleanupOptions, CleanupReport, PASS_NAMES, Stats};
use whittle_runtime::Tolerance;

#[derive(Args)]
pub struct OptimizeArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the optimized model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Passes to run, comma-separated (default: all but fuse-dequant). Known: fix-shapes,
    /// constants, identity, fuse-dequant, fold, merge-slices, fuse-bn, fuse-conv-affine,
    /// fuse-gemm, dedup, cse, dce.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub passes: Option<Vec<String>>,
    /// Passes to run on top of the list, comma-separated — e.g. `--add fuse-dequant`
    /// keeps Cast+Mul-dequantized integer weights integer as DequantizeLinear.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub add: Vec<String>,
    /// Passes to leave out, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub skip: Vec<String>,
    /// Fix an input's shape, e.g. `--shape images=1x3x640x640` (repeatable).
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    pub shapes: Vec<String>,
    /// Fix the leading (batch) dim of every input whose leading dim is not a number.
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,
    /// Most bytes one folded output may add to the model (suffixes K, M, G: KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES", default_value = "1M", value_parser = parse_bytes)]
    pub fold_limit: u64,
    /// Skip the numeric check of the result against the input.
    #[arg(long)]
    pub no_check: bool,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also list every change and every skipped node with its reason.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `1048576`, `512K`, `1M`, `2G` → bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 1u64 << 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 1 << 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a byte count (e.g. 1048576, 512K, 1M)"))
}

/// `NAME=1x3x224x224` → (name, dims).
fn parse_shape(s: &str) -> Result<(String, Vec<u64>)> {
    let (name, dims) = s
        .split_once('=')
        .with_context(|| format!("--shape {s:?}: expected NAME=DIMS, e.g. x=1x3x224x224"))?;
    let dims = dims
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--shape {s:?}: dims must be numbers separated by 'x'"))?;
    Ok((name.to_string(), dims))
}

/// The numeric self-check: the optimized model and the original on the same seeded
/// inputs (onnxruntime when available, else tract), within float rounding (atol 1e-5 +
/// rtol 1e-4·|ref|); outside that it is an error and nothing is written.
fn numeric_check(args: &OptimizeArgs, optimized: &Model) -> Result<CheckOutcome> {
    if args.no_check {
        return Ok(CheckOutcome::Skipped);
    }
    let tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
        min_cosine: -1.0,
    };
    check_against_original(&args.input, optimized, &args.shapes, args.batch, tolerance)
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    input: &'a Path,
    output: &'a Path,
    seconds: f64,
    cleanup: &'a CleanupReport,
    save: &'a whittle_ir::SaveReport,
    check: &'a CheckOutcome,
}

pub fn run(args: OptimizeArgs) -> Result<()> {
    let mut model = Model::load(&args.input)?;
    if let Err(e) = whittle_ir::verify::verify(&model) {
        bail!(
            "{}: the input is not a valid model, so it cannot be optimized safely: {e}",
            args.input.display()
        );
    }
    let mut passes: Vec<String> = match &args.passes {
        Some(list) => list
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => cleanup::default_passes(),
    };
    for extra in &args.add {
        if !passes.contains(extra) {
            passes.push(extra.clone());
        }
    }
    for name in passes.iter().chain(&args.skip).chain(&args.add) {
        if !PASS_NAMES.contains(&name.as_str()) {
            bail!("unknown pass {name:?} (known: {})", PASS_NAMES.join(", "));
        }
    }
    passes.retain(|p| !args.skip.contains(p));
    let mut overrides = ShapeOverrides {
        batch: args.batch,
        ..Default::default()
    };
    for s in &args.shapes {
        let (name, dims) = parse_shape(s)?;
        overrides.inputs.insert(name, dims);
    }
    let opts = CleanupOptions {
        passes,
        fold_limit: args.fold_limit,
        overrides,
        ..Default::default()
    };
    let mut inputs = vec![args.input.clone()];
    inputs.extend(model.external_files());
    let save_opts = SaveOptions::default();
    let started = Instant::now();
    let report = cleanup::run_cleanup(&mut model, &opts, &mut PassContext::default())
        .with_context(|| format!("{}: optimize failed", args.input.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let outputs = whittle_ir::save::target_files(&model, &args.output, &save_opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    let check = numeric_check(&args, &model)?;
    let saved = whittle_ir::save(&model, &args.output, &save_opts).with_context(|| {
        format!(
            "{}: cannot write the optimized model",
            args.output.display()
        )
    })?;
    if args.json {
        return print_json(&JsonReport {
            input: &args.input,
            output: &args.output,
            seconds,
            cleanup: &report,
            save: &saved,
            check: &check,
        });
    }
    print_table(&report, args.verbose);
    println!(
        "optimized in {seconds:.2} s ({} round{}{})",
        report.iterations,
        if report.iterations == 1 { "" } else { "s" },
        if report.converged {
            ""
        } else {
            ", stopped before a fixed point"
        }
    );
    print_saved(&saved);
    match &check {
        CheckOutcome::Unavailable { reason } => {
            eprintln!("warning: numeric check not run: {reason} (--no-check silences this)")
        }
        CheckOutcome::Passed {
            backend, max_abs, ..
        } => {
            println!(
                "check: outputs equal the original's within float rounding on seeded inputs ({backend}; max |Δ| {max_abs:.3e})"
            )
        }
        CheckOutcome::Skipped => {}
    }
    Ok(())
}

fn arrow<T: std::fmt::Display + PartialEq>(a: T, b: T) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a} -> {b}")
    }
}

fn row(name: &str, round: &str, a: &Stats, b: &Stats, changes: &str, skipped: &str) {
    println!(
        "{name:<17} {round:>5}  {:>14}  {:>12}  {:>24}  {changes:>7}  {skipped:>7}",
        arrow(a.nodes, b.nodes),
        arrow(a.initializers, b.initializers),
        arrow(a.tensor_bytes, b.tensor_bytes),
    );
}

fn print_table(report: &CleanupReport, verbose: bool) {
    println!(
        "{:<17} {:>5}  {:>14}  {:>12}  {:>24}  {:>7}  {:>7}",
        "pass", "round", "nodes", "initializers", "tensor bytes", "changes", "skipped"
    );
    for s in &report.steps {
        let r = &s.report;
        if !verbose && r.changes.is_empty() {
            continue;
        }
        row(
            &r.pass,
            &s.iteration.to_string(),
            &s.before,
            &s.after,
            &r.changes.len().to_string(),
            &r.skipped.len().to_string(),
        );
        if verbose {
            for c in &r.changes {
                println!("    + {c}");
            }
            for c in &r.skipped {
                println!("    - {c}");
            }
        }
    }
    row("total", "", &report.before, &report.after, "", "");
    if !verbose {
        // The last round sees every node that is still left alone.
        let last = report
            .steps
            .iter()
            .filter(|s| s.iteration == report.iterations);
        let skipped: usize = last.map(|s| s.report.skipped.len()).sum();
        if skipped > 0 {
            println!("({skipped} nodes left alone with a reason; -v lists them)");
        }
    }
}
