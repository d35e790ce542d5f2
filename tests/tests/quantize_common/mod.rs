//! Shared by the `quantize_*` suites: running `whittle quantize --json`, and the Python
//! checks that judge its output in onnxruntime.
#![allow(dead_code)]
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use whittle_tests::python_json;

/// A quantized model in a temporary folder, with the JSON report `quantize` printed.
pub struct Quantized {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub json: serde_json::Value,
}

impl Quantized {
    pub fn report(&self) -> &serde_json::Value {
        &self.json["report"]
    }

    /// The report's node entries.
    pub fn nodes(&self) -> &[serde_json::Value] {
        self.json["report"]["nodes"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    /// Every entry's form ("" for an entry without one), in report order.
    pub fn forms(&self) -> Vec<String> {
        self.nodes()
            .iter()
            .map(|n| n["form"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// (node, status, reason or form) for every entry.
    pub fn statuses(&self) -> Vec<(String, String, String)> {
        self.nodes()
            .iter()
            .map(|n| {
                let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
                let detail = if s("status") == "quantized" {
                    s("form")
                } else {
                    s("reason")
                };
                (s("node"), s("status"), detail)
            })
            .collect()
    }

    pub fn notes(&self) -> Vec<String> {
        self.json["report"]["notes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `whittle quantize SRC -o DIR/out.onnx ARGS… --json`; panics with stderr on failure.
pub fn quantize(src: &Path, args: &[&str]) -> Quantized {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.onnx");
    let mut all: Vec<std::ffi::OsString> = vec![
        "quantize".into(),
        src.into(),
        "-o".into(),
        path.clone().into(),
    ];
    all.extend(args.iter().map(Into::into));
    all.push("--json".into());
    let out = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert!(
        out.status.success(),
        "quantize {} {args:?}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).expect("quantize --json prints JSON");
    Quantized { dir, path, json }
}

/// `whittle quantize ARGS…` expected to fail: returns stderr.
pub fn quantize_fails(args: &[&str]) -> String {
    let mut all = vec!["quantize"];
    all.extend_from_slice(args);
    let out = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `quant_check_weights.py`: every stored integer equals numpy's ONNX formula and
/// onnxruntime's DequantizeLinear equals numpy's. Returns the per-weight records.
pub fn check_weights(original: &Path, quantized: &Path) -> Vec<serde_json::Value> {
    let r = python_json(
        "quant_check_weights.py",
        &[original.as_os_str(), quantized.as_os_str()],
    )
    .unwrap_or_else(|e| panic!("{}: {e}", quantized.display()));
    assert_eq!(r["mismatches"], 0, "{r}");
    r["checked"].as_array().cloned().unwrap_or_default()
}

/// `quant_agreement.py` in onnxruntime; returns its outputs list.
pub fn agreement(reference: &Path, candidate: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args: Vec<&OsStr> = vec![reference.as_os_str(), candidate.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    let r = python_json("quant_agreement.py", &args)
        .unwrap_or_else(|e| panic!("{}: {e}", candidate.display()));
    r["outputs"].as_array().cloned().unwrap_or_default()
}

pub fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}
