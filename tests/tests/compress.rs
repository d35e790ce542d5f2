//! `whittle compress` end to end on the digits fixture: the table's numbers equal
//! independent measurements (`whittle eval` on the written file, the files' sizes), the
//! accuracy budget falls back on a case plain int4 exceeds, recipes round-trip byte for
//! byte, the defaults pick the documented scheme, and errors are one line with exit 1.
use serde_json::Value;
use std::path::{Path, PathBuf};
use whittle_tests::{
    compress_output, compress_what, eval_accuracy, fixture, repo_root, success_json, whittle,
};

/// Runs `whittle compress ARGS… --json`: it must succeed and print no progress.
fn compress_json(args: &[&std::ffi::OsStr]) -> Value {
    let out = compress_output!(args);
    let report = success_json(&out, &compress_what(args));
    assert!(
        out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains("compress:"),
        "--json hides progress"
    );
    report
}

/// Accuracy of `model` on the digits test set, as `whittle eval` reports it.
fn digits_accuracy(model: &Path) -> f64 {
    eval_accuracy!(model, &fixture("digits_test.npz"))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn table_numbers_match_independent_measurements() {
    let dir = tmp();
    let out = dir.path().join("digits_int8.onnx");
    let model = fixture("digits_cnn.onnx");
    let calib = fixture("digits_calib.npz");
    let eval = fixture("digits_test.npz");
    let r = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--calib".as_ref(),
        calib.as_os_str(),
        "--eval".as_ref(),
        eval.as_os_str(),
    ]);
    assert_eq!(r["before"]["file_bytes"].as_u64(), Some(size(&model)));
    assert_eq!(r["after"]["file_bytes"].as_u64(), Some(size(&out)));
    assert!(
        size(&out) < size(&model) / 2,
        "int8 weights shrink the file"
    );
    assert_eq!(
        r["before"]["accuracy"].as_f64(),
        Some(digits_accuracy(&model))
    );
    assert_eq!(r["after"]["accuracy"].as_f64(), Some(digits_accuracy(&out)));
    let inspect = whittle!("inspect", &out, "--json");
    assert!(inspect.status.success());
    let i: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(r["after"]["parameters"], i["parameters"]["total"]);
    assert_eq!(r["after"]["nodes"], i["nodes"]["total"]);
    assert!(r["after"]["tract_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let steps = r["steps"].to_string();
    assert!(
        steps.contains("clean-up") && steps.contains("static QDQ"),
        "{steps}"
    );
    // The human table shows the same run.
    let text = whittle!(
        "compress",
        &model,
        "-o",
        dir.path().join("t.onnx"),
        "--calib",
        &calib,
        "--eval",
        &eval
    );
    assert!(text.status.success());
    let stdout = String::from_utf8_lossy(&text.stdout);
    for row in [
        "file bytes",
        "parameters",
        "MACs (batch 1)",
        "nodes",
        "latency tract",
        "accuracy",
    ] {
        assert!(stdout.contains(row), "no {row:?} row in\n{stdout}");
    }
}

#[test]
fn accuracy_budget_falls_back_layer_by_layer() {
    let dir = tmp();
    let out = dir.path().join("digits_int4.onnx");
    let model = fixture("digits_cnn.onnx");
    let eval = fixture("digits_test.npz");
    let budget = 0.5;
    let r = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--quantize".as_ref(),
        "int4".as_ref(),
        "--eval".as_ref(),
        eval.as_os_str(),
        "--max-drop".as_ref(),
        "0.5".as_ref(),
    ]);
    let before = r["before"]["accuracy"].as_f64().unwrap();
    let fb = &r["fallback"];
    let steps: Vec<f64> = fb["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (before - steps[0]) * 100.0 > budget,
        "plain int4 must exceed the budget: {steps:?}"
    );
    let kept = fb["kept_float"].as_array().unwrap();
    assert!(
        !kept.is_empty() && kept.len() < 3,
        "some, not all, layers kept: {fb}"
    );
    assert_eq!(
        kept[0], fb["sensitivity"][0]["node"],
        "the most sensitive goes first"
    );
    let after = digits_accuracy(&out);
    assert_eq!(r["after"]["accuracy"].as_f64(), Some(after));
    assert!((before - after) * 100.0 <= budget, "{before} -> {after}");
    assert!(r["quantized_layers"].as_u64().unwrap() > 0);
}

