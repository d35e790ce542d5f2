//! tract and onnxruntime agree: every fixture and every corpus model (fetched by
//! `scripts/fetch-corpus.sh`) is run through `whittle run` with onnxruntime, and then with
//! tract (after lowering) on the very same inputs, and the outputs are compared.
//!
//! - Inputs: onnx backend-test models are fed their own `test_data_set_0` inputs (valid by
//!   construction: indices in range, shapes that Expand/Split accept); every other model
//!   gets `--seed 0` with the shapes in [`shapes_for`], plus a few values a seed cannot
//!   guess ([`crafted`]: silero's sample rate, MiniLM's mask and token types).
//! - onnxruntime must run every model Python onnxruntime runs: every model `whittle run
//!   --runtime onnxruntime` fails on is tried in Python onnxruntime on the same inputs
//!   (`ort_can_run.py`, one process for all); if Python runs it the test fails. Models both
//!   refuse must be exactly [`KNOWN_ORT_FAILURES`]; models whittle cannot feed at all
//!   (string inputs) exactly [`KNOWN_UNFEEDABLE`].
//! - tract's gaps do not fail the test: they are listed with the reason in
//!   `target/tract-coverage.txt`. Where tract runs, every output must agree: integer and bool
//!   outputs exactly, float outputs within `1e-5 · max(1, max |ref|)` (f16 outputs: `1e-3 ·`,
//!   one f16 rounding step, since tract computes f16 models in f32). The one exception,
//!   [`KNOWN_DISAGREEMENTS`], is a malformed model the two runtimes read differently.
use std::path::{Path, PathBuf};
use whittle_ir::{Model, Tensor};
use whittle_proto::{Message, TensorProto};
use whittle_runtime::model::input_specs;
use whittle_runtime::npy::from_le_bytes;
use whittle_runtime::{DType, HostTensor, NamedTensor, NpzCompression, parse_shape_override};
use whittle_runtime::{read_npz, resolve_shapes, seeded_inputs, write_npz};
use whittle_tests::{corpus_models, fixture_models, python_json, repo_root, run_bin};

/// Opset < 7 backend-test models (onnxruntime has no kernels for those opsets) and the
/// training-only Gradient op: Python onnxruntime refuses them too.
const KNOWN_ORT_FAILURES: &[&str] = &[
    "fixtures/dtype_zoo.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool1d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool1d_stride/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool2d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool2d_stride/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool3d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool3d_stride/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_AvgPool3d_stride1_pad0_gpu_input/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_BatchNorm1d_3d_input_eval/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_BatchNorm2d_eval/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_BatchNorm2d_momentum_eval/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_BatchNorm3d_eval/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_BatchNorm3d_momentum_eval/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_GLU/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_GLU_dim/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_Linear/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_1d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_1d_multiparam/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_2d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_2d_multiparam/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_3d/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PReLU_3d_multiparam/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_PoissonNLLLLoss_no_reduce/model.onnx",
    "corpus/onnx-backend-test/pytorch-converted/test_Softsign/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_add_broadcast/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_add_size1_broadcast/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_add_size1_right_broadcast/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_add_size1_singleton_broadcast/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_addconstant/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_addmm/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_basic/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_mm/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_non_float_params/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_params/model.onnx",
    "corpus/onnx-backend-test/pytorch-operator/test_operator_pow/model.onnx",
    "corpus/onnx-backend-test/simple/test_gradient_of_add/model.onnx",
    "corpus/onnx-backend-test/simple/test_gradient_of_add_and_mul/model.onnx",
];

/// logreg_iris declares 2 input features but its LinearClassifier holds 4 coefficients per
/// class: each runtime reads the mismatch its own way, so the labels differ.
const KNOWN_DISAGREEMENTS: &[&str] = &["corpus/onnxruntime-datasets/logreg_iris.onnx"];

