//! `--mode dynamic`: onnxruntime's dynamic scheme. Activations are quantized at run time
//! by `DynamicQuantizeLinear` (uint8, asymmetric, per tensor), weights ahead of time, and
//! the product runs in integers:
//!
//! ```text
//! A → DynamicQuantizeLinear → (A_q, a_scale, a_zp)
//! MatMulInteger(A_q, W_q, a_zp, w_zp) → Cast(float) → Mul(a_scale · w_scale) [→ Add(bias)]
//! ```
//! (the pattern onnxruntime fuses into `DynamicQuantizeMatMul`). MatMul with a 2-D weight
//! and Gemm (`transA=0`; `alpha` folded into the weight scales, `beta·C` into a constant bias)
//! become MatMulInteger with int8 (or uint8) weights; Conv becomes ConvInteger only with
//! `--conv-integer` (onnxruntime runs it far slower than float Conv), with uint8 weights and
//! one zero point per tensor, the only form its CPU kernel takes.
//!
//! Invariants: every rewritten node's output keeps its name and float32 type; one
//! DynamicQuantizeLinear per activation, shared by its quantized consumers; float16 models
//! are left alone (DynamicQuantizeLinear takes float32 only).
use super::candidates::{self, Candidate};
use super::needs::{self, Need};
use super::report::{NodeEntry, QuantizeReport, Status};
use super::scheme::{self, QuantType};
use super::weight_mode::{drop_unused, weight_values};
use super::weights::{self, Layout};
use super::{GraphWalk, MacTable, QuantizeOptions};
use crate::PassError;
use crate::cleanup::attrs::int_attribute;
use crate::cleanup::scope::{self, GraphCx};
use bytes::Bytes;
use petgraph::stable_graph::NodeIndex;
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::NodeProto;
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

const OPS: &[&str] = &["MatMul", "Gemm", "Conv"];

pub fn run(
    model: &mut Model,
    opts: &QuantizeOptions,
    macs: &MacTable,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let mut need = Need::default();
    GraphWalk::new(model).visit(&model.graph, &mut |g, cx, _| {
        for (ix, _) in g.nodes() {
            if let Some(Ok(c)) = candidates::examine(g, &cx, ix, String::new(), opts, OPS)
                && why_not(g, &c, opts).is_none()
            {
                need.add((11, "DynamicQuantizeLinear".into()));
            }
        }
    });
    needs::ensure_opset(model, &need, report)?;
    let mut walk = GraphWalk::new(model);
    let mut graph = std::mem::take(&mut model.graph);
    let result = walk.visit_mut(&mut graph, &mut |g, cx, path, taken| {
        let mut found = Vec::new();
        for (pos, (ix, n)) in g.nodes().enumerate() {
            let label = candidates::node_label(path, n, pos);
            let m = macs.get(path, n);
            match candidates::examine(g, &cx, ix, label, opts, OPS) {
                None => {}
                Some(Err(mut e)) => {
                    e.macs = m;
                    found.push(Err(e));
                }
                Some(Ok(mut c)) => {
                    c.entry.macs = m;
                    match why_not(g, &c, opts) {
                        Some(why) => found.push(Err(c.entry.skipped(why))),
                        None => found.push(Ok(c)),
                    }
                }
            }
        }
        rewrite(g, &cx, found, opts, taken, report);
        Ok(())
    });
    model.graph = graph;
    result
}

