//! Quantization: weight-only (int8/uint8/int4/uint4, per tensor, per channel, block-wise,
//! or onnxruntime's `MatMulNBits`), dynamic (`DynamicQuantizeLinear` + `MatMulInteger`),
//! static QDQ from calibration statistics, and float16.
//!
//! | module | what |
//! | --- | --- |
//! | [`scheme`] | ranges → scale/zero point, the ONNX quantize/dequantize formulas, packing, SQNR |
//! | [`weights`] | one tensor quantized per tensor / per axis / per block |
//! | [`candidates`] | which nodes have a quantizable weight, its axes, or why not |
//! | [`weight_mode`], [`nbits`] | `--mode weight` (DequantizeLinear / MatMulNBits) |
//! | [`fp16`] | `--mode fp16` |
//! | [`dynamic`] | `--mode dynamic` |
//! | [`static_qdq`], `static_rewrite`, [`calib`] | `--mode static` and the calibration methods |
//! | `static_qoperator` | `--format qoperator`: QDQ groups → QLinearConv / QLinearMatMul |
//! | [`bias_correct`] | `--bias-correction`: biases shifted by the mean weight-quantization error |
//! | [`report`] | the report: per-node status, SQNR, bytes, MAC coverage |
//!
//! Invariants:
//! - **The ONNX formulas.** Quantized values are `saturate(round_half_even(x / s) + zp)`;
//!   the report's SQNR compares the float weight with exactly what `DequantizeLinear`
//!   computes from the written tensors.
//! - **Every candidate is accounted for.** Each node of a candidate op type is in the
//!   report, quantized or with the reason it was not; nothing is skipped silently.
//! - **Only forms onnxruntime runs on CPU** are written (u8 activations × s8 weights for
//!   MatMulInteger, u8 × u8 for ConvInteger, only on request).
//! - **The opset is raised only when needed**, through the opset converter, and said.
//! - **No runtime dependency.** Calibration statistics come in as data
//!   ([`calib::CalibrationData`]), computed by the caller (the CLI, through whittle-runtime).
//! - Subgraphs are quantized like the main graph (weight and dynamic modes); static mode
//!   gives their nodes weight-only DequantizeLinear (activations inside bodies cannot be
//!   calibrated, and the report says so per node); fp16 keeps nodes holding subgraphs in
//!   float32 and stores the large float32 weights of their bodies as float16, cast back to
//!   float32 inside the body.
pub mod bias_correct;
mod bias_shift;
pub mod calib;
pub mod candidates;
pub mod derive_range;
pub mod dynamic;
pub mod fp16;
mod fp16_bodies;
mod fp16_plan;
pub mod gptq;
pub mod nbits;
mod needs;
pub mod options;
pub mod report;
pub mod scheme;
pub mod static_qdq;
mod static_qoperator;
mod static_rewrite;
mod static_weights;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bias;
#[cfg(test)]
mod tests_subgraphs;
pub mod weight_mode;
pub mod weights;

pub use calib::{CalibrationData, Histogram, ValueStats};
pub use options::{CalibMethod, Format, Granularity, Mode, QuantizeOptions};
pub use report::{BiasCorrection, NodeEntry, QuantizeReport, Status};
pub use scheme::QuantType;

use crate::cleanup::scope::{self, GraphCx};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::{ShapeOverrides, infer_shapes};
use whittle_ir::{Graph, Model, Node};

