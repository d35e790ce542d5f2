//! `whittle convert`: load and write back, optionally converting the ai.onnx opset and
//! moving tensor data. A conversion that fails writes nothing.
use crate::output::{check_not_overwriting, print_json, print_saved};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use whittle_ir::{ExternalMode, Model, SaveOptions};
use whittle_passes::opset::{ConvertOpset, MAX_TARGET, MIN_TARGET};
use whittle_passes::{PassContext, PassManager, PassReport};

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
    /// Convert the ai.onnx (default domain) opset to N (7 to 21) before writing.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(MIN_TARGET..=MAX_TARGET))]
    pub opset: Option<i64>,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let mut model = Model::load(&args.input)?;
    let external = match (args.external_data, args.inline_data) {
        (Some(t), _) => ExternalMode::Threshold(t),
        (None, true) => ExternalMode::Inline,
        (None, false) => ExternalMode::Keep,
    };
    let opts = SaveOptions {
        external,
        ..Default::default()
    };
    let mut inputs = vec![args.input.clone()];
    inputs.extend(model.external_files());
    let outputs = whittle_ir::save::target_files(&model, &args.output, &opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    let valid = whittle_ir::verify::verify(&model);
    if let Err(e) = &valid {
        let how = if args.opset.is_some() {
            "converted without checking the result"
        } else {
            "written as read"
        };
        eprintln!("warning: {}: {e} ({how})", args.input.display());
    }
    let opset_report = match args.opset {
        Some(target) => Some(
            convert_opset(&mut model, target, valid.is_ok())
                .with_context(|| args.input.display().to_string())?,
        ),
        None => None,
    };
    // The save error already names the file it could not write.
    let report = whittle_ir::save(&model, &args.output, &opts)?;
    if args.json {
        let mut json = serde_json::to_value(&report).context("cannot serialize the report")?;
        if let (Some(obj), Some(r)) = (json.as_object_mut(), &opset_report) {
            obj.insert(
                "opset".into(),
                serde_json::to_value(r).context("cannot serialize the report")?,
            );
        }
        return print_json(&json);
    }
    if let Some(r) = &opset_report {
        for line in &r.changes {
            println!("{line}");
        }
        for line in &r.skipped {
            println!("kept: {line}");
        }
    }
    print_saved(&report);
    Ok(())
}

/// Runs the opset conversion, verifying the result when the input itself verified.
fn convert_opset(model: &mut Model, target: i64, verify: bool) -> Result<PassReport> {
    let pass = ConvertOpset { target };
    let mut cx = PassContext::default();
    if !verify {
        return Ok(whittle_passes::Pass::run(&pass, model, &mut cx)?);
    }
    let mut pm = PassManager::new();
    pm.add(Box::new(pass));
    let mut reports = pm.run(model, &mut cx)?;
    Ok(reports.pop().unwrap_or_default())
}