/// whittle-runtime has no string tensors, so these cannot be fed.
const KNOWN_UNFEEDABLE: &[&str] = &[
    "corpus/onnx-backend-test/simple/test_strnorm_model_monday_casesensintive_lower/model.onnx",
    "corpus/onnx-backend-test/simple/test_strnorm_model_monday_casesensintive_nochangecase/model.onnx",
    "corpus/onnx-backend-test/simple/test_strnorm_model_monday_casesensintive_upper/model.onnx",
    "corpus/onnx-backend-test/simple/test_strnorm_model_monday_empty_output/model.onnx",
    "corpus/onnx-backend-test/simple/test_strnorm_model_monday_insensintive_upper_twodim/model.onnx",
    "corpus/onnx-backend-test/simple/test_strnorm_model_nostopwords_nochangecase/model.onnx",
];

/// `--shape` values for models with symbolic or unknown input dims.
fn shapes_for(rel: &str) -> &'static [&'static str] {
    let table: &[(&str, &[&str])] = &[
        ("fixtures/digits_cnn", &["N=2"]),
        ("fixtures/external_mlp", &["batch=2"]),
        ("fixtures/attention", &["batch=2", "seq=5"]),
        ("fixtures/fp16_mlp", &["batch=2"]),
        ("fixtures/multi_domain", &["batch=2"]),
        ("magika/", &["unk__214=1"]),
        ("nudenet/", &["images=1x3x320x320"]),
        ("det_infer", &["x=1x3x64x64"]),
        ("rec_infer", &["x=1x3x48x64"]),
        ("cls_infer", &["x=1x3x48x192"]),
        ("silero_vad_16k_sequence", &["sequence_length=1"]),
        ("silero_vad_openvino", &[]),
        ("silero-vad/", &["input=1x512", "state=2x1x128"]),
        ("minilm", &["batch=1", "sequence=8"]),
    ];
    table
        .iter()
        .find(|(k, _)| rel.contains(k))
        .map_or(&[], |(_, v)| v)
}

/// Input values a seed cannot guess, by input name.
fn crafted(rel: &str, name: &str, seeded: &HostTensor) -> Option<HostTensor> {
    let like = |v: i64| HostTensor::from_vec(seeded.shape().to_vec(), vec![v; seeded.len()]).ok();
    match (rel.contains("silero"), rel.contains("minilm"), name) {
        (true, _, "sr") => Some(HostTensor::scalar(16000i64)),
        (_, true, "attention_mask") => like(1),
        (_, true, "token_type_ids") => like(0),
        _ => None,
    }
}

/// The inputs to feed `path`, written to `out`; Err = whittle cannot feed it.
fn inputs_for(path: &Path, rel: &str, out: &Path) -> Result<(), String> {
    let model = Model::load(path).map_err(|e| e.to_string())?;
    let specs = input_specs(&model).map_err(|e| e.to_string())?;
    let stored = backend_test_inputs(path, &specs);
    let inputs: Vec<NamedTensor> = match stored {
        Some(inputs) => inputs,
        None => {
            let overrides: Vec<_> = shapes_for(rel)
                .iter()
                .map(|s| parse_shape_override(s).unwrap())
                .collect();
            let shapes = resolve_shapes(&specs, &overrides).map_err(|e| format!("{rel}: {e}"))?;
            let seeded = seeded_inputs(&specs, &shapes, 0).map_err(|e| e.to_string())?;
            seeded
                .into_iter()
                .map(|(n, t)| {
                    let t = crafted(rel, &n, &t).unwrap_or(t);
                    (n, t)
                })
                .collect()
        }
    };
    write_npz(out, &inputs, NpzCompression::Stored).map_err(|e| e.to_string())
}

/// `test_data_set_0/input_K.pb` next to a backend-test model, by position.
fn backend_test_inputs(
    path: &Path,
    specs: &[whittle_runtime::InputSpec],
) -> Option<Vec<NamedTensor>> {
    let set = path.parent()?.join("test_data_set_0");
    let mut out = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let bytes = std::fs::read(set.join(format!("input_{k}.pb"))).ok()?;
        let tensor = Tensor::from_proto(TensorProto::decode(&bytes[..]).ok()?);
        let dtype = DType::from_onnx_code(tensor.dtype().0)?;
        let shape = tensor
            .dims()
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<_>>>()?;
        let t = from_le_bytes(dtype, shape, &tensor.le_bytes().ok()?).ok()?;
        out.push((spec.name.clone(), t));
    }
    Some(out)
}

