//! Unit tests of the table, the driver's invariants, and rules the end-to-end suite
//! (tests/tests/opset.rs) cannot run in onnxruntime (training-mode BatchNormalization).
use super::history::STEPS;
use super::rules::{RULES, rule};
use super::table;
use super::values::{attr_int, new_node};
use super::{MAX_TARGET, convert_opset};
use std::path::Path;
use whittle_ir::proto::{ModelProto, OperatorSetIdProto, ValueInfoProto};
use whittle_ir::text::model_to_text;
use whittle_ir::{Graph, Model, Node};

fn repo_file(rel: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    Model::load(&path).unwrap()
}

fn value(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// A model of `nodes` at ai.onnx `opset`; graph inputs/outputs are given by name only.
fn model(opset: i64, nodes: Vec<Node>, inputs: &[&str], outputs: &[&str]) -> Model {
    let proto = whittle_ir::proto::GraphProto {
        name: Some("g".into()),
        input: inputs.iter().map(|n| value(n)).collect(),
        output: outputs.iter().map(|n| value(n)).collect(),
        ..Default::default()
    };
    Model {
        proto: ModelProto {
            ir_version: Some(table::min_ir_version(opset)),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            ..Default::default()
        },
        graph: Graph::new(proto, Vec::new(), nodes),
        path: None,
        source_len: None,
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_changed_step_has_a_rule() {
    let missing: Vec<String> = STEPS
        .iter()
        .filter(|s| !s.additive && rule(s.op, s.since).is_none())
        .map(|s| format!("{}-{}: {}", s.op, s.since, s.what))
        .collect();
    assert!(missing.is_empty(), "no rule for: {missing:#?}");
}

#[test]
fn every_rule_names_a_real_schema_version() {
    for r in RULES {
        let versions = table::versions(r.op).unwrap_or_else(|| panic!("unknown op {}", r.op));
        assert!(
            versions.contains(&r.since),
            "{}-{} is not a schema version",
            r.op,
            r.since
        );
        assert!(r.since <= MAX_TARGET);
    }
}

#[test]
fn a_refused_conversion_leaves_the_model_unchanged() {
    let mut m = repo_file("tests/data/opset/dynamic_axes_13.onnx");
    let before = m.to_proto();
    let e = convert_opset(&mut m, 11).unwrap_err().to_string();
    assert!(
        e.contains("\"squeeze_dynamic\" (Squeeze)") && e.contains("nothing was converted"),
        "{e}"
    );
    assert_eq!(m.to_proto(), before);
}

#[test]
fn unknown_ops_of_the_default_domain_are_refused_and_other_domains_kept() {
    let n = new_node("NoSuchOp", "odd", &names(&["x"]), &names(&["y"]), vec![]);
    let mut m = model(13, vec![n], &["x"], &["y"]);
    let e = convert_opset(&mut m, 18).unwrap_err().to_string();
    assert!(
        e.contains("\"odd\" (NoSuchOp)") && e.contains("NoSuchOp is not an ai.onnx operator"),
        "{e}"
    );

    let mut m = repo_file("fixtures/multi_domain.onnx");
    let r = convert_opset(&mut m, 18).unwrap();
    assert!(
        r.skipped
            .iter()
            .any(|s| s.starts_with("domain \"com.microsoft\": 2 nodes")),
        "{:?}",
        r.skipped
    );
    let f = &m.proto.functions[0];
    assert!(
        f.opset_import
            .iter()
            .any(|o| o.domain().is_empty() && o.version == Some(18))
    );
    assert_eq!(m.opset(""), Some(18));
}

#[test]
fn batchnorm_training_outputs_become_running_statistics_and_back() {
    let ins = names(&["x", "s", "b", "m", "v"]);
    let bn = new_node(
        "BatchNormalization",
        "bn",
        &ins,
        &names(&["y", "mean", "var"]),
        vec![],
    );
    let mut m = model(
        9,
        vec![bn],
        &["x", "s", "b", "m", "v"],
        &["y", "mean", "var"],
    );
    let r = convert_opset(&mut m, 15).unwrap();
    assert!(r.changes[0].contains("training_mode=1"), "{:?}", r.changes);
    assert!(
        model_to_text(&m)
            .contains("bn: BatchNormalization(x, s, b, m, v) -> y, mean, var {training_mode=1}")
    );
    convert_opset(&mut m, 9).unwrap();
    assert!(model_to_text(&m).contains("bn: BatchNormalization(x, s, b, m, v) -> y, mean, var\n"));

    let saved = new_node(
        "BatchNormalization",
        "bn",
        &ins,
        &names(&["y", "mean", "var", "sm"]),
        vec![],
    );
    let mut m = model(9, vec![saved], &["x", "s", "b", "m", "v"], &["y", "sm"]);
    let e = convert_opset(&mut m, 14).unwrap_err().to_string();
    assert!(e.contains("saved_mean/saved_var"), "{e}");
}

#[test]
fn downgrades_check_what_the_newer_version_added() {
    // Reshape-14 allowzero=1 has no equivalent in 13; allowzero=0 is just removed.
    for (allowzero, ok) in [(0, true), (1, false)] {
        let n = new_node(
            "Reshape",
            "r",
            &names(&["x", "shape"]),
            &names(&["y"]),
            vec![attr_int("allowzero", allowzero)],
        );
        let mut m = model(14, vec![n], &["x", "shape"], &["y"]);
        let result = convert_opset(&mut m, 13);
        assert_eq!(result.is_ok(), ok, "{result:?}");
        if ok {
            assert!(model_to_text(&m).contains("r: Reshape(x, shape) -> y\n"));
        }
    }
    // An op that did not exist yet.
    let n = new_node(
        "GreaterOrEqual",
        "ge",
        &names(&["a", "b"]),
        &names(&["y"]),
        vec![],
    );
    let mut m = model(12, vec![n], &["a", "b"], &["y"]);
    let e = convert_opset(&mut m, 11).unwrap_err().to_string();
    assert!(
        e.contains("GreaterOrEqual was introduced in opset 12"),
        "{e}"
    );
}

#[test]
fn ir_version_is_raised_never_lowered_and_targets_are_bounded() {
    let n = new_node("Relu", "relu", &names(&["x"]), &names(&["y"]), vec![]);
    let mut m = model(9, vec![n], &["x"], &["y"]);
    assert_eq!(m.proto.ir_version, Some(4));
    convert_opset(&mut m, 21).unwrap();
    assert_eq!(m.proto.ir_version, Some(10));
    convert_opset(&mut m, 9).unwrap();
    assert_eq!((m.proto.ir_version, m.opset("")), (Some(10), Some(9)));
    assert!(convert_opset(&mut m, 6).is_err() && convert_opset(&mut m, 22).is_err());
    let before = m.to_proto();
    let r = convert_opset(&mut m, 9).unwrap();
    assert_eq!(
        r.changes,
        ["ai.onnx opset is already 9: nothing to convert"]
    );
    assert_eq!(m.to_proto(), before);
}
