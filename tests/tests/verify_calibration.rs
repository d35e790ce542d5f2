//! Calibration statistics (`whittle_runtime::model::collect_stats`) of intermediate tensors
//! of digits_cnn over digits_calib.npz agree with the same statistics computed in Python
//! from onnxruntime's values of those tensors (`tests/python/ort_intermediates.py`), on both
//! backends: min, max and mean |x| overall and per channel (axis 1).
//!
//! Bounds: each number within `tol · max(1, max |x| of that tensor)`, tol = 1e-6 for
//! whittle's onnxruntime (the same library as Python's; only the summation order of the
//! means differs) and 1e-5 for tract (another implementation of the same float maths).
use whittle_ir::Model;
use whittle_runtime::StatsConfig;
use whittle_runtime::model::{
    BackendKind, BatchOptions, Dataset, Taps, collect_stats, input_specs, make_backend,
};
use whittle_tests::{fixture, python_json};

const NAMES: [&str; 7] = [
    "conv1_out",
    "bn1_out",
    "relu1_out",
    "residual_out",
    "pool_out",
    "flat_out",
    "logits",
];

#[test]
fn calibration_statistics_agree_with_onnxruntime() {
    let model_path = fixture("digits_cnn.onnx");
    let data_path = fixture("digits_calib.npz");
    let names = NAMES.join(",");
    let py = python_json(
        "ort_intermediates.py",
        &[
            model_path.as_os_str(),
            data_path.as_os_str(),
            "--names".as_ref(),
            names.as_ref(),
            "--channel-axis".as_ref(),
            "1".as_ref(),
        ],
    )
    .expect("ort_intermediates.py runs");
    let model = Model::load(&model_path).unwrap();
    let specs = input_specs(&model).unwrap();
    let data = Dataset::from_npz(&specs, &data_path, &[], &BatchOptions { max_batch: 16 }).unwrap();
    assert_eq!(
        data.batches().len(),
        4,
        "64 samples in runs of 16: statistics fold across runs"
    );
    let taps = Taps::Values(NAMES.iter().map(|s| s.to_string()).collect());
    let config = StatsConfig {
        bins: 256,
        channel_axis: Some(1),
    };
    for (kind, tol) in [(BackendKind::Tract, 1e-5), (BackendKind::Ort, 1e-6)] {
        let backend =
            make_backend(kind, None, 1).unwrap_or_else(|e| panic!("{}: {e}", kind.label()));
        let stats =
            collect_stats(&model, &taps, &data, backend.as_ref(), 2, &config, None).unwrap();
        for (s, name) in stats.iter().zip(NAMES) {
            let p = &py["values"][name];
            let scale = p["max"]
                .as_f64()
                .unwrap()
                .abs()
                .max(p["min"].as_f64().unwrap().abs())
                .max(1.0);
            let close = |what: &str, got: f64, want: &serde_json::Value| {
                let want = want.as_f64().unwrap();
                assert!(
                    (got - want).abs() <= tol * scale,
                    "{} {name} {what}: whittle {got} vs onnxruntime {want}",
                    kind.label()
                );
            };
            assert_eq!(s.name(), name);
            assert_eq!(s.summary().count, p["count"].as_u64().unwrap(), "{name}");
            close("min", s.summary().min, &p["min"]);
            close("max", s.summary().max, &p["max"]);
            close("mean|x|", s.summary().mean_abs(), &p["mean_abs"]);
            let channels = p["channel_min"].as_array().unwrap().len();
            assert_eq!(s.channels().len(), channels, "{name}");
            for (c, ch) in s.channels().iter().enumerate() {
                close("channel min", ch.min, &p["channel_min"][c]);
                close("channel max", ch.max, &p["channel_max"][c]);
                close("channel mean|x|", ch.mean_abs(), &p["channel_mean_abs"][c]);
            }
            let hist = s.histogram().expect("a histogram");
            assert_eq!(
                hist.counts.iter().sum::<u64>(),
                s.summary().count,
                "{name}: every value binned"
            );
        }
    }
}
