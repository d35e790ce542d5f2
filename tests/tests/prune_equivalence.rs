//! The coupling check that needs no special weights: every path from a removed channel
//! ends in a consumer's input slice (a group reaching a graph output or anything not
//! understood is never pruned). So the pruned model must compute what the original
//! computes with those consumer slices zeroed — within float reassociation — whatever
//! the weights. Checked in onnxruntime for the digits CNN, the Concat/Split/depthwise test
//! models, the ResNet / MobileNetV2 / YOLOv8n-like (C2f Split halves) models and, when
//! the corpus is fetched, a YOLOv8n-style detector.
use bytes::Bytes;
use std::path::{Path, PathBuf};
use whittle_ir::{DataType, Model, SaveOptions};
use whittle_passes::prune::{Criterion, PruneOptions, Role, analyse_model, plan};
use whittle_tests::{corpus_or_skip, fixture, python_json, repo_root};

/// The original with the consumer slices of the channels `whittle prune` removes set to 0.
fn zero_consumers(model: &Model, options: &PruneOptions) -> Model {
    let analysis = analyse_model(model);
    let (_, outcomes) = plan(model, &analysis, options);
    let mut out = model.clone();
    for o in outcomes.iter().filter(|o| !o.removed.is_empty()) {
        let group = &analysis.groups[o.id];
        for m in group.members.iter().filter(|m| m.role == Role::Consumer) {
            let t = out
                .graph
                .initializers
                .iter_mut()
                .find(|t| t.name() == m.tensor)
                .unwrap();
            assert_eq!(t.dtype(), DataType::FLOAT, "{}", m.tensor);
            let mut v = t.to_f32_vec().unwrap();
            let dims: Vec<usize> = t.dims().iter().map(|&d| d as usize).collect();
            let inner: usize = dims[m.axis + 1..].iter().product();
            let outer: usize = dims[..m.axis].iter().product();
            for &c in &o.removed {
                for j in 0..m.run as usize {
                    let a = (m.offset as usize + c) * m.run as usize + j;
                    for k in 0..outer {
                        let start = (k * dims[m.axis] + a) * inner;
                        v[start..start + inner].iter_mut().for_each(|x| *x = 0.0);
                    }
                }
            }
            t.set_raw(Bytes::from(
                v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
            ));
        }
    }
    out
}

fn check(model: &Path, args: &[&str], options: PruneOptions, shape: &str, atol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pruned = dir.path().join("pruned.onnx");
    let zeroed = dir.path().join("zeroed.onnx");
    let mut all: Vec<std::ffi::OsString> = vec![
        "prune".into(),
        model.into(),
        "-o".into(),
        pruned.clone().into(),
    ];
    all.extend(args.iter().map(Into::into));
    let res = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let original = Model::load(model).unwrap();
    whittle_ir::save(
        &zero_consumers(&original, &options),
        &zeroed,
        &SaveOptions::default(),
    )
    .unwrap();
    let cmp = python_json(
        "ort_run_compare.py",
        &[
            zeroed.as_os_str(),
            pruned.as_os_str(),
            "--atol".as_ref(),
            atol.as_ref(),
            "--shape".as_ref(),
            shape.as_ref(),
        ],
    );
    assert!(cmp.is_ok(), "{}: {cmp:?}", model.display());
    if let Ok(v) = &cmp {
        eprintln!(
            "{}: max_abs_diff {}",
            model.display(),
            v["outputs"][0]["max_abs_diff"]
        );
    }
    // And the model did shrink.
    let before = std::fs::metadata(model).unwrap().len();
    let after = std::fs::metadata(&pruned).unwrap().len();
    assert!(
        after < before,
        "{}: {before} -> {after} bytes",
        model.display()
    );
}

fn opts(ratio: f64, criterion: Criterion) -> PruneOptions {
    PruneOptions {
        ratio,
        criterion,
        ..Default::default()
    }
}

fn data(name: &str) -> PathBuf {
    repo_root().join("tests/data/prune").join(name)
}

#[test]
fn digits_pruned_equals_original_with_consumer_slices_zeroed() {
    for (ratio, r) in [("0.25", 0.25), ("0.5", 0.5)] {
        let args = ["--ratio", ratio, "--criterion", "l1"];
        check(
            &fixture("digits_cnn.onnx"),
            &args,
            opts(r, Criterion::L1),
            "N=5",
            "1e-5",
        );
    }
}

#[test]
fn test_models_pruned_equal_original_with_consumer_slices_zeroed() {
    // Ratio 0.5 by L2 removes real (non-zero) channels, unlike the zero-channel tests.
    for name in [
        "chain_zero.onnx",
        "concat_zero.onnx",
        "depthwise_zero.onnx",
        "split_zero.onnx",
        "resnet.onnx",
        "mobilenetv2.onnx",
        "yolo_zero.onnx",
    ] {
        check(
            &data(name),
            &["--ratio", "0.5"],
            opts(0.5, Criterion::L2),
            "N=3",
            "1e-5",
        );
    }
}

#[test]
fn yolo_style_detector_pruned_equals_original_with_consumer_slices_zeroed() {
    let Some(model) = corpus_or_skip("nudenet/320n.onnx") else {
        return;
    };
    let args = ["--ratio", "0.3", "--shape", "images=1x3x320x320"];
    check(
        &model,
        &args,
        opts(0.3, Criterion::L2),
        "images=1x3x320x320",
        "1e-3",
    );
}
