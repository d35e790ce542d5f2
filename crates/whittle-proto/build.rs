//! Generates the ONNX protobuf types from the vendored `proto/onnx.proto`.
//!
//! protox parses the schema in pure Rust, so no system `protoc` is needed. Two choices here
//! matter for losslessness:
//! - every `bytes` field is `bytes::Bytes`, so decoding from a shared buffer (or an mmap)
//!   slices it instead of copying tensor data;
//! - the fields of every message are sorted by field number before code generation, because
//!   prost encodes fields in declaration order while the C++ serializer (used by the onnx
//!   library) writes them by number. Sorting makes our re-encoding byte-identical.
use prost_build::Config;
use protox::prost_reflect::prost_types::{DescriptorProto, FileDescriptorSet};

fn sort_fields(message: &mut DescriptorProto) {
    message.field.sort_by_key(|f| f.number.unwrap_or(0));
    for nested in &mut message.nested_type {
        sort_fields(nested);
    }
}

fn main() {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let proto = format!("{proto_dir}/onnx.proto");
    println!("cargo:rerun-if-changed={proto}");
    let mut fds: FileDescriptorSet = match protox::compile([&proto], [proto_dir]) {
        Ok(fds) => fds,
        Err(e) => panic!("cannot parse {proto}: {e}"),
    };
    for file in &mut fds.file {
        for message in &mut file.message_type {
            sort_fields(message);
        }
    }
    let mut config = Config::new();
    config.bytes(["."]);
    if let Err(e) = config.compile_fds(fds) {
        panic!("cannot generate Rust code for {proto}: {e}");
    }
}
