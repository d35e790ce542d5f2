//! `--bias-correction`: shift each quantized layer's bias by the mean error its weight
//! quantization introduces, measured on the calibration data (onnxruntime's quantizer does
//! not do this).
//!
//! For a layer `y = W·x + b` whose weight becomes `W_q`, the expected output moves by
//! `E[W_q·x] − E[W·x] = (W_q − W)·E[x]`, one number per output channel; subtracting it from
//! `b` puts the mean of every output channel back where the float model has it.
//! - `Conv` (`W [M, C/g, k…]`): `δ[o] = Σ_j Σ_k (W_q − W)[o, j, k] · E[x][c(o, j)]` with
//!   `E[x]` the mean of input channel `c(o, j) = group(o)·C/g + j`. Every kernel position is
//!   assumed to see the channel mean, which is exact away from the borders; where zero
//!   padding replaces inputs the true shift is smaller (approximate, by design).
//! - `Gemm` (`Y = α·A·B + β·C`): `δ` over the reduction axis of `B` (transB honoured),
//!   `E[A]` along A's feature axis (axis 1, axis 0 with transA); `C ← C − α·δ/β`.
//! - `MatMul` with a rank-2 weight: `δ` as for Gemm; the bias is the constant of the `Add`
//!   that is the MatMul output's only reader. A MatMul without one is left alone (a new
//!   `Add` would be a value calibration has not seen, so static mode could not quantize it).
//!
//! Invariants: `W_q` is computed by exactly the call the mode itself makes (same layout,
//! type, symmetry and rounding), so the correction matches the written weights; the pass
//! runs on the float graph before the mode's rewrite, so static mode then quantizes the
//! corrected bias like any other; a corrected bias is a new initializer (the old one is
//! dropped only when nothing else reads it), so shared biases are never changed for other
//! readers; main graph only (subgraph values cannot be calibrated). Every layer the mode
//! quantizes gets an entry: corrected, or skipped with the reason.
use super::bias_shift::{conv_shift, matmul_shift};
use super::candidates::{self, Candidate};
use super::options::{Mode, QuantizeOptions};
use super::report::{BiasCorrection, QuantizeReport};
use super::static_qdq;
use super::weight_mode::{drop_unused, weight_values};
use super::weights;
use super::{CalibrationData, MacTable, scheme};
use crate::PassError;
use crate::cleanup::scope::{self, GraphCx, Uses};
use bytes::Bytes;
use petgraph::stable_graph::NodeIndex;
use std::collections::HashSet;
use whittle_ir::shape::ShapeOverrides;
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

/// The axis of a layer input whose per-index mean the correction needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FeatureAxis {
    /// This axis (Conv: 1, Gemm: 1 or 0 with transA).
    Axis(usize),
    /// The last axis (MatMul).
    Last,
}

/// A value whose per-channel mean [`correct`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeanTarget {
    pub value: String,
    pub axis: FeatureAxis,
}

/// A layer the mode quantizes: its node, weight candidate and input.
struct Layer {
    ix: NodeIndex,
    candidate: Candidate,
    input: String,
    axis: FeatureAxis,
}

/// The ops the correction handles.
const OPS: &[&str] = &["Conv", "Gemm", "MatMul"];

/// The main-graph layers whose weights `opts.mode` quantizes, in graph order, or the label
/// and the reason the correction cannot apply.
fn layers(model: &Model, opts: &QuantizeOptions) -> Vec<Result<Layer, (String, String)>> {
    let g = &model.graph;
    let found: Vec<Candidate> = match opts.mode {
        Mode::Static => {
            let macs = MacTable::new(model, &ShapeOverrides::default());
            static_qdq::plan(model, opts, &macs)
                .nodes
                .into_iter()
                .filter_map(|p| p.ok()?.weight)
                .collect()
        }
        Mode::Weight => {
            let cx = GraphCx::main(model);
            g.nodes()
                .enumerate()
                .filter_map(|(pos, (ix, n))| {
                    let label = candidates::node_label("", n, pos);
                    candidates::examine(g, &cx, ix, label, opts, OPS)?.ok()
                })
                .collect()
        }
        Mode::Dynamic | Mode::Fp16 => Vec::new(),
    };
    found
        .into_iter()
        .filter(|c| OPS.contains(&c.entry.op.as_str()))
        .map(|c| {
            let label = c.entry.node.clone();
            let n = g
                .node(c.ix)
                .ok_or_else(|| (label.clone(), "node vanished".into()))?;
            let axis = match n.op_type() {
                "Conv" => FeatureAxis::Axis(1),
                "Gemm" if n.attr_int("transA").unwrap_or(0) != 0 => FeatureAxis::Axis(0),
                "Gemm" => FeatureAxis::Axis(1),
                _ if c.dims.len() == 2 => FeatureAxis::Last,
                _ => return Err((label, "MatMul weight is not rank 2".into())),
            };
            if c.weight_dtype != DataType::FLOAT {
                return Err((label, "weight is not float32".into()));
            }
            let input = n.inputs().first().cloned().unwrap_or_default();
            Ok(Layer {
                ix: c.ix,
                candidate: c,
                input,
                axis,
            })
        })
        .collect()
}

