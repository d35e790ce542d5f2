//! `whittle compare`: run two models on the same inputs and measure how far apart their
//! outputs are; exit 0 within the bounds, 2 outside, 1 on error.
use super::backend_args::{BackendArgs, backend_line, load_model, print_aligned, print_notes};
use crate::output::{error_chain, print_json};
use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use whittle_runtime::Tolerance;
use whittle_runtime::model::{
    BatchOptions, ComparisonReport, Dataset, MatchedBy, Runner, candidate_dataset, compare_models,
    input_specs,
};

const EXIT_STATUS: &str = "\
Exit status:
  0  every output is within the bounds
  2  some output is outside the bounds; stderr then says \"compare: OUTSIDE the bounds: …\"
     (clap's usage errors also exit 2, but print \"error: …\" and a usage line instead)
  1  any other error (unreadable model, missing input, no onnxruntime library, …)

Bounds: every element must satisfy |ref − cand| ≤ atol + rtol·|ref|, and the cosine
similarity of each whole output must be at least --min-cosine. Outputs are paired by name,
else by position; inputs likewise.";

#[derive(Args)]
#[command(after_help = EXIT_STATUS)]
pub struct CompareArgs {
    /// The reference model.
    pub reference: PathBuf,
    /// The candidate model (e.g. the optimized, quantized or pruned one).
    pub candidate: PathBuf,
    /// Inputs from an .npz whose keys are the reference's input names, samples on axis 0
    /// (split into runs by the model's batch dim).
    #[arg(long, value_name = "FILE.npz", conflicts_with_all = ["seed", "samples"])]
    pub inputs: Option<PathBuf>,
    /// Seed of the generated inputs [default: 0]; sample i uses seed N+i.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Number of generated samples [default: 1].
    #[arg(long, value_name = "K")]
    pub samples: Option<usize>,
    /// Absolute tolerance per element.
    #[arg(long, value_name = "X", default_value_t = 1e-5)]
    pub atol: f64,
    /// Relative tolerance per element (times |reference|).
    #[arg(long, value_name = "Y", default_value_t = 1e-4)]
    pub rtol: f64,
    /// Smallest cosine similarity allowed per output [default: no bound].
    #[arg(long, value_name = "Z")]
    pub min_cosine: Option<f64>,
    /// Print the report as JSON (the exit status still tells the verdict).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs the command; the exit status is the verdict (see [`EXIT_STATUS`]).
pub fn main(args: CompareArgs) -> ExitCode {
    match run(&args) {
        Ok(report) if report.pass => ExitCode::SUCCESS,
        Ok(report) => {
            eprintln!("compare: OUTSIDE the bounds: {}", failures(&report, &args));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn run(args: &CompareArgs) -> Result<ComparisonReport> {
    let reference = load_model(&args.reference)?;
    let candidate = load_model(&args.candidate)?;
    let specs = input_specs(&reference)?;
    let overrides = args.backend.overrides()?;
    let data = match &args.inputs {
        Some(path) => Dataset::from_npz(&specs, path, &overrides, &BatchOptions::default())?,
        None => Dataset::seeded(
            &specs,
            &overrides,
            args.seed.unwrap_or(0),
            args.samples.unwrap_or(1),
        )?,
    };
    let (_, candidate_data) = candidate_dataset(&specs, &input_specs(&candidate)?, &data)?;
    let (backend, threads) = args.backend.backend()?;
    let r = Runner::for_dataset(&reference, Some(&args.reference), backend.as_ref(), &data)?;
    let c = Runner::for_dataset(
        &candidate,
        Some(&args.candidate),
        backend.as_ref(),
        &candidate_data,
    )?;
    let tolerance = Tolerance {
        atol: args.atol,
        rtol: args.rtol,
        min_cosine: args.min_cosine.unwrap_or(-1.0),
    };
    let report = compare_models(&r, &data, &c, &candidate_data, &tolerance, threads, None)?;
    let mut notes = data.notes.clone();
    notes.extend(r.file().notes.iter().map(|n| format!("reference: {n}")));
    notes.extend(c.file().notes.iter().map(|n| format!("candidate: {n}")));
    if args.json {
        print_json(&json!({
            "reference": args.reference,
            "candidate": args.candidate,
            "notes": notes,
            "report": report,
        }))?;
    } else {
        print_notes(&notes);
        print_report(args, &report);
    }
    Ok(report)
}

fn print_report(args: &CompareArgs, report: &ComparisonReport) {
    println!(
        "compare: {} vs {}",
        args.reference.display(),
        args.candidate.display()
    );
    println!(
        "{} · {} sample(s) · outputs matched by {}",
        backend_line(report.backend),
        report.samples,
        match report.outputs_matched_by {
            MatchedBy::Name => "name",
            MatchedBy::Position => "position",
        }
    );
    let sci = |x: f64| {
        if x.is_finite() {
            format!("{x:.3e}")
        } else {
            format!("{x}")
        }
    };
    let frac = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
    let rows: Vec<[String; 10]> = report
        .outputs
        .iter()
        .map(|o| {
            let m = &o.metrics;
            [
                o.output.clone(),
                format!("{:?}", o.shape),
                sci(m.max_abs),
                sci(m.mean_abs),
                sci(m.max_rel),
                format!("{:.8}", m.cosine),
                if m.snr_db.is_finite() {
                    format!("{:.1}", m.snr_db)
                } else {
                    format!("{}", m.snr_db)
                },
                frac(m.top1_agreement),
                frac(m.top5_containment),
                if o.bounds.pass {
                    "ok".into()
                } else {
                    "OUTSIDE".into()
                },
            ]
        })
        .collect();
    let header = [
        "output", "shape", "max|Δ|", "mean|Δ|", "max rel", "cosine", "SNR dB", "top-1", "top-5",
        "bounds",
    ];
    print_aligned(&header, &rows);
    let cosine = args.min_cosine.map_or("none".into(), |c| c.to_string());
    let verdict = if report.pass {
        "within the bounds"
    } else {
        "OUTSIDE the bounds"
    };
    println!(
        "{verdict} (atol {} + rtol {}·|ref|, min cosine {cosine})",
        args.atol, args.rtol
    );
}

/// One clause per failing output.
fn failures(report: &ComparisonReport, args: &CompareArgs) -> String {
    report
        .outputs
        .iter()
        .filter(|o| !o.bounds.pass)
        .map(|o| {
            let b = &o.bounds;
            let mut parts = Vec::new();
            if b.violations > 0 {
                parts.push(format!(
                    "{} of {} elements beyond atol {} + rtol {}·|ref| (first at flat index {}; max |Δ| {:.3e})",
                    b.violations,
                    o.metrics.count,
                    args.atol,
                    args.rtol,
                    b.first_violation.unwrap_or(0),
                    o.metrics.max_abs
                ));
            }
            if let Some(min) = args.min_cosine.filter(|&m| b.cosine < m) {
                parts.push(format!("cosine {:.12} < {min}", b.cosine));
            }
            format!("output \"{}\": {}", o.output, parts.join("; "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
