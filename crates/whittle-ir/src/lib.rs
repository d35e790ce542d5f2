//! The whittle graph IR: lossless ONNX import and export, verification and the canonical
//! text form.
//!
//! Invariants this crate keeps:
//! - **Lossless.** `Model::load` then `save` with no change writes a `ModelProto` equal to
//!   the one read (same nodes in the same order, names, attributes, tensor bytes, metadata,
//!   value_info, functions, subgraphs, external-data layout); for files the onnx library
//!   wrote, the same bytes.
//! - **No copies of tensor data on load.** Model files and external data are memory-mapped;
//!   tensors hold `Bytes` slices of the maps.
//! - **Unknown is kept.** Ops, domains, attributes and dtypes the crate does not interpret
//!   are carried through untouched.
//! - **Nothing here depends on a runtime** (tract, onnxruntime): this crate builds in seconds.
pub mod convert;
pub mod dtype;
pub mod error;
pub mod external;
pub mod graph;
pub mod inspect;
pub mod model;
pub mod node;
pub mod save;
pub mod shape;
pub mod stream;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use dtype::DataType;
pub use error::{IrError, Result};
pub use graph::{Edge, Graph};
pub use model::Model;
pub use node::{Attribute, Node};
pub use save::{ExternalMode, SaveOptions, SaveReport, save};
pub use tensor::{Storage, Tensor};
pub use whittle_proto as proto;
