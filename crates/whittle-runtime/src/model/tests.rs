//! The glue on the repository's fixtures (tract only; onnxruntime is covered end to end in
//! `tests/tests/verify_*.rs`). Expected numbers are derived in the comments.

use std::path::PathBuf;

use whittle_ir::Model;

use super::*;
use crate::inputs::{Dim, InputSpec, ShapeOverride};
use crate::stats::StatsConfig;
use crate::tensor::{DType, HostTensor};
use crate::{TractBackend, read_npz};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn spec(name: &str, dims: Vec<Dim>) -> InputSpec {
    InputSpec {
        name: name.into(),
        dtype: DType::F32,
        dims,
    }
}

fn zeros(shape: &[usize]) -> HostTensor {
    HostTensor::from_vec(shape.to_vec(), vec![0f32; shape.iter().product()]).unwrap()
}

fn ranges(d: &Dataset) -> Vec<std::ops::Range<usize>> {
    d.sample_ranges().to_vec()
}

#[test]
fn digits_input_spec_keeps_the_symbol() {
    let m = Model::load(&fixture("digits_cnn.onnx")).unwrap();
    let specs = input_specs(&m).unwrap();
    assert_eq!(
        specs,
        vec![spec(
            "input",
            vec![
                Dim::Symbolic("N".into()),
                Dim::Fixed(1),
                Dim::Fixed(8),
                Dim::Fixed(8)
            ]
        )]
    );
}

#[test]
fn batching_rule() {
    let opts = BatchOptions { max_batch: 32 };
    let sym = [spec("x", vec![Dim::Symbolic("N".into()), Dim::Fixed(3)])];
    let arrays = vec![
        ("x".to_string(), zeros(&[70, 3])),
        ("label".into(), zeros(&[70])),
    ];
    // symbolic, unbound: runs of 32, the last takes the remaining 70 − 64 = 6
    let d = Dataset::from_arrays(&sym, &arrays, &[], &opts).unwrap();
    assert_eq!(ranges(&d), vec![0..32, 32..64, 64..70]);
    assert_eq!(d.batches()[2][0].1.shape(), &[6, 3]);
    assert_eq!(
        d.batches()[0].len(),
        1,
        "keys that are not inputs are not fed"
    );
    // the user fixes N = 1 (symbol) or 7 (whole shape): runs of that size
    let one = [ShapeOverride {
        name: "N".into(),
        dims: vec![1],
    }];
    assert_eq!(
        Dataset::from_arrays(&sym, &arrays, &one, &opts)
            .unwrap()
            .batches()
            .len(),
        70
    );
    let seven = [ShapeOverride {
        name: "x".into(),
        dims: vec![7, 3],
    }];
    assert_eq!(
        Dataset::from_arrays(&sym, &arrays, &seven, &opts)
            .unwrap()
            .batches()
            .len(),
        10
    );
    // fixed batch 4: 70 is not a multiple
    let fixed = [spec("x", vec![Dim::Fixed(4), Dim::Fixed(3)])];
    let e = Dataset::from_arrays(&fixed, &arrays, &[], &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("70 samples do not split into runs of 4"), "{e}");
    // a wrong fixed dim past the batch axis is named
    let e = Dataset::from_arrays(
        &[spec("x", vec![Dim::Unknown, Dim::Fixed(5)])],
        &arrays,
        &[],
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("array \"x\" has 3 along axis 1 but input \"x\" dim 1 is 5"),
        "{e}"
    );
    // one more axis than the input: a stack of unbatched samples, one per run
    let unbatched = [spec("x", vec![Dim::Fixed(3)])];
    let d = Dataset::from_arrays(&unbatched, &arrays, &[], &opts).unwrap();
    assert_eq!((d.batches().len(), d.layout()), (70, SampleLayout::Stacked));
    assert_eq!(d.batches()[5][0].1.shape(), &[3]);
    // missing input, disagreeing sample counts
    let two = [sym[0].clone(), spec("y", vec![Dim::Unknown])];
    let e = Dataset::from_arrays(&two, &arrays, &[], &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no array for input \"y\" (arrays: x, label)"),
        "{e}"
    );
    let mut more = arrays.clone();
    more.push(("y".into(), zeros(&[69])));
    let e = Dataset::from_arrays(&two, &more, &[], &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"y\" holds 69 samples but \"x\" holds 70"),
        "{e}"
    );
}

