//! `whittle merge` combiners, numerically: the merged model's outputs equal the combination
//! of the members' separate outputs — in onnxruntime (tests/python/merge_check.py computes
//! the combination with numpy) and, for mean/weighted/max, in tract (computed here) — on
//! the members of tests/data/merge (make_models.py), fixtures with subgraphs and functions,
//! two members at different opsets (one with external data), and the digits ensemble.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use whittle_runtime::inputs::seeded_tensor;
use whittle_runtime::{Backend, DType, HostTensor, InputFact, NamedTensor, TractBackend};
use whittle_tests::{corpus_models, fixture, python_json, repo_root, whittle};

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/merge").join(name)
}

fn three() -> Vec<PathBuf> {
    ["mlp_a.onnx", "mlp_b.onnx", "mlp_c.onnx"]
        .map(data)
        .to_vec()
}

/// `whittle merge MEMBERS -o OUT --combine HOW EXTRA…`; panics with stderr on failure.
fn merge(members: &[PathBuf], out: &Path, how: &str, extra: &[&str]) -> String {
    let mut args: Vec<OsString> = vec!["merge".into()];
    args.extend(members.iter().map(OsString::from));
    args.extend(["-o".into(), out.into(), "--combine".into(), how.into()]);
    args.extend(extra.iter().map(OsString::from));
    let r = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &args);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "merge {how}: {stderr}");
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// merge_check.py on the merged model; returns its JSON (asserting ok).
fn check(merged: &Path, members: &[PathBuf], how: &str, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<OsString> = vec![merged.into(), "--combine".into(), how.into()];
    for m in members {
        args.extend(["--member".into(), m.into()]);
    }
    args.extend(extra.iter().map(OsString::from));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let res = python_json("merge_check.py", &refs).unwrap_or_else(|e| panic!("{how}: {e}"));
    assert_eq!(res["ok"], true, "{how}: {res}");
    res
}

#[test]
fn mean_weighted_and_max_of_three_members_equal_the_combination_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    for how in ["mean", "weighted:3,1,2", "max"] {
        let out = dir.path().join("ens.onnx");
        let report = merge(&three(), &out, how, &[]);
        assert!(
            report.contains("input  x: f32[N,8] -> m0:x, m1:x, m2:x"),
            "{report}"
        );
        let res = check(&out, &three(), how, &["--batch", "64", "--seed", "11"]);
        // mlp_c's output is `logits`: matched by position, named after the first member's
        assert_eq!(res["members"][2][0], "logits");
        let diff = res["outputs"]["scores"]["max_abs_diff"].as_f64().unwrap();
        assert!(diff <= 1e-6, "{how}: {diff}");
    }
}

