//! One module per subcommand: its clap arguments and its `run`.
pub mod convert;
pub mod inspect;
pub mod optimize;
pub mod backend_args;
pub mod bench;
pub mod compare;
pub mod eval;
pub mod run;
pub mod merge;
pub mod quantize;
pub mod prune;