#[test]
fn emitted_recipe_reproduces_the_same_bytes() {
    let dir = tmp();
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    let recipe = dir.path().join("r.toml");
    let model = fixture("digits_cnn.onnx");
    let calib = fixture("digits_calib.npz");
    let first = whittle!(
        "compress",
        &model,
        "-o",
        &a,
        "--prune",
        "0.25",
        "--calib",
        &calib,
        "--reconstruct",
        "--bias-correction",
        "--emit-recipe",
        &recipe,
        "--json"
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = std::fs::read_to_string(&recipe).unwrap();
    for key in [
        "prune = 0.25",
        "reconstruct = true",
        "bias_correction = true",
    ] {
        assert!(text.contains(key), "{text}");
    }
    let second = whittle!("compress", &model, "-o", &b, "--recipe", &recipe, "--json");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A flag overrides the recipe.
    let c = dir.path().join("c.onnx");
    let r = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        c.as_os_str(),
        "--recipe".as_ref(),
        recipe.as_os_str(),
        "--quantize".as_ref(),
        "none".as_ref(),
    ]);
    assert!(
        !r["steps"].to_string().contains("quantize"),
        "{}",
        r["steps"]
    );
    // `--no-slower` round-trips too (its output depends on timings, so compare recipes,
    // not bytes): a recipe emitted with it runs with it.
    let (d, again) = (dir.path().join("d.onnx"), dir.path().join("r2.toml"));
    let r = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        d.as_os_str(),
        "--recipe".as_ref(),
        recipe.as_os_str(),
        "--no-slower".as_ref(),
        "--emit-recipe".as_ref(),
        again.as_os_str(),
    ]);
    let text = std::fs::read_to_string(&again).unwrap();
    assert!(text.contains("no_slower = true"), "{text}");
    let e = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        d.as_os_str(),
        "--recipe".as_ref(),
        again.as_os_str(),
    ]);
    assert_eq!(e["recipe"], r["recipe"]);
    assert!(e["no_slower"]["tries"].is_array(), "{}", e["no_slower"]);
}

#[test]
fn shipped_recipe_runs_within_its_budget() {
    let dir = tmp();
    let out = dir.path().join("o.onnx");
    let recipe: PathBuf = repo_root().join("fixtures/recipes/digits_int8.toml");
    let r = compress_json(&[
        fixture("digits_cnn.onnx").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--recipe".as_ref(),
        recipe.as_os_str(),
    ]);
    let (b, a) = (
        r["before"]["accuracy"].as_f64().unwrap(),
        r["after"]["accuracy"].as_f64().unwrap(),
    );
    assert!((b - a) * 100.0 <= 0.5);
}

#[test]
fn defaults_pick_weight_only_or_static_int8() {
    let dir = tmp();
    let model = fixture("digits_cnn.onnx");
    let out = dir.path().join("w.onnx");
    let r = compress_json(&[model.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let steps = r["steps"].to_string();
    assert!(
        steps.contains("clean-up") && steps.contains("weight-only int8"),
        "{steps}"
    );
    assert!(r["agreement"]["top1_agreement"].as_f64().unwrap() > 0.9);
    assert!(r["agreement"]["cosine"].as_f64().unwrap() > 0.99);
    let calib = fixture("digits_calib.npz");
    let r = compress_json(&[
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--calib".as_ref(),
        calib.as_os_str(),
    ]);
    assert!(
        r["steps"].to_string().contains("static QDQ"),
        "{}",
        r["steps"]
    );
    assert!(
        r["agreement"]["inputs"]
            .as_str()
            .unwrap()
            .contains("calibration")
    );
}

fn one_line_error(out: &std::process::Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn errors_are_one_line() {
    let dir = tmp();
    let model = fixture("digits_cnn.onnx");
    let out = dir.path().join("o.onnx");
    one_line_error(
        &whittle!("compress", &model, "-o", &out, "--max-drop", "1"),
        "--eval",
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "quantize = \"int8\"\nqunatize_mode = \"static\"\n").unwrap();
    one_line_error(
        &whittle!("compress", &model, "-o", &out, "--recipe", &bad),
        "qunatize_mode",
    );
    one_line_error(
        &whittle!("compress", &model, "-o", &model),
        "refusing to overwrite",
    );
    one_line_error(
        &whittle!("compress", &model, "-o", &out, "--quantize", "int3"),
        "int3",
    );
    let calib = fixture("digits_calib.npz");
    let eval = fixture("digits_test.npz");
    // Pruning a quarter of the channels (no fine-tuning) loses far more than 1 point.
    let pruned = whittle!(
        "compress",
        &model,
        "-o",
        &out,
        "--prune",
        "0.25",
        "--calib",
        &calib,
        "--eval",
        &eval,
        "--max-drop",
        "1",
        "--json"
    );
    one_line_error(&pruned, "already lose");
    assert!(!out.exists(), "nothing written on error");
}

#[test]
fn fp16_and_dynamic_outputs_are_drop_in() {
    let dir = tmp();
    let model = fixture("digits_cnn.onnx");
    let eval = fixture("digits_test.npz");
    for (quant, mode) in [("fp16", None), ("int8", Some("dynamic"))] {
        let out = dir.path().join(format!("{quant}.onnx"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            model.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--quantize".as_ref(),
            quant.as_ref(),
            "--eval".as_ref(),
            eval.as_os_str(),
        ];
        if let Some(m) = mode {
            args.push("--mode".as_ref());
            args.push(m.as_ref());
        }
        let r = compress_json(&args);
        assert_eq!(r["after"]["accuracy"].as_f64(), Some(digits_accuracy(&out)));
        assert_eq!(r["after"]["file_bytes"].as_u64(), Some(size(&out)));
    }
}
