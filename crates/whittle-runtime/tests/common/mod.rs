//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use whittle_runtime::{DType, Dim, InputFact, InputSpec, NamedTensor};

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

pub fn spec(name: &str, dtype: DType, dims: Vec<Dim>) -> InputSpec {
    InputSpec {
        name: name.into(),
        dtype,
        dims,
    }
}

pub fn facts(inputs: &[NamedTensor]) -> Vec<InputFact> {
    inputs.iter().map(|(n, t)| InputFact::of(n, t)).collect()
}

/// The onnxruntime backend, or None (with a loud message) when no library can be found.
/// A library that is found but fails to load is a test failure, not a skip.
/// Set WHITTLE_REQUIRE_ORT=1 to turn the skip into a failure (CI on machines that have one).
#[cfg(feature = "ort")]
pub fn ort_or_skip(test: &str) -> Option<whittle_runtime::OrtBackend> {
    use whittle_runtime::{OrtBackend, OrtOptions, ort_backend::find_ort_library};
    let library = match find_ort_library(None) {
        Ok(library) => library,
        Err(e) => {
            if std::env::var_os("WHITTLE_REQUIRE_ORT").is_some_and(|v| v == "1") {
                panic!("{test}: WHITTLE_REQUIRE_ORT=1 but no onnxruntime library: {e}");
            }
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: no onnxruntime library !!!!!!!!\n{e}\n\
                 !!!!!!!! (set WHITTLE_ORT_LIB to run it) !!!!!!!!\n"
            );
            return None;
        }
    };
    let options = OrtOptions {
        library: Some(library),
        ..OrtOptions::default()
    };
    match OrtBackend::new(&options) {
        Ok(backend) => Some(backend),
        Err(e) => panic!("{test}: found an onnxruntime library but cannot use it: {e}"),
    }
}
