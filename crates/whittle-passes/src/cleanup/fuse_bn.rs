//! BatchNormalization folded into the `Conv`, `ConvTranspose` or `Gemm` before it.
//!
//! With `s = scale / sqrt(var + epsilon)` per channel (computed in f64): the weights of
//! output channel `c` are multiplied by `s[c]` and the bias becomes `(b - mean)·s + B`
//! (a zero bias is created when the node has none). Each new f32 value is rounded once.
//!
//! Invariants:
//! - only inference BatchNormalization (no `training_mode`, no extra outputs in use,
//!   `spatial` = 1) on the sole use of the producer's first output, and only f32 weights
//!   and parameters that are constants of this graph or an enclosing one;
//! - a weight or bias used elsewhere is not changed: the fused node gets a new copy;
//! - the producer takes over the BatchNormalization's output name.
use super::scope::{self, GraphCx, Uses};
use super::weights::{ChannelLayout, WeightWriter, f32_data};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::{Graph, Model, Node, Tensor};

/// The BatchNormalization-folding pass.
#[derive(Default)]
pub struct FuseBatchNorm;

impl Pass for FuseBatchNorm {
    fn name(&self) -> &'static str {
        "fuse-bn"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        let mut taken = scope::all_names(&model.graph);
        scope::bottom_up_with_constants(
            &mut model.graph,
            cx,
            &HashMap::new(),
            &mut |g, cx, outer| fuse(g, cx, outer, &mut taken, &mut report),
        );
        Ok(report)
    }
}

/// A fusion decided for one BatchNormalization.
struct Plan {
    bn: petgraph::stable_graph::NodeIndex,
    producer: petgraph::stable_graph::NodeIndex,
    /// New weight and bias input names, and the Gemm `beta` to set (Gemm only).
    weight: String,
    bias: String,
    set_beta: bool,
    output: String,
}

fn fuse(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    taken: &mut HashSet<String>,
    report: &mut PassReport,
) {
    if !cx.can_add_initializers() {
        return;
    }
    let uses = Uses::of(g);
    let mut writer = WeightWriter::new(std::mem::take(taken));
    let mut plans = Vec::new();
    {
        let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
        let consts = scope::constants(g, &cx, &refs);
        let producers: HashMap<&str, (petgraph::stable_graph::NodeIndex, usize)> = g
            .nodes()
            .flat_map(|(ix, n)| {
                n.outputs()
                    .iter()
                    .enumerate()
                    .map(move |(s, o)| (o.as_str(), (ix, s)))
            })
            .collect();
        let labels: HashMap<_, _> = g
            .nodes()
            .enumerate()
            .map(|(pos, (ix, n))| (ix, n.label(pos)))
            .collect();
        for (ix, n) in g.nodes() {
            if n.op_type() != "BatchNormalization"
                || n.domain() != ""
                || n.outputs().first().is_none_or(String::is_empty)
            {
                continue;
            }
            let Some(&(p, slot)) = n.inputs().first().and_then(|x| producers.get(x.as_str()))
            else {
                continue;
            };
            let Some(pn) = g.node(p) else { continue };
            if slot != 0
                || pn.domain() != ""
                || !matches!(pn.op_type(), "Conv" | "ConvTranspose" | "Gemm")
            {
                continue;
            }
            match plan_one(g, &cx, n, pn, &consts, &uses, &mut writer) {
                Ok((weight, bias, set_beta)) => {
                    report
                        .changes
                        .push(format!("folded {} into {}", labels[&ix], labels[&p]));
                    plans.push(Plan {
                        bn: ix,
                        producer: p,
                        weight,
                        bias,
                        set_beta,
                        output: n.outputs()[0].clone(),
                    });
                }
                Err(why) => report
                    .skipped
                    .push(format!("{} after {}: {why}", labels[&ix], labels[&p])),
            }
        }
    }
    apply(g, &cx, plans, writer, taken);
}

