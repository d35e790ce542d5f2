//! Helpers shared by the end-to-end suites in `tests/tests/`: where the repository, the
//! fixtures, the corpus and the test venv are, and how to run the CLI and the Python checks.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A file in `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// Every `.onnx` fixture, sorted by name.
pub fn fixture_models() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo_root().join("fixtures"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "onnx"));
    v.sort();
    v
}

/// Every `.onnx` file below `corpus/` (fetched by `scripts/fetch-corpus.sh`), sorted.
pub fn corpus_models() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "onnx") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&repo_root().join("corpus"), &mut v);
    v.sort();
    v
}

/// The test venv's python (`.venv/bin/python`, made by `scripts/setup-venv.sh`).
/// Tests that need it fail loudly when it is missing: the README's test command makes it.
pub fn venv_python() -> PathBuf {
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test.sh` (it creates the venv)",
        p.display()
    );
    p
}

/// Runs a script of `tests/python/` with the venv's python; returns its parsed JSON output.
pub fn python_json(script: &str, args: &[&std::ffi::OsStr]) -> Result<serde_json::Value, String> {
    let out = Command::new(venv_python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "{script}: no JSON on stdout ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if out.status.success() {
        Ok(json)
    } else {
        Err(format!(
            "{script} failed: {json}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs the binary at `bin` with `args`.
pub fn run_bin<S: AsRef<std::ffi::OsStr>>(bin: &str, args: &[S]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("the whittle-e2e binary runs")
}

/// Runs `whittle ARGS…` (the e2e build of the CLI); usable from the suites in `tests/tests/`,
/// where Cargo tells the binary's path.
#[macro_export]
macro_rules! whittle {
    ($($arg:expr),* $(,)?) => {
        $crate::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &[$(::std::ffi::OsString::from($arg)),*])
    };
}
