//! tract and onnxruntime on the committed tiny models: agreement, names, dtypes, errors.

mod common;

use common::{data, facts, spec};
use whittle_runtime::metrics::{Tolerance, within_bounds};
use whittle_runtime::npz::{read_npz, take_key};
use whittle_runtime::{
    Backend, BackendError, DType, Dim, HostTensor, InputSpec, LoadedModel, NamedTensor,
    TractBackend, resolve_shapes, seeded_inputs,
};

const SEED: u64 = 1234;

fn gemm_specs() -> Vec<InputSpec> {
    vec![spec(
        "x",
        DType::F32,
        vec![Dim::Symbolic("batch".into()), Dim::Fixed(4)],
    )]
}

fn seeded(specs: &[InputSpec], overrides: &[&str], seed: u64) -> Vec<NamedTensor> {
    let overrides: Vec<_> = overrides
        .iter()
        .map(|o| whittle_runtime::parse_shape_override(o).unwrap())
        .collect();
    let shapes = resolve_shapes(specs, &overrides).unwrap();
    seeded_inputs(specs, &shapes, seed).unwrap()
}

fn load(backend: &dyn Backend, model: &str, inputs: &[NamedTensor]) -> Box<dyn LoadedModel> {
    backend
        .load(&data(model), &facts(inputs))
        .unwrap_or_else(|e| panic!("{}: {e}", backend.name()))
}

#[test]
fn tract_matches_stored_onnxruntime_output() {
    // gemm_relu_io.npz holds an input and the output Python onnxruntime gave for it.
    let path = data("gemm_relu_io.npz");
    let mut io = read_npz(&path).unwrap();
    let x = take_key(&mut io, &path, "x").unwrap();
    let y = take_key(&mut io, &path, "y").unwrap();
    let inputs = vec![("x".to_string(), x)];
    let model = load(&TractBackend::new(), "gemm_relu.onnx", &inputs);
    assert_eq!(model.input_names(), ["x"]);
    assert_eq!(model.output_names(), ["y"]);
    let out = model.run(&inputs).unwrap();
    let tol = Tolerance {
        atol: 1e-5,
        rtol: 0.0,
        min_cosine: 0.0,
    };
    let report = within_bounds("y", &y, &out[0].1, &tol).unwrap();
    assert!(report.pass, "{report:?}");
}

#[test]
fn tract_reports_node_and_op_of_an_unsupported_model() {
    let err = TractBackend::new()
        .load(&data("unsupported.onnx"), &[])
        .err()
        .expect("tract cannot know NotARealOp");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.contains("unsupported.onnx"), "{text}");
    assert!(text.contains("mystery_node"), "{text}");
    assert!(text.contains("NotARealOp"), "{text}");
    let BackendError::Load { node, op, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(node.as_deref(), Some("mystery_node"));
    assert_eq!(op.as_deref(), Some("NotARealOp"));
}

#[test]
fn run_checks_input_names() {
    let inputs = seeded(&gemm_specs(), &["batch=1"], SEED);
    let model = load(&TractBackend::new(), "gemm_relu.onnx", &inputs);
    let text = model.run(&[]).unwrap_err().to_string();
    assert!(
        text.contains("gemm_relu.onnx: input \"x\" was not given (given: )"),
        "{text}"
    );
    let mut extra = inputs.clone();
    extra.push(("bogus".into(), HostTensor::scalar(1f32)));
    let text = model.run(&extra).unwrap_err().to_string();
    assert!(
        text.contains("\"bogus\" is not an input of the model (inputs: x)"),
        "{text}"
    );
    let text = TractBackend::new()
        .load(&data("gemm_relu.onnx"), &facts(&extra))
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("\"bogus\" is not an input"), "{text}");
}

#[test]
fn wrong_shapes_and_dtypes_are_errors_not_panics() {
    let inputs = seeded(&gemm_specs(), &["batch=2"], SEED);
    let model = load(&TractBackend::new(), "gemm_relu.onnx", &inputs);
    let cases = [
        HostTensor::from_vec(vec![3, 4], vec![0f32; 12]).unwrap(),
        HostTensor::from_vec(vec![2, 5], vec![0f32; 10]).unwrap(),
        HostTensor::from_vec(vec![2, 4], vec![0i64; 8]).unwrap(),
        HostTensor::scalar(1f32),
    ];
    for bad in cases {
        let text = model
            .run(&[("x".into(), bad.clone())])
            .expect_err("a mismatched input must be refused")
            .to_string();
        eprintln!("{text}");
        assert!(text.starts_with("tract: running "), "{text}");
        assert!(text.contains("input \"x\" is "), "{text}");
        assert!(text.contains("loaded for f32 [2, 4]"), "{text}");
    }
}

