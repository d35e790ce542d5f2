//! `whittle quantize --mode weight`: the stored integers are the ONNX formula (checked with
//! numpy), onnxruntime runs every form written (DequantizeLinear per tensor / per channel /
//! block-wise, int8/uint8/int4/uint4, MatMulNBits) and stays close to the float model, the
//! report accounts for every candidate, and the opset is raised only when needed.
mod quantize_common;

use quantize_common::*;
use whittle_tests::{fixture, whittle};

#[test]
fn digits_int8_per_channel_keeps_top1_and_cuts_weight_bytes() {
    let src = fixture("digits_cnn.onnx");
    let data = fixture("digits_test.npz");
    let q = quantize(&src, &["--calib", data.to_str().unwrap()]);
    let statuses = q.statuses();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    for (node, status, form) in &statuses {
        assert_eq!(status, "quantized", "{node}");
        assert!(
            form.contains("int8 per-channel (axis 0) symmetric"),
            "{node}: {form}"
        );
    }
    let bytes = &q.report()["bytes"];
    let ratio = f(&bytes["weights_before"]) / f(&bytes["weights_after"]);
    assert!(ratio >= 3.5, "weight bytes cut only {ratio:.2}×: {bytes}");
    assert_eq!(
        q.report()["opset_after"],
        17,
        "per-channel needs 13, the model has 17"
    );
    assert_eq!(f(&q.report()["coverage"]["weight_coverage"]), 1.0);
    // SQNR of every weight is reported and matches numpy's.
    let checked = check_weights(&src, &q.path);
    assert_eq!(checked.len(), 3);
    for (c, n) in checked.iter().zip(q.nodes()) {
        let (a, b) = (f(&c["sqnr_db"]), f(&n["weight_sqnr_db"]));
        assert!((a - b).abs() < 1e-6 && a > 35.0, "{c} vs {n}");
    }
    // onnxruntime: top-1 agreement with the float model on the 450 test digits.
    let out = agreement(
        &src,
        &q.path,
        &["--npz", data.to_str().unwrap(), "--samples", "450"],
    );
    let top1 = f(&out[0]["top1_agreement"]);
    assert!(top1 >= 0.995, "onnxruntime top-1 agreement {top1}");
    // The CLI's own measurement (tract, after lowering DequantizeLinear of constants).
    let err = &q.json["error"];
    assert_eq!(err["backend"], "tract");
    assert_eq!(err["samples"], 450);
    let top1 = f(&err["outputs"][0]["top1_agreement"]);
    assert!(top1 >= 0.995, "tract top-1 agreement {top1}: {err}");
    assert_eq!(err["layers"].as_array().map(Vec::len), Some(3), "{err}");
}

/// Each weight form on the fixture it fits: numpy-exact integers, runs in onnxruntime,
/// and the output SNR stays above a floor that fits the bit width.
#[test]
fn every_weight_form_is_exact_and_runs_in_onnxruntime() {
    let cases: &[(&str, &[&str], &str, f64)] = &[
        (
            "digits_cnn.onnx",
            &["--per-tensor"],
            "int8 per-tensor",
            30.0,
        ),
        (
            "digits_cnn.onnx",
            &["--dtype", "uint8", "--asymmetric"],
            "uint8 per-channel (axis 0) asymmetric",
            30.0,
        ),
        (
            "digits_cnn.onnx",
            &["--dtype", "int4", "--block-size", "32"],
            "int4 block 32 (axis 1)",
            10.0,
        ),
        (
            "digits_cnn.onnx",
            &["--dtype", "uint4", "--asymmetric", "--per-tensor"],
            "uint4 per-tensor",
            5.0,
        ),
        (
            "attention.onnx",
            &["--dtype", "int4", "--block-size", "16"],
            "int4 per-channel",
            10.0,
        ),
        (
            "external_mlp.onnx",
            &["--dtype", "int4", "--block-size", "16"],
            "int4 block 16 (axis 0)",
            10.0,
        ),
        (
            "external_mlp.onnx",
            &[
                "--format",
                "ort-nbits",
                "--dtype",
                "int4",
                "--block-size",
                "16",
            ],
            "MatMulNBits 4-bit block 16 symmetric",
            10.0,
        ),
        (
            "attention.onnx",
            &[
                "--format",
                "ort-nbits",
                "--dtype",
                "uint4",
                "--asymmetric",
                "--block-size",
                "16",
            ],
            "MatMulNBits 4-bit block 16 asymmetric",
            10.0,
        ),
        (
            "external_mlp.onnx",
            &[
                "--format",
                "ort-nbits",
                "--dtype",
                "int8",
                "--block-size",
                "32",
            ],
            "MatMulNBits 8-bit block 32",
            30.0,
        ),
        ("fp16_mlp.onnx", &[], "int8 per-channel", 30.0),
        (
            "fp16_mlp.onnx",
            &["--dtype", "int4", "--block-size", "16"],
            "int4 block 16",
            10.0,
        ),
    ];
    for (model, args, form, min_snr) in cases {
        let src = fixture(model);
        let q = quantize(&src, args);
        let what = format!("{model} {args:?}");
        assert!(
            q.statuses()
                .iter()
                .any(|(_, s, f)| s == "quantized" && f.contains(form)),
            "{what}: no node quantized as {form:?}: {:?}",
            q.statuses()
        );
        let checked = check_weights(&src, &q.path);
        assert!(!checked.is_empty(), "{what}");
        let shapes = [
            "--shape",
            "N=3",
            "--shape",
            "batch=3",
            "--shape",
            "seq=5",
            "--samples",
            "4",
        ];
        for o in agreement(&src, &q.path, &shapes) {
            let snr = f(&o["snr_db"]);
            assert!(
                snr >= *min_snr,
                "{what}: output {} SNR {snr} dB < {min_snr}",
                o["name"]
            );
        }
    }
}

