//! The canonical text of small merges (insta snapshots): what the renaming, the sharing of
//! inputs and weights, the opset conversion and each combiner's nodes look like.
use std::ffi::OsString;
use std::path::PathBuf;
use whittle_tests::{fixture, repo_root};

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/merge").join(name)
}

/// The canonical text of `whittle merge MEMBERS -o … ARGS…`.
fn merged_text(members: &[PathBuf], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.onnx");
    let mut all: Vec<OsString> = vec!["merge".into()];
    all.extend(members.iter().map(OsString::from));
    all.extend(["-o".into(), out.clone().into()]);
    all.extend(args.iter().map(OsString::from));
    let r = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let m = whittle_ir::Model::load(&out).unwrap();
    whittle_ir::text::model_to_text(&m)
}

fn ab() -> Vec<PathBuf> {
    vec![data("mlp_a.onnx"), data("mlp_b.onnx")]
}

fn abc() -> Vec<PathBuf> {
    vec![data("mlp_a.onnx"), data("mlp_b.onnx"), data("mlp_c.onnx")]
}

#[test]
fn mean_of_two_members_sharing_a_layer() {
    insta::assert_snapshot!("mean", merged_text(&ab(), &["--combine", "mean"]));
}

#[test]
fn weighted_max_and_softmax_mean_of_three() {
    insta::assert_snapshot!(
        "weighted",
        merged_text(&abc(), &["--combine", "weighted:3,1,2"])
    );
    insta::assert_snapshot!("max", merged_text(&abc(), &["--combine", "max"]));
    insta::assert_snapshot!(
        "softmax_mean",
        merged_text(&abc(), &["--combine", "softmax-mean"])
    );
}

#[test]
fn vote_of_three() {
    insta::assert_snapshot!("vote", merged_text(&abc(), &["--combine", "vote"]));
}

#[test]
fn concat_stack_all_and_diff() {
    insta::assert_snapshot!(
        "concat",
        merged_text(&ab(), &["--combine", "concat", "--axis", "1"])
    );
    insta::assert_snapshot!("stack", merged_text(&ab(), &["--combine", "stack"]));
    let args = ["--combine", "stack", "--opset", "11", "--prefix", "a,b"];
    insta::assert_snapshot!("stack_opset_11", merged_text(&ab(), &args));
    insta::assert_snapshot!("all", merged_text(&ab(), &["--combine", "all"]));
    insta::assert_snapshot!("diff", merged_text(&ab(), &["--combine", "diff"]));
}

#[test]
fn members_at_different_opsets_with_a_mapped_input() {
    let members = [data("cnn13.onnx"), data("cnn18.onnx")];
    let args = ["--combine", "softmax-mean", "--input-map", "image=input"];
    insta::assert_snapshot!("opsets_13_18", merged_text(&members, &args));
}

#[test]
fn subgraphs_and_functions_are_renamed() {
    let nested = [fixture("if_nested.onnx"), fixture("if_nested.onnx")];
    insta::assert_snapshot!(
        "if_nested_diff",
        merged_text(&nested, &["--combine", "diff"])
    );
    let funcs = [fixture("multi_domain.onnx"), fixture("multi_domain.onnx")];
    insta::assert_snapshot!(
        "multi_domain_all",
        merged_text(&funcs, &["--combine", "all"])
    );
}