fn whittle_run(model: &Path, inputs: &Path, runtime: &str, out: &Path) -> Result<(), String> {
    let args = [
        model.as_os_str(),
        "--inputs".as_ref(),
        inputs.as_os_str(),
        "--runtime".as_ref(),
        runtime.as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--threads".as_ref(),
        "1".as_ref(),
    ];
    let mut all = vec![std::ffi::OsStr::new("run")];
    all.extend(args);
    let o = run_bin(env!("CARGO_BIN_EXE_whittle-e2e"), &all);
    if o.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("note:")).collect();
    Err(lines.join(" ").trim().to_string())
}

/// The largest scaled error over the outputs (see the module docs), or why they disagree.
fn agreement(reference: &[NamedTensor], candidate: &[NamedTensor]) -> Result<f64, String> {
    let mut worst = 0f64;
    for (name, r) in reference {
        let (_, c) = candidate
            .iter()
            .find(|(n, _)| n == name)
            .ok_or(format!("tract has no output {name}"))?;
        if r.shape() != c.shape() || r.dtype() != c.dtype() {
            return Err(format!(
                "{name}: ort {} {:?} vs tract {} {:?}",
                r.dtype(),
                r.shape(),
                c.dtype(),
                c.shape()
            ));
        }
        let (rv, cv) = (r.to_f64_vec(), c.to_f64_vec());
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        if !r.dtype().is_float() {
            let diff = rv.iter().zip(&cv).filter(|&(a, b)| !same(*a, *b)).count();
            if diff > 0 {
                return Err(format!(
                    "{name}: {diff} of {} integer values differ",
                    rv.len()
                ));
            }
            continue;
        }
        let scale = rv
            .iter()
            .filter(|x| x.is_finite())
            .fold(1f64, |m, x| m.max(x.abs()));
        let err = rv
            .iter()
            .zip(&cv)
            .map(|(a, b)| if same(*a, *b) { 0.0 } else { (a - b).abs() })
            .fold(0f64, f64::max)
            / scale;
        let bound = if r.dtype() == DType::F16 { 1e-3 } else { 1e-5 };
        if err.is_nan() || err > bound {
            return Err(format!("{name}: scaled error {err:.3e} > {bound:e}"));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// The short reason of a tract failure: op and node when named, else the first clause.
fn tract_reason(stderr: &str) -> String {
    if let Some(at) = stderr.find("tract cannot run this model") {
        let tail = &stderr[at..];
        let end = tail.find(';').unwrap_or(tail.len());
        let head: String = stderr.chars().take(160).collect();
        return format!("{} — {head}", &tail[..end]);
    }
    stderr.chars().take(220).collect()
}

enum Outcome {
    Unfeedable(String),
    /// whittle's onnxruntime failed (why, the inputs it was given).
    OrtFails(String, PathBuf),
    TractGap(String),
    Disagree(String),
    /// The largest scaled error.
    Agree(f64),
}

/// Runs model number `k` in both backends (files in `tmp` are numbered by `k`).
fn check(k: usize, path: &Path, root: &Path, tmp: &Path) -> Outcome {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let inputs = tmp.join(format!("inputs{k}.npz"));
    if let Err(e) = inputs_for(path, &rel, &inputs) {
        return Outcome::Unfeedable(e);
    }
    let (ort_out, tract_out) = (
        tmp.join(format!("ort{k}.npz")),
        tmp.join(format!("tract{k}.npz")),
    );
    if let Err(e) = whittle_run(path, &inputs, "onnxruntime", &ort_out) {
        return Outcome::OrtFails(e, inputs);
    }
    if let Err(e) = whittle_run(path, &inputs, "tract", &tract_out) {
        return Outcome::TractGap(tract_reason(&e));
    }
    match agreement(&read_npz(&ort_out).unwrap(), &read_npz(&tract_out).unwrap()) {
        Ok(err) => Outcome::Agree(err),
        Err(e) => Outcome::Disagree(e),
    }
}

#[test]
fn tract_and_onnxruntime_agree_on_fixtures_and_corpus() {
    let corpus = corpus_models();
    assert!(
        corpus.len() >= 100,
        "corpus/ has {} models: run `bash scripts/fetch-corpus.sh` (the test script does)",
        corpus.len()
    );
    let root = repo_root();
    let mut models = fixture_models();
    models.extend(corpus);
    let tmp = tempfile::tempdir().unwrap();
    // Two workers (the test machines have 2 cores); outcomes are put back in model order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = models.get(k) else { break };
                    let outcome = check(k, path, &root, tmp.path());
                    outcomes.lock().unwrap().push((k, outcome));
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|(k, _)| *k);
    let (mut compared, mut worst) = (0usize, (0f64, String::new()));
    let (mut tract_gaps, mut ort_fail, mut unfeedable, mut failures) =
        (vec![], vec![], vec![], vec![]);
    let mut disagree = vec![];
    for (k, outcome) in outcomes {
        let path = models[k].clone();
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        match outcome {
            Outcome::Unfeedable(e) => unfeedable.push((rel, e)),
            Outcome::OrtFails(e, inputs) => ort_fail.push((rel, e, path, inputs)),
            Outcome::TractGap(e) => tract_gaps.push((rel, e)),
            Outcome::Disagree(e) => disagree.push((rel, e)),
            Outcome::Agree(err) => {
                compared += 1;
                if err >= worst.0 {
                    worst = (err, rel);
                }
            }
        }
    }
    // One Python process tells which of whittle's onnxruntime failures Python runs.
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    for (_, _, model, inputs) in &ort_fail {
        args.extend([model.as_os_str(), inputs.as_os_str()]);
    }
    let python = if args.is_empty() {
        serde_json::json!({"results": {}})
    } else {
        python_json("ort_can_run.py", &args).expect("ort_can_run.py runs")
    };
    let ort_fail: Vec<(String, String)> = ort_fail
        .into_iter()
        .map(|(rel, e, model, _)| {
            let py = &python["results"][model.to_string_lossy().as_ref()];
            if py["ok"] == true {
                failures.push(format!(
                    "{rel}: whittle's onnxruntime fails where Python's runs: {e}"
                ));
            }
            let why = py["error"]
                .as_str()
                .unwrap_or("?")
                .chars()
                .take(160)
                .collect::<String>();
            (rel, format!("{e} | python: {why}"))
        })
        .collect();
    let list = |v: &[(String, String)]| {
        v.iter()
            .map(|(m, r)| format!("  {m}\t{r}\n"))
            .collect::<String>()
    };
    let report = format!(
        "{} models ({} fixtures + corpus); onnxruntime ran {}; tract ran {} of those within bounds; \
         largest scaled error {:.3e} ({})\n\ntract cannot run ({}):\n{}\nonnxruntime cannot run, Python \
         onnxruntime neither ({}):\n{}\nwhittle cannot feed ({}):\n{}\nknown disagreements ({}):\n{}",
        models.len(),
        fixture_models().len(),
        compared + tract_gaps.len() + disagree.len(),
        compared,
        worst.0,
        worst.1,
        tract_gaps.len(),
        list(&tract_gaps),
        ort_fail.len(),
        list(&ort_fail),
        unfeedable.len(),
        list(&unfeedable),
        disagree.len(),
        list(&disagree),
    );
    let _ = std::fs::write(root.join("target/tract-coverage.txt"), &report);
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let names = |v: &[(String, String)]| v.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&ort_fail),
        KNOWN_ORT_FAILURES,
        "models onnxruntime cannot run changed"
    );
    assert_eq!(
        names(&unfeedable),
        KNOWN_UNFEEDABLE,
        "models whittle cannot feed changed"
    );
    assert_eq!(
        names(&disagree),
        KNOWN_DISAGREEMENTS,
        "tract and onnxruntime disagree"
    );
}
