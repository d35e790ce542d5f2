//! whittle-runtime: the numeric side of whittle — run ONNX models on seeded or stored
//! inputs with tract (compiled in) or onnxruntime (loaded at run time), compare outputs,
//! collect calibration statistics and benchmark.
//!
//! Crate invariants:
//! - Backends take models as file paths (so external data resolves next to the file) and
//!   tensors as [`HostTensor`]s; only [`model`] knows the IR (`whittle-ir`) and the passes
//!   (`whittle-passes`), which never depend on this crate. It turns an IR model into the file
//!   a backend loads (lowered for tract), cuts datasets into runs, and builds compare,
//!   evaluate and intermediate-value collection on top.
//! - Deterministic: seeded inputs are the same bytes for the same seed on every platform
//!   ([`inputs`], [`rng`]); `.npz` output is byte-stable ([`npz`]); [`parallel::run_many`]
//!   returns the same results in the same order for any thread count.
//! - Nothing here panics on user data (files, shapes, names, libraries): every failure is a
//!   `thiserror` error naming the model file, input, output, npz key or node involved.
//! - Backends implement [`Backend`] / [`LoadedModel`]; outputs come back by name in graph
//!   order with the dtypes the graph declares.
//!
//! Backends: [`TractBackend`] (single-threaded, always available) and, with the default
//! `ort` feature, `OrtBackend` (needs a `libonnxruntime` ≥ 1.31 at run time; see
//! `ort_backend::discover` for how it is found).

pub mod backend;
pub mod bench;
pub mod dtype;
pub mod inputs;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod npz;
#[cfg(feature = "ort")]
pub mod ort_backend;
pub mod parallel;
pub mod rng;
pub mod stats;
pub mod tensor;
pub mod tract_backend;

pub use backend::{Backend, BackendError, InputFact, LoadedModel};
pub use inputs::{
    Dim, InputSpec, ShapeOverride, parse_shape_override, resolve_shapes, seeded_inputs,
};
pub use metrics::{Metrics, Tolerance, compare, compare_outputs, within_bounds};
pub use npz::{NpzCompression, NpzError, read_npz, write_npz};
#[cfg(feature = "ort")]
pub use ort_backend::{OrtBackend, OrtOptions};
pub use parallel::run_many;
pub use stats::{RunningStats, StatsConfig};
pub use tensor::{DType, HostTensor, NamedTensor, TensorData};
pub use tract_backend::TractBackend;