/// Quantizes `model` in place as `opts` asks. Static mode needs `calib` (statistics of at
/// least the values [`calibration_targets`] names); fp16 uses it, when given, to keep
/// values that overflow float16 in float32.
pub fn quantize(
    model: &mut Model,
    opts: &QuantizeOptions,
    shapes: &ShapeOverrides,
    calib: Option<&CalibrationData>,
) -> Result<QuantizeReport, PassError> {
    let mut report = QuantizeReport {
        scheme: opts.describe(),
        opset_before: model.opset(""),
        ..Default::default()
    };
    let before = tensor_bytes(model);
    if let Some(n) = weights_to_initializers(model, opts)? {
        report.notes.push(format!(
            "turned {n} Constant nodes into initializers first (weights are read from initializers)"
        ));
    }
    if opts.bias_correction {
        let calib = calib.ok_or_else(|| PassError::Failed {
            pass: "quantize".into(),
            message: "bias correction needs calibration data (--calib FILE.npz)".into(),
        })?;
        bias_correct::correct(model, opts, calib, &mut report)?;
    }
    let macs = MacTable::new(model, shapes);
    match opts.mode {
        Mode::Weight => {
            if opts.gptq && calib.is_none() {
                return Err(PassError::Failed {
                    pass: "quantize".into(),
                    message: "GPTQ needs the layer inputs' moments from calibration data (--calib FILE.npz)".into(),
                });
            }
            weight_mode::run(model, opts, &macs, calib.map(|c| &c.hessians), &mut report)?
        }
        Mode::Fp16 => fp16::run(model, opts, calib, &macs, &mut report)?,
        Mode::Dynamic => dynamic::run(model, opts, &macs, &mut report)?,
        Mode::Static => {
            let calib = calib.ok_or_else(|| PassError::Failed {
                pass: "quantize".into(),
                message: "static quantization needs calibration data (--calib FILE.npz)".into(),
            })?;
            static_rewrite::run(model, opts, &macs, calib, &mut report)?;
            if opts.format == Format::QOperator {
                static_qoperator::run(model, &mut report);
            }
        }
    }
    report.opset_after = model.opset("");
    report.bytes.tensors_before = before;
    report.bytes.tensors_after = tensor_bytes(model);
    for n in report
        .nodes
        .iter()
        .filter(|n| n.status == Status::Quantized)
    {
        report.bytes.weights_before += n.weight_bytes_before.unwrap_or(0);
        report.bytes.weights_after += n.weight_bytes_after.unwrap_or(0);
    }
    report.finish_coverage();
    Ok(report)
}

/// The values whose statistics static mode needs, in graph order (empty in other modes).
pub fn calibration_targets(model: &Model, opts: &QuantizeOptions) -> Vec<String> {
    match opts.mode {
        Mode::Static => static_qdq::targets(model, opts),
        Mode::Fp16 => fp16::targets(model),
        _ => Vec::new(),
    }
}

/// The layer inputs whose per-channel means `--bias-correction` needs (empty without it).
pub fn mean_targets(model: &Model, opts: &QuantizeOptions) -> Vec<bias_correct::MeanTarget> {
    if !opts.bias_correction {
        return Vec::new();
    }
    bias_correct::targets(&as_rewritten(model, opts), opts)
}

/// `model` as `quantize` will see its layers: weights in Constant nodes (Paddle exports)
/// become initializers first. Value names do not change, so targets planned on it name
/// values of `model` itself.
fn as_rewritten<'a>(model: &'a Model, opts: &QuantizeOptions) -> std::borrow::Cow<'a, Model> {
    let mut converted = model.clone();
    match weights_to_initializers(&mut converted, opts) {
        Ok(Some(_)) => std::borrow::Cow::Owned(converted),
        _ => std::borrow::Cow::Borrowed(model),
    }
}

/// Turns Constant nodes into initializers when weights sit in them (every mode but fp16
/// reads weights from initializers); the count converted, or `None` when nothing needed it.
fn weights_to_initializers(
    model: &mut Model,
    opts: &QuantizeOptions,
) -> Result<Option<usize>, PassError> {
    if opts.mode == Mode::Fp16
        || !candidates::has_constant_node_weights(&model.graph, candidates::WEIGHT_OPS)
    {
        return Ok(None);
    }
    let mut cx = PassContext::default();
    let r = crate::cleanup::constants::ConstantsToInitializers.run(model, &mut cx)?;
    Ok(Some(r.changes.len()))
}

/// Bytes of all tensor data (initializers and attribute tensors, every graph).
pub fn tensor_bytes(model: &Model) -> u64 {
    let mut tensors = Vec::new();
    whittle_ir::save::tensors_of(&model.graph, &mut tensors);
    tensors.iter().map(|t| t.data_byte_len()).sum()
}