#[test]
fn tract_gets_the_original_file_when_lowering_changes_nothing() {
    let path = fixture("digits_cnn.onnx");
    let m = Model::load(&path).unwrap();
    let p = prepare_file(&m, Some(&path), "tract").unwrap();
    assert!(!p.is_copy() && p.notes.is_empty(), "{p:?}");
    // a changed model (extra output) is written to a temporary copy, deleted on drop
    let tapped = with_outputs(&m, &["relu1_out".into()]).unwrap();
    let p = prepare_file(&tapped, None, "ort").unwrap();
    let copy = p.path().to_path_buf();
    assert!(p.is_copy() && copy.exists());
    let reread = Model::load(&copy).unwrap();
    assert_eq!(
        reread.graph.output_names().collect::<Vec<_>>(),
        ["logits", "relu1_out"]
    );
    drop(p);
    assert!(!copy.exists());
}

#[test]
fn runs_are_identical_for_any_thread_count_and_join_in_order() {
    let path = fixture("digits_cnn.onnx");
    let m = Model::load(&path).unwrap();
    let specs = input_specs(&m).unwrap();
    let arrays = read_npz(&fixture("digits_calib.npz")).unwrap();
    let opts = BatchOptions { max_batch: 10 };
    let data = Dataset::from_arrays(&specs, &arrays, &[], &opts).unwrap();
    assert_eq!(data.batches().len(), 7); // 64 = 6·10 + 4
    let runner = Runner::for_dataset(&m, Some(&path), &TractBackend::new(), &data).unwrap();
    let one = data.join(runner.run_all(&data, 1, None).unwrap()).unwrap();
    let two = data.join(runner.run_all(&data, 2, None).unwrap()).unwrap();
    assert_eq!(one, two);
    assert_eq!(one[0].1.shape(), &[64, 10]);
    // the rows of the joined output are the rows of one whole-set run
    let whole = Dataset::single(
        arrays
            .iter()
            .filter(|(k, _)| k == "input")
            .cloned()
            .collect(),
    );
    let r = Runner::for_dataset(&m, Some(&path), &TractBackend::new(), &whole).unwrap();
    assert_eq!(r.run(&whole.batches()[0]).unwrap()[0].1, one[0].1);
}

#[test]
fn intermediate_values_and_statistics() {
    let m = Model::load(&fixture("digits_cnn.onnx")).unwrap();
    let specs = input_specs(&m).unwrap();
    let data = Dataset::from_npz(
        &specs,
        &fixture("digits_calib.npz"),
        &[],
        &BatchOptions::default(),
    )
    .unwrap();
    let relus = select_values(&m, &Taps::OpTypes(vec!["Relu".into()])).unwrap();
    assert_eq!(relus, ["relu1_out", "relu2_out"]);
    let all = select_values(&m, &Taps::AllNodeOutputs).unwrap();
    assert_eq!(all.len(), 12); // one output per node; Dropout's mask is not requested
    let e = select_values(&m, &Taps::Values(vec!["nope".into()])).unwrap_err();
    assert!(
        e.to_string()
            .contains("no value \"nope\" in the main graph"),
        "{e}"
    );

    let backend = TractBackend::new();
    let t = collect_tensors(&m, &Taps::Values(relus.clone()), &data, &backend, 2, None).unwrap();
    assert_eq!(t[0].0, "relu1_out");
    assert_eq!(t[0].1.shape(), &[64, 16, 8, 8]);
    let config = StatsConfig {
        bins: 64,
        channel_axis: Some(1),
    };
    let stats = collect_stats(&m, &Taps::Values(relus), &data, &backend, 2, &config, None).unwrap();
    // the statistics are those of the collected tensor
    let values = t[0].1.to_f64_vec();
    let s = stats[0].summary();
    assert_eq!(s.count, values.len() as u64);
    assert_eq!(s.min, values.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(
        s.max,
        values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    assert!(s.min >= 0.0, "a Relu output");
    assert_eq!(stats[0].channels().len(), 16);
    // channel 3 of relu1_out: elements (n, 3, h, w) → flat index n·1024 + 3·64 + h·8 + w
    let ch3_max = (0..64)
        .flat_map(|n| (0..64).map(move |k| n * 1024 + 192 + k))
        .map(|i| values[i])
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(stats[0].channels()[3].max, ch3_max);
}

#[test]
fn tract_failures_name_the_op_and_suggest_onnxruntime() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/unsupported.onnx");
    let m = Model::load(&path).unwrap();
    let e = Runner::load(&m, Some(&path), &TractBackend::new(), &[]).unwrap_err();
    assert!(matches!(e, ModelError::TractCannotRun { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("op NotARealOp in node \"mystery_node\""),
        "{text}"
    );
    assert!(text.contains("--runtime onnxruntime"), "{text}");
}
