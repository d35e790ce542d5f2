//! `whittle bench`: latency (min / median / p90) and peak memory of a model on each
//! available backend.
use super::backend_args::{BackendArgs, Runtime, load_model, print_aligned, print_notes};
use crate::output::{error_chain, print_json};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use whittle_runtime::bench::{BenchConfig, BenchReport, bench, reset_peak_rss};
use whittle_runtime::model::{BackendKind, Runner, input_specs};
use whittle_runtime::{InputFact, NamedTensor, resolve_shapes, seeded_inputs};

#[derive(Args)]
#[command(after_help = "\
Without --runtime, every available backend is measured: tract always, onnxruntime when its
library is found (otherwise the report says why not). onnxruntime's numbers are the ones users
deploy with; tract is single-threaded. Inputs are generated from --seed (one sample).
Latency: wall time of one run call, inputs and outputs copied as a caller sees them;
percentiles by nearest rank. Peak memory: the process's peak resident set size (VmHWM),
reset before each backend loads the model (Linux), so it covers loading and running.")]
pub struct BenchArgs {
    /// The model to measure.
    pub model: PathBuf,
    /// Timed runs per backend.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub runs: usize,
    /// Untimed runs first.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub warmup: usize,
    /// Seed of the generated inputs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// One backend's outcome.
#[derive(serde::Serialize)]
struct Entry {
    backend: &'static str,
    threads: usize,
    /// Why there are no numbers (library missing, model not supported).
    unavailable: Option<String>,
    load_ms: Option<f64>,
    peak_rss_reset: bool,
    result: Option<BenchReport>,
    notes: Vec<String>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let specs = input_specs(&model)?;
    let shapes = resolve_shapes(&specs, &args.backend.overrides()?)
        .with_context(|| format!("{}: input shapes", args.model.display()))?;
    let inputs = seeded_inputs(&specs, &shapes, args.seed)?;
    let kinds = match args.backend.runtime {
        Some(Runtime::Tract) => vec![BackendKind::Tract],
        Some(Runtime::Onnxruntime) => vec![BackendKind::Ort],
        None => vec![BackendKind::Tract, BackendKind::Ort],
    };
    let config = BenchConfig {
        warmup: args.warmup,
        runs: args.runs,
    };
    let mut entries = Vec::new();
    for kind in kinds {
        let entry = measure(&args, &model, kind, &inputs, &config);
        if let (Err(e), Some(_)) = (&entry, args.backend.runtime) {
            bail!("{}", error_chain(e));
        }
        entries.push(entry.unwrap_or_else(|e| Entry {
            backend: kind.label(),
            threads: threads_of(&args, kind),
            unavailable: Some(error_chain(&e)),
            load_ms: None,
            peak_rss_reset: false,
            result: None,
            notes: Vec::new(),
        }));
    }
    if args.json {
        print_json(&json!({
            "model": args.model,
            "seed": args.seed,
            "inputs": inputs.iter().map(|(n, t)| json!({"name": n, "dtype": t.dtype().to_string(), "shape": t.shape()})).collect::<Vec<_>>(),
            "backends": entries,
        }))?;
    } else {
        print_report(&args, &inputs, &entries);
    }
    if entries.iter().all(|e| e.result.is_none()) {
        bail!("{}: no backend could run the model", args.model.display());
    }
    Ok(())
}

fn threads_of(args: &BenchArgs, kind: BackendKind) -> usize {
    match kind {
        BackendKind::Tract => 1,
        BackendKind::Ort => args.backend.threads.unwrap_or(1),
    }
}

fn measure(
    args: &BenchArgs,
    model: &whittle_ir::Model,
    kind: BackendKind,
    inputs: &[NamedTensor],
    config: &BenchConfig,
) -> Result<Entry> {
    let threads = threads_of(args, kind);
    let backend = args.backend.backend_with(kind, threads)?;
    let facts: Vec<InputFact> = inputs.iter().map(|(n, t)| InputFact::of(n, t)).collect();
    let peak_rss_reset = reset_peak_rss();
    let start = Instant::now();
    let runner = Runner::load(model, Some(&args.model), backend.as_ref(), &[facts])?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let result = bench(runner.loaded_for(inputs), inputs, config)?;
    Ok(Entry {
        backend: kind.label(),
        threads,
        unavailable: None,
        load_ms: Some(load_ms),
        peak_rss_reset,
        result: Some(result),
        notes: runner.file().notes.clone(),
    })
}

fn print_report(args: &BenchArgs, inputs: &[NamedTensor], entries: &[Entry]) {
    let shapes: Vec<String> = inputs
        .iter()
        .map(|(n, t)| format!("{n} {} {:?}", t.dtype(), t.shape()))
        .collect();
    println!("bench: {}", args.model.display());
    println!(
        "inputs: {} (seed {}); {} warm-up + {} timed runs",
        shapes.join(", "),
        args.seed,
        args.warmup,
        args.runs.max(1)
    );
    let ms = |x: f64| format!("{x:.3}");
    let rows: Vec<[String; 7]> = entries
        .iter()
        .filter_map(|e| {
            let r = e.result.as_ref()?;
            Some([
                e.backend.to_string(),
                e.threads.to_string(),
                e.load_ms.map_or("-".into(), ms),
                ms(r.min_ms),
                ms(r.median_ms),
                ms(r.p90_ms),
                r.peak_rss_bytes
                    .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
            ])
        })
        .collect();
    let header = [
        "backend",
        "threads",
        "load ms",
        "min ms",
        "median ms",
        "p90 ms",
        "peak RSS",
    ];
    print_aligned(&header, &rows);
    for e in entries {
        if let Some(why) = &e.unavailable {
            println!("{}: not measured: {why}", e.backend);
        }
        print_notes(
            &e.notes
                .iter()
                .map(|n| format!("{}: {n}", e.backend))
                .collect::<Vec<_>>(),
        );
    }
}