/// The pass form (for a [`crate::PassManager`]); the report's entries become change lines.
pub struct Quantize {
    pub options: QuantizeOptions,
    pub shapes: ShapeOverrides,
    pub calib: Option<CalibrationData>,
}

impl Pass for Quantize {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let r = quantize(model, &self.options, &self.shapes, self.calib.as_ref())?;
        let mut out = PassReport::default();
        out.changes.extend(r.notes.iter().cloned());
        for n in &r.nodes {
            let line = format!(
                "{} {}",
                n.node,
                n.form.as_deref().or(n.reason.as_deref()).unwrap_or("")
            );
            match n.status {
                Status::Quantized | Status::Float16 => out.changes.push(line),
                Status::Skipped | Status::KeptFloat32 => out.skipped.push(line),
            }
        }
        Ok(out)
    }
}

/// MACs of the main graph's nodes, by first output name (shape inference with the
/// caller's overrides, and batch 1 where the batch dim is symbolic).
pub struct MacTable {
    by_output: HashMap<String, u64>,
}

impl MacTable {
    /// A table without MACs (for planning that only needs which tensors are quantized).
    pub fn empty() -> MacTable {
        MacTable {
            by_output: HashMap::new(),
        }
    }

    pub fn new(model: &Model, shapes: &ShapeOverrides) -> MacTable {
        let mut o = shapes.clone();
        o.batch = o.batch.or(Some(1));
        let map = infer_shapes(model, &o)
            .or_else(|_| infer_shapes(model, shapes))
            .unwrap_or_default();
        let by_output = model
            .graph
            .nodes()
            .filter_map(|(_, n)| {
                let m = whittle_ir::inspect::node_macs(n, &map)?;
                Some((n.outputs().first()?.clone(), m))
            })
            .collect();
        MacTable { by_output }
    }

    /// MACs of `n` in the graph at `path` (`""` is the main graph; subgraphs have none).
    pub fn get(&self, path: &str, n: &Node) -> Option<u64> {
        if !path.is_empty() {
            return None;
        }
        self.by_output.get(n.outputs().first()?).copied()
    }
}

/// Visits the model's graphs (main graph first, then each node's subgraphs, depth first)
/// with their scope facts, a path prefix for labels and the set of names already taken.
pub(crate) struct GraphWalk {
    cx: GraphCx,
    pub taken: HashSet<String>,
}

type VisitMut<'a> =
    dyn FnMut(&mut Graph, GraphCx, &str, &mut HashSet<String>) -> Result<(), PassError> + 'a;

impl GraphWalk {
    pub fn new(model: &Model) -> GraphWalk {
        GraphWalk {
            cx: GraphCx::main(model),
            taken: scope::all_names(&model.graph),
        }
    }

    pub fn visit(&self, g: &Graph, f: &mut dyn FnMut(&Graph, GraphCx, &str)) {
        fn go(g: &Graph, cx: GraphCx, path: &str, f: &mut dyn FnMut(&Graph, GraphCx, &str)) {
            f(g, cx, path);
            for (k, (_, n)) in g.nodes().enumerate() {
                let label = format!("{path}{}/", n.label(k));
                for sub in n.subgraphs() {
                    go(sub, cx.sub(), &label, f);
                }
            }
        }
        go(g, self.cx, "", f)
    }

    pub fn visit_mut(&mut self, g: &mut Graph, f: &mut VisitMut<'_>) -> Result<(), PassError> {
        fn go(
            g: &mut Graph,
            cx: GraphCx,
            path: &str,
            taken: &mut HashSet<String>,
            f: &mut VisitMut<'_>,
        ) -> Result<(), PassError> {
            f(g, cx, path, taken)?;
            for (k, n) in g.nodes_mut().enumerate() {
                let label = format!("{path}{}/", n.label(k));
                for sub in n.subgraphs_mut() {
                    go(sub, cx.sub(), &label, taken, f)?;
                }
            }
            Ok(())
        }
        go(g, self.cx, "", &mut self.taken, f)
    }
}
