//! `whittle merge` refusals: exit 1, one line on stderr naming the members (and the input,
//! output, domain or node involved), nothing written. Usage errors of clap exit 2.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use whittle_tests::repo_root;

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/merge").join(name)
}

/// Runs `whittle merge A B… -o OUT ARGS…` expecting exit `code`; returns stderr.
fn refused(members: &[PathBuf], args: &[&str], code: i32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let mut all: Vec<OsString> = vec!["merge".into()];
    all.extend(members.iter().map(OsString::from));
    all.extend(["-o".into(), out.clone().into()]);
    all.extend(args.iter().map(OsString::from));
    let r = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
    assert_eq!(r.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        !out.exists(),
        "{args:?}: a refused merge wrote {}",
        out.display()
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no stray files"
    );
    if code == 1 {
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    stderr
}

fn pair(a: &str, b: &str) -> Vec<PathBuf> {
    vec![data(a), data(b)]
}

#[test]
fn an_input_dtype_mismatch_names_both_members_and_the_input() {
    let e = refused(
        &pair("mlp_a.onnx", "mlp_f64.onnx"),
        &["--combine", "mean"],
        1,
    );
    assert_eq!(
        e.trim_end(),
        "error: input \"x\": m0 (mlp_a.onnx) has f32[N,8] but m1 (mlp_f64.onnx) has f64[N,8] (element types differ); map one of them to another name with --input-map"
    );
}

#[test]
fn a_static_shape_mismatch_names_both_members_and_the_input() {
    let e = refused(
        &pair("mlp_a.onnx", "mlp_x16.onnx"),
        &["--combine", "all"],
        1,
    );
    assert!(e.contains("input \"x\": m0 (mlp_a.onnx) has f32[N,8] but m1 (mlp_x16.onnx) has f32[N,16] (static shapes differ)"), "{e}");
}

#[test]
fn outputs_that_cannot_be_matched_are_listed_per_member() {
    let e = refused(
        &pair("mlp_a.onnx", "two_outputs.onnx"),
        &["--combine", "mean"],
        1,
    );
    assert_eq!(
        e.trim_end(),
        "error: cannot match the outputs by name or position: m0 (mlp_a.onnx) has [scores], m1 (two_outputs.onnx) has [scores, features]"
    );
}

#[test]
fn a_domain_imported_at_two_versions_is_refused() {
    let e = refused(
        &pair("dom_v1.onnx", "dom_v2.onnx"),
        &["--combine", "mean"],
        1,
    );
    assert_eq!(
        e.trim_end(),
        "error: domain \"whittle.test\" is imported at version 1 by m0 (dom_v1.onnx) and at version 2 by m1 (dom_v2.onnx); whittle cannot convert between them"
    );
}

#[test]
fn an_opset_the_converter_cannot_reach_names_the_blocking_node() {
    let grid = repo_root().join("tests/data/opset/gridsample_16.onnx");
    let members = vec![grid, data("mlp_a.onnx")];
    let e = refused(&members, &["--combine", "all", "--opset", "13"], 1);
    assert!(
        e.starts_with("error: m0 (gridsample_16.onnx): cannot bring ai.onnx opset 16 to 13: "),
        "{e}"
    );
    assert!(e.contains("\"sample\" (GridSample)"), "{e}");
}

#[test]
fn combiner_and_option_mistakes_are_refused_before_anything_is_written() {
    let three = vec![data("mlp_a.onnx"), data("mlp_b.onnx"), data("mlp_c.onnx")];
    let e = refused(&three, &["--combine", "diff"], 1);
    assert_eq!(e.trim_end(), "error: diff compares two models, got 3");
    let e = refused(&three, &["--combine", "weighted:1,2"], 1);
    assert_eq!(e.trim_end(), "error: weighted has 2 weights for 3 models");
    let e = refused(&three, &["--combine", "mean", "--axis", "0"], 1);
    assert!(
        e.contains("--axis is used by softmax-mean, vote and concat, not by mean"),
        "{e}"
    );
    let e = refused(&three, &["--combine", "concat", "--axis", "5"], 1);
    assert_eq!(
        e.trim_end(),
        "error: output \"scores\": axis 5 is out of range for rank 2"
    );
    let e = refused(
        &three,
        &["--combine", "mean", "--input-map", "1:image=x"],
        1,
    );
    assert!(
        e.contains("--input-map 1:image=x: m1 (mlp_b.onnx) has no input \"image\" (its inputs: x)"),
        "{e}"
    );
    let e = refused(&three, &["--combine", "mean", "--prefix", "a,a/b,c"], 1);
    assert!(e.contains("prefixes \"a/\" and \"a/b/\" overlap"), "{e}");
    let e = refused(&three, &["--combine", "median"], 2);
    assert!(e.contains("unknown combiner \"median\""), "{e}");
    refused(&three[..1], &["--combine", "mean"], 2);
}

#[test]
fn a_missing_member_file_is_named_once() {
    let members = vec![
        data("mlp_a.onnx"),
        Path::new("/nonexistent/m.onnx").to_path_buf(),
    ];
    let e = refused(&members, &["--combine", "mean"], 1);
    assert_eq!(e.matches("/nonexistent/m.onnx").count(), 1, "{e}");
}

#[test]
fn an_input_file_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.onnx");
    std::fs::copy(data("mlp_a.onnx"), &a).unwrap();
    let before = std::fs::read(&a).unwrap();
    let r = whittle_tests::whittle!(
        "merge",
        &a,
        data("mlp_b.onnx"),
        "-o",
        &a,
        "--combine",
        "mean"
    );
    assert_eq!(r.status.code(), Some(1));
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        e.contains("refusing to overwrite an input file (pass --force to allow it)"),
        "{e}"
    );
    assert_eq!(std::fs::read(&a).unwrap(), before);
}
