//! One module per subcommand: its clap arguments and its `run`.
pub mod backend_args;
pub mod bench;
pub mod compare;
pub mod compress;
pub mod convert;
pub mod eval;
pub mod inspect;
pub mod merge;
pub mod optimize;
pub mod prune;
pub mod quantize;
pub mod run;
pub mod selfcheck;
