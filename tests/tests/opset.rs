//! `whittle convert --opset N`: each conversion rule on a tiny model (tests/data/opset,
//! written by make_models.py) converted up and, where the rule allows, back down — the
//! canonical text after conversion is an insta snapshot and onnxruntime gives the same
//! outputs for the original and every conversion; refusals exit 1 with one line naming the
//! node and op and write nothing; the fixtures convert to 13, 18 and 21 and the corpus to
//! 18 and 21 with equal outputs (corpus results in target/opset-corpus.txt).
use std::path::{Path, PathBuf};
use whittle_tests::{corpus_models, fixture_models, python_json, repo_root, whittle};

fn data(name: &str) -> PathBuf {
    repo_root()
        .join("tests/data/opset")
        .join(format!("{name}.onnx"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `whittle convert SRC -o OUT --opset N`; panics with stderr on failure; returns stdout.
fn convert(src: &Path, out: &Path, opset: i64) -> String {
    let r = whittle!(
        "convert",
        src,
        "-o",
        out,
        "--opset",
        opset.to_string(),
        "--force"
    );
    assert!(
        r.status.success(),
        "{} -> {opset}: {}",
        src.display(),
        stderr(&r)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

fn text(path: &Path) -> String {
    let m = whittle_ir::Model::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    whittle_ir::text::model_to_text(&m)
}

/// onnxruntime runs both (optimizations off) on seeded inputs; outputs must be equal.
fn assert_same_outputs(reference: &Path, candidate: &Path, atol: Option<f64>) {
    let mut args: Vec<&std::ffi::OsStr> = vec![reference.as_os_str(), candidate.as_os_str()];
    args.extend(["--seed", "3", "--opt-level", "disable"].map(std::ffi::OsStr::new));
    let atol_s = atol.map(|a| a.to_string());
    if let Some(a) = &atol_s {
        args.extend([std::ffi::OsStr::new("--atol"), std::ffi::OsStr::new(a)]);
    }
    let res = python_json("ort_run_compare.py", &args)
        .unwrap_or_else(|e| panic!("{}: {e}", candidate.display()));
    assert_eq!(res["ok"], true, "{}: {res}", candidate.display());
}

/// One rule: `name` (at opset `source`) converted to `step` (snapshot) and to 21, each
/// compared with `reference` (default: the model itself); with `round_trip`, the `step`
/// model converted back to `source` compares equal too.
fn check_rule(name: &str, source: i64, step: i64, round_trip: bool, reference: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let src = data(name);
    let reference = reference.map_or(src.clone(), data);
    let up = dir.path().join(format!("{name}-{step}.onnx"));
    let report = convert(&src, &up, step);
    assert!(
        report.contains(&format!("ai.onnx opset {source} -> {step}")),
        "{report}"
    );
    insta::assert_snapshot!(format!("{name}_to_{step}"), text(&up));
    assert_same_outputs(&reference, &up, None);
    if step != 21 {
        let top = dir.path().join(format!("{name}-21.onnx"));
        convert(&src, &top, 21);
        assert_same_outputs(&reference, &top, None);
    }
    if round_trip {
        let back = dir.path().join(format!("{name}-back.onnx"));
        convert(&up, &back, source);
        assert!(text(&back).contains(&format!("opsets=[ai.onnx:{source}]")));
        assert_same_outputs(&reference, &back, None);
    }
}

#[test]
fn squeeze_unsqueeze_axes_move_to_inputs_at_13() {
    check_rule("squeeze_11", 11, 13, true, None);
}

#[test]
fn reduce_sum_axes_move_to_an_input_at_13() {
    check_rule("reduce_sum_11", 11, 13, true, None);
}

#[test]
fn other_reduce_axes_move_to_an_input_at_18() {
    check_rule("reduce_13", 13, 18, true, None);
}

#[test]
fn split_sizes_move_to_an_input_at_13_and_num_outputs_appears_at_18() {
    check_rule("split_11", 11, 18, true, None);
}

#[test]
fn clip_bounds_move_to_inputs_at_11() {
    check_rule("clip_10", 10, 11, true, None);
}

#[test]
fn pad_pads_and_value_move_to_inputs_at_11() {
    check_rule("pad_10", 10, 11, true, None);
}

#[test]
fn upsample_becomes_resize_with_asymmetric_floor() {
    check_rule("upsample_9", 9, 11, true, None);
    check_rule("upsample_7", 7, 9, true, None);
}

#[test]
fn resize_10_gains_roi_and_legacy_rounding_at_11() {
    check_rule("resize_10", 10, 11, true, None);
}

#[test]
fn batchnorm_spatial_is_dropped_at_9() {
    check_rule("batchnorm_7", 7, 15, true, None);
}

#[test]
fn dropout_loses_its_unused_mask_and_ratio_moves_to_an_input() {
    check_rule("dropout_7", 7, 12, true, None);
}

#[test]
fn softmax_family_keeps_its_2d_meaning_at_13() {
    check_rule("softmax_11", 11, 13, true, None);
}

#[test]
fn slice_and_topk_attributes_move_to_inputs_at_10() {
    check_rule("slice_topk_9", 9, 10, true, None);
}

#[test]
fn legacy_broadcast_is_aligned_for_numpy_broadcasting_at_7() {
    // onnxruntime has no opset-6 Add/Mul/Gemm kernels: the reference is a hand-written
    // opset-7 equivalent.
    check_rule("broadcast_6", 6, 7, false, Some("broadcast_6_ref"));
}

#[test]
fn if_branches_are_converted_too() {
    check_rule("if_11", 11, 13, true, None);
}

#[test]
fn gridsample_modes_are_renamed_at_20() {
    check_rule("gridsample_16", 16, 20, true, None);
}

#[test]
fn scatter_becomes_scatter_elements_at_11() {
    check_rule("scatter_9", 9, 11, true, None);
}

/// A downgrade-only rule: `name` converted to each of `targets` (snapshot) compares equal
/// (within `atol`) to the original.
fn check_down(name: &str, targets: &[i64], atol: Option<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let src = data(name);
    for &target in targets {
        let out = dir.path().join(format!("{name}-{target}.onnx"));
        convert(&src, &out, target);
        insta::assert_snapshot!(format!("{name}_to_{target}"), text(&out));
        assert_same_outputs(&src, &out, atol);
    }
}

#[test]
fn layer_normalization_is_expanded_below_17() {
    // A different (unfused) order of float operations: equal within rounding.
    check_down("layernorm_17", &[13, 9], Some(1e-5));
}

#[test]
fn shape_start_end_become_a_slice_and_allowzero_goes_below_15() {
    check_down("shape_15", &[13, 9], None);
}

/// A refused conversion: exit 1, one line on stderr naming the node and its op, nothing
/// written.
fn assert_refused(name: &str, target: i64, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let r = whittle!(
        "convert",
        data(name),
        "-o",
        &out,
        "--opset",
        target.to_string()
    );
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
    assert!(!out.exists(), "{} was written", out.display());
}

#[test]
fn unconvertible_nodes_are_refused_and_nothing_is_written() {
    assert_refused(
        "dynamic_axes_13",
        11,
        &[
            "\"squeeze_dynamic\" (Squeeze)",
            "from opset 13 to 11",
            "not a constant",
        ],
    );
    assert_refused(
        "dropout_mask_7",
        13,
        &[
            "\"dropout_with_mask\" (Dropout)",
            "from opset 7 to 13",
            "\"mask\" is used",
        ],
    );
    assert_refused(
        "gridsample_16",
        13,
        &["\"sample\" (GridSample)", "introduced in opset 16"],
    );
    // Out-of-range targets are usage errors (exit 2, from clap).
    let r = whittle!(
        "convert",
        data("squeeze_11"),
        "-o",
        "/nonexistent/out.onnx",
        "--opset",
        "22"
    );
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("22 is not in 7..=21"), "{}", stderr(&r));
}

#[test]
fn the_report_lists_changed_nodes_and_json_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let r = whittle!(
        "convert",
        data("squeeze_11"),
        "-o",
        &out,
        "--opset",
        "13",
        "--json"
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let changes = json["opset"]["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| {
        c.as_str()
            .unwrap()
            .starts_with("node \"squeeze\" (Squeeze): Squeeze-11 -> Squeeze-13")
    }));
    assert!(
        changes
            .iter()
            .any(|c| c == "IR version 6 -> 7 (opset 13 needs it)"),
        "{changes:?}"
    );
    assert!(json["model_bytes"].as_u64().unwrap() > 0);
}

/// Runs a script of tests/data/opset with the venv's python.
fn data_script(script: &str, arg: &std::ffi::OsStr) -> std::process::Output {
    let path = repo_root().join("tests/data/opset").join(script);
    let python = whittle_tests::venv_python();
    std::process::Command::new(python)
        .arg(path)
        .arg(arg)
        .output()
        .unwrap()
}

#[test]
fn the_history_table_matches_the_onnx_schemas() {
    let r = data_script("gen_history.py", "--check".as_ref());
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn fixtures_convert_to_13_18_and_21_with_equal_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for src in fixture_models()
        .into_iter()
        .filter(|p| !p.ends_with("dtype_zoo.onnx"))
    {
        for target in [13, 18, 21] {
            let out = dir.path().join(format!(
                "{target}-{}",
                src.file_name().unwrap().to_string_lossy()
            ));
            convert(&src, &out, target);
            // attention.onnx at 13: LayerNormalization is expanded (see above).
            let atol = (target < 17 && src.ends_with("attention.onnx")).then_some(1e-5);
            assert_same_outputs(&src, &out, atol);
        }
    }
    // Nodes of other domains pass through untouched.
    let out = dir.path().join("18-multi_domain.onnx");
    let before = text(&repo_root().join("fixtures/multi_domain.onnx"));
    let after = text(&out);
    for line in before
        .lines()
        .filter(|l| l.contains("com.microsoft::") || l.contains("whittle.test::"))
    {
        assert!(after.contains(line), "{line:?} changed:\n{after}");
    }
}

/// Inputs the corpus models need beyond the seeded defaults.
fn corpus_inputs(path: &Path) -> serde_json::Value {
    let p = path.to_string_lossy();
    let data_dir = path
        .parent()
        .map(|d| d.join("test_data_set_0"))
        .filter(|d| d.is_dir());
    let (shape, values): (Vec<&str>, serde_json::Value) = if p.contains("nudenet") {
        (vec!["images=1x3x320x320"], serde_json::json!({}))
    } else if p.contains("silero") && !p.contains("sequence") && !p.contains("openvino") {
        (
            vec!["input=1x512", "state=2x1x128"],
            serde_json::json!({"sr": 16000}),
        )
    } else {
        (vec![], serde_json::json!({}))
    };
    serde_json::json!({"shape": shape, "values": values, "data_dir": data_dir})
}

#[test]
fn corpus_converts_to_18_and_21_with_equal_outputs() {
    let models = corpus_models();
    assert!(
        models.len() >= 100,
        "corpus/ has {} models: run `bash scripts/fetch-corpus.sh`",
        models.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    let mut lines = Vec::new();
    let mut converted = [0usize; 2];
    for (k, src) in models.iter().enumerate() {
        let rel = src.strip_prefix(repo_root()).unwrap_or(src).display();
        for (t, target) in [18, 21].into_iter().enumerate() {
            let out = dir.path().join(format!("{k}-{target}.onnx"));
            let r = whittle!("convert", src, "-o", &out, "--opset", target.to_string());
            if !r.status.success() {
                lines.push(format!("{rel}\t{target}\trefused\t{}", stderr(&r).trim()));
                continue;
            }
            converted[t] += 1;
            let mut pair = corpus_inputs(src);
            pair["reference"] = src.display().to_string().into();
            pair["candidate"] = out.display().to_string().into();
            pair["label"] = format!("{rel}\t{target}").into();
            pairs.push(pair);
        }
    }
    let spec = dir.path().join("pairs.json");
    std::fs::write(&spec, serde_json::to_vec(&pairs).unwrap()).unwrap();
    // Not python_json: the per-pair results are wanted also when some pairs differ.
    let run = data_script("check_pairs.py", spec.as_os_str());
    let res: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("check_pairs.py: {e}: {}", stderr(&run)));
    let results = res["results"].as_array().cloned().unwrap_or_default();
    let mut matched = [0usize; 2];
    for (pair, r) in pairs.iter().zip(&results) {
        let label = pair["label"].as_str().unwrap_or("?");
        let status = r["status"].as_str().unwrap_or("?");
        if status == "match" {
            matched[usize::from(label.ends_with("21"))] += 1;
        }
        let detail = r["detail"].as_str().or(r["against"].as_str()).unwrap_or("");
        lines.push(format!("{label}\t{status}\t{detail}"));
    }
    lines.sort();
    let report = format!(
        "{} models; converted to 18: {}, to 21: {}; outputs equal at 18: {}, at 21: {}\n{}\n",
        models.len(),
        converted[0],
        converted[1],
        matched[0],
        matched[1],
        lines.join("\n")
    );
    let _ = std::fs::write(repo_root().join("target/opset-corpus.txt"), &report);
    eprintln!("{report}");
    assert_eq!(res["ok"], true, "{}", res["error"]);
}
