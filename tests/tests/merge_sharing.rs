//! `whittle merge` and weights: identical tensors across members are stored once (a model
//! merged with itself is barely bigger than the model; a perturbed copy adds only the
//! changed tensor), external-data members are read and written inline or external, the
//! metadata names every member, and the output is deterministic.
use std::path::{Path, PathBuf};
use whittle_tests::{fixture, python_json, repo_root, whittle};

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/merge").join(name)
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// `whittle merge A B -o OUT --combine HOW --json`; returns the JSON report.
fn merge_json(a: &Path, b: &Path, out: &Path, how: &str, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<std::ffi::OsString> = vec![
        "merge".into(),
        a.into(),
        b.into(),
        "-o".into(),
        out.into(),
        "--combine".into(),
        how.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let r = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    serde_json::from_slice(&r.stdout).unwrap()
}

fn counts(model: &Path) -> serde_json::Value {
    python_json("onnx_counts.py", &[model.as_os_str()]).unwrap()
}

#[test]
fn digits_merged_with_itself_stores_each_weight_once() {
    let dir = tempfile::tempdir().unwrap();
    let digits = fixture("digits_cnn.onnx");
    let out = dir.path().join("twice.onnx");
    let r = merge_json(&digits, &digits, &out, "softmax-mean", &[]);
    let m = &r["merge"];
    assert_eq!(m["members"][1]["shared_initializers"], 14, "{m}");
    assert_eq!(m["initializer_bytes"], m["members"][0]["initializer_bytes"]);
    let (single, twice) = (size(&digits), size(&out));
    eprintln!("digits_cnn.onnx {single} bytes; merged with itself {twice} bytes");
    // one copy of the weights plus a second copy of the (small) graph structure
    assert!(twice < single + single / 8, "{single} -> {twice}");
    let (c1, c2) = (counts(&digits), counts(&out));
    assert_eq!(c1["initializer_elements"], c2["initializer_elements"]);
    assert_eq!(
        c2["nodes_top_level"],
        2 * c1["nodes_top_level"].as_u64().unwrap() + 3
    );
}

#[test]
fn a_perturbed_copy_shares_all_but_the_changed_tensor_and_diff_measures_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (fixture("digits_cnn.onnx"), data("digits_perturbed.onnx"));
    let out = dir.path().join("ab.onnx");
    let r = merge_json(&a, &b, &out, "diff", &[]);
    let m = &r["merge"];
    assert_eq!(m["members"][1]["shared_initializers"], 13, "{m}");
    let extra = m["initializer_bytes"].as_u64().unwrap()
        - m["members"][0]["initializer_bytes"].as_u64().unwrap();
    assert_eq!(extra, 40, "only the 10-float bias is stored twice");
    let names: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m0/logits", "m1/logits", "logits/absdiff"]);
    let args: Vec<&std::ffi::OsStr> = [
        out.as_os_str(),
        "--combine".as_ref(),
        "diff".as_ref(),
        "--member".as_ref(),
        a.as_os_str(),
        "--member".as_ref(),
        b.as_os_str(),
        "--batch".as_ref(),
        "32".as_ref(),
    ]
    .to_vec();
    let res = python_json("merge_check.py", &args).unwrap();
    assert_eq!(res["ok"], true, "{res}");
    let d = res["outputs"]["logits/absdiff"]["max_abs_diff"]
        .as_f64()
        .unwrap();
    assert!(d <= 1e-6, "{res}");
}

#[test]
fn external_data_members_are_written_inline_or_external() {
    let dir = tempfile::tempdir().unwrap();
    let ext = fixture("external_mlp.onnx");
    let inline = dir.path().join("inline.onnx");
    let r = merge_json(&ext, &ext, &inline, "mean", &[]);
    assert_eq!(
        r["save"]["data_files"].as_array().map(Vec::len),
        Some(0),
        "{r}"
    );
    let m = whittle_ir::Model::load(&inline).unwrap();
    assert!(m.graph.initializers.iter().all(|t| !t.is_external()));
    let external = dir.path().join("external.onnx");
    let r = merge_json(&ext, &ext, &external, "mean", &["--external-data"]);
    let files = r["save"]["data_files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{r}");
    let data_file = dir.path().join("external.onnx.data");
    // the three weight matrices, once: 8 KiB + 4 KiB + 1.25 KiB (plus alignment)
    assert!(
        (13_568..14_000).contains(&size(&data_file)),
        "{}",
        size(&data_file)
    );
    for out in [&inline, &external] {
        let args: Vec<&std::ffi::OsStr> = vec![
            out.as_os_str(),
            "--combine".as_ref(),
            "mean".as_ref(),
            "--member".as_ref(),
            ext.as_os_str(),
            "--member".as_ref(),
            ext.as_os_str(),
        ];
        let res = python_json("merge_check.py", &args).unwrap();
        assert_eq!(res["ok"], true, "{res}");
    }
}

#[test]
fn metadata_names_every_member_with_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (data("cnn13.onnx"), data("cnn18.onnx"));
    let out = dir.path().join("ab.onnx");
    merge_json(&a, &b, &out, "all", &["--prefix", "torch,dynamo"]);
    let m = whittle_ir::Model::load(&out).unwrap();
    let meta: Vec<(String, String)> = m
        .proto
        .metadata_props
        .iter()
        .map(|e| (e.key().to_string(), e.value().to_string()))
        .collect();
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {meta:?}"))
    };
    let sha = |p: &Path| {
        let out = std::process::Command::new("sha256sum")
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(get("whittle.merge.combine"), "all");
    assert_eq!(get("whittle.merge.members"), "2");
    assert_eq!(get("whittle.merge.member.0.file"), "cnn13.onnx");
    assert_eq!(get("whittle.merge.member.0.sha256"), sha(&a));
    assert_eq!(get("whittle.merge.member.0.prefix"), "torch/");
    assert_eq!(get("whittle.merge.member.0.opset"), "13");
    assert_eq!(get("whittle.merge.member.1.sha256"), sha(&b));
    assert_eq!(get("whittle.merge.member.1.producer"), "whittle-tests 1");
    let outs: Vec<&str> = m.graph.output_names().collect();
    assert_eq!(outs, ["torch/logits", "dynamo/logits"]);
}

#[test]
fn the_same_merge_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let members = ["mlp_a.onnx", "mlp_b.onnx", "mlp_c.onnx"].map(data);
    let mut written = Vec::new();
    for k in 0..2 {
        let out = dir.path().join(format!("v{k}.onnx"));
        let r = whittle!(
            "merge",
            &members[0],
            &members[1],
            &members[2],
            "-o",
            &out,
            "--combine",
            "vote"
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        written.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(written[0], written[1]);
}
