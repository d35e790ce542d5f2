//! Finding and loading the onnxruntime library. Its own test binary (= its own process), in
//! ONE test, so the failed attempts really happen before any successful load: one library
//! per process is an onnxruntime rule.
#![cfg(feature = "ort")]

mod common;

use whittle_runtime::ort_backend::find_ort_library;
use whittle_runtime::{OrtBackend, OrtOptions};

fn with_library(path: std::path::PathBuf) -> OrtOptions {
    OrtOptions {
        library: Some(path),
        intra_threads: 1,
        sessions: 1,
    }
}

#[test]
fn bad_libraries_are_clear_errors_and_do_not_poison_the_process() {
    // 1. a path that does not exist: nothing is loaded, the message says what to do
    let text = OrtBackend::new(&with_library(
        "/nonexistent/dir/libonnxruntime.so.1.32.0".into(),
    ))
    .unwrap_err()
    .to_string();
    eprintln!("{text}");
    assert!(
        text.contains(
            "--ort-lib /nonexistent/dir/libonnxruntime.so.1.32.0: no such file or folder"
        ),
        "{text}"
    );
    assert!(text.contains("--ort-lib PATH"), "{text}");
    assert!(text.contains("WHITTLE_ORT_LIB"), "{text}");

    // 2. a file that is no shared library: dlopen fails, the reason is in the message
    let text = OrtBackend::new(&with_library(common::data("gemm_relu.onnx")))
        .unwrap_err()
        .to_string();
    eprintln!("{text}");
    assert!(text.contains("cannot load"), "{text}");
    assert!(
        text.contains("dlopen failed: "),
        "the dlopen reason is kept: {text}"
    );
    assert!(text.contains("gemm_relu.onnx"), "{text}");
    assert!(text.contains("--ort-lib PATH"), "{text}");

    // 3. a folder without a library
    let dir = tempfile::tempdir().unwrap();
    let text = OrtBackend::new(&with_library(dir.path().to_path_buf()))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("folder holds no libonnxruntime library"),
        "{text}"
    );

    // 4. the real library still loads afterwards, and only that one from now on
    let Some(ort) = common::ort_or_skip("bad_libraries_are_clear_errors...") else {
        return;
    };
    let library = find_ort_library(None).unwrap();
    eprintln!("loaded {}", ort.library_path().display());
    // the folder holding it resolves to the same file and reuses the environment
    let folder = library.parent().unwrap().to_path_buf();
    OrtBackend::new(&with_library(folder)).unwrap();
    let other = dir.path().join("libonnxruntime.so.1.99.0");
    std::fs::write(&other, b"").unwrap();
    let text = OrtBackend::new(&with_library(other))
        .unwrap_err()
        .to_string();
    assert!(text.contains("already loaded from"), "{text}");
}
