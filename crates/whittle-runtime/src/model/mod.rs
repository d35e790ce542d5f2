//! The glue between the whittle IR ([`whittle_ir::Model`]) and the numeric backends: what
//! a model's inputs are, how a model becomes a file a backend can load, how a dataset is cut
//! into runs, and the three jobs built on that — comparing two models ([`compare_models`]),
//! evaluating a classifier ([`evaluate`]) and reading intermediate values
//! ([`collect_tensors`], [`collect_stats`]; quantization calibration and data-driven pruning
//! build on these).
//!
//! Invariants:
//! - **One loader.** A backend always gets a serialized ONNX file, never a second in-memory
//!   translation: the original file when the model is unchanged and the backend can take it
//!   as is, else the IR written with `whittle_ir::save` into a temporary folder (external
//!   data beside it) that lives exactly as long as the loaded model ([`Runner`]).
//! - **Lowering is for tract only, and exact.** tract gets the model after
//!   [`whittle_passes::lower::LowerForVerification`] (constant DequantizeLinear folded,
//!   constant-condition `If` inlined); onnxruntime always gets the model as the user has it.
//!   f16 → f32 for tract happens inside the tract backend.
//! - **Every number says where it came from.** Reports carry the backend name (`tract` or
//!   `ort`) and the lowering notes.
//! - **Deterministic.** Seeded inputs, batch splitting and result order do not depend on the
//!   thread count; statistics are folded in sample order.
//! - **Errors name things.** A tract load failure names the op and node and suggests
//!   onnxruntime; data errors name the npz key, input and axis; no panic on user data.
//!
//! Dataset → runs (see [`Dataset::from_arrays`] for the full rule): arrays carry N samples
//! on axis 0. When the model's batch dim is fixed at B (1 included, and a symbolic dim the
//! user fixed with `--shape`), samples run B at a time (N must be a multiple of B); when it
//! is symbolic and unbound, they run in chunks of at most `max_batch` (default 32); an array
//! with one more axis than the input it feeds is a stack of unbatched samples, run one at a
//! time. Runs are independent and execute in parallel on a rayon pool ([`Runner::run_all`]).
mod compare;
mod dataset;
mod eval;
mod join;
mod lower_f16;
mod means;
mod prepare;
mod runner;
mod taps;

pub use compare::{
    ComparisonReport, MatchedBy, OutputComparison, candidate_dataset, compare_models, pair_names,
};
pub use dataset::{BatchOptions, Dataset, SampleLayout};
pub use eval::{ClassStats, Confusion, EvalReport, classification_report, evaluate};
pub use join::{concat_axis0, slice_axis0, stack};
pub use means::{ChannelAxis, collect_channel_means};
pub use prepare::{
    BackendKind, PreparedFile, input_specs, inputs_from_arrays, make_backend, make_pooled_backend,
    ort_library_found, prepare_file,
};
pub use runner::{Progress, Runner};
pub use taps::{Taps, collect_stats, collect_tensors, select_values, with_outputs};

use crate::backend::BackendError;
use crate::inputs::InputError;
use crate::metrics::MetricsError;
use crate::npz::NpzError;
use crate::stats::StatsError;

/// Everything the glue can fail with. Messages name the model, input, key or node.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Ir(#[from] whittle_ir::IrError),
    #[error("{model}: cannot lower for tract: {message}")]
    Lowering { model: String, message: String },
    /// tract could not load the model; `op`/`node` as tract's error names them.
    #[error(
        "{source}\ntract cannot run this model{}; run it with onnxruntime instead (--runtime onnxruntime)",
        what_failed(op, node)
    )]
    TractCannotRun {
        op: Option<String>,
        node: Option<String>,
        #[source]
        source: Box<BackendError>,
    },
    /// Boxed to keep `Result<_, ModelError>` small.
    #[error(transparent)]
    Backend(Box<BackendError>),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Npz(#[from] NpzError),
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The model's declared inputs cannot be fed (string inputs, unknown rank, …).
    #[error("{model}: input \"{input}\": {reason}")]
    Unfeedable {
        model: String,
        input: String,
        reason: String,
    },
    /// A dataset that does not fit the model.
    #[error("{0}")]
    Data(String),
    /// A value asked for that cannot be read out of the model.
    #[error("{0}")]
    Tap(String),
    /// Two models whose inputs or outputs cannot be paired.
    #[error("{0}")]
    Pairing(String),
    #[error("samples {first}..{end}: {source}")]
    Batch {
        first: usize,
        end: usize,
        #[source]
        source: Box<ModelError>,
    },
    #[error("cannot start {threads} worker threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}

impl From<BackendError> for ModelError {
    fn from(e: BackendError) -> Self {
        ModelError::Backend(Box::new(e))
    }
}

fn what_failed(op: &Option<String>, node: &Option<String>) -> String {
    match (op, node) {
        (Some(op), Some(node)) => format!(" (op {op} in node \"{node}\")"),
        (Some(op), None) => format!(" (op {op})"),
        (None, Some(node)) => format!(" (node \"{node}\")"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests;