fn tract_run(path: &Path, inputs: &[NamedTensor]) -> Vec<f32> {
    let facts: Vec<InputFact> = inputs.iter().map(|(n, t)| InputFact::of(n, t)).collect();
    let model = TractBackend::new()
        .load(path, &facts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let outs = model
        .run(inputs)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    outs[0].1.to_f32_vec()
}

#[test]
fn mean_weighted_and_max_agree_with_the_members_in_tract() {
    let dir = tempfile::tempdir().unwrap();
    let x: HostTensor = seeded_tensor("x", DType::F32, &[32, 8], 5).unwrap();
    let inputs = vec![("x".to_string(), x)];
    let members: Vec<Vec<f32>> = three().iter().map(|m| tract_run(m, &inputs)).collect();
    let weights = [3.0f64, 1.0, 2.0];
    type Combiner = Box<dyn Fn(&[f32]) -> f64>;
    let cases: [(&str, Combiner); 3] = [
        (
            "mean",
            Box::new(|v| v.iter().map(|&x| x as f64).sum::<f64>() / 3.0),
        ),
        (
            "weighted:3,1,2",
            Box::new(move |v| {
                v.iter()
                    .zip(weights)
                    .map(|(&x, w)| x as f64 * w / 6.0)
                    .sum()
            }),
        ),
        (
            "max",
            Box::new(|v| v.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64),
        ),
    ];
    for (how, combine) in cases {
        let out = dir.path().join("ens.onnx");
        merge(&three(), &out, how, &[]);
        let got = tract_run(&out, &inputs);
        assert_eq!(got.len(), 32 * 5);
        for (k, g) in got.iter().enumerate() {
            let column: Vec<f32> = members.iter().map(|m| m[k]).collect();
            let want = combine(&column);
            assert!(
                (*g as f64 - want).abs() <= 1e-6,
                "{how} [{k}]: {g} vs {want}"
            );
        }
    }
}

#[test]
fn softmax_mean_concat_stack_and_all_equal_the_combination() {
    let dir = tempfile::tempdir().unwrap();
    for (how, extra) in [
        ("softmax-mean", vec!["--axis", "1"]),
        ("concat", vec!["--axis", "-1"]),
        ("stack", vec![]),
        ("all", vec![]),
    ] {
        let out = dir.path().join(format!("{how}.onnx"));
        merge(&three(), &out, how, &extra);
        check(
            &out,
            &three(),
            how,
            &[&["--batch", "8"], &extra[..]].concat(),
        );
    }
}

#[test]
fn vote_agrees_with_a_direct_count_on_every_sample_ties_included() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vote.onnx");
    let report = merge(&three(), &out, "vote", &[]);
    assert!(
        report.contains("output scores/winner: i64[N] = "),
        "{report}"
    );
    assert!(
        report.contains("output scores/votes: i64[N,5] = "),
        "{report}"
    );
    let res = check(&out, &three(), "vote", &["--batch", "256", "--seed", "3"]);
    assert_eq!(res["outputs"]["scores/winner"]["mismatched"], 0, "{res}");
    assert_eq!(res["outputs"]["scores/votes"]["mismatched"], 0, "{res}");
    // three members and five classes: 1-1-1 splits happen, so the tie-break is exercised
    assert!(res["ties"].as_u64().unwrap() > 10, "{res}");
}

#[test]
fn vote_reads_a_class_count_known_only_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let members = [data("gelu_a.onnx"), data("gelu_b.onnx")];
    let out = dir.path().join("vote.onnx");
    let report = merge(&members, &out, "vote", &[]);
    assert!(report.contains("output y/votes: i64[N,C] = "), "{report}");
    let text = whittle_ir::text::model_to_text(&whittle_ir::Model::load(&out).unwrap());
    assert!(text.contains("merge/y/Shape: Shape(m0/y)"), "{text}");
    let res = check(&out, &members, "vote", &["--batch", "128", "--seed", "9"]);
    assert!(res["ties"].as_u64().unwrap() > 0, "{res}");
}

#[test]
fn members_at_opsets_13_and_18_one_with_external_data_merge_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let members = [data("cnn13.onnx"), data("cnn18.onnx")];
    let map = ["--map", "0:image=input"];
    let inline = dir.path().join("ab.onnx");
    let report = merge(&members, &inline, "mean", &["--input-map", "image=input"]);
    assert!(
        report.contains("note: m0 (cnn13.onnx): ai.onnx opset 13 -> 18"),
        "{report}"
    );
    assert!(
        report.contains("input  input: f32[N,1,8,8] -> m0:image, m1:input"),
        "{report}"
    );
    assert!(
        !dir.path().join("ab.onnx.data").exists(),
        "inline by default"
    );
    check(&inline, &members, "mean", &map);
    let m = whittle_ir::Model::load(&inline).unwrap();
    assert_eq!(m.opset(""), Some(18));
    // the members' external tensors were read and written inline
    assert!(m.graph.initializers.iter().all(|t| !t.is_external()));

    let external = dir.path().join("ab-ext.onnx");
    let args = ["--input-map", "image=input", "--external-data", "100"];
    let report = merge(&members, &external, "softmax-mean", &args);
    assert!(report.contains("ab-ext.onnx.data"), "{report}");
    check(&external, &members, "softmax-mean", &map);

    // the other way round: everything at 13 (cnn18's ReduceMean axes go back to an attribute)
    let down = dir.path().join("ab-13.onnx");
    let report = merge(
        &members,
        &down,
        "vote",
        &["--input-map", "image=input", "--opset", "13"],
    );
    assert!(
        report.contains("note: m1 (cnn18.onnx): ai.onnx opset 18 -> 13"),
        "{report}"
    );
    check(
        &down,
        &members,
        "vote",
        &[&map[..], &["--batch", "64"]].concat(),
    );
}