/// Why a candidate is not rewritten in this mode.
fn why_not(g: &Graph, c: &Candidate, opts: &QuantizeOptions) -> Option<String> {
    let n = g.node(c.ix)?;
    if c.weight_dtype != DataType::FLOAT {
        return Some(
            "dynamic quantization needs float32 (DynamicQuantizeLinear takes float32 only)".into(),
        );
    }
    match n.op_type() {
        "Conv" if !opts.conv_integer => Some(
            "Conv stays float: ConvInteger is much slower than float Conv in onnxruntime (--conv-integer forces it)"
                .into(),
        ),
        "MatMul" if c.dims.len() != 2 => Some(format!("MatMulInteger needs a 2-D weight (rank {})", c.dims.len())),
        "Gemm" if n.attr_int("transA").unwrap_or(0) != 0 => Some("Gemm with transA=1".into()),
        "Gemm" => {
            let beta = n.attribute("beta").and_then(|a| a.proto.f).unwrap_or(1.0);
            let c_in = n.inputs().get(2).filter(|s| !s.is_empty());
            match c_in {
                Some(name) if beta != 1.0 && g.initializer(name).is_none() => {
                    Some("Gemm with beta ≠ 1 and a computed C".into())
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// What one rewritten node turns into.
struct Rewrite {
    at: NodeIndex,
    nodes: Vec<Node>,
    tensors: Vec<Tensor>,
    /// Initializers the rewrite stops reading (removed when nothing else reads them).
    stale: Vec<String>,
}

fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attributes: Vec<whittle_ir::Attribute>,
) -> Node {
    Node {
        proto: NodeProto {
            name: Some(name.to_string()),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            ..Default::default()
        },
        attributes,
    }
}

fn f32_tensor(name: &str, dims: Vec<i64>, v: &[f32]) -> Tensor {
    Tensor::new_raw(
        name,
        DataType::FLOAT,
        dims,
        Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
    )
}

fn rewrite(
    g: &mut Graph,
    cx: &GraphCx,
    found: Vec<Result<Candidate, NodeEntry>>,
    opts: &QuantizeOptions,
    taken: &mut HashSet<String>,
    report: &mut QuantizeReport,
) {
    let mut activations: HashMap<String, [String; 3]> = HashMap::new();
    let mut rewrites = Vec::new();
    for item in found {
        let mut c = match item {
            Ok(c) => c,
            Err(e) => {
                report.nodes.push(e);
                continue;
            }
        };
        let Some(n) = g.node(c.ix).cloned() else {
            continue;
        };
        if !cx.can_add_initializers() {
            report.nodes.push(
                c.entry
                    .skipped("a pre-IR-4 subgraph cannot take new initializers"),
            );
            continue;
        }
        let Some(values) = g.initializer(&c.weight).map(weight_values) else {
            continue;
        };
        let values = match values {
            Ok(v) => v,
            Err(why) => {
                report.nodes.push(c.entry.skipped(why));
                continue;
            }
        };
        let mut rw = Rewrite {
            at: c.ix,
            nodes: Vec::new(),
            tensors: Vec::new(),
            stale: vec![c.weight.clone()],
        };
        let act = n.inputs()[0].clone();
        let [aq, ascale, azp] = activations
            .entry(act.clone())
            .or_insert_with(|| {
                let names = [
                    scope::unique_name(taken, &format!("{act}_quantized")),
                    scope::unique_name(taken, &format!("{act}_scale")),
                    scope::unique_name(taken, &format!("{act}_zero_point")),
                ];
                let mut dq = node(
                    &scope::unique_name(taken, &format!("{act}_DynamicQuantizeLinear")),
                    "DynamicQuantizeLinear",
                    &[&act],
                    &names[0],
                    vec![],
                );
                dq.proto.output = names.to_vec();
                rw.nodes.push(dq);
                names
            })
            .clone();
        let out = n.outputs()[0].clone();
        let is_conv = n.op_type() == "Conv";
        // Weight layout for the integer op: [K, N] (columns = output channels) or Conv's own.
        let (w, dims, layout, t, symmetric) = if is_conv {
            let layout = if opts.symmetric {
                c.layout
            } else {
                Layout::PerTensor
            };
            (
                values.clone(),
                c.dims.clone(),
                layout,
                QuantType::Uint8,
                opts.symmetric,
            )
        } else {
            let trans = n.op_type() == "Gemm" && n.attr_int("transB").unwrap_or(0) != 0;
            let (k, nn) = if trans {
                (c.dims[1], c.dims[0])
            } else {
                (c.dims[0], c.dims[1])
            };
            let w: Vec<f32> = if trans {
                (0..k * nn).map(|i| values[(i % nn) * k + i / nn]).collect()
            } else {
                values.clone()
            };
            let layout = match c.layout {
                Layout::PerTensor => Layout::PerTensor,
                _ => Layout::PerAxis { axis: 1 },
            };
            (w, vec![k, nn], layout, opts.weight_type, opts.symmetric)
        };
        let q = weights::quantize(&w, &dims, layout, t, symmetric, scheme::keep_f32);
        let base = out.clone();
        let wq = weights::values_tensor(
            &scope::unique_name(taken, &format!("{}_quantized", c.weight)),
            &q,
            t,
            &dims.iter().map(|&d| d as i64).collect::<Vec<_>>(),
        );
        let zps: Vec<i32> = q.params.iter().map(|p| p.zero_point).collect();
        let wz = if zps.iter().all(|&z| z == zps[0]) {
            Tensor::new_raw(
                &scope::unique_name(taken, &format!("{}_zero_point", c.weight)),
                t.dtype(),
                vec![],
                scheme::pack(&zps[..1], t),
            )
        } else {
            weights::zero_point_tensor(
                &scope::unique_name(taken, &format!("{}_zero_point", c.weight)),
                &q,
                t,
            )
        };
        let alpha = if n.op_type() == "Gemm" {
            n.attribute("alpha").and_then(|a| a.proto.f).unwrap_or(1.0)
        } else {
            1.0
        };
        let scales: Vec<f32> = q.params.iter().map(|p| p.scale * alpha).collect();
        let sdims = match (layout, is_conv) {
            (Layout::PerTensor, _) => vec![],
            (_, true) => std::iter::once(dims[0] as i64)
                .chain(dims[2..].iter().map(|_| 1))
                .collect(),
            (_, false) => vec![dims[1] as i64],
        };
        let ws = f32_tensor(
            &scope::unique_name(taken, &format!("{}_scale", c.weight)),
            sdims,
            &scales,
        );
        let int_out = scope::unique_name(taken, &format!("{base}_integer"));
        let float_out = scope::unique_name(taken, &format!("{base}_integer_float"));
        let scale_out = scope::unique_name(taken, &format!("{base}_output_scale"));
        let int_op = if is_conv {
            "ConvInteger"
        } else {
            "MatMulInteger"
        };
        let attrs = if is_conv {
            n.attributes.clone()
        } else {
            vec![]
        };
        rw.nodes.push(node(
            &scope::unique_name(taken, &format!("{base}_{int_op}")),
            int_op,
            &[&aq, wq.name(), &azp, wz.name()],
            &int_out,
            attrs,
        ));
        rw.nodes.push(node(
            &scope::unique_name(taken, &format!("{base}_cast")),
            "Cast",
            &[&int_out],
            &float_out,
            vec![int_attribute("to", i64::from(DataType::FLOAT.0))],
        ));
        rw.nodes.push(node(
            &scope::unique_name(taken, &format!("{base}_scales_mul")),
            "Mul",
            &[&ascale, ws.name()],
            &scale_out,
            vec![],
        ));
        let bias = bias_input(g, &n, taken, &mut rw, &c);
        let scaled = if bias.is_some() {
            scope::unique_name(taken, &format!("{base}_scaled"))
        } else {
            out.clone()
        };
        rw.nodes.push(node(
            &scope::unique_name(taken, &format!("{base}_output_scale_mul")),
            "Mul",
            &[&float_out, &scale_out],
            &scaled,
            vec![],
        ));
        if let Some(b) = bias {
            rw.nodes.push(node(
                &scope::unique_name(taken, &format!("{base}_bias_add")),
                "Add",
                &[&scaled, &b],
                &out,
                vec![],
            ));
        }
        let bytes_after = wq.data_byte_len() + wz.data_byte_len() + ws.data_byte_len();
        rw.tensors.extend([wq, wz, ws]);
        c.entry.status = Status::Quantized;
        c.entry.integer = true;
        c.entry.form = Some(format!(
            "DynamicQuantizeLinear + {int_op} (uint8 × {}, {} {})",
            t.name(),
            layout
                .describe()
                .replace(" (axis 1)", "")
                .replace(" (axis 0)", ""),
            if symmetric { "symmetric" } else { "asymmetric" }
        ));
        c.entry.weight_sqnr_db = scheme::sqnr_db(&w, &q.dequantized);
        c.entry.weight_bytes_after = Some(bytes_after);
        report.nodes.push(c.entry);
        rewrites.push(rw);
    }
    apply(g, cx, rewrites);
}

/// The bias to add after scaling: Conv's B reshaped to [C, 1, …], Gemm's `beta·C`.
fn bias_input(
    g: &Graph,
    n: &Node,
    taken: &mut HashSet<String>,
    rw: &mut Rewrite,
    c: &Candidate,
) -> Option<String> {
    let b = n.inputs().get(2).filter(|s| !s.is_empty())?;
    let base = &n.outputs()[0];
    match n.op_type() {
        "Conv" => {
            let t = g.initializer(b)?;
            let v = t.to_f32_vec().ok()?;
            let dims: Vec<i64> = std::iter::once(v.len() as i64)
                .chain(c.dims[2..].iter().map(|_| 1))
                .collect();
            let name = scope::unique_name(taken, &format!("{base}_bias"));
            rw.tensors.push(f32_tensor(&name, dims, &v));
            rw.stale.push(b.clone());
            Some(name)
        }
        "Gemm" => {
            let beta = n.attribute("beta").and_then(|a| a.proto.f).unwrap_or(1.0);
            if beta == 1.0 {
                return Some(b.clone());
            }
            let t = g.initializer(b)?;
            let v: Vec<f32> = t.to_f32_vec().ok()?.iter().map(|x| x * beta).collect();
            let name = scope::unique_name(taken, &format!("{base}_bias"));
            rw.tensors.push(f32_tensor(&name, t.dims().to_vec(), &v));
            rw.stale.push(b.clone());
            Some(name)
        }
        _ => None,
    }
}

fn apply(g: &mut Graph, cx: &GraphCx, rewrites: Vec<Rewrite>) {
    let doomed: Vec<NodeIndex> = rewrites.iter().map(|r| r.at).collect();
    let mut stale = HashSet::new();
    let mut inserted = Vec::new();
    for rw in rewrites {
        inserted.extend(rw.nodes.into_iter().map(|n| (rw.at, n)));
        for t in rw.tensors {
            scope::add_initializer(g, t, cx);
        }
        stale.extend(rw.stale);
    }
    g.insert_nodes_before(inserted);
    g.remove_nodes(&doomed);
    drop_unused(g, cx, &stale);
}
