//! Finding a `libonnxruntime` shared library to load at run time.
//!
//! Order (the first that applies wins; an explicit choice never falls back to discovery, so
//! a wrong path is reported instead of silently replaced):
//! 1. the path the caller passes (the CLI's `--ort-lib PATH`);
//! 2. the `WHITTLE_ORT_LIB` environment variable;
//! 3. a virtual environment holding the `onnxruntime` wheel, looked up on disk without
//!    starting Python: the active one (`VIRTUAL_ENV`), then `.venv` in the current directory
//!    and each of its ancestors (`lib/python3.*/site-packages/onnxruntime/capi/`, the layout
//!    pip and uv write on Linux and macOS);
//! 4. `python3` on `PATH` (then each `.venv/bin/python` found above, for layouts the direct
//!    look does not know), asked where the `onnxruntime` package is
//!    (`importlib.util.find_spec`, which does not import it) and its `capi/` folder searched.
//!
//! Steps 3 and 4 run once per process and their answer is kept. Step 3 comes first because
//! starting an interpreter costs 15–100 ms (more behind pyenv shims) on every command, and
//! an activated environment is what `python3` would have answered anyway.
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
        let venvs = venv_candidates();
        let found = venvs
            .iter()
            .find_map(|venv| from_venv_dir(venv, &mut asked))
            .or_else(|| {
                python_candidates(&venvs)
                    .iter()
                    .find_map(|python| from_python(python, &mut asked))
            });
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

/// The active virtual environment, then `.venv` of the current directory and every ancestor.
fn venv_candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var_os("VIRTUAL_ENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let venv = dir.join(".venv");
            if venv.is_dir() && !out.contains(&venv) {
                out.push(venv);
            }
        }
    }
    out
}

/// The library of the `onnxruntime` package installed in the environment `venv`, looked up
/// without running its interpreter (the highest `python3.*` folder wins).
fn from_venv_dir(venv: &Path, tried: &mut Vec<String>) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    pythons.sort_by_key(|p| std::cmp::Reverse(python_minor(p)));
    let found = pythons
        .iter()
        .find_map(|p| library_in_dir(&p.join("site-packages").join("onnxruntime").join("capi")));
    if found.is_none() {
        tried.push(format!(
            "{}: no onnxruntime package in lib/python3.*/site-packages",
            venv.display()
        ));
    }
    found
}

/// The minor version of a `lib/python3.N` folder (0 when it has none).
fn python_minor(dir: &Path) -> u64 {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("python3."))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `python3`, then the interpreter of each environment in `venvs`.
fn python_candidates(venvs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("python3")];
    for venv in venvs {
        let python = venv.join("bin").join("python");
        if python.exists() {
            out.push(python);
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

/// The oldest onnxruntime the backend can use (the `api-31` floor of the `ort` crate).
pub const MIN_VERSION: [u64; 2] = [1, 31];

/// False when the library's file name says it is older than [`MIN_VERSION`] (loading it
/// would fail); true for newer and for unversioned names, which only loading can tell.
pub fn new_enough(library: &Path) -> bool {
    library
        .file_name()
        .and_then(|n| library_version(&n.to_string_lossy()))
        .is_none_or(|v| v.is_empty() || v.as_slice() >= MIN_VERSION.as_slice())
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
    fn libraries_older_than_the_api_floor_are_not_new_enough() {
        for (name, ok) in [
            ("libonnxruntime.so.1.32.0", true),
            ("libonnxruntime.so.1.31.0", true),
            ("libonnxruntime.so.1.30.1", false),
            ("libonnxruntime.so.1.9.0", false),
            ("libonnxruntime.so.2.0.0", true),
            ("libonnxruntime.1.20.0.dylib", false),
            ("libonnxruntime.so", true),
        ] {
            assert_eq!(
                new_enough(Path::new("/x").join(name).as_path()),
                ok,
                "{name}"
            );
        }
    }

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
    fn finds_the_library_in_a_venv_without_python() {
        let venv = tempfile::tempdir().unwrap();
        let mut tried = Vec::new();
        assert!(from_venv_dir(venv.path(), &mut tried).is_none());
        assert!(tried[0].contains("no onnxruntime package"), "{tried:?}");
        for (minor, version) in [("9", "1.40.0"), ("11", "1.31.0")] {
            let capi = venv.path().join(format!(
                "lib/python3.{minor}/site-packages/onnxruntime/capi"
            ));
            std::fs::create_dir_all(&capi).unwrap();
            std::fs::write(capi.join(format!("libonnxruntime.so.{version}")), b"").unwrap();
        }
        // The newest interpreter's package wins, whatever the library versions say.
        let found = from_venv_dir(venv.path(), &mut tried).unwrap();
        assert!(
            found.ends_with("python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.0"),
            "{found:?}"
        );
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
