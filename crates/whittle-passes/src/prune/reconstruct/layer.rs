//! The layers reconstruction re-fits, and how their tensors become regression rows.
//!
//! A layer is a *consumer* of a pruned group (its weight lost input channels): a 2-D Conv
//! with `group` 1, a Gemm (`transA` 0; `transB`, `alpha`, `beta` honoured; `C` a
//! per-output initializer or absent) or a MatMul whose right operand is a 2-D initializer
//! (and whose bias is the constant of an `Add` that alone reads its output, if any).
//! Anything else is skipped with the reason. Weights must be float32.
//!
//! Row layout: one row per output position, the input features in the weight's own order
//! (Conv: `c, ki, kj`, exactly the flattened `[C, kh, kw]` filter), then a constant 1 when
//! the layer has a bias. The weight matrix is features(+1) × kept outputs, so every entry
//! maps to exactly one weight (or bias) element and [`Layer::write`] is the inverse of
//! [`Layer::prior`].
use crate::prune::apply::{Keep, axis_indices};
use crate::prune::{Analysis, GroupOutcome, Role};
use std::collections::BTreeSet;
use whittle_ir::{DataType, Model, Node};

/// Where a Conv window starts relative to the output position.
#[derive(Clone, Debug, PartialEq)]
pub enum Pads {
    /// Begin pads per spatial axis (`pads`, or 0 for `VALID`).
    Begin([usize; 2]),
    /// `SAME_UPPER` (`upper`) / `SAME_LOWER`: derived from the input and output sizes.
    Same { upper: bool },
}

/// How a layer computes its output from its input and weight.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Conv {
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: Pads,
    },
    Gemm {
        trans_b: bool,
        alpha: f64,
        beta: f64,
    },
    MatMul,
}

/// A layer to re-fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub node: String,
    pub op: String,
    /// The value the layer reads (taken from the pruned model).
    pub input: String,
    /// The value the layer writes (the target, taken from the original model).
    pub output: String,
    pub weight: String,
    /// The bias initializer, when the layer has one that the fit may change (for a MatMul:
    /// the constant of the Add that alone reads its output, see [`Layer::corrects_add`]).
    pub bias: Option<String>,
    pub kind: LayerKind,
    /// Output channels the pruned layer kept, as indices into the original's (None: all).
    pub kept_outputs: Option<Vec<usize>>,
}

/// A consumer that is not re-fitted, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SkippedLayer {
    pub node: String,
    pub reason: String,
}

/// The consumer layers of the groups `outcomes` pruned, in node order, and the consumers
/// that cannot be re-fitted. `analysis` must be the analysis of `original` the pruning
/// used (group ids index `outcomes`).
pub fn consumers(
    original: &Model,
    analysis: &Analysis,
    outcomes: &[GroupOutcome],
) -> (Vec<Layer>, Vec<SkippedLayer>) {
    let keep: Keep = outcomes
        .iter()
        .filter(|o| !o.removed.is_empty())
        .map(|o| {
            let kept = (0..o.channels_before as usize)
                .filter(|c| !o.removed.contains(c))
                .collect();
            (o.id, kept)
        })
        .collect();
    // Consumer weights are never shared (the analysis blocks that), so the weight names
    // the node even when nodes are unnamed.
    let wanted: BTreeSet<&str> = analysis
        .groups
        .iter()
        .filter(|g| keep.contains_key(&g.id))
        .flat_map(|g| &g.members)
        .filter(|m| m.role == Role::Consumer)
        .map(|m| m.tensor.as_str())
        .collect();
    let (mut layers, mut skipped) = (Vec::new(), Vec::new());
    for (_, n) in original.graph.nodes() {
        let Some(weight) = n.inputs().iter().find(|i| wanted.contains(i.as_str())) else {
            continue;
        };
        match classify(original, n, weight) {
            Ok(mut layer) => {
                // The weight's output axis may carry several groups (a Split after it).
                let axis = layer.output_axis();
                layer.kept_outputs = analysis
                    .tensors
                    .get(weight)
                    .and_then(|maps| maps.iter().find(|m| m.axis == axis))
                    .and_then(|map| axis_indices(map, &keep));
                layers.push(layer);
            }
            Err(reason) => skipped.push(SkippedLayer {
                node: node_label(n, weight),
                reason,
            }),
        }
    }
    (layers, skipped)
}

/// The node's name, or `OpType(weight)` for an unnamed node.
fn node_label(n: &Node, weight: &str) -> String {
    match n.name() {
        "" => format!("{}({weight})", n.op_type()),
        name => name.to_string(),
    }
}

fn float_initializer(model: &Model, name: &str) -> Result<Vec<usize>, String> {
    let t = model
        .graph
        .initializer(name)
        .ok_or(format!("{name:?} is not an initializer"))?;
    if t.dtype() != DataType::FLOAT {
        return Err(format!("{name:?} is not float32"));
    }
    Ok(t.dims().iter().map(|&d| d.max(0) as usize).collect())
}

fn pair(v: Option<&[i64]>, default: usize, what: &str) -> Result<[usize; 2], String> {
    match v {
        None => Ok([default; 2]),
        Some([a, b]) if *a >= 0 && *b >= 0 => Ok([*a as usize, *b as usize]),
        Some(v) => Err(format!("{what} {v:?} is not a 2-D window")),
    }
}

