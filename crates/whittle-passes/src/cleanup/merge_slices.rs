//! Two consecutive `Slice` nodes over different axes merged into one (exporters write one
//! Slice per axis, e.g. `x[:, 1:, ::2]`).
//!
//! Invariants:
//! - only when every start/end/axis/step is constant, the axes of the two slices are
//!   disjoint (negative axes are resolved with the rank from shape inference, or the
//!   pair is left alone), and the first slice's output has no other use;
//! - the first node becomes the merged slice (reading new i64 initializers, or merged
//!   attributes before opset 10) and takes over the second node's output name.
use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::ShapeMap;
use whittle_ir::{Graph, Model, Node, Tensor};

/// The Slice-merging pass.
#[derive(Default)]
pub struct MergeSlices;

impl Pass for MergeSlices {
    fn name(&self) -> &'static str {
        "merge-slices"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        let shapes =
            whittle_ir::shape::infer_shapes(model, &Default::default()).unwrap_or_default();
        let mut taken = scope::all_names(&model.graph);
        scope::bottom_up_with_constants(
            &mut model.graph,
            cx,
            &HashMap::new(),
            &mut |g, cx, outer| merge(g, cx, outer, &shapes, &mut taken, &mut report),
        );
        Ok(report)
    }
}

type Ix = petgraph::stable_graph::NodeIndex;

/// One slice's parameters: (starts, ends, axes, steps), axes resolved to non-negative.
type Params = (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>);

fn merge(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    shapes: &ShapeMap,
    taken: &mut HashSet<String>,
    report: &mut PassReport,
) {
    if !cx.can_add_initializers() {
        return;
    }
    let uses = Uses::of(g);
    let mut plans: Vec<(Ix, Ix, Params, String)> = Vec::new();
    {
        let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
        let consts = scope::constants(g, &cx, &refs);
        let producers: HashMap<&str, Ix> = g
            .nodes()
            .flat_map(|(ix, n)| n.outputs().first().map(|o| (o.as_str(), ix)))
            .collect();
        let labels: HashMap<_, _> = g
            .nodes()
            .enumerate()
            .map(|(pos, (ix, n))| (ix, n.label(pos)))
            .collect();
        let mut used: HashSet<Ix> = HashSet::new();
        for (ix, second) in g.nodes() {
            if second.op_type() != "Slice" || second.domain() != "" || second.outputs().len() != 1 {
                continue;
            }
            let Some(x) = second.inputs().first() else {
                continue;
            };
            let Some(&p) = producers.get(x.as_str()) else {
                continue;
            };
            let Some(first) = g.node(p) else { continue };
            if first.op_type() != "Slice" || first.domain() != "" || uses.sole_consumer(x).is_none()
            {
                continue;
            }
            if used.contains(&p) || used.contains(&ix) {
                continue;
            }
            let rank = first
                .inputs()
                .first()
                .and_then(|d| shapes.dims(d))
                .map(<[_]>::len);
            let (Some(a), Some(b)) = (
                params(first, &consts, cx.opset, rank),
                params(second, &consts, cx.opset, rank),
            ) else {
                continue;
            };
            if a.2.iter().any(|ax| b.2.contains(ax)) {
                continue;
            }
            let cat = |x: &[i64], y: &[i64]| [x, y].concat();
            let merged = (
                cat(&a.0, &b.0),
                cat(&a.1, &b.1),
                cat(&a.2, &b.2),
                cat(&a.3, &b.3),
            );
            report
                .changes
                .push(format!("merged {} into {}", labels[&ix], labels[&p]));
            used.insert(p);
            used.insert(ix);
            plans.push((p, ix, merged, second.outputs()[0].clone()));
        }
    }
    let mut doomed = Vec::new();
    let mut new_inits = Vec::new();
    for (first, second, (starts, ends, axes, steps), out) in plans {
        let Some(n) = g.node_mut(first) else { continue };
        let old_out = std::mem::replace(&mut n.proto.output[0], out);
        if cx.opset < 10 {
            n.attributes
                .retain(|a| !matches!(a.proto.name(), "starts" | "ends" | "axes"));
            for (name, v) in [("starts", &starts), ("ends", &ends), ("axes", &axes)] {
                n.attributes.push(super::attrs::ints_attribute(name, v));
            }
        } else {
            let base = if n.name().is_empty() {
                old_out
            } else {
                n.name().to_string()
            };
            let mut names = Vec::new();
            for (what, v) in [
                ("starts", &starts),
                ("ends", &ends),
                ("axes", &axes),
                ("steps", &steps),
            ] {
                let name = scope::unique_name(taken, &format!("{base}_{what}"));
                let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                new_inits.push(Tensor::new_raw(
                    &name,
                    whittle_ir::DataType::INT64,
                    vec![v.len() as i64],
                    bytes::Bytes::from(data),
                ));
                names.push(name);
            }
            let data = n.proto.input[0].clone();
            n.proto.input = std::iter::once(data).chain(names).collect();
        }
        doomed.push(second);
    }
    g.remove_nodes(&doomed);
    for t in new_inits {
        scope::add_initializer(g, t, &cx);
    }
}

/// The constant parameters of a Slice, axes made non-negative (`rank` needed for negative ones).
fn params(
    n: &Node,
    consts: &HashMap<String, &Tensor>,
    opset: i64,
    rank: Option<usize>,
) -> Option<Params> {
    let ints = |i: usize| -> Option<Option<Vec<i64>>> {
        match n.inputs().get(i).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(name) => {
                let t = consts.get(name.as_str())?;
                Some(Some(
                    super::fold::value::Value::from_tensor(t)
                        .ok()?
                        .to_i64s()
                        .ok()?,
                ))
            }
        }
    };
    let (starts, ends, axes, steps) = if opset < 10 {
        let a = |k: &str| n.attr_ints(k).map(<[i64]>::to_vec);
        (a("starts")?, a("ends")?, a("axes"), None)
    } else {
        (ints(1)??, ints(2)??, ints(3)?, ints(4)?)
    };
    let k = starts.len();
    let axes = axes.unwrap_or_else(|| (0..k as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; k]);
    if ends.len() != k || axes.len() != k || steps.len() != k {
        return None;
    }
    let axes = axes
        .into_iter()
        .map(|a| {
            if a >= 0 {
                Some(a)
            } else {
                rank.map(|r| a + r as i64).filter(|&x| x >= 0)
            }
        })
        .collect::<Option<Vec<_>>>()?;
    Some((starts, ends, axes, steps))
}
