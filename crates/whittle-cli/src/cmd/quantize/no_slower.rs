//! `--no-slower`: when the quantized model runs slower than the float one, quantize again
//! with more and more op types kept in float, time each try, and keep the fastest one that
//! is not slower — or the float model, said plainly, when nothing gains.
//!
//! Fallback order ([`steps`], cumulative): grouped/depthwise `Conv` nodes (slow integer
//! kernels on CPU), then every `Conv`, `ConvTranspose`, `MatMul`, `Gemm` — only the ones the
//! model has. The decision ([`choose`]) takes the timer as a closure so it is tested with
//! injected timings; the real timer is the median of 20 runs after warm-up (`whittle bench`).
//!
//! Invariants: "slower" means `ratio > 1 + TOLERANCE` (medians still jitter by a few per
//! cent); the full quantization is kept without retries when it is not slower; among the
//! fallbacks the fastest not-slower one wins, earlier (fewer layers in float) on ties; a
//! fallback that fails to quantize or time is recorded with its error, never fatal.
use super::super::backend_args::BackendArgs;
use super::SpeedCheck;
use anyhow::{Context, Result};
use whittle_ir::Model;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::quantize::candidates::WEIGHT_OPS;
use whittle_passes::quantize::static_qdq::STATIC_OPS;
use whittle_passes::quantize::{self, CalibrationData, QuantizeOptions, QuantizeReport};
use whittle_runtime::model::BackendKind;

/// Every op type any mode quantizes — the weight ops, then the rest of static mode's:
/// excluding them all leaves the float model.
fn all_ops() -> Vec<String> {
    let mut ops: Vec<String> = WEIGHT_OPS.iter().map(|s| s.to_string()).collect();
    for op in STATIC_OPS {
        if !WEIGHT_OPS.contains(op) {
            ops.push(op.to_string());
        }
    }
    ops
}

/// What the caller had when it asked: the models and how the first one was made.
pub struct Inputs<'a> {
    /// The user's input (what `--check-speed` times against).
    pub original: &'a Model,
    /// The model quantization started from (after clean-up).
    pub float_model: &'a Model,
    pub opts: &'a QuantizeOptions,
    pub shapes: &'a ShapeOverrides,
    pub calib: Option<&'a CalibrationData>,
    pub backend: &'a BackendArgs,
}

/// Quantizes `float_model` again with `step`'s ops and nodes also kept in float.
fn requantize(i: &Inputs<'_>, step: &Step) -> Result<(Model, QuantizeReport)> {
    let mut opts = i.opts.clone();
    opts.exclude_ops.extend(step.exclude_ops.iter().cloned());
    opts.exclude_nodes
        .extend(step.exclude_nodes.iter().cloned());
    let mut m = i.float_model.clone();
    let r = quantize::quantize(&mut m, &opts, i.shapes, i.calib)
        .with_context(|| format!("quantizing with {} in float", step.kept_float))?;
    whittle_ir::verify::verify(&m).context("the quantized model is invalid (a bug in whittle)")?;
    Ok((m, r))
}