#[test]
fn tract_without_facts_keeps_the_symbolic_batch() {
    let model = TractBackend::new()
        .load(&data("gemm_relu.onnx"), &[])
        .unwrap();
    for batch in ["batch=1", "batch=3"] {
        let inputs = seeded(&gemm_specs(), &[batch], SEED);
        let rows = inputs[0].1.shape()[0];
        assert_eq!(model.run(&inputs).unwrap()[0].1.shape(), &[rows, 3]);
    }
}

#[test]
fn run_many_is_ordered_and_thread_count_independent() {
    let samples: Vec<Vec<NamedTensor>> = (0..12)
        .map(|i| seeded(&gemm_specs(), &["batch=1"], i))
        .collect();
    let model = load(&TractBackend::new(), "gemm_relu.onnx", &samples[0]);
    let one = whittle_runtime::run_many(model.as_ref(), &samples, 1).unwrap();
    let four = whittle_runtime::run_many(model.as_ref(), &samples, 4).unwrap();
    assert_eq!(one, four);
    for (sample, outputs) in samples.iter().zip(&one) {
        assert_eq!(&model.run(sample).unwrap(), outputs);
    }
    // a bad sample is reported by index
    let mut bad = samples.clone();
    bad[5] = vec![];
    let text = whittle_runtime::run_many(model.as_ref(), &bad, 3)
        .unwrap_err()
        .to_string();
    assert!(text.starts_with("sample 5: "), "{text}");
}

#[test]
fn bench_reports_ordered_latencies() {
    let inputs = seeded(&gemm_specs(), &["batch=2"], SEED);
    let model = load(&TractBackend::new(), "gemm_relu.onnx", &inputs);
    let config = whittle_runtime::bench::BenchConfig { warmup: 1, runs: 7 };
    let r = whittle_runtime::bench::bench(model.as_ref(), &inputs, &config).unwrap();
    assert_eq!((r.backend, r.runs), ("tract", 7));
    assert!(r.min_ms <= r.median_ms && r.median_ms <= r.p90_ms && r.p90_ms <= r.max_ms);
    assert!(r.peak_rss_bytes.is_some_and(|b| b > 0));
}

#[cfg(feature = "ort")]
mod with_ort {
    use super::*;
    use common::ort_or_skip;
    use whittle_runtime::OrtBackend;
    use whittle_runtime::metrics::compare_outputs;

    /// Runs `model` in both backends on the same inputs; returns (tract, ort) outputs.
    fn both(
        ort: &OrtBackend,
        model: &str,
        inputs: &[NamedTensor],
    ) -> (Vec<NamedTensor>, Vec<NamedTensor>) {
        let t = load(&TractBackend::new(), model, inputs);
        let o = load(ort, model, inputs);
        assert_eq!(t.input_names(), o.input_names(), "{model}");
        assert_eq!(t.output_names(), o.output_names(), "{model}");
        (t.run(inputs).unwrap(), o.run(inputs).unwrap())
    }

    fn assert_close(model: &str, t: &[NamedTensor], o: &[NamedTensor], atol: f64) {
        for ((name, tt), (_, ot)) in t.iter().zip(o) {
            assert_eq!(tt.dtype(), ot.dtype(), "{model}: {name}");
            assert_eq!(tt.shape(), ot.shape(), "{model}: {name}");
        }
        for (name, m) in compare_outputs(o, t).unwrap() {
            assert!(m.max_abs <= atol, "{model}: {name}: {m:?}");
        }
    }

    #[test]
    fn gemm_relu_symbolic_batch_agrees() {
        let Some(ort) = ort_or_skip("gemm_relu_symbolic_batch_agrees") else {
            return;
        };
        let inputs = seeded(&gemm_specs(), &["batch=3"], SEED);
        let (t, o) = both(&ort, "gemm_relu.onnx", &inputs);
        assert_eq!(t[0].1.shape(), &[3, 3]);
        // informative: most outputs survive the Relu with this seed
        let positive = t[0].1.to_f32_vec().iter().filter(|&&v| v > 0.0).count();
        assert!(positive >= 5, "{positive} of 9 outputs positive");
        assert_close("gemm_relu", &t, &o, 1e-5);
    }

