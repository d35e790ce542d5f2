//! `whittle inspect` (being written).
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// The model to read.
    pub model: PathBuf,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let model = whittle_ir::Model::load(&args.model)?;
    print!("{}", whittle_ir::text::model_to_text(&model));
    Ok(())
}
