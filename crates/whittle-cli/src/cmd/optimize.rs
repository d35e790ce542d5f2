//! `whittle optimize` (being written).
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct OptimizeArgs {
    /// The model to read.
    pub input: PathBuf,
}

pub fn run(args: OptimizeArgs) -> Result<()> {
    bail!("{}: optimize is not implemented yet", args.input.display())
}