#[test]
fn subgraphs_functions_and_custom_domains_survive_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    for (name, how) in [
        ("if_nested.onnx", "diff"),
        ("multi_domain.onnx", "all"),
        ("attention.onnx", "mean"),
        ("fp16_mlp.onnx", "softmax-mean"),
    ] {
        let members = [fixture(name), fixture(name)];
        let out = dir.path().join(name);
        merge(&members, &out, how, &[]);
        check(
            &out,
            &members,
            how,
            &["--opt-level", "disable", "--atol", "1e-3"],
        );
    }
}

#[test]
fn corpus_models_at_three_opsets_with_subgraphs_merge_exactly() {
    let dir = repo_root().join("corpus/silero-vad");
    let names = [
        "silero_vad_16k_op15.onnx",
        "silero_vad_op18_ifless.onnx",
        "silero_vad.onnx",
    ];
    let members: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if !members.iter().all(|m| m.exists()) {
        eprintln!("skipped: corpus/silero-vad not fetched (scripts/fetch-corpus.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("silero3.onnx");
    let report = merge(&members, &out, "all", &[]);
    assert!(
        report.contains("16 stored once with an earlier member"),
        "{report}"
    );
    let fills = [
        "--fill",
        "sr=16000",
        "--fill",
        "state=0",
        "--batch",
        "2",
        "--dim",
        "sequence=512",
    ];
    let res = check(
        &out,
        &members,
        "all",
        &[&fills[..], &["--atol", "0"]].concat(),
    );
    assert_eq!(
        res["outputs"].as_object().map(|o| o.len()),
        Some(6),
        "{res}"
    );
}

#[test]
fn every_corpus_model_merges_with_itself() {
    let models = corpus_models();
    if models.is_empty() {
        eprintln!("skipped: no corpus (scripts/fetch-corpus.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("twice.onnx");
    let mut failures = Vec::new();
    for m in &models {
        let r = whittle!("merge", m, m, "-o", &out, "--combine", "all", "--force");
        if !r.status.success() {
            failures.push(format!(
                "{}: {}",
                m.display(),
                String::from_utf8_lossy(&r.stderr)
            ));
            continue;
        }
        let one = whittle_passes::count_nodes(&whittle_ir::Model::load(m).unwrap());
        let merged = whittle_ir::Model::load(&out).unwrap();
        let two = whittle_passes::count_nodes(&merged);
        // `all` adds no node, except an Identity where two members output one shared value
        let outputs = merged.graph.output_names().count();
        if two < 2 * one || two > 2 * one + outputs {
            failures.push(format!(
                "{}: {one} nodes, merged with itself {two}",
                m.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        models.len(),
        failures.join("\n")
    );
}

#[test]
fn the_digits_ensemble_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let members = [
        fixture("digits_cnn.onnx"),
        data("digits_seed1.onnx"),
        data("digits_seed2.onnx"),
    ];
    let out = dir.path().join("ens.onnx");
    merge(&members, &out, "softmax-mean", &[]);
    let test = fixture("digits_test.npz");
    let accuracy = |m: &Path| {
        let r = whittle!("eval", m, "--data", &test, "--json", "-q");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        v["report"]["accuracy"].as_f64().unwrap()
    };
    let each: Vec<f64> = members.iter().map(|m| accuracy(m)).collect();
    let ensemble = accuracy(&out);
    eprintln!("digits accuracy: members {each:?}, softmax-mean ensemble {ensemble}");
    assert!(ensemble >= 0.98, "{ensemble}");
    let args: Vec<&std::ffi::OsStr> = vec![out.as_os_str(), test.as_os_str()];
    let ort = python_json("ort_eval.py", &args).unwrap();
    assert_eq!(
        ort["accuracy"].as_f64(),
        Some(ensemble),
        "tract and onnxruntime agree"
    );
}
