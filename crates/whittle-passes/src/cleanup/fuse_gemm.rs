//! `MatMul` + `Add(bias)` fused into one `Gemm`.
//!
//! Invariants:
//! - only where `Gemm` computes the same thing: `A` is 2-D (known from shape inference),
//!   `B` is a 2-D constant `[K, N]`, the bias is a constant of the same dtype (f32 or f64)
//!   that broadcasts to `[M, N]` without changing it (`[]`, `[1]`, `[N]`, `[1,N]`, `[M,1]`,
//!   `[M,N]`), the `MatMul` output has no other use, and the opset is at least 7 (where
//!   Gemm's `C` broadcasts);
//! - the `MatMul` node becomes the `Gemm` (same name), taking the `Add`'s output name.
use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::{Dim, ShapeMap};
use whittle_ir::{DataType, Graph, Model, Tensor};

/// The MatMul+Add → Gemm pass.
#[derive(Default)]
pub struct FuseGemm;

impl Pass for FuseGemm {
    fn name(&self) -> &'static str {
        "fuse-gemm"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        if cx.opset < 7 {
            report.skipped.push(format!(
                "opset {} < 7: Gemm's C does not broadcast",
                cx.opset
            ));
            return Ok(report);
        }
        let shapes =
            whittle_ir::shape::infer_shapes(model, &Default::default()).unwrap_or_default();
        scope::bottom_up_with_constants(
            &mut model.graph,
            cx,
            &HashMap::new(),
            &mut |g, cx, outer| fuse(g, cx, outer, &shapes, &mut report),
        );
        Ok(report)
    }
}

type Ix = petgraph::stable_graph::NodeIndex;

fn fuse(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    report: &mut PassReport,
) {
    let uses = Uses::of(g);
    // (MatMul, Add, bias, output)
    let mut plans: Vec<(Ix, Ix, String, String)> = Vec::new();
    {
        let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
        let consts = scope::constants(g, &cx, &refs);
        let labels: HashMap<_, _> = g
            .nodes()
            .enumerate()
            .map(|(pos, (ix, n))| (ix, n.label(pos)))
            .collect();
        for (ix, n) in g.nodes() {
            if n.op_type() != "MatMul"
                || n.domain() != ""
                || n.inputs().len() != 2
                || n.outputs().len() != 1
            {
                continue;
            }
            let y = &n.outputs()[0];
            let Some(add) = uses.sole_consumer(y) else {
                continue;
            };
            let Some(an) = g.node(add.node) else { continue };
            if an.op_type() != "Add"
                || an.domain() != ""
                || an.inputs().len() != 2
                || an.outputs().len() != 1
            {
                continue;
            }
            let bias = &an.inputs()[1 - add.slot.unwrap_or(0)];
            if bias == y {
                continue;
            }
            match check(&n.inputs()[0], &n.inputs()[1], bias, &consts, shapes) {
                Ok(()) => {
                    report.changes.push(format!(
                        "fused {} and {} into Gemm",
                        labels[&ix], labels[&add.node]
                    ));
                    plans.push((ix, add.node, bias.clone(), an.outputs()[0].clone()));
                }
                Err(why) => report
                    .skipped
                    .push(format!("{} + {}: {why}", labels[&ix], labels[&add.node])),
            }
        }
    }
    let mut doomed = Vec::new();
    let mut dropped = HashSet::new();
    for (mm, add, bias, out) in plans {
        if let Some(n) = g.node_mut(mm) {
            dropped.insert(n.proto.output[0].clone());
            n.proto.op_type = Some("Gemm".into());
            n.proto.input.push(bias);
            n.proto.output[0] = out;
        }
        doomed.push(add);
    }
    g.remove_nodes(&doomed);
    scope::fix_value_info(g, &dropped, &HashMap::new());
}

/// Whether `MatMul(a, b) + bias` is a Gemm.
fn check(
    a: &str,
    b: &str,
    bias: &str,
    consts: &HashMap<String, &Tensor>,
    shapes: &ShapeMap,
) -> Result<(), String> {
    let bt = consts
        .get(b)
        .ok_or_else(|| format!("B {b:?} is not constant"))?;
    let ct = consts
        .get(bias)
        .ok_or_else(|| format!("bias {bias:?} is not constant"))?;
    if !matches!(bt.dtype(), DataType::FLOAT | DataType::DOUBLE) || ct.dtype() != bt.dtype() {
        return Err(format!(
            "dtypes {} and {} (Gemm here: f32 or f64)",
            bt.dtype(),
            ct.dtype()
        ));
    }
    let [_, n] = bt.dims() else {
        return Err(format!("B has dims {:?}, not 2-D", bt.dims()));
    };
    let a_dims = match consts.get(a) {
        Some(t) => Some(
            t.dims()
                .iter()
                .map(|&d| Dim::from_i64(d))
                .collect::<Vec<_>>(),
        ),
        None => shapes.dims(a).map(<[Dim]>::to_vec),
    };
    let m = match a_dims.as_deref() {
        Some([m, _]) => m.known(),
        Some(d) => return Err(format!("A has rank {}; Gemm needs 2-D", d.len())),
        None => return Err("A's rank is unknown".into()),
    };
    let n = *n;
    let ok = match ct.dims() {
        [] | [1] | [1, 1] => true,
        [x] | [1, x] => *x == n,
        [r, 1] => m.is_some_and(|m| m as i64 == *r),
        [r, x] => *x == n && m.is_some_and(|m| m as i64 == *r),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bias dims {:?} do not broadcast to [M, {n}] unchanged",
            ct.dims()
        ))
    }
}
