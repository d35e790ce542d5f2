//! `whittle prune --target-macs X` / `--max-mac-reduction F` (issue #6): the search finds
//! the smallest ratio on a 1/1024 grid whose result has at most the target MACs (batch 1).
//! Checked independently of the search's own report: pruning at the ratio one grid step
//! lower, with a plain `--ratio`, leaves more MACs than the target. Error cases: a target
//! out of reach, MACs unknown (symbolic dims), no MAC ops at all, conflicting flags.
use serde_json::Value;
use std::path::{Path, PathBuf};
use whittle_tests::{fixture, prune_json, repo_root};

const STEP: f64 = 1.0 / 1024.0;

fn resnet() -> PathBuf {
    repo_root().join("tests/data/prune/resnet.onnx")
}

/// Runs `whittle prune MODEL -o OUT --json --force ARGS…`; returns the report.
fn prune(model: &Path, out: &Path, args: &[&str]) -> Value {
    prune_json!(model, out, &[&["--force"], args].concat())
}

fn macs_after(r: &Value) -> u64 {
    r["after"]["macs"].as_u64().expect("MACs after")
}

/// The search's result meets `target`, and one grid step lower (re-run with a plain
/// ratio, `global` or not) does not.
fn check_no_overshoot(r: &Value, target: u64, global: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("below.onnx");
    let t = &r["target"];
    let ratio = t["ratio"].as_f64().expect("ratio");
    assert_eq!(r["ratio"].as_f64(), Some(ratio));
    assert_eq!(t["target_macs"].as_u64(), Some(target));
    assert!(macs_after(r) <= target, "{r}");
    assert_eq!(t["macs"].as_u64(), Some(macs_after(r)));
    let below = ratio - STEP;
    assert!(below >= 0.0);
    let flag = if global { "--global" } else { "--ratio" };
    let lower = prune(&resnet(), &out, &[flag, &below.to_string()]);
    eprintln!(
        "target {target}: ratio {ratio} -> {} MACs; ratio {below} -> {} MACs",
        macs_after(r),
        macs_after(&lower)
    );
    assert!(macs_after(&lower) > target, "{lower}");
    assert_eq!(t["below"][1].as_u64(), Some(macs_after(&lower)));
}

#[test]
fn target_macs_reaches_the_target_without_overshooting() {
    // resnet.onnx: 615920 MACs at batch 1.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.onnx");
    let r = prune(&resnet(), &out, &["--target-macs", "400K"]);
    assert_eq!(r["before"]["macs"], 615_920);
    check_no_overshoot(&r, 400_000, false);
    let g = prune(&resnet(), &out, &["--target-macs", "0.3M", "--global"]);
    check_no_overshoot(&g, 300_000, true);
    // Already below the target: nothing is pruned.
    let none = prune(&resnet(), &out, &["--target-macs", "1G"]);
    assert_eq!(none["ratio"], 0.0);
    assert_eq!(macs_after(&none), 615_920);
}

#[test]
fn max_mac_reduction_removes_at_least_that_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.onnx");
    let r = prune(&resnet(), &out, &["--max-mac-reduction", "0.4"]);
    // floor(0.6 · 615920)
    check_no_overshoot(&r, 369_552, false);
    assert_eq!(r["target"]["max_mac_reduction"], 0.4);
    assert_eq!(r["target"]["macs_before"], 615_920);
}

/// Runs a prune that must fail; returns its stderr.
fn prune_fails(model: &Path, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.onnx");
    let mut all: Vec<std::ffi::OsString> = vec!["prune".into(), model.into(), "-o".into()];
    all.push(out.clone().into());
    all.extend(args.iter().map(Into::into));
    let res = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert!(!res.status.success(), "{args:?} should fail");
    assert!(!out.exists(), "a failed prune writes nothing");
    String::from_utf8_lossy(&res.stderr).into_owned()
}

#[test]
fn mac_targets_fail_clearly() {
    let far = prune_fails(&resnet(), &["--target-macs", "10"]);
    assert!(far.contains("out of reach"), "{far}");
    assert!(far.contains("leaves 40614 of 615920 MACs"), "{far}");
    // attention.onnx: x is [batch, seq, 16]; seq stays unknown at batch 1.
    let unknown = prune_fails(&fixture("attention.onnx"), &["--target-macs", "1M"]);
    assert!(unknown.contains("MACs are unknown at batch 1"), "{unknown}");
    assert!(unknown.contains("--shape"), "{unknown}");
    assert!(unknown.contains("x f32[batch,seq,16]"), "{unknown}");
    let none = prune_fails(
        &fixture("multi_domain.onnx"),
        &["--max-mac-reduction", "0.5"],
    );
    assert!(none.contains("no MACs to reduce"), "{none}");
    for (args, msg) in [
        (&["--max-mac-reduction", "1.5"][..], "between 0 and 1"),
        (&["--target-macs", "lots"][..], "is not a MAC count"),
        (
            &["--target-macs", "1M", "--ratio", "0.3"][..],
            "cannot be used with",
        ),
        (
            &["--target-macs", "1M", "--global", "0.3"][..],
            "takes no value",
        ),
        (&["--global"][..], "--global needs a ratio"),
    ] {
        let err = prune_fails(&resnet(), args);
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}
