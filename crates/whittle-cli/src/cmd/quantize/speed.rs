//! `--check-speed`: the input and the result timed on the same runtime (onnxruntime when
//! its library is found, else tract), batch 1, seeded inputs, median of 20 runs after
//! warm-up — exactly as `whittle bench` times a model.
use super::super::backend_args::BackendArgs;
use anyhow::{Context, Result};

/// `--check-speed`: median latency of the input and of the quantized model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpeedCheck {
    pub backend: &'static str,
    pub float_ms: f64,
    pub quantized_ms: f64,
    /// quantized / float: above 1 the quantized model is slower.
    pub ratio: f64,
}

/// Times `original` and `quantized` on the same backend (onnxruntime when its library is
/// found, else tract), batch 1, seeded inputs, as `whittle bench` does.
pub fn check_speed(
    original: &whittle_ir::Model,
    quantized: &whittle_ir::Model,
    backend: &BackendArgs,
) -> Result<SpeedCheck> {
    use super::super::compress::measure::latency;
    use whittle_runtime::model::BackendKind;
    let (kind, name) = match latency(original, backend, BackendKind::Ort)? {
        Some(_) => (BackendKind::Ort, "onnxruntime"),
        None => (BackendKind::Tract, "tract"),
    };
    let time = |m: &whittle_ir::Model| -> Result<f64> {
        latency(m, backend, kind)?.context("the runtime became unavailable while timing")
    };
    let (float_ms, quantized_ms) = (time(original)?, time(quantized)?);
    Ok(SpeedCheck {
        backend: name,
        float_ms,
        quantized_ms,
        ratio: quantized_ms / float_ms.max(1e-9),
    })
}
