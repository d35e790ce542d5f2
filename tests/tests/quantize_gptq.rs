//! `whittle quantize --mode weight --gptq` on the digits fixture: GPTQ rounding against the
//! calibration inputs lowers the output error of int4 weights well below round-to-nearest's
//! (same scales, same file format and size), test accuracy is not worse, every layer says
//! how it was rounded, the bytes do not depend on the thread count, and onnxruntime runs it.
mod quantize_common;

use quantize_common::{Quantized, agreement, f, quantize, quantize_fails};
use whittle_tests::{eval_accuracy, fixture};

fn digits(args: &[&str]) -> Quantized {
    let calib = fixture("digits_calib.npz");
    let mut all = vec!["--mode", "weight", "--calib", calib.to_str().unwrap()];
    all.extend_from_slice(args);
    quantize(&fixture("digits_cnn.onnx"), &all)
}

fn snr(q: &Quantized) -> f64 {
    f(&q.json["error"]["outputs"][0]["snr_db"])
}

#[test]
fn int4_gptq_beats_round_to_nearest_in_the_same_format() {
    let rtn = digits(&["--dtype", "int4"]);
    let gptq = digits(&["--dtype", "int4", "--gptq"]);
    let forms = gptq.forms();
    assert_eq!(forms.len(), 3, "conv1, conv2, fc: {forms:?}");
    assert!(
        forms.iter().all(|s| s.ends_with("GPTQ rounding")),
        "{forms:?}"
    );
    assert!(rtn.forms().iter().all(|f| !f.contains("GPTQ")));
    // Measured on the calibration set: 13.9 dB → 22.2 dB when this test was written.
    let (before, after) = (snr(&rtn), snr(&gptq));
    assert!(
        after > before + 5.0,
        "SNR {before:.1} → {after:.1} dB with GPTQ"
    );
    // Same scales and types: only which integers the weights got differs.
    let size = |q: &Quantized| std::fs::metadata(&q.path).unwrap().len();
    assert_eq!(size(&rtn), size(&gptq));
    let test = fixture("digits_test.npz");
    let (acc_rtn, acc_gptq) = (
        eval_accuracy!(&rtn.path, &test),
        eval_accuracy!(&gptq.path, &test),
    );
    assert!(acc_gptq >= acc_rtn, "test accuracy {acc_rtn} → {acc_gptq}");
    assert!(!agreement(&fixture("digits_cnn.onnx"), &gptq.path, &[]).is_empty());
}

#[test]
fn int4_block_wise_gptq_rounds_blocked_weights_too() {
    let rtn = digits(&["--dtype", "int4", "--block-size", "32"]);
    let gptq = digits(&["--dtype", "int4", "--block-size", "32", "--gptq"]);
    let blocked: Vec<String> = gptq
        .forms()
        .into_iter()
        .filter(|f| f.contains("block"))
        .collect();
    assert!(!blocked.is_empty(), "the Gemm's weight is blocked");
    assert!(
        blocked.iter().all(|f| f.contains("GPTQ rounding")),
        "{blocked:?}"
    );
    let (before, after) = (snr(&rtn), snr(&gptq));
    assert!(
        after > before + 3.0,
        "SNR {before:.1} → {after:.1} dB with GPTQ"
    );
    assert!(!agreement(&fixture("digits_cnn.onnx"), &gptq.path, &[]).is_empty());
}

#[test]
fn gptq_with_bias_correction_and_any_thread_count_gives_the_same_bytes() {
    let one = digits(&["--gptq", "--bias-correction", "--threads", "1"]);
    let two = digits(&["--gptq", "--bias-correction", "--threads", "2"]);
    assert_eq!(
        std::fs::read(&one.path).unwrap(),
        std::fs::read(&two.path).unwrap()
    );
    let entries = one.report()["bias_correction"].as_array().unwrap();
    assert!(
        entries.iter().all(|e| e["corrected"] == true),
        "{entries:?}"
    );
    assert!(
        snr(&one) > 40.0,
        "int8 + GPTQ + bias correction: {} dB",
        snr(&one)
    );
}

