//! The `whittle` command line, as a library so the end-to-end tests can run the same code
//! as a binary of their own.
//!
//! Exit codes: 0 success, 1 error (one line naming the file and the problem on stderr),
//! 2 usage error (from clap). A panic is a bug.
pub mod cmd;
mod deferred;
pub mod output;
mod signals;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "whittle",
    version,
    about = "Make ONNX models smaller and faster, and prove they are still right"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The one-command pipeline: clean-up → pruning → quantization → verification, with a before/after table.
    Compress(cmd::compress::CompressArgs),
    /// Show a model's inputs, outputs, opsets, ops, parameters, weight bytes and MACs.
    Inspect(cmd::inspect::InspectArgs),
    /// Load a model and write it back, optionally moving tensor data to or from external files.
    Convert(cmd::convert::ConvertArgs),
    /// Clean a model up: fold constants and BatchNorm, remove dead code and no-op nodes.
    Optimize(cmd::optimize::OptimizeArgs),
    /// Run a model on stored or seeded inputs; print or save its outputs.
    Run(cmd::run::RunArgs),
    /// Run two models on the same inputs and measure how far apart their outputs are (exit 0 within the bounds, 2 outside, 1 on error).
    Compare(cmd::compare::CompareArgs),
    /// Accuracy, top-k and per-class confusion of a classifier over a labelled .npz.
    Eval(cmd::eval::EvalArgs),
    /// Latency (min/median/p90) and peak memory on each available runtime.
    Bench(cmd::bench::BenchArgs),
    /// Quantize weights (and activations) to int8/int4, or convert to float16.
    Quantize(cmd::quantize::QuantizeArgs),
    /// Remove whole channels (structured pruning), shrinking the real tensors.
    Prune(cmd::prune::PruneArgs),
    /// Merge several models into one graph (ensemble combiners, or an A/B diff model).
    Merge(cmd::merge::MergeArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main_exit_code() -> std::process::ExitCode {
    signals::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compress(args) => cmd::compress::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Optimize(args) => cmd::optimize::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Compare(args) => return cmd::compare::main(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Prune(args) => cmd::prune::run(args),
    };
    deferred::finish();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", output::error_chain(&e));
            std::process::ExitCode::from(1)
        }
    }
}
