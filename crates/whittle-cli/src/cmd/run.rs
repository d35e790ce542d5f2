//! `whittle run`: run a model once on stored or seeded inputs; print or save the outputs.
use super::backend_args::{BackendArgs, backend_line, load_model, print_aligned, print_notes};
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use whittle_runtime::model::{Runner, input_specs, inputs_from_arrays};
use whittle_runtime::{HostTensor, InputFact, NamedTensor, NpzCompression, read_npz, write_npz};
use whittle_runtime::{resolve_shapes, seeded_inputs};

#[derive(Args)]
pub struct RunArgs {
    /// The model to run.
    pub model: PathBuf,
    /// Inputs from an .npz whose keys are the model's input names (fed as they are).
    #[arg(long, value_name = "FILE.npz", conflicts_with = "seed")]
    pub inputs: Option<PathBuf>,
    /// Generate the inputs from this seed [default: 0]: floats uniform in [-1, 1), integers
    /// in [0, 10), bools fair coins; the same values on every machine.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Save the outputs to an .npz (keys = output names), written atomically.
    #[arg(short, long, value_name = "OUT.npz")]
    pub output: Option<PathBuf>,
    /// Also save the inputs used to an .npz (written before the run, to replay it elsewhere).
    #[arg(long, value_name = "FILE.npz")]
    pub save_inputs: Option<PathBuf>,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: RunArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let specs = input_specs(&model)?;
    let (inputs, source, mut notes) = match &args.inputs {
        Some(path) => {
            let arrays = read_npz(path)?;
            let (inputs, notes) = inputs_from_arrays(&specs, &arrays)
                .with_context(|| format!("{}: cannot feed the model", path.display()))?;
            (inputs, path.display().to_string(), notes)
        }
        None => {
            let seed = args.seed.unwrap_or(0);
            let shapes = resolve_shapes(&specs, &args.backend.overrides()?)
                .with_context(|| format!("{}: input shapes", args.model.display()))?;
            (
                seeded_inputs(&specs, &shapes, seed)?,
                format!("seed {seed}"),
                Vec::new(),
            )
        }
    };
    let mut read = vec![args.model.clone()];
    read.extend(model.external_files());
    read.extend(args.inputs.clone());
    let written: Vec<PathBuf> = args
        .output
        .iter()
        .chain(&args.save_inputs)
        .cloned()
        .collect();
    check_not_overwriting(&written, &read, args.force)?;

    // Inputs first: they are saved even when the run fails, to replay the failure elsewhere.
    if let Some(path) = &args.save_inputs {
        write_npz_atomically(path, &inputs)?;
    }
    let (backend, _) = args.backend.backend()?;
    let facts: Vec<InputFact> = inputs.iter().map(|(n, t)| InputFact::of(n, t)).collect();
    let runner = Runner::load(&model, Some(&args.model), backend.as_ref(), &[facts])?;
    notes.extend(runner.file().notes.iter().cloned());
    let outputs = runner.run(&inputs)?;
    if let Some(path) = &args.output {
        write_npz_atomically(path, &outputs)?;
    }
    if args.json {
        return print_json(&json!({
            "model": args.model,
            "backend": runner.backend(),
            "inputs_from": source,
            "notes": notes,
            "inputs": inputs.iter().map(summary).collect::<Vec<_>>(),
            "outputs": outputs.iter().map(summary).collect::<Vec<_>>(),
            "written": args.output,
        }));
    }
    print_notes(&notes);
    println!("model: {}", args.model.display());
    println!("{}", backend_line(runner.backend()));
    for (name, t) in &inputs {
        println!("input {name}: {} {:?} ({source})", t.dtype(), t.shape());
    }
    print_table(&outputs);
    if let Some(path) = &args.output {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// name, dtype, shape, min/max/mean over finite values, first values.
fn summary((name, t): &NamedTensor) -> serde_json::Value {
    let (min, max, mean) = min_max_mean(t);
    json!({
        "name": name, "dtype": t.dtype().to_string(), "shape": t.shape(),
        "min": min, "max": max, "mean": mean,
        "first": t.to_f64_vec().into_iter().take(FIRST).collect::<Vec<_>>(),
    })
}

const FIRST: usize = 6;

fn min_max_mean(t: &HostTensor) -> (Option<f64>, Option<f64>, Option<f64>) {
    let finite: Vec<f64> = t
        .to_f64_vec()
        .into_iter()
        .filter(|x| x.is_finite())
        .collect();
    if finite.is_empty() {
        return (None, None, None);
    }
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (
        Some(min),
        Some(max),
        Some(finite.iter().sum::<f64>() / finite.len() as f64),
    )
}

fn print_table(outputs: &[NamedTensor]) {
    let num = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.6}"));
    let rows: Vec<[String; 7]> = outputs
        .iter()
        .map(|(name, t)| {
            let (min, max, mean) = min_max_mean(t);
            let first: Vec<String> = t
                .to_f64_vec()
                .iter()
                .take(FIRST)
                .map(|v| format!("{v:.4}"))
                .collect();
            let more = if t.len() > FIRST { ", …" } else { "" };
            [
                name.clone(),
                t.dtype().to_string(),
                format!("{:?}", t.shape()),
                num(min),
                num(max),
                num(mean),
                format!("[{}{more}]", first.join(", ")),
            ]
        })
        .collect();
    let header = [
        "output",
        "dtype",
        "shape",
        "min",
        "max",
        "mean",
        "first values",
    ];
    print_aligned(&header, &rows);
}

/// Writes an .npz through a temporary file in the target folder, renamed into place.
pub fn write_npz_atomically(path: &Path, arrays: &[NamedTensor]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".whittle-")
        .suffix(".npz.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create a temporary file", path.display()))?
        .into_temp_path();
    write_npz(&tmp, arrays, NpzCompression::Stored)?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}