/// The layer inputs whose per-channel means the correction needs, in graph order, once each.
pub fn targets(model: &Model, opts: &QuantizeOptions) -> Vec<MeanTarget> {
    let mut seen = HashSet::new();
    layers(model, opts)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|l| seen.insert(l.input.clone()))
        .map(|l| MeanTarget {
            value: l.input,
            axis: l.axis,
        })
        .collect()
}

/// One bias rewrite, collected before any is applied.
struct Rewrite {
    /// The node whose input changes (the layer, or the MatMul's Add).
    node: NodeIndex,
    slot: usize,
    old: Option<String>,
    tensor: Tensor,
}

/// Corrects the biases of the layers `opts.mode` will quantize; entries go to `report`.
pub fn correct(
    model: &mut Model,
    opts: &QuantizeOptions,
    calib: &CalibrationData,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let cx = GraphCx::main(model);
    let mut taken = scope::all_names(&model.graph);
    let g = &model.graph;
    let uses = Uses::of(g);
    let mut rewrites = Vec::new();
    for layer in layers(model, opts) {
        let layer = match layer {
            Ok(l) => l,
            Err((node, why)) => {
                report
                    .bias_correction
                    .push(BiasCorrection::skipped(node, why));
                continue;
            }
        };
        let node = layer.candidate.entry.node.clone();
        match plan_one(g, &uses, &layer, opts, calib, &mut taken) {
            Ok((rewrite, shift)) => {
                report.bias_correction.push(BiasCorrection::done(
                    node,
                    rewrite.tensor.name(),
                    &shift,
                ));
                rewrites.push(rewrite);
            }
            Err(why) => report
                .bias_correction
                .push(BiasCorrection::skipped(node, why)),
        }
    }
    let g = &mut model.graph;
    let mut replaced = HashSet::new();
    for r in rewrites {
        let name = r.tensor.name().to_string();
        scope::add_initializer(g, r.tensor, &cx);
        if let Some(n) = g.node_mut(r.node) {
            if n.proto.input.len() <= r.slot {
                n.proto.input.resize(r.slot + 1, String::new());
            }
            n.proto.input[r.slot] = name;
        }
        replaced.extend(r.old);
    }
    g.rebuild_edges();
    drop_unused(g, &cx, &replaced);
    let done = report
        .bias_correction
        .iter()
        .filter(|b| b.corrected)
        .count();
    report.notes.push(format!(
        "bias correction: {done} of {} layers corrected for the mean error of their quantized weights",
        report.bias_correction.len()
    ));
    Ok(())
}

