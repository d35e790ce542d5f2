//! `whittle convert`: load and write back, optionally moving tensor data.
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use whittle_ir::{ExternalMode, Model, SaveOptions};

#[derive(Args)]
pub struct ConvertArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Move tensors of at least THRESHOLD_BYTES (default 1024) to `OUT.data`; smaller ones inline.
    #[arg(long, value_name = "THRESHOLD_BYTES", num_args = 0..=1, default_missing_value = "1024", conflicts_with = "inline_data")]
    pub external_data: Option<u64>,
    /// Pull all external tensor data into the model file.
    #[arg(long)]
    pub inline_data: bool,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let model = Model::load(&args.input)?;
    let external = match (args.external_data, args.inline_data) {
        (Some(t), _) => ExternalMode::Threshold(t),
        (None, true) => ExternalMode::Inline,
        (None, false) => ExternalMode::Keep,
    };
    let opts = SaveOptions { external };
    let mut inputs = vec![args.input.clone()];
    inputs.extend(model.external_files());
    let outputs = whittle_ir::save::target_files(&model, &args.output, &opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    if let Err(e) = whittle_ir::verify::verify(&model) {
        eprintln!("warning: {}: {e} (written as read)", args.input.display());
    }
    let report = whittle_ir::save(&model, &args.output, &opts)
        .with_context(|| format!("{}: cannot write the converted model", args.output.display()))?;
    if args.json {
        return print_json(&report);
    }
    println!("wrote {} ({} bytes)", report.model_path.display(), report.model_bytes);
    for (path, size) in &report.data_files {
        println!("wrote {} ({size} bytes)", path.display());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}