    #[test]
    fn pooled_sessions_run_side_by_side_with_the_same_outputs() {
        let Some(single) = ort_or_skip("pooled_sessions_run_side_by_side") else {
            return;
        };
        let pooled = OrtBackend::new(&whittle_runtime::OrtOptions {
            library: Some(single.library_path().to_path_buf()),
            intra_threads: 1,
            sessions: 3,
        })
        .unwrap();
        let samples: Vec<Vec<NamedTensor>> = (0..12)
            .map(|k| seeded(&gemm_specs(), &["batch=2"], SEED + k))
            .collect();
        let one = load(&single, "gemm_relu.onnx", &samples[0]);
        let many = load(&pooled, "gemm_relu.onnx", &samples[0]);
        let want: Vec<_> = samples.iter().map(|s| one.run(s).unwrap()).collect();
        // Four threads on three sessions: some runs find every session busy and wait.
        let got = whittle_runtime::parallel::run_many(many.as_ref(), &samples, 4).unwrap();
        for (k, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w[0].1.shape(), g[0].1.shape(), "sample {k}");
            assert_eq!(w[0].1.to_f32_vec(), g[0].1.to_f32_vec(), "sample {k}");
        }
    }

    #[test]
    fn f16_model_agrees() {
        let Some(ort) = ort_or_skip("f16_model_agrees") else {
            return;
        };
        let specs = [spec("x", DType::F16, vec![Dim::Fixed(1), Dim::Fixed(8)])];
        let inputs = seeded(&specs, &[], SEED);
        let (t, o) = both(&ort, "f16_matmul.onnx", &inputs);
        assert_eq!(t[0].1.dtype(), DType::F16);
        // tract computes in f32 after f16_to_f32 and rounds once at the end; onnxruntime
        // rounds after MatMul and after Add: they may differ by an f16 rounding step
        // (2^-11 relative); these values stay below 4, where one step is ≤ 2^-9.
        assert_close("f16_matmul", &t, &o, 1.0 / 512.0);
    }

    #[test]
    fn int64_model_agrees_exactly() {
        let Some(ort) = ort_or_skip("int64_model_agrees_exactly") else {
            return;
        };
        let specs = [spec(
            "ids",
            DType::I64,
            vec![Dim::Fixed(2), Dim::Symbolic("seq".into())],
        )];
        let inputs = seeded(&specs, &["seq=5"], SEED);
        let (t, o) = both(&ort, "int64_ops.onnx", &inputs);
        assert_eq!(t, o);
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["y", "s"]);
        // y = 3·ids + 7, s = Σ_row y
        let ids = inputs[0].1.as_slice::<i64>().unwrap();
        let y: Vec<i64> = ids.iter().map(|v| 3 * v + 7).collect();
        assert_eq!(t[0].1.as_slice::<i64>().unwrap(), &y[..]);
        let s = [y[..5].iter().sum::<i64>(), y[5..].iter().sum()];
        assert_eq!(t[1].1.as_slice::<i64>().unwrap(), &s);
    }

    #[test]
    fn dtypes_round_trip_through_both() {
        let Some(ort) = ort_or_skip("dtypes_round_trip_through_both") else {
            return;
        };
        let specs = [
            spec("a_f64", DType::F64, vec![Dim::Fixed(2), Dim::Fixed(3)]),
            spec("b_i32", DType::I32, vec![Dim::Fixed(4)]),
            spec("c_u8", DType::U8, vec![Dim::Fixed(4)]),
            spec("d_i8", DType::I8, vec![Dim::Fixed(4)]),
            spec("e_bool", DType::Bool, vec![Dim::Fixed(3)]),
        ];
        let inputs = seeded(&specs, &[], SEED);
        let (t, o) = both(&ort, "dtypes.onnx", &inputs);
        assert_eq!(t, o);
        let dtypes: Vec<DType> = o.iter().map(|(_, x)| x.dtype()).collect();
        assert_eq!(
            dtypes,
            [DType::F64, DType::I32, DType::I8, DType::U8, DType::Bool]
        );
        let flags = inputs[4].1.as_slice::<bool>().unwrap();
        let negated: Vec<bool> = flags.iter().map(|b| !b).collect();
        assert_eq!(o[4].1.as_slice::<bool>().unwrap(), &negated[..]);
    }

    #[test]
    fn ort_wrong_input_is_an_error() {
        let Some(ort) = ort_or_skip("ort_wrong_input_is_an_error") else {
            return;
        };
        let model = ort.load(&data("gemm_relu.onnx"), &[]).unwrap();
        let bad = HostTensor::from_vec(vec![2, 4], vec![0i64; 8]).unwrap();
        let text = model.run(&[("x".into(), bad)]).unwrap_err().to_string();
        eprintln!("{text}");
        assert!(text.starts_with("ort: running "), "{text}");
        let bad = HostTensor::from_vec(vec![2, 5], vec![0f32; 10]).unwrap();
        assert!(model.run(&[("x".into(), bad)]).is_err());
    }

    #[test]
    fn ort_load_failure_is_an_error() {
        let Some(ort) = ort_or_skip("ort_load_failure_is_an_error") else {
            return;
        };
        let text = ort
            .load(&data("unsupported.onnx"), &[])
            .err()
            .expect("onnxruntime cannot know NotARealOp")
            .to_string();
        eprintln!("{text}");
        assert!(text.starts_with("ort: cannot load "), "{text}");
        assert!(text.contains("NotARealOp"), "{text}");
    }
}