#[test]
fn exclusions_and_small_weights_are_reported_with_reasons() {
    let src = fixture("digits_cnn.onnx");
    let q = quantize(
        &src,
        &[
            "--exclude-ops",
            "Gemm",
            "--exclude-nodes",
            "conv2",
            "--min-elements",
            "200",
        ],
    );
    let s = q.statuses();
    let find = |name: &str| {
        s.iter()
            .find(|(n, _, _)| n.contains(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(find("conv1").1, "skipped");
    assert!(
        find("conv1")
            .2
            .contains("144 elements (< --min-elements 200)"),
        "{s:?}"
    );
    assert!(find("conv2").2.contains("--exclude-nodes"), "{s:?}");
    assert!(find("\"fc\"").2.contains("--exclude-ops"), "{s:?}");
    assert_eq!(
        q.report()["bytes"]["tensors_before"],
        q.report()["bytes"]["tensors_after"]
    );
    // the model is unchanged but for nothing: onnxruntime gives identical outputs
    let out = agreement(&src, &q.path, &["--shape", "N=2"]);
    assert!(out[0]["snr_db"].is_null(), "{out:?}");
}

#[test]
fn opset_is_raised_only_when_the_form_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("digits_op11.onnx");
    let r = whittle!(
        "convert",
        fixture("digits_cnn.onnx"),
        "-o",
        &old,
        "--opset",
        "11"
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let per_tensor = quantize(&old, &["--per-tensor"]);
    assert_eq!(per_tensor.report()["opset_after"], 11);
    assert!(per_tensor.notes().is_empty(), "{:?}", per_tensor.notes());
    let per_channel = quantize(&old, &[]);
    assert_eq!(per_channel.report()["opset_after"], 13);
    assert!(
        per_channel
            .notes()
            .iter()
            .any(|n| n.contains("from 11 to 13: per-channel DequantizeLinear needs opset 13")),
        "{:?}",
        per_channel.notes()
    );
    let int4 = quantize(&old, &["--dtype", "int4"]);
    assert_eq!(int4.report()["opset_after"], 21);
    for q in [&per_tensor, &per_channel, &int4] {
        check_weights(&old, &q.path);
        agreement(&old, &q.path, &["--shape", "N=2"]);
    }
}

#[test]
fn bad_requests_fail_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.onnx");
    let src = fixture("digits_cnn.onnx");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    for (args, needle) in [
        (vec![s, "-o", o, "--block-size", "20"], "power of two"),
        (vec![s, "-o", o, "--mode", "static"], "--calib"),
        (
            vec![s, "-o", o, "--mode", "dynamic", "--format", "ort-nbits"],
            "--mode weight",
        ),
        (vec![s, "-o", s], "refusing to overwrite"),
    ] {
        let err = quantize_fails(&args);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn quantized_text_snapshots() {
    for (name, model, args) in [
        ("digits_int8_per_channel", "digits_cnn.onnx", vec![]),
        (
            "mlp_int4_block16",
            "external_mlp.onnx",
            vec!["--dtype", "int4", "--block-size", "16"],
        ),
        (
            "attention_matmulnbits",
            "attention.onnx",
            vec![
                "--format",
                "ort-nbits",
                "--block-size",
                "16",
                "--dtype",
                "int4",
            ],
        ),
    ] {
        let q = quantize(&fixture(model), &args);
        let m = whittle_ir::Model::load(&q.path).unwrap();
        insta::assert_snapshot!(name, whittle_ir::text::model_to_text(&m));
    }
}
