//! `whittle eval --output NAME` scores a chosen output, e.g. the vote counts of a merged
//! vote ensemble (whose first output is the winning index, not scores).
use whittle_tests::{fixture, repo_root, whittle};

#[test]
fn eval_scores_the_chosen_output() {
    let dir = tempfile::tempdir().unwrap();
    let ens = dir.path().join("vote.onnx");
    let seed1 = repo_root().join("tests/data/merge/digits_seed1.onnx");
    let seed2 = repo_root().join("tests/data/merge/digits_seed2.onnx");
    let r = whittle!(
        "merge",
        fixture("digits_cnn.onnx"),
        &seed1,
        &seed2,
        "-o",
        &ens,
        "--combine",
        "vote"
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let data = fixture("digits_test.npz");
    let r = whittle!(
        "eval",
        &ens,
        "--data",
        &data,
        "--output",
        "logits/votes",
        "--json"
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(json["report"]["output"], "logits/votes");
    let accuracy = json["report"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.97, "{accuracy}");
    let r = whittle!("eval", &ens, "--data", &data, "--output", "nope");
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("no output \"nope\" (its outputs: logits/winner, logits/votes)"),
        "{err}"
    );
}
