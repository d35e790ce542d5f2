//! `Mul` or `Add` by a per-channel constant after a `Conv`/`ConvTranspose`, folded into
//! its weights and bias: `Mul` by `c` scales output channel `o`'s weights and bias by
//! `c[o]`; `Add` of `c` adds `c[o]` to the bias (created when missing). Computed in f64,
//! each new f32 value rounded once.
//!
//! Invariants:
//! - the constant must not change the conv output's shape: it has at most the conv
//!   output's rank (= the weight's rank), and every dim is 1 except, possibly, the channel
//!   dim (which then equals the output channel count) — shapes `[C,1,1]`, `[1,C,1,1]`,
//!   `[1]`, scalars;
//! - only f32, only when the Mul/Add is the sole use of the conv output, and a weight or
//!   bias used elsewhere gets a new copy.
use super::fuse_bn::set_conv_inputs;
use super::scope::{self, GraphCx, Uses};
use super::weights::{ChannelLayout, WeightWriter, f32_data};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::{Graph, Model, Node, Tensor};

/// The conv Mul/Add-folding pass.
#[derive(Default)]
pub struct FuseConvAffine;

impl Pass for FuseConvAffine {
    fn name(&self) -> &'static str {
        "fuse-conv-affine"
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

type Ix = petgraph::stable_graph::NodeIndex;

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
    // (Mul/Add node, conv node, weight, bias, output)
    let mut plans: Vec<(Ix, Ix, String, String, String)> = Vec::new();
    {
        let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
        let consts = scope::constants(g, &cx, &refs);
        let producers: HashMap<&str, (Ix, usize)> = g
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
        let mut fused_convs: HashSet<Ix> = HashSet::new();
        for (ix, n) in g.nodes() {
            if !matches!(n.op_type(), "Mul" | "Add")
                || n.domain() != ""
                || n.inputs().len() != 2
                || n.outputs().len() != 1
            {
                continue;
            }
            // Which input is the conv output, which the constant.
            let conv_side = n.inputs().iter().position(|i| {
                producers.get(i.as_str()).is_some_and(|&(p, s)| {
                    s == 0
                        && g.node(p).is_some_and(|pn| {
                            pn.domain() == "" && matches!(pn.op_type(), "Conv" | "ConvTranspose")
                        })
                })
            });
            let Some(side) = conv_side else { continue };
            let (y, cname) = (&n.inputs()[side], &n.inputs()[1 - side]);
            let Some(c) = consts.get(cname.as_str()) else {
                continue;
            };
            let (p, _) = producers[y.as_str()];
            if fused_convs.contains(&p) {
                continue;
            }
            let Some(pn) = g.node(p) else { continue };
            match plan_one(g, &cx, n, pn, y, c, &consts, &uses, &mut writer) {
                Ok((w, b)) => {
                    report.changes.push(format!(
                        "folded {} by {cname:?} into {}",
                        labels[&ix], labels[&p]
                    ));
                    fused_convs.insert(p);
                    plans.push((ix, p, w, b, n.outputs()[0].clone()));
                }
                Err(why) => report
                    .skipped
                    .push(format!("{} after {}: {why}", labels[&ix], labels[&p])),
            }
        }
    }
    let mut doomed = Vec::new();
    let mut dropped = HashSet::new();
    for (op, conv, w, b, out) in plans {
        if let Some(n) = g.node_mut(conv) {
            dropped.insert(n.proto.output[0].clone());
            set_conv_inputs(n, w, b);
            n.proto.output[0] = out;
        }
        doomed.push(op);
    }
    *taken = writer.apply(g, &cx);
    g.remove_nodes(&doomed);
    scope::fix_value_info(g, &dropped, &HashMap::new());
}

