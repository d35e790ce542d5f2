//! Errors of the IR crate. Every message names the file, tensor or node it is about.
use std::path::PathBuf;

/// Anything that can go wrong while loading, checking or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid ONNX model (protobuf decode failed: {reason})")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("tensor {tensor:?}: {message}")]
    Tensor { tensor: String, message: String },
    #[error("tensor {tensor:?}: external data {message}")]
    External { tensor: String, message: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Verify(#[from] crate::verify::VerifyError),
}

pub type Result<T, E = IrError> = std::result::Result<T, E>;