/// The rewrite for one layer and the shift `δ` it subtracts, or why there is none.
fn plan_one(
    g: &Graph,
    uses: &Uses,
    layer: &Layer,
    opts: &QuantizeOptions,
    calib: &CalibrationData,
    taken: &mut HashSet<String>,
) -> Result<(Rewrite, Vec<f64>), String> {
    let c = &layer.candidate;
    let n = g.node(layer.ix).ok_or("node vanished")?;
    let t = g
        .initializer(&c.weight)
        .ok_or("weight is not an initializer")?;
    let w = weight_values(t)?;
    // The weights exactly as the rewrite will round them (GPTQ included).
    let hessian = calib.hessians.get(&c.weight).filter(|_| opts.gptq);
    let (q, _) = super::gptq::quantize_weight(&w, c, opts, rounding(opts, c), hessian);
    let diff: Vec<f64> = q
        .dequantized
        .iter()
        .zip(&w)
        .map(|(&a, &b)| f64::from(a) - f64::from(b))
        .collect();
    let mean = calib
        .means
        .get(&layer.input)
        .ok_or_else(|| format!("no calibration mean of its input {:?}", layer.input))?;
    let op = n.op_type();
    let shift = match op {
        "Conv" => conv_shift(&diff, &c.dims, mean, n.attr_int("group").unwrap_or(1))?,
        "Gemm" => {
            let trans_b = n.attr_int("transB").unwrap_or(0) != 0;
            let alpha = f64::from(attr_f(n, "alpha"));
            let beta = f64::from(attr_f(n, "beta"));
            if beta == 0.0 {
                return Err("Gemm has beta = 0 (its bias is ignored)".into());
            }
            let d = matmul_shift(&diff, &c.dims, mean, trans_b)?;
            d.into_iter().map(|x| x * alpha / beta).collect()
        }
        _ => matmul_shift(&diff, &c.dims, mean, false)?,
    };
    let (node, slot, old) = match op {
        "MatMul" => add_bias_of(g, uses, n)?,
        _ => {
            let b = n.inputs().get(2).filter(|s| !s.is_empty()).cloned();
            (layer.ix, 2, b)
        }
    };
    let (dims, bias) = match &old {
        Some(name) => {
            let t = g
                .initializer(name)
                .ok_or_else(|| format!("bias {name:?} is not an initializer"))?;
            if t.dtype() != DataType::FLOAT {
                return Err(format!("bias {name:?} is not float32"));
            }
            let v = t
                .to_f32_vec()
                .map_err(|e| format!("cannot read bias {name:?}: {e}"))?;
            if v.len() != shift.len() {
                return Err(format!(
                    "bias {name:?} has {} values for {} output channels",
                    v.len(),
                    shift.len()
                ));
            }
            (t.dims().to_vec(), v)
        }
        None => (vec![shift.len() as i64], vec![0.0; shift.len()]),
    };
    let corrected: Vec<f32> = bias
        .iter()
        .zip(&shift)
        .map(|(&b, &d)| (f64::from(b) - d) as f32)
        .collect();
    let base = old.clone().unwrap_or_else(|| format!("{}_bias", c.weight));
    let name = scope::unique_name(taken, &format!("{base}_corrected"));
    let data: Vec<u8> = corrected.iter().flat_map(|x| x.to_le_bytes()).collect();
    let tensor = Tensor::new_raw(&name, DataType::FLOAT, dims, Bytes::from(data));
    Ok((
        Rewrite {
            node,
            slot,
            old,
            tensor,
        },
        shift,
    ))
}

/// The rounding the mode applies to dequantized weights (static writes float32 scales).
fn rounding(opts: &QuantizeOptions, c: &Candidate) -> fn(f32) -> f32 {
    match opts.mode {
        Mode::Static => scheme::keep_f32,
        _ => weights::rounding_for(c.weight_dtype),
    }
}

fn attr_f(n: &Node, name: &str) -> f32 {
    n.attribute(name).and_then(|a| a.proto.f).unwrap_or(1.0)
}

/// The `Add` reading a MatMul's output with a constant bias: (Add node, bias slot, bias).
fn add_bias_of(
    g: &Graph,
    uses: &Uses,
    n: &Node,
) -> Result<(NodeIndex, usize, Option<String>), String> {
    const NONE: &str = "MatMul has no constant Add bias to correct";
    let out = n.outputs().first().ok_or(NONE)?;
    let [one] = uses.consumers(out) else {
        return Err(NONE.into());
    };
    let add = g.node(one.node).ok_or(NONE)?;
    let Some(slot) = one
        .slot
        .filter(|_| add.op_type() == "Add" && add.domain().is_empty())
    else {
        return Err(NONE.into());
    };
    let other = 1 - slot.min(1);
    let b = add.inputs().get(other).ok_or(NONE)?;
    if g.initializer(b).is_none() || uses.is_output(out) {
        return Err(NONE.into());
    }
    Ok((one.node, other, Some(b.clone())))
}
