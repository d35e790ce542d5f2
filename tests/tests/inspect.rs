//! `whittle inspect` end to end: snapshots of the human report for every fixture; the
//! JSON counts against the onnx library (`tests/python/onnx_counts.py`) for every fixture
//! and corpus model; hand-computed MACs of the digits CNN; `--dot`; and error exits.
use serde_json::Value;
use std::path::{Path, PathBuf};
use whittle_tests::{corpus_models, fixture, fixture_models, python_json, repo_root, whittle};

/// Runs `whittle inspect ARGS…`, expecting success; returns stdout.
fn inspect(args: &[&std::ffi::OsStr]) -> String {
    let mut all = vec![std::ffi::OsStr::new("inspect")];
    all.extend_from_slice(args);
    let out = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert!(
        out.status.success(),
        "inspect {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect_json(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec![path.as_os_str(), "--json".as_ref()];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    let stdout = inspect(&args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {stdout}", path.display()))
}

/// The output with the machine-specific repository path replaced by `<repo>`.
fn portable(text: &str) -> String {
    text.replace(&repo_root().display().to_string(), "<repo>")
}

#[test]
fn human_report_snapshots() {
    let models = fixture_models();
    assert!(models.len() >= 8, "fixtures missing: {models:?}");
    for path in models {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        let text = portable(&inspect(&[path.as_os_str()]));
        insta::assert_snapshot!(stem, text);
    }
    let text = portable(&inspect(&[
        fixture("digits_cnn.onnx").as_os_str(),
        "--batch".as_ref(),
        "1".as_ref(),
    ]));
    insta::assert_snapshot!("digits_cnn_batch1", text);
}

