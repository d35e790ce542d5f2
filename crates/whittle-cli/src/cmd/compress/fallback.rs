//! The accuracy budget (`--max-drop`): when the quantized model loses more accuracy than
//! allowed, quantized layers are put back in float, most sensitive first, until it fits.
//!
//! Sensitivity of a layer: the SNR (dB) of the model's first output against the float
//! model's, on the `--eval` inputs, when ONLY that layer is quantized (every other
//! candidate left in float) — the verification engine's (`compare`) output error, so
//! layers are ranked by how much error they add on their own. The lowest SNR is the most
//! sensitive; a layer with no error at all is the least. Accuracy is re-measured after
//! each layer is restored, and the loop stops at the first model within the budget.
use super::super::backend_args::BackendArgs;
use super::measure::{accuracy, agreement};
use anyhow::{Result, bail};
use whittle_ir::Model;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::quantize::{CalibrationData, QuantizeOptions, QuantizeReport, Status};
use whittle_runtime::model::Dataset;

/// One quantized layer's sensitivity.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Layer {
    pub node: String,
    pub op: String,
    /// Output SNR with only this layer quantized; null when exact.
    pub snr_db: Option<f64>,
}

/// What the fallback did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FallbackReport {
    /// The budget, percentage points.
    pub max_drop: f64,
    /// Every quantized layer, most sensitive first.
    pub sensitivity: Vec<Layer>,
    /// Accuracy after restoring the first k layers (k = 0, 1, …).
    pub steps: Vec<f64>,
    /// The layers left in float in the final model.
    pub kept_float: Vec<String>,
}

/// What a fallback search needs besides the model.
pub struct Budget<'a> {
    pub float_model: &'a Model,
    pub opts: &'a QuantizeOptions,
    pub shapes: &'a ShapeOverrides,
    pub calib: Option<&'a CalibrationData>,
    pub eval: &'a std::path::Path,
    pub eval_data: &'a (Dataset, String),
    pub backend: &'a BackendArgs,
    pub accuracy_before: f64,
    pub max_drop: f64,
}

/// Quantizes `float_model` with `opts` (plus the given nodes left in float).
pub fn quantize_model(
    float_model: &Model,
    opts: &QuantizeOptions,
    shapes: &ShapeOverrides,
    calib: Option<&CalibrationData>,
    keep_float: &[String],
) -> Result<(Model, QuantizeReport)> {
    let mut model = float_model.clone();
    let mut opts = opts.clone();
    opts.exclude_nodes.extend(keep_float.iter().cloned());
    let report = whittle_passes::quantize::quantize(&mut model, &opts, shapes, calib)?;
    whittle_ir::verify::verify(&model)
        .map_err(|e| anyhow::anyhow!("the quantized model is invalid (a whittle bug): {e}"))?;
    Ok((model, report))
}

/// Names (bare node names, as `exclude_nodes` takes them) of the quantized top-level layers.
fn quantized_layers(model: &Model, report: &QuantizeReport) -> Vec<(String, String)> {
    report
        .nodes
        .iter()
        .filter(|n| n.status == Status::Quantized && !n.node.contains('/'))
        .filter_map(|e| {
            let out = e.output.as_ref()?;
            let (_, n) = model
                .graph
                .nodes()
                .find(|(_, n)| n.outputs().first() == Some(out))?;
            Some((n.name().to_string(), e.op.clone()))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// Restores layers to float, most sensitive first, until the accuracy drop fits.
/// `current` is the fully quantized model and its accuracy.
pub fn fit(
    b: &Budget,
    current: (Model, QuantizeReport, f64),
) -> Result<(Model, QuantizeReport, f64, FallbackReport)> {
    let fits = |acc: f64| (b.accuracy_before - acc) * 100.0 <= b.max_drop + 1e-9;
    let float_accuracy = accuracy(b.float_model, b.eval, b.backend)?;
    if !fits(float_accuracy) {
        bail!(
            "--max-drop {}: the steps before quantization (e.g. --prune) already lose {:.2} points ({:.4} → {float_accuracy:.4}); no layer fallback can help",
            b.max_drop,
            (b.accuracy_before - float_accuracy) * 100.0,
            b.accuracy_before
        );
    }
    let layers = quantized_layers(b.float_model, &current.1);
    let mut sensitivity = Vec::with_capacity(layers.len());
    for (i, (node, op)) in layers.iter().enumerate() {
        let others: Vec<String> = layers
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, (n, _))| n.clone())
            .collect();
        let (alone, _) = quantize_model(b.float_model, b.opts, b.shapes, b.calib, &others)?;
        let a = agreement(b.float_model, &alone, b.eval_data, b.backend)?;
        sensitivity.push(Layer {
            node: node.clone(),
            op: op.clone(),
            snr_db: a.snr_db,
        });
    }
    sensitivity.sort_by(|x, y| {
        let key = |l: &Layer| l.snr_db.unwrap_or(f64::INFINITY);
        key(x).total_cmp(&key(y)).then_with(|| x.node.cmp(&y.node))
    });
    let mut steps = vec![current.2];
    let mut kept = Vec::new();
    let mut best = current;
    for layer in &sensitivity {
        if fits(best.2) {
            break;
        }
        kept.push(layer.node.clone());
        let (m, r) = quantize_model(b.float_model, b.opts, b.shapes, b.calib, &kept)?;
        let acc = accuracy(&m, b.eval, b.backend)?;
        steps.push(acc);
        best = (m, r, acc);
    }
    if !fits(best.2) {
        bail!(
            "--max-drop {}: even with every quantized layer in float the accuracy is {:.4} against {:.4} before",
            b.max_drop,
            best.2,
            b.accuracy_before
        );
    }
    let report = FallbackReport {
        max_drop: b.max_drop,
        sensitivity,
        steps,
        kept_float: kept,
    };
    Ok((best.0, best.1, best.2, report))
}