#[test]
fn gptq_needs_weight_mode_a_calibration_set_and_row_scales() {
    let src = fixture("digits_cnn.onnx");
    let src = src.to_str().unwrap();
    let err = quantize_fails(&[src, "--gptq"]);
    assert!(err.contains("--calib"), "{err}");
    let err = quantize_fails(&[src, "--mode", "static", "--gptq", "--calib", "x.npz"]);
    assert!(err.contains("--mode weight"), "{err}");
}

/// 256 rows of 64 features that mostly live in a 6-dimensional subspace (what GPTQ's error
/// compensation exploits: correlated inputs), from a fixed-seed generator.
fn correlated_inputs(path: &std::path::Path) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut normal = move || {
        // Sum of 12 uniforms − 6: close enough to a standard normal for a test.
        (0..12)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32
            })
            .sum::<f32>()
            - 6.0
    };
    let mix: Vec<f32> = (0..6 * 64).map(|_| normal()).collect();
    let mut x = Vec::with_capacity(256 * 64);
    for _ in 0..256 {
        let z: Vec<f32> = (0..6).map(|_| normal()).collect();
        for j in 0..64 {
            let v: f32 = (0..6).map(|i| z[i] * mix[i * 64 + j]).sum();
            x.push(v + 0.05 * normal());
        }
    }
    let t = whittle_runtime::HostTensor::new(vec![256, 64], whittle_runtime::TensorData::F32(x))
        .unwrap();
    whittle_runtime::write_npz(path, &[("x".to_string(), t)], Default::default()).unwrap();
}

#[test]
fn ort_nbits_gptq_rounds_matmulnbits_codes_with_the_same_scales() {
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("calib.npz");
    correlated_inputs(&calib);
    let src = fixture("external_mlp.onnx");
    for (dtype, symmetric) in [("int4", "--symmetric"), ("uint4", "--asymmetric")] {
        let run = |extra: &[&str]| {
            let mut args = vec![
                "--mode",
                "weight",
                "--format",
                "ort-nbits",
                "--dtype",
                dtype,
                symmetric,
                "--block-size",
                "16",
                "--calib",
                calib.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            quantize(&src, &args)
        };
        let (rtn, gptq) = (run(&[]), run(&["--gptq"]));
        let forms = gptq.forms();
        assert_eq!(forms.len(), 3, "{forms:?}");
        assert!(
            forms.iter().all(
                |f| f.starts_with("MatMulNBits 4-bit block 16") && f.ends_with("GPTQ rounding")
            ),
            "{forms:?}"
        );
        // Measured when this test was written (int4): 16.6 → 22.9 dB.
        let (before, after) = (snr(&rtn), snr(&gptq));
        assert!(
            after > before + 3.0,
            "{dtype}: SNR {before:.1} → {after:.1} dB"
        );
        // Scales and zero points are those of rounding to nearest: only the codes differ.
        let initializers = |q: &Quantized| {
            let m = whittle_ir::Model::load(&q.path).unwrap();
            m.graph
                .initializers
                .iter()
                .map(|t| (t.name().to_string(), t.le_bytes().unwrap().to_vec()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (a, b) = (initializers(&rtn), initializers(&gptq));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, bytes) in &a {
            if name.contains("scales") || name.contains("zero_points") {
                assert_eq!(bytes, &b[name], "{dtype}: {name}");
            } else if name.contains("_Q4") {
                assert_ne!(bytes, &b[name], "{dtype}: {name} kept every code");
            }
        }
        // onnxruntime runs the MatMulNBits model and agrees it is close to float.
        let shapes = ["--shape", "batch=3", "--samples", "4"];
        let outputs = agreement(&src, &gptq.path, &shapes);
        assert!(!outputs.is_empty());
        assert!(
            outputs.iter().all(|o| f(&o["snr_db"]) > 10.0),
            "{outputs:?}"
        );
    }
}
