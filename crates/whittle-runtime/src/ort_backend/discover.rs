//! Finding a `libonnxruntime` shared library to load at run time.
//!
//! Order (the first that applies wins; an explicit choice never falls back to discovery, so
//! a wrong path is reported instead of silently replaced):
//! 1. the path the caller passes (the CLI's `--ort-lib PATH`);
//! 2. the `WHITTLE_ORT_LIB` environment variable;
//! 3. a Python environment with the `onnxruntime` wheel: `python3` on `PATH`, then
//!    `.venv/bin/python` in the current directory and each of its ancestors; each is asked
//!    where the `onnxruntime` package is (`importlib.util.find_spec`, which does not import
//!    it) and its `capi/` folder searched. The answer is kept for the rest of the process.
//!
//! A path may name the library file or a folder holding it. In a folder, the versioned file
//! (`libonnxruntime.so.1.32.0`) is preferred over an unversioned `libonnxruntime.so`,
//! and the highest version wins; `libonnxruntime_providers_*.so` never matches.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::backend::BackendError;

/// Environment variable naming the library (file or folder).
pub const ORT_LIB_ENV: &str = "WHITTLE_ORT_LIB";

/// Finds the library to load; on failure the error lists every place tried.
pub fn find_ort_library(explicit: Option<&Path>) -> Result<PathBuf, BackendError> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(path) = explicit {
        return resolve_user_path(path, "--ort-lib", &mut tried).ok_or_else(|| not_found(&tried));
    }
    match std::env::var_os(ORT_LIB_ENV) {
        Some(v) if !v.is_empty() => {
            return resolve_user_path(Path::new(&v), ORT_LIB_ENV, &mut tried)
                .ok_or_else(|| not_found(&tried));
        }
        _ => tried.push(format!("{ORT_LIB_ENV}: not set")),
    }
    let (found, asked) = DISCOVERED.get_or_init(|| {
        let mut asked = Vec::new();
        let found = python_candidates()
            .iter()
            .find_map(|python| from_python(python, &mut asked));
        (found, asked)
    });
    tried.extend(asked.iter().cloned());
    found.clone().ok_or_else(|| not_found(&tried))
}

/// What asking the Python environments found, once per process: every command that
/// loads a backend would otherwise start Python again.
static DISCOVERED: OnceLock<(Option<PathBuf>, Vec<String>)> = OnceLock::new();

fn not_found(tried: &[String]) -> BackendError {
    let mut msg = String::from("no usable onnxruntime library found; tried:");
    for t in tried {
        msg.push_str("\n  - ");
        msg.push_str(t);
    }
    msg.push_str(
        "\npoint to one with --ort-lib PATH or the WHITTLE_ORT_LIB environment variable \
         (a libonnxruntime.so.* file, version >= 1.31, or the folder holding it; \
         `pip install onnxruntime` ships one in site-packages/onnxruntime/capi/)",
    );
    BackendError::OrtLibrary(msg)
}

fn resolve_user_path(path: &Path, origin: &str, tried: &mut Vec<String>) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    if path.is_dir() {
        let found = library_in_dir(path);
        if found.is_none() {
            tried.push(format!(
                "{origin} {}: folder holds no libonnxruntime library",
                path.display()
            ));
        }
        return found;
    }
    tried.push(format!(
        "{origin} {}: no such file or folder",
        path.display()
    ));
    None
}

/// `python3`, then `.venv/bin/python` of the current directory and every ancestor.
fn python_candidates() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("python3")];
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let venv = dir.join(".venv").join("bin").join("python");
            if venv.exists() {
                out.push(venv);
            }
        }
    }
    out
}

fn from_python(python: &Path, tried: &mut Vec<String>) -> Option<PathBuf> {
    let output = Command::new(python)
        .args([
            "-c",
            // Locates the package without importing it (an import loads numpy and
            // onnxruntime itself: ~0.2 s, against ~0.02 s for this).
            "import sys, importlib.util as u; s = u.find_spec('onnxruntime'); \
             sys.exit('onnxruntime is not installed') if s is None \
             else print(s.submodule_search_locations[0])",
        ])
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            tried.push(format!("{}: cannot run ({e})", python.display()));
            return None;
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("failed").trim();
        tried.push(format!(
            "{}: no onnxruntime package ({last})",
            python.display()
        ));
        return None;
    }
    let package = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let capi = Path::new(&package).join("capi");
    let found = library_in_dir(&capi);
    if found.is_none() {
        tried.push(format!(
            "{}: no libonnxruntime library in {}",
            python.display(),
            capi.display()
        ));
    }
    found
}

/// The best onnxruntime library file in `dir` (see the module docs for the preference).
pub fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = library_version(&name) else {
            continue;
        };
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, entry.path()));
        }
    }
    best.map(|(_, p)| p)
}

/// For an onnxruntime library file name, its version numbers (empty when unversioned).
fn library_version(name: &str) -> Option<Vec<u64>> {
    let version_text = if let Some(rest) = name.strip_prefix("libonnxruntime.so") {
        rest.strip_prefix('.').unwrap_or(rest)
    } else if let Some(rest) = name.strip_prefix("libonnxruntime.") {
        rest.strip_suffix(".dylib")?
    } else if name == "onnxruntime.dll" {
        ""
    } else {
        return None;
    };
    if version_text.is_empty() {
        return Some(Vec::new());
    }
    version_text
        .split('.')
        .map(|p| p.parse::<u64>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_and_versions() {
        assert_eq!(
            library_version("libonnxruntime.so.1.32.0"),
            Some(vec![1, 32, 0])
        );
        assert_eq!(library_version("libonnxruntime.so"), Some(vec![]));
        assert_eq!(
            library_version("libonnxruntime.1.31.0.dylib"),
            Some(vec![1, 31, 0])
        );
        assert_eq!(library_version("libonnxruntime_providers_shared.so"), None);
        assert_eq!(library_version("libonnxruntime.so.1.32.0.bak"), None);
    }

    #[test]
    fn prefers_highest_versioned_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libonnxruntime.so",
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.32.0",
            "libonnxruntime_providers_shared.so",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = library_in_dir(dir.path()).unwrap();
        assert_eq!(found.file_name().unwrap(), "libonnxruntime.so.1.32.0");
    }

    #[test]
    fn explicit_missing_path_lists_what_was_tried() {
        let err = find_ort_library(Some(Path::new("/nonexistent/libonnxruntime.so.9")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--ort-lib /nonexistent/libonnxruntime.so.9: no such file or folder"),
            "{err}"
        );
        assert!(err.contains("WHITTLE_ORT_LIB"), "{err}");
    }
}