/// The per-channel values of constant `c` for a conv with `channels` outputs and output
/// rank `rank`, or why it is not per-channel.
pub fn per_channel(c: &Tensor, channels: usize, rank: usize) -> Result<Vec<f64>, String> {
    let v = f32_data(c).ok_or_else(|| format!("{:?} is not f32", c.name()))?;
    let dims = c.dims();
    if dims.len() > rank {
        return Err(format!(
            "{:?} has rank {} > the conv output's {rank}",
            c.name(),
            dims.len()
        ));
    }
    // Axis of the constant that lines up with the channel axis (1) of the output.
    let chan_axis = (1 + dims.len()).checked_sub(rank);
    for (i, &d) in dims.iter().enumerate() {
        if d != 1 && (Some(i) != chan_axis || d as usize != channels) {
            return Err(format!("{:?} dims {dims:?} are not per channel", c.name()));
        }
    }
    Ok(match v.len() {
        1 => vec![v[0]; channels],
        _ => v,
    })
}

#[allow(clippy::too_many_arguments)]
fn plan_one(
    g: &Graph,
    cx: &GraphCx,
    op: &Node,
    conv: &Node,
    y: &str,
    c: &Tensor,
    consts: &HashMap<String, &Tensor>,
    uses: &Uses,
    writer: &mut WeightWriter,
) -> Result<(String, String), String> {
    if uses.sole_consumer(y).is_none() {
        return Err(format!("{y:?} has other users"));
    }
    let wname = conv.inputs().get(1).ok_or("the conv has no weight")?;
    let w = consts
        .get(wname.as_str())
        .ok_or_else(|| format!("weight {wname:?} is not constant"))?;
    let wv = f32_data(w).ok_or_else(|| format!("weight {wname:?} is not f32"))?;
    let layout = match conv.op_type() {
        "Conv" => ChannelLayout::Conv,
        _ => ChannelLayout::ConvTranspose {
            group: conv.attr_int("group").unwrap_or(1).max(1) as usize,
        },
    };
    let channels = layout.channels(w.dims()).ok_or("bad weight dims")?;
    if let ChannelLayout::ConvTranspose { group } = layout
        && !(w.dims()[0] as usize).is_multiple_of(group)
    {
        return Err("weight channels not divisible by group".into());
    }
    let k = per_channel(c, channels, w.dims().len())?;
    let chan = layout.channel_of_each(w.dims()).ok_or("bad weight dims")?;
    let bias_name = conv.inputs().get(2).filter(|b| !b.is_empty());
    let old_b = match bias_name {
        None => vec![0.0; channels],
        Some(b) => {
            let t = consts
                .get(b.as_str())
                .ok_or_else(|| format!("bias {b:?} is not constant"))?;
            let v = f32_data(t).ok_or_else(|| format!("bias {b:?} is not f32"))?;
            if t.dims() != [channels as i64] {
                return Err(format!("bias dims {:?}", t.dims()));
            }
            v
        }
    };
    let is_mul = op.op_type() == "Mul";
    let new_b: Vec<f64> = (0..channels)
        .map(|i| {
            if is_mul {
                old_b[i] * k[i]
            } else {
                old_b[i] + k[i]
            }
        })
        .collect();
    let weight = if is_mul {
        let new_w: Vec<f64> = wv.iter().zip(&chan).map(|(v, &ch)| v * k[ch]).collect();
        writer.put(
            g,
            cx,
            uses,
            Some(wname),
            &format!("{wname}_scaled"),
            w.dims().to_vec(),
            &new_w,
        )
    } else {
        wname.clone()
    };
    let base = bias_name.map_or_else(
        || format!("{wname}_bias"),
        |b| format!("{b}_{}", if is_mul { "scaled" } else { "shifted" }),
    );
    let bias = if is_mul && bias_name.is_none() {
        // x·c with no bias keeps no bias.
        String::new()
    } else {
        writer.put(
            g,
            cx,
            uses,
            bias_name.map(String::as_str),
            &base,
            vec![channels as i64],
            &new_b,
        )
    };
    Ok((weight, bias))
}
