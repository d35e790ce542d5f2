//! prost types for ONNX (`onnx.proto` from the onnx release named in `proto/UPSTREAM.md`).
//!
//! Invariants:
//! - every `bytes` field is [`bytes::Bytes`]: decoding from a shared buffer slices it, so
//!   tensor data is never copied on load;
//! - fields encode in field-number order, as the onnx library's C++ serializer writes them,
//!   so decoding and re-encoding a file the onnx library wrote gives the same bytes.
//!
//! Unknown fields are dropped by prost; [`decode_model`] callers that need to know compare
//! the re-encoded length with the input.

#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use generated::*;
pub use prost::Message;

/// Decodes a `ModelProto` from a shared buffer without copying tensor bytes.
pub fn decode_model(buf: bytes::Bytes) -> Result<ModelProto, prost::DecodeError> {
    ModelProto::decode(buf)
}

/// Encodes a `ModelProto` into a fresh vector.
pub fn encode_model(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