/// Checks one BatchNormalization after `pn` and computes the fused weights.
fn plan_one(
    g: &Graph,
    cx: &GraphCx,
    bn: &Node,
    pn: &Node,
    consts: &HashMap<String, &Tensor>,
    uses: &Uses,
    writer: &mut WeightWriter,
) -> Result<(String, String, bool), String> {
    let y = &bn.inputs()[0];
    if uses.sole_consumer(y).is_none() {
        return Err(format!("{y:?} has other users"));
    }
    if bn.attr_int("training_mode").unwrap_or(0) != 0 || bn.attr_int("spatial").unwrap_or(1) != 1 {
        return Err("not an inference-mode, spatial BatchNormalization".into());
    }
    if cx.opset < 7 && bn.attr_int("is_test").unwrap_or(0) == 0 {
        return Err("is_test = 0 (training mode)".into());
    }
    if bn.outputs()[1..]
        .iter()
        .any(|o| !o.is_empty() && uses.is_used(o))
        || bn.inputs().len() != 5
    {
        return Err("uses the running statistics outputs".into());
    }
    let param = |i: usize| -> Result<Vec<f64>, String> {
        let name = &bn.inputs()[i];
        let t = consts
            .get(name.as_str())
            .ok_or_else(|| format!("{name:?} is not constant"))?;
        f32_data(t).ok_or_else(|| format!("{name:?} is not f32"))
    };
    let (scale, shift, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
    let eps = f64::from(
        bn.attribute("epsilon")
            .and_then(|a| a.proto.f)
            .unwrap_or(1e-5),
    );
    let c = scale.len();
    if [shift.len(), mean.len(), var.len()].iter().any(|&l| l != c) {
        return Err("parameters differ in length".into());
    }
    let s: Vec<f64> = (0..c).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
    let layout = match pn.op_type() {
        "Conv" => ChannelLayout::Conv,
        "ConvTranspose" => ChannelLayout::ConvTranspose {
            group: pn.attr_int("group").unwrap_or(1).max(1) as usize,
        },
        _ => ChannelLayout::Gemm {
            trans_b: pn.attr_int("transB").unwrap_or(0) != 0,
        },
    };
    let wname = pn.inputs().get(1).ok_or("the producer has no weight")?;
    let w = consts
        .get(wname.as_str())
        .ok_or_else(|| format!("weight {wname:?} is not constant"))?;
    let wv = f32_data(w).ok_or_else(|| format!("weight {wname:?} is not f32"))?;
    if layout.channels(w.dims()) != Some(c) {
        return Err(format!(
            "weight dims {:?} do not have {c} output channels",
            w.dims()
        ));
    }
    if let ChannelLayout::ConvTranspose { group } = layout
        && !(w.dims()[0] as usize).is_multiple_of(group)
    {
        return Err("weight channels not divisible by group".into());
    }
    let chan = layout.channel_of_each(w.dims()).ok_or("bad weight dims")?;
    let new_w: Vec<f64> = wv.iter().zip(&chan).map(|(v, &ch)| v * s[ch]).collect();
    let bias_name = pn.inputs().get(2).filter(|b| !b.is_empty());
    let is_gemm = matches!(layout, ChannelLayout::Gemm { .. });
    let old_b: Vec<f64> = match bias_name {
        None => vec![0.0; c],
        Some(b) => {
            let t = consts
                .get(b.as_str())
                .ok_or_else(|| format!("bias {b:?} is not constant"))?;
            let v = f32_data(t).ok_or_else(|| format!("bias {b:?} is not f32"))?;
            let dims = t.dims();
            let ci = c as i64;
            let per_channel = if is_gemm {
                dims == [ci] || dims == [1, ci]
            } else {
                dims == [ci]
            };
            match v.len() {
                1 if is_gemm && dims.len() <= 2 => vec![v[0]; c],
                _ if per_channel => v,
                _ => return Err(format!("bias dims {dims:?} are not per channel")),
            }
        }
    };
    let (alpha_beta, set_beta) = if is_gemm {
        let beta = f64::from(pn.attribute("beta").and_then(|a| a.proto.f).unwrap_or(1.0));
        (if bias_name.is_some() { beta } else { 0.0 }, true)
    } else {
        (1.0, false)
    };
    // Gemm: beta·C becomes part of the bias, and beta is set to 1.
    let new_b: Vec<f64> = (0..c)
        .map(|i| (old_b[i] * alpha_beta - mean[i]) * s[i] + shift[i])
        .collect();
    let weight = writer.put(
        g,
        cx,
        uses,
        Some(wname),
        &format!("{wname}_bnfold"),
        w.dims().to_vec(),
        &new_w,
    );
    let base = bias_name.map_or_else(|| format!("{wname}_bnfold_bias"), |b| format!("{b}_bnfold"));
    let bias = writer.put(
        g,
        cx,
        uses,
        bias_name.map(String::as_str),
        &base,
        vec![c as i64],
        &new_b,
    );
    Ok((weight, bias, set_beta))
}

fn apply(
    g: &mut Graph,
    cx: &GraphCx,
    plans: Vec<Plan>,
    writer: WeightWriter,
    taken: &mut HashSet<String>,
) {
    let mut doomed = Vec::new();
    let mut dropped = HashSet::new();
    for p in plans {
        if let Some(n) = g.node_mut(p.producer) {
            dropped.insert(n.proto.output[0].clone());
            set_conv_inputs(n, p.weight, p.bias);
            if p.set_beta {
                set_float_attr(n, "beta", 1.0);
            }
            n.proto.output[0] = p.output;
        }
        doomed.push(p.bn);
    }
    *taken = writer.apply(g, cx);
    g.remove_nodes(&doomed);
    scope::fix_value_info(g, &dropped, &HashMap::new());
}

/// Sets input 1 (weight) and 2 (bias; empty: none) of a conv-like node.
pub fn set_conv_inputs(n: &mut Node, weight: String, bias: String) {
    let inputs = &mut n.proto.input;
    inputs.truncate(3);
    inputs.resize(3, String::new());
    inputs[1] = weight;
    if bias.is_empty() {
        inputs.truncate(2);
    } else {
        inputs[2] = bias;
    }
}

/// Sets (or adds) a float attribute.
pub fn set_float_attr(n: &mut Node, name: &str, value: f32) {
    if let Some(a) = n.attributes.iter_mut().find(|a| a.proto.name() == name) {
        a.proto.f = Some(value);
        return;
    }
    n.attributes
        .push(super::attrs::float_attribute(name, value));
}