/// Times `quantized` against the input and falls back as [`choose`] decides; returns the
/// model and report to write, the decision and the speed of what is written.
pub fn apply(
    i: &Inputs<'_>,
    quantized: Model,
    report: QuantizeReport,
) -> Result<(Model, QuantizeReport, Decision, SpeedCheck)> {
    use super::super::compress::measure::latency;
    let (kind, backend) = match latency(i.original, i.backend, BackendKind::Ort)? {
        Some(_) => (BackendKind::Ort, "onnxruntime"),
        None => (BackendKind::Tract, "tract"),
    };
    let time = |m: &Model| -> Result<f64> {
        latency(m, i.backend, kind)?.context("the runtime became unavailable while timing")
    };
    let float_ms = time(i.original)?;
    let steps = steps(i.float_model);
    let decision = choose(float_ms, &steps, &mut |k| match k {
        None => time(&quantized),
        Some(k) => time(&requantize(i, &steps[k])?.0),
    });
    let speed = |ms: f64| SpeedCheck {
        backend,
        float_ms,
        quantized_ms: ms,
        ratio: ms / float_ms.max(1e-9),
    };
    let (model, mut report, ms) = match decision.chosen {
        Some(0) => (quantized, report, decision.tries[0].quantized_ms),
        Some(k) => {
            let (m, r) = requantize(i, &steps[k - 1])?;
            (m, r, decision.tries[k].quantized_ms)
        }
        None => {
            let everything = Step {
                kept_float: "everything".into(),
                exclude_ops: all_ops(),
                exclude_nodes: vec![],
            };
            let (_, r) = requantize(i, &everything)?;
            (i.float_model.clone(), r, Some(float_ms))
        }
    };
    let nothing = if decision.chosen.is_some_and(|k| k > 0) && report.quantized() == 0 {
        " — no layer is left quantized, so the result is the float model"
    } else {
        ""
    };
    report
        .notes
        .push(format!("--no-slower: {}{nothing}", decision.summary()));
    let speed = speed(ms.unwrap_or(float_ms));
    Ok((model, report, decision, speed))
}

/// Ratios up to `1 + TOLERANCE` count as "not slower" (timing noise).
pub const TOLERANCE: f64 = 0.05;

/// One configuration to try: what it keeps in float.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// In words, e.g. `grouped Conv` or `Conv, MatMul`.
    pub kept_float: String,
    pub exclude_ops: Vec<String>,
    pub exclude_nodes: Vec<String>,
}

/// How one try went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Try {
    pub kept_float: String,
    pub quantized_ms: Option<f64>,
    /// quantized / float.
    pub ratio: Option<f64>,
    pub error: Option<String>,
}

/// What `--no-slower` decided.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decision {
    pub float_ms: f64,
    pub tolerance: f64,
    /// The full quantization first, then each fallback tried.
    pub tries: Vec<Try>,
    /// Index into `tries` of the kept configuration; None: the float model is kept.
    pub chosen: Option<usize>,
}

