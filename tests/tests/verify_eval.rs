//! `whittle eval` on the digits fixture gives exactly what Python onnxruntime gives
//! (`tests/python/ort_eval.py`): the same accuracy and the same argmax on every one of the
//! 450 samples, with either backend. The per-class summary is checked against counts made
//! here from those predictions.
use whittle_tests::{fixture, python_json, whittle};

fn as_usizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn eval_matches_python_onnxruntime_on_every_sample() {
    let model = fixture("digits_cnn.onnx");
    let data = fixture("digits_test.npz");
    let py = python_json("ort_eval.py", &[model.as_os_str(), data.as_os_str()])
        .expect("ort_eval.py runs");
    let expected = as_usizes(&py["predictions"]);
    assert_eq!(expected.len(), 450);
    let labels: Vec<usize> = {
        let mut arrays = whittle_runtime::read_npz(&data).unwrap();
        let i = arrays.iter().position(|(k, _)| k == "label").unwrap();
        arrays
            .remove(i)
            .1
            .to_f64_vec()
            .iter()
            .map(|&x| x as usize)
            .collect()
    };
    for runtime in ["tract", "onnxruntime"] {
        let out = whittle!(
            "eval",
            &model,
            "--data",
            &data,
            "--runtime",
            runtime,
            "--json"
        );
        assert!(
            out.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "no progress bar when stderr is not a terminal"
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = &json["report"];
        assert_eq!(
            r["backend"],
            if runtime == "tract" { "tract" } else { "ort" }
        );
        assert_eq!(
            as_usizes(&r["predictions"]),
            expected,
            "{runtime}: per-sample argmax"
        );
        let (a, b) = (
            r["accuracy"].as_f64().unwrap(),
            py["accuracy"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-12, "{runtime}: {a} vs {b}");
        assert_eq!(r["correct"], py["correct"], "{runtime}");
        // per class: count, correct and recall from the predictions
        for class in r["classes"].as_array().unwrap() {
            let k = class["class"].as_u64().unwrap() as usize;
            let count = labels.iter().filter(|&&l| l == k).count();
            let correct = labels
                .iter()
                .zip(&expected)
                .filter(|&(&l, &p)| l == k && p == k)
                .count();
            assert_eq!(
                (class["count"].as_u64(), class["correct"].as_u64()),
                (Some(count as u64), Some(correct as u64))
            );
            // (serde_json's default float parsing may be off in the last bit)
            let recall = class["recall"].as_f64().unwrap();
            assert!(
                (recall - correct as f64 / count as f64).abs() < 1e-12,
                "{class}"
            );
        }
        let confused: usize = r["most_confused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_u64().unwrap() as usize)
            .sum();
        assert!(confused <= 450 - py["correct"].as_u64().unwrap() as usize);
    }
}

#[test]
fn eval_prints_accuracy_and_names_missing_keys() {
    let out = whittle!(
        "eval",
        fixture("digits_cnn.onnx"),
        "--data",
        fixture("digits_test.npz"),
        "--top-k",
        "3"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("accuracy  0.9822 (442 / 450)"), "{text}");
    assert!(text.contains("top-3"), "{text}");
    assert!(
        text.contains("class  count  correct  recall  predicted"),
        "{text}"
    );
    assert!(
        text.contains("most confused (label → predicted): 8 → 1 ×2"),
        "{text}"
    );
    let bad = whittle!(
        "eval",
        fixture("digits_cnn.onnx"),
        "--data",
        fixture("digits_test.npz"),
        "--label-key",
        "labels"
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("key \"labels\" not found (keys: input, label)"),
        "{stderr}"
    );
}
