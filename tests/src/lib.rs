//! Helpers shared by the end-to-end suites in `tests/tests/`: where the repository, the
//! fixtures, the corpus and the test venv are, and how to run the CLI and the Python checks.
use std::ffi::{OsStr, OsString};
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
pub fn python_json(script: &str, args: &[&OsStr]) -> Result<serde_json::Value, String> {
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
pub fn run_bin<S: AsRef<OsStr>>(bin: &str, args: &[S]) -> Output {
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

/// A corpus model (`corpus/REL`, fetched by `scripts/fetch-corpus.sh`), or `None` after
/// saying on stderr that the test is skipped because it is not fetched. For the tests that
/// skip without the corpus; those that require it assert instead.
pub fn corpus_or_skip(rel: &str) -> Option<PathBuf> {
    let model = repo_root().join("corpus").join(rel);
    if model.exists() {
        Some(model)
    } else {
        eprintln!(
            "skipped: {} is not fetched (scripts/fetch-corpus.sh)",
            model.display()
        );
        None
    }
}

/// The stdout of a CLI run that must have succeeded (the assertion's message is its
/// stderr).
pub fn success_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON on stdout of a CLI run that must have succeeded: asserts the exit status
/// (the message is `what` then the run's stderr) and that stdout parses.
pub fn success_json(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: --json prints JSON ({e}); stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `whittle prune MODEL -o OUT --json ARGS…` with the binary at `bin`; asserts it
/// succeeds and returns the report. The suites call it as [`prune_json!`].
pub fn prune_json(bin: &str, model: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let mut all: Vec<OsString> = vec![
        "prune".into(),
        model.into(),
        "-o".into(),
        out.into(),
        "--json".into(),
    ];
    all.extend(args.iter().map(Into::into));
    success_json(
        &run_bin(bin, &all),
        &format!("prune {} {args:?}", model.display()),
    )
}

/// (pruned, skipped) group counts of a `whittle prune --json` report: groups that lost
/// channels, and groups with a `skipped` reason.
pub fn prune_group_counts(report: &serde_json::Value) -> (usize, usize) {
    let groups = report["groups"].as_array().expect("groups");
    let pruned = groups
        .iter()
        .filter(|g| g["removed"].as_array().is_some_and(|r| !r.is_empty()))
        .count();
    let skipped = groups.iter().filter(|g| !g["skipped"].is_null()).count();
    (pruned, skipped)
}

/// Runs `whittle compress ARGS… --json` with the binary at `bin`; returns the run, for
/// suites that check more than the report. The suites call it as [`compress_output!`].
pub fn compress_output<S: AsRef<OsStr>>(bin: &str, args: &[S]) -> Output {
    let mut all: Vec<&OsStr> = vec!["compress".as_ref()];
    all.extend(args.iter().map(AsRef::as_ref));
    all.push("--json".as_ref());
    run_bin(bin, &all)
}

/// The `what` of a failed `whittle compress ARGS…`, for [`success_json`].
pub fn compress_what<S: AsRef<OsStr>>(args: &[S]) -> String {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    format!("compress {args:?} failed")
}

/// Runs `whittle compress ARGS… --json` with the binary at `bin`; asserts it succeeds and
/// returns the report. The suites call it as [`compress_json!`].
pub fn compress_json<S: AsRef<OsStr>>(bin: &str, args: &[S]) -> serde_json::Value {
    success_json(&compress_output(bin, args), &compress_what(args))
}

/// Accuracy of `model` on the labelled `data` (`.npz`) as `whittle eval --json` reports it
/// (in tract), run with the binary at `bin`. The suites call it as [`eval_accuracy!`].
pub fn eval_accuracy(bin: &str, model: &Path, data: &Path) -> f64 {
    let args: [&OsStr; 5] = [
        "eval".as_ref(),
        model.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--json".as_ref(),
    ];
    let report = success_json(
        &run_bin(bin, &args),
        &format!("eval {} on {}", model.display(), data.display()),
    );
    report["report"]["accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("eval --json reports an accuracy: {report}"))
}

/// Asserts that `whittle compare REFERENCE CANDIDATE --runtime RUNTIME` (binary `bin`)
/// finds the outputs within `atol` (rtol 0) on 3 seeded samples (of `shape` when given),
/// and prints each output's largest absolute difference. The suites call it as
/// [`assert_outputs_match!`].
pub fn assert_outputs_match(
    bin: &str,
    reference: &Path,
    candidate: &Path,
    runtime: &str,
    shape: Option<&str>,
    atol: &str,
) {
    let mut args: Vec<&OsStr> = vec![
        "compare".as_ref(),
        reference.as_os_str(),
        candidate.as_os_str(),
        "--runtime".as_ref(),
        runtime.as_ref(),
        "--atol".as_ref(),
        atol.as_ref(),
        "--rtol".as_ref(),
        "0".as_ref(),
        "--samples".as_ref(),
        "3".as_ref(),
        "--json".as_ref(),
    ];
    if let Some(shape) = shape {
        args.extend::<[&OsStr; 2]>(["--shape".as_ref(), shape.as_ref()]);
    }
    let res = run_bin(bin, &args);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success(),
        "{} vs {} on {runtime}: {stdout}{}",
        reference.display(),
        candidate.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("compare --json prints JSON");
    for o in v["report"]["outputs"].as_array().expect("outputs") {
        eprintln!(
            "{} {runtime} {}: max_abs {}",
            candidate.display(),
            o["output"],
            o["metrics"]["max_abs"]
        );
    }
}

/// Asserts that `whittle run MODEL --runtime RUNTIME` (binary `bin`, shapes fixed by
/// `--shape SHAPE` when given) loads and runs the model. The suites call it as
/// [`assert_runs!`].
pub fn assert_runs(bin: &str, model: &Path, runtime: &str, shape: Option<&str>) {
    let mut args: Vec<&OsStr> = vec![
        "run".as_ref(),
        model.as_os_str(),
        "--runtime".as_ref(),
        runtime.as_ref(),
    ];
    if let Some(shape) = shape {
        args.extend::<[&OsStr; 2]>(["--shape".as_ref(), shape.as_ref()]);
    }
    let res = run_bin(bin, &args);
    assert!(
        res.status.success(),
        "{} does not run in {runtime}: {}",
        model.display(),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// [`prune_json`] with the suite's e2e binary: `prune_json!(model, out, &["--ratio", "0.3"])`.
#[macro_export]
macro_rules! prune_json {
    ($model:expr, $out:expr, $args:expr $(,)?) => {
        $crate::prune_json(env!("CARGO_BIN_EXE_whittle-e2e"), $model, $out, $args)
    };
}

/// [`compress_output`] with the suite's e2e binary.
#[macro_export]
macro_rules! compress_output {
    ($args:expr $(,)?) => {
        $crate::compress_output(env!("CARGO_BIN_EXE_whittle-e2e"), $args)
    };
}

/// [`compress_json`] with the suite's e2e binary.
#[macro_export]
macro_rules! compress_json {
    ($args:expr $(,)?) => {
        $crate::compress_json(env!("CARGO_BIN_EXE_whittle-e2e"), $args)
    };
}

/// [`eval_accuracy`] with the suite's e2e binary: `eval_accuracy!(model, data)`.
#[macro_export]
macro_rules! eval_accuracy {
    ($model:expr, $data:expr $(,)?) => {
        $crate::eval_accuracy(env!("CARGO_BIN_EXE_whittle-e2e"), $model, $data)
    };
}

/// [`assert_outputs_match`] with the suite's e2e binary:
/// `assert_outputs_match!(reference, candidate, runtime, shape, atol)`.
#[macro_export]
macro_rules! assert_outputs_match {
    ($reference:expr, $candidate:expr, $runtime:expr, $shape:expr, $atol:expr $(,)?) => {
        $crate::assert_outputs_match(
            env!("CARGO_BIN_EXE_whittle-e2e"),
            $reference,
            $candidate,
            $runtime,
            $shape,
            $atol,
        )
    };
}

/// [`assert_runs`] with the suite's e2e binary: `assert_runs!(model, runtime, shape)`.
#[macro_export]
macro_rules! assert_runs {
    ($model:expr, $runtime:expr, $shape:expr $(,)?) => {
        $crate::assert_runs(env!("CARGO_BIN_EXE_whittle-e2e"), $model, $runtime, $shape)
    };
}