/// Compares one model's `inspect --json` with `onnx_counts.py`; returns what differs.
fn compare_counts(path: &Path) -> Vec<String> {
    let ours = inspect_json(path, &[]);
    let theirs = match python_json("onnx_counts.py", &[path.as_os_str()]) {
        Ok(v) => v,
        Err(e) => return vec![format!("onnx_counts.py: {e}")],
    };
    let pairs = [
        ("/parameters/total", "/parameters"),
        ("/parameters/initializer_elements", "/initializer_elements"),
        (
            "/parameters/sparse_initializer_elements",
            "/sparse_initializer_elements",
        ),
        (
            "/parameters/constant_node_elements",
            "/constant_node_elements",
        ),
        ("/parameters/sparse_count", "/sparse_count"),
        ("/nodes/top_level", "/nodes_top_level"),
        ("/nodes/total", "/nodes_total"),
        ("/nodes/graphs", "/graphs"),
        ("/op_histogram", "/op_histogram"),
        ("/training_info_graphs", "/training_info_graphs"),
        ("/ir_version", "/ir_version"),
    ];
    let mut diffs: Vec<String> = pairs
        .iter()
        .filter(|(a, b)| ours.pointer(a) != theirs.pointer(b))
        .map(|(a, b)| {
            format!(
                "{a} = {:?}, onnx {b} = {:?}",
                ours.pointer(a),
                theirs.pointer(b)
            )
        })
        .collect();
    let functions = ours["functions"].as_array().map_or(0, Vec::len);
    let function_nodes: u64 = ours["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["nodes"].as_u64())
        .sum();
    if Some(functions as u64) != theirs["functions"].as_u64()
        || Some(function_nodes) != theirs["function_nodes"].as_u64()
    {
        diffs.push(format!(
            "functions {functions}/{function_nodes} vs {}/{}",
            theirs["functions"], theirs["function_nodes"]
        ));
    }
    diffs
}

/// Runs `check` on every path with two threads (the machine has two cores).
fn for_all(paths: &[PathBuf], check: fn(&Path) -> Vec<String>) -> Vec<String> {
    let (a, b) = paths.split_at(paths.len() / 2);
    let run = |part: &[PathBuf]| -> Vec<String> {
        part.iter()
            .flat_map(|p| {
                check(p)
                    .into_iter()
                    .map(move |d| format!("{}: {d}", p.display()))
            })
            .collect()
    };
    std::thread::scope(|s| {
        let first = s.spawn(|| run(a));
        let mut out = run(b);
        out.extend(
            first
                .join()
                .unwrap_or_else(|_| vec!["a checker thread panicked".into()]),
        );
        out
    })
}

#[test]
fn counts_match_the_onnx_library_on_fixtures() {
    let diffs = for_all(&fixture_models(), compare_counts);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn counts_match_the_onnx_library_on_the_corpus() {
    let models = corpus_models();
    assert!(
        models.len() >= 100,
        "corpus missing ({} models): run `bash scripts/fetch-corpus.sh`",
        models.len()
    );
    let diffs = for_all(&models, compare_counts);
    assert!(
        diffs.is_empty(),
        "{} of {} models differ:\n{}",
        diffs.len(),
        models.len(),
        diffs.join("\n")
    );
}

/// Conv MACs: `N·C_out·H_out·W_out · C_in·k·k` (stride 1, "same" padding here).
fn conv_macs(n: u64, c_out: u64, h_out: u64, w_out: u64, c_in: u64, k: u64) -> u64 {
    n * c_out * h_out * w_out * c_in * k * k
}

/// digits_cnn (fixtures/README.md): input [N,1,8,8] → conv1 16×1×3×3 pad 1 → … → conv2
/// 16×16×3×3 pad 1 → MaxPool 2×2 → Flatten (16·4·4 = 256) → Gemm 256→10.
fn digits_macs(n: u64) -> u64 {
    // pad 1 with a 3×3 kernel and stride 1 keeps 8×8
    let conv1 = conv_macs(n, 16, 8, 8, 1, 3);
    let conv2 = conv_macs(n, 16, 8, 8, 16, 3);
    let gemm = n * 10 * (16 * 4 * 4); // M·N·K
    conv1 + conv2 + gemm
}

#[test]
fn digits_macs_match_the_layer_sizes() {
    let path = fixture("digits_cnn.onnx");
    let r = inspect_json(&path, &["--batch", "1"]);
    assert_eq!(digits_macs(1), 159_232);
    assert_eq!(
        r["macs"]["total"].as_u64(),
        Some(digits_macs(1)),
        "{}",
        r["macs"]
    );
    assert_eq!(
        r["macs"]["by_op"]["Conv"]["macs"].as_u64(),
        Some(9_216 + 147_456)
    );
    assert_eq!(r["macs"]["by_op"]["Gemm"]["macs"].as_u64(), Some(2_560));
    assert_eq!(r["macs"]["unknown_nodes"].as_u64(), Some(0));
    let r = inspect_json(&path, &["--shape", "input=4x1x8x8"]);
    assert_eq!(r["macs"]["total"].as_u64(), Some(digits_macs(4)));
    assert_eq!(
        r["outputs"][0]["inferred_shape"],
        serde_json::json!([4, 10])
    );
    // Without a batch the batch dim N is symbolic: unknown, never guessed.
    let r = inspect_json(&path, &[]);
    assert_eq!(r["macs"]["total"], Value::Null);
    assert_eq!(r["macs"]["unknown_nodes"].as_u64(), Some(3));
    assert!(
        r["macs"]["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().all(|n| n["macs"].is_null()))
    );
    assert_eq!(r["schema"], "whittle.inspect/1");
    assert_eq!(r["inputs"][0]["shape"], serde_json::json!(["N", 1, 8, 8]));
}

#[test]
fn dot_file_is_written_with_the_graph() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dot = dir.path().join("digits.dot");
    let out = inspect(&[
        fixture("digits_cnn.onnx").as_os_str(),
        "--dot".as_ref(),
        dot.as_os_str(),
    ]);
    assert!(out.contains("wrote "), "{out}");
    let text = std::fs::read_to_string(&dot).expect("dot written");
    assert!(text.starts_with("digraph \"digits_cnn\" {"), "{text}");
    for needle in [
        "Conv\\nconv1",
        "Gemm\\nfc",
        "MaxPool\\npool",
        "label=\"relu1_out\"",
        "fillcolor=\"#f8cecc\"",
        "conv2.weight\\nf32[16,16,3,3]",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    // Subgraphs are clusters.
    let nested = dir.path().join("if.dot");
    inspect(&[
        fixture("if_nested.onnx").as_os_str(),
        "--dot".as_ref(),
        nested.as_os_str(),
    ]);
    let text = std::fs::read_to_string(&nested).expect("dot written");
    assert_eq!(text.matches("subgraph \"cluster_").count(), 5, "{text}");
}

#[test]
fn graph_flag_appends_the_canonical_text_and_json_is_stable() {
    let path = fixture("digits_cnn.onnx");
    let out = inspect(&[path.as_os_str(), "--graph".as_ref()]);
    let model = whittle_ir::Model::load(&path).expect("fixture loads");
    let text = whittle_ir::text::model_to_text(&model);
    assert!(out.ends_with(&text), "{out}");
    assert!(
        out.contains("MACs") && out.find("MACs") < out.find("model ir="),
        "{out}"
    );
    let json = |p: &Path| {
        inspect(&[
            p.as_os_str(),
            "--json".as_ref(),
            "--batch".as_ref(),
            "2".as_ref(),
        ])
    };
    assert_eq!(json(&path), json(&path));
}

/// Asserts a failed run: exit code 1, one line on stderr that names `file`.
fn assert_fails_naming(out: &std::process::Output, file: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(file), "{stderr} does not name {file}");
}

#[test]
fn bad_inputs_exit_1_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.onnx");
    assert_fails_naming(&whittle!("inspect", &missing), "missing.onnx");
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf \xff\xff\xff\xff").expect("write");
    assert_fails_naming(&whittle!("inspect", &garbage), "garbage.onnx");
    let bytes = std::fs::read(fixture("digits_cnn.onnx")).expect("fixture");
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    assert_fails_naming(&whittle!("inspect", &truncated, "--json"), "truncated.onnx");
    // Overrides that do not fit the model.
    let digits = fixture("digits_cnn.onnx");
    assert_fails_naming(
        &whittle!("inspect", &digits, "--shape", "nope=1x1x8x8"),
        "digits_cnn.onnx",
    );
    assert_fails_naming(
        &whittle!("inspect", &digits, "--shape", "input=1x2x8x8"),
        "digits_cnn.onnx",
    );
    // The DOT file may not replace the model.
    let copy = dir.path().join("copy.onnx");
    std::fs::write(&copy, &bytes).expect("write");
    assert_fails_naming(&whittle!("inspect", &copy, "--dot", &copy), "copy.onnx");
    assert_eq!(std::fs::read(&copy).expect("still there"), bytes);
}