impl Decision {
    /// What was kept in float, in words.
    pub fn summary(&self) -> String {
        match self.chosen {
            None => format!(
                "no quantized configuration was faster than the float model ({:.3} ms; tried {}): \
                 the float model is written unchanged",
                self.float_ms,
                self.tries
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Some(0) => format!(
                "the full quantization is not slower: {}",
                describe(&self.tries[0])
            ),
            Some(k) => format!(
                "kept in float: {} ({}); tried {}",
                self.tries[k].kept_float,
                describe(&self.tries[k]),
                self.tries
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
}

fn describe(t: &Try) -> String {
    match (t.ratio, &t.error) {
        (Some(r), _) => format!("{} in float → {r:.2}×", t.kept_float),
        (None, Some(e)) => format!("{} in float → failed: {e}", t.kept_float),
        _ => format!("{} in float → not timed", t.kept_float),
    }
}

/// The fallbacks for `model`, cumulative, in order.
pub fn steps(model: &Model) -> Vec<Step> {
    let g = &model.graph;
    let has = |op: &str| {
        g.nodes()
            .any(|(_, n)| n.op_type() == op && n.domain().is_empty())
    };
    let grouped: Vec<String> = g
        .nodes()
        .filter(|(_, n)| n.op_type() == "Conv" && n.attr_int("group").unwrap_or(1) > 1)
        .map(|(_, n)| n.name().to_string())
        .filter(|name| !name.is_empty())
        .collect();
    let mut out = Vec::new();
    if !grouped.is_empty() {
        out.push(Step {
            kept_float: format!("{} grouped Conv", grouped.len()),
            exclude_ops: vec![],
            exclude_nodes: grouped,
        });
    }
    let mut ops: Vec<String> = Vec::new();
    for op in ["Conv", "ConvTranspose", "MatMul", "Gemm"] {
        if has(op) {
            ops.push(op.to_string());
            out.push(Step {
                kept_float: ops.join(", "),
                exclude_ops: ops.clone(),
                exclude_nodes: vec![],
            });
        }
    }
    out
}

/// Times the full quantization (`time(None)`) and, when it is slower than `float_ms`, each
/// of `steps` (`time(Some(k))`), and picks the configuration to keep.
pub fn choose(
    float_ms: f64,
    steps: &[Step],
    time: &mut dyn FnMut(Option<usize>) -> Result<f64>,
) -> Decision {
    let mut one = |label: &str, k: Option<usize>| match time(k) {
        Ok(ms) => Try {
            kept_float: label.to_string(),
            quantized_ms: Some(ms),
            ratio: Some(ms / float_ms.max(1e-9)),
            error: None,
        },
        Err(e) => Try {
            kept_float: label.to_string(),
            quantized_ms: None,
            ratio: None,
            error: Some(format!("{e:#}")),
        },
    };
    let mut tries = vec![one("nothing", None)];
    let fine = |t: &Try| t.ratio.is_some_and(|r| r <= 1.0 + TOLERANCE);
    if fine(&tries[0]) {
        return Decision {
            float_ms,
            tolerance: TOLERANCE,
            tries,
            chosen: Some(0),
        };
    }
    for (k, s) in steps.iter().enumerate() {
        tries.push(one(&s.kept_float, Some(k)));
    }
    let chosen = tries
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, t)| fine(t))
        .min_by(|a, b| {
            a.1.ratio
                .partial_cmp(&b.1.ratio)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(k, _)| k);
    Decision {
        float_ms,
        tolerance: TOLERANCE,
        tries,
        chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ops_are_every_op_any_mode_quantizes() {
        assert_eq!(
            all_ops(),
            [
                "Conv",
                "ConvTranspose",
                "Gemm",
                "MatMul",
                "Add",
                "Mul",
                "MaxPool",
                "AveragePool",
                "GlobalAveragePool",
                "Concat",
            ]
        );
    }

    fn step(name: &str) -> Step {
        Step {
            kept_float: name.into(),
            exclude_ops: vec![name.into()],
            exclude_nodes: vec![],
        }
    }

    fn decide(
        float_ms: f64,
        full: f64,
        fallbacks: &[Option<f64>],
    ) -> (Decision, Vec<Option<usize>>) {
        let steps: Vec<Step> = (0..fallbacks.len())
            .map(|k| step(&format!("s{k}")))
            .collect();
        let mut asked = Vec::new();
        let d = choose(float_ms, &steps, &mut |k| {
            asked.push(k);
            match k {
                None => Ok(full),
                Some(k) => fallbacks[k].ok_or_else(|| anyhow::anyhow!("cannot run")),
            }
        });
        (d, asked)
    }

    #[test]
    fn a_full_quantization_within_tolerance_is_kept_without_retries() {
        let (d, asked) = decide(10.0, 10.4, &[Some(1.0)]);
        assert_eq!(d.chosen, Some(0));
        assert_eq!(asked, vec![None], "no fallback is timed");
    }

    #[test]
    fn the_fastest_not_slower_fallback_wins() {
        let (d, asked) = decide(10.0, 14.0, &[Some(11.0), Some(8.0), Some(9.0)]);
        assert_eq!(asked, vec![None, Some(0), Some(1), Some(2)]);
        assert_eq!(d.chosen, Some(2), "tries[2] is fallback s1 at 0.8×");
        assert_eq!(d.tries[2].kept_float, "s1");
        assert!((d.tries[2].ratio.unwrap() - 0.8).abs() < 1e-12);
        assert!(d.summary().contains("kept in float: s1"), "{}", d.summary());
    }

    #[test]
    fn ties_keep_fewer_layers_in_float_and_failures_are_recorded() {
        let (d, _) = decide(10.0, 12.0, &[None, Some(9.0), Some(9.0)]);
        assert_eq!(d.chosen, Some(2));
        assert!(d.tries[1].error.as_deref() == Some("cannot run"));
    }

    #[test]
    fn nothing_gaining_keeps_the_float_model() {
        let (d, _) = decide(10.0, 12.0, &[Some(10.6), None]);
        assert_eq!(d.chosen, None);
        assert!(
            d.summary().contains("float model is written unchanged"),
            "{}",
            d.summary()
        );
    }
}