pub(super) fn classify(model: &Model, n: &Node, weight: &str) -> Result<Layer, String> {
    let input = |i: usize| n.inputs().get(i).filter(|s| !s.is_empty()).cloned();
    if input(1).as_deref() != Some(weight) {
        return Err(format!("{weight:?} is not the layer's right-hand operand"));
    }
    let dims = float_initializer(model, weight)?;
    let f = |name: &str| n.attribute(name).and_then(|a| a.proto.f).unwrap_or(1.0) as f64;
    let (kind, bias) = match n.op_type() {
        "Conv" => {
            if n.attr_int("group").unwrap_or(1) != 1 {
                return Err("grouped Conv is not re-fitted".into());
            }
            if dims.len() != 4 {
                return Err("only 2-D Conv is re-fitted".into());
            }
            let auto_pad = n.attribute("auto_pad").and_then(|a| a.proto.s.as_deref());
            let pads = match auto_pad.unwrap_or(b"NOTSET") {
                b"SAME_UPPER" => Pads::Same { upper: true },
                b"SAME_LOWER" => Pads::Same { upper: false },
                b"VALID" => Pads::Begin([0, 0]),
                _ => match n.attr_ints("pads") {
                    None => Pads::Begin([0, 0]),
                    Some([t, l, _, _]) if *t >= 0 && *l >= 0 => {
                        Pads::Begin([*t as usize, *l as usize])
                    }
                    Some(p) => return Err(format!("pads {p:?} are not 2-D")),
                },
            };
            let kind = LayerKind::Conv {
                kernel: [dims[2], dims[3]],
                strides: pair(n.attr_ints("strides"), 1, "strides")?,
                dilations: pair(n.attr_ints("dilations"), 1, "dilations")?,
                pads,
            };
            if let Some(b) = input(2) {
                float_initializer(model, &b)?;
            }
            (kind, input(2))
        }
        "Gemm" => {
            if n.attr_int("transA").unwrap_or(0) != 0 {
                return Err("Gemm with transA is not re-fitted".into());
            }
            let trans_b = n.attr_int("transB").unwrap_or(0) != 0;
            let (alpha, beta) = (f("alpha"), f("beta"));
            if alpha == 0.0 || dims.len() != 2 {
                return Err("Gemm with alpha 0 or a weight that is not 2-D".into());
            }
            let outputs = if trans_b { dims[0] } else { dims[1] };
            let bias = match input(2) {
                Some(c) if beta != 0.0 => {
                    let cd = float_initializer(model, &c)?;
                    if cd.iter().product::<usize>() != outputs || cd.len() > 2 || cd[0] == 0 {
                        return Err(format!("C {c:?} is not one value per output"));
                    }
                    if cd.len() == 2 && cd[0] != 1 {
                        return Err(format!("C {c:?} is not one value per output"));
                    }
                    Some(c)
                }
                _ => None,
            };
            (
                LayerKind::Gemm {
                    trans_b,
                    alpha,
                    beta,
                },
                bias,
            )
        }
        "MatMul" if dims.len() == 2 => (LayerKind::MatMul, add_after(model, n, dims[1])),
        "MatMul" => return Err(format!("{weight:?} is not a 2-D matrix")),
        op => return Err(format!("op {op} is not re-fitted")),
    };
    Ok(Layer {
        node: node_label(n, weight),
        op: n.op_type().to_string(),
        input: input(0).ok_or("no data input")?,
        output: n.outputs().first().cloned().ok_or("no output")?,
        weight: weight.to_string(),
        bias,
        kind,
        kept_outputs: None,
    })
}

impl Layer {
    /// Whether the bias is the constant of an Add after a MatMul, which the bias row of
    /// the fit corrects (rather than holds).
    pub fn corrects_add(&self) -> bool {
        self.kind == LayerKind::MatMul && self.bias.is_some()
    }

    /// The weight axis indexed by the layer's output channels.
    pub fn output_axis(&self) -> usize {
        match self.kind {
            LayerKind::Conv { .. } | LayerKind::Gemm { trans_b: true, .. } => 0,
            LayerKind::Gemm { trans_b: false, .. } | LayerKind::MatMul => 1,
        }
    }
}

/// The constant of the `Add` that alone reads a MatMul's output (`outputs` values, one
/// per output channel, used nowhere else): the MatMul's bias in all but name. The fit
/// treats it as a correction term (prior 0) added to that constant.
fn add_after(model: &Model, n: &Node, outputs: usize) -> Option<String> {
    let out = n.outputs().first()?;
    if model.graph.output_names().any(|o| o == out.as_str()) {
        return None;
    }
    let readers: Vec<&Node> = model
        .graph
        .nodes()
        .map(|(_, r)| r)
        .filter(|r| r.inputs().contains(out))
        .collect();
    let [add] = readers.as_slice() else {
        return None;
    };
    let [a, b] = add.inputs() else {
        return None;
    };
    let constant = if a == out { b } else { a };
    if add.op_type() != "Add" || add.domain() != "" || constant == out {
        return None;
    }
    let dims = float_initializer(model, constant).ok()?;
    let per_output = dims.last() == Some(&outputs) && dims.iter().rev().skip(1).all(|&d| d == 1);
    let uses = model
        .graph
        .nodes()
        .filter(|(_, r)| r.inputs().contains(constant))
        .count();
    (per_output && uses == 1 && !model.graph.output_names().any(|o| o == constant.as_str()))
        .then(|| constant.clone())
}

/// Kept output indices (all when `kept` is None), checked against `total`.
pub(super) fn kept_or_all(kept: &Option<Vec<usize>>, total: usize) -> Option<Vec<usize>> {
    match kept {
        Some(k) if k.iter().all(|&i| i < total) => Some(k.clone()),
        Some(_) => None,
        None => Some((0..total).collect()),
    }
}
