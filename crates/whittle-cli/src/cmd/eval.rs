//! `whittle eval`: accuracy, top-k and a per-class confusion summary of a classifier over a
//! labelled .npz.
use super::backend_args::{BackendArgs, backend_line, load_model, print_aligned, print_notes};
use crate::output::print_json;
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use whittle_runtime::model::{BatchOptions, Dataset, EvalReport, Runner, evaluate, input_specs};
use whittle_runtime::npz::take_key;
use whittle_runtime::read_npz;

#[derive(Args)]
#[command(after_help = "\
The model's first input is read from --input-key, any other input from the key of its own
name; samples lie on axis 0 and run in batches that fit the model's batch dim. Scores are the
first output per sample (flattened); the prediction is its argmax (ties to the lower class).
Labels are class indices.")]
pub struct EvalArgs {
    /// The classifier.
    pub model: PathBuf,
    /// The labelled set: an .npz with the inputs and the labels.
    #[arg(long, value_name = "FILE.npz")]
    pub data: PathBuf,
    /// Key of the first input's samples [default: the input's name if the file has it,
    /// else "input"].
    #[arg(long, value_name = "K")]
    pub input_key: Option<String>,
    /// Key of the labels (class indices, one per sample).
    #[arg(long, value_name = "L", default_value = "label")]
    pub label_key: String,
    /// Also count a sample as a hit when its label is among the K best classes.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub top_k: usize,
    /// Print the report (with every sample's prediction) as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// The output holding the class scores (default: the first output).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let (data, labels) = labelled_dataset(
        &model,
        &args.data,
        args.input_key.as_deref(),
        &args.label_key,
        &args.backend,
    )?;
    let (backend, threads) = args.backend.backend()?;
    let runner = Runner::for_dataset(&model, Some(&args.model), backend.as_ref(), &data)?;
    let bar = progress_bar(data.samples() as u64, args.json || args.quiet);
    let report = evaluate(
        &runner,
        &data,
        &labels,
        args.output.as_deref(),
        args.top_k,
        threads,
        Some(&|done| bar.set_position(done as u64)),
    )?;
    bar.finish_and_clear();
    let mut notes = data.notes.clone();
    notes.extend(runner.file().notes.iter().cloned());
    if args.json {
        return print_json(&json!({
            "model": args.model, "data": args.data, "notes": notes, "report": report,
        }));
    }
    print_notes(&notes);
    print_report(&args, &report);
    Ok(())
}

/// The labelled set at `path` cut for `model`: its first input read from `input_key`
/// (default: the input's own name when present, else "input"), and the labels.
pub fn labelled_dataset(
    model: &whittle_ir::Model,
    path: &std::path::Path,
    input_key: Option<&str>,
    label_key: &str,
    backend: &BackendArgs,
) -> Result<(Dataset, whittle_runtime::HostTensor)> {
    let specs = input_specs(model)?;
    let Some(first) = specs.first() else {
        bail!("{}: the model has no inputs to feed", model.label());
    };
    let mut arrays = read_npz(path)?;
    let labels = take_key(&mut arrays, path, label_key)?;
    let key = match input_key {
        Some(k) => k.to_string(),
        None if arrays.iter().any(|(k, _)| *k == first.name) => first.name.clone(),
        None => "input".to_string(),
    };
    if key != first.name {
        let samples = take_key(&mut arrays, path, &key)?;
        arrays.retain(|(k, _)| *k != first.name);
        arrays.push((first.name.clone(), samples));
    }
    let data = Dataset::from_arrays(
        &specs,
        &arrays,
        &backend.overrides()?,
        &BatchOptions::default(),
    )
    .with_context(|| format!("{}: cannot feed the model", path.display()))?;
    Ok((data, labels))
}

/// A bar on stderr, hidden when asked or when stderr is not a terminal.
pub fn progress_bar(len: u64, hidden: bool) -> ProgressBar {
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} samples {elapsed}") {
        bar.set_style(style);
    }
    bar
}

fn print_report(args: &EvalArgs, r: &EvalReport) {
    println!(
        "eval: {} on {} ({} samples)",
        args.model.display(),
        args.data.display(),
        r.count
    );
    println!("{}", backend_line(r.backend));
    println!("accuracy  {:.4} ({} / {})", r.accuracy, r.correct, r.count);
    println!(
        "top-{:<4}  {:.4} ({} / {})",
        r.top_k, r.top_k_accuracy, r.top_k_correct, r.count
    );
    let rows: Vec<[String; 5]> = r
        .classes
        .iter()
        .map(|c| {
            [
                c.class.to_string(),
                c.count.to_string(),
                c.correct.to_string(),
                c.recall
                    .map_or("-".into(), |v| format!("{:.1}%", v * 100.0)),
                c.predicted.to_string(),
            ]
        })
        .collect();
    print_aligned(&["class", "count", "correct", "recall", "predicted"], &rows);
    if r.most_confused.is_empty() {
        println!("most confused: none (every sample correct)");
    } else {
        let pairs: Vec<String> = r
            .most_confused
            .iter()
            .map(|c| format!("{} → {} ×{}", c.label, c.predicted, c.count))
            .collect();
        println!("most confused (label → predicted): {}", pairs.join(", "));
    }
}
