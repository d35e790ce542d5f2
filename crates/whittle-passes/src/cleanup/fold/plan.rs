//! Deciding which nodes of one graph fold: constant lookup (converted on first use),
//! the per-node budget, and the fold itself (kernels in [`super::eval`], partly known
//! shapes in [`super::partial`]).
use super::value::{FoldError, Value};
use super::{eval, partial};
use crate::PassReport;
use crate::cleanup::scope::{self, GraphCx, Uses};
use std::collections::{HashMap, HashSet};
use whittle_ir::shape::ShapeMap;
use whittle_ir::{Graph, Tensor};

/// Constants visible in one graph, converted to [`Value`]s on first use.
pub(super) struct Constants<'a> {
    pub tensors: HashMap<String, &'a Tensor>,
    pub values: HashMap<String, Value>,
    pub bad: HashSet<String>,
}

impl Constants<'_> {
    fn get(&mut self, name: &str) -> Option<Result<&Value, FoldError>> {
        if !self.values.contains_key(name) {
            let t = self.tensors.get(name)?;
            match Value::from_tensor(t) {
                Ok(v) => {
                    self.values.insert(name.to_string(), v);
                }
                Err(e) => {
                    self.bad.insert(name.to_string());
                    return Some(Err(e));
                }
            }
        }
        self.values.get(name).map(Ok)
    }

    fn is_constant(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.tensors.contains_key(name)
    }
}

/// A fold decided for one node: its outputs' values.
pub(super) struct Folded {
    pub node: petgraph::stable_graph::NodeIndex,
    pub outputs: Vec<(String, Value)>,
    /// Folded from constants inside a subgraph: the value can live in the enclosing graph
    /// (so copies made in several branches merge there, and the originals can go).
    pub hoist: bool,
}

/// Decides which nodes fold (in order, so chains fold in one run).
pub(super) fn plan(
    g: &Graph,
    cx: &GraphCx,
    consts: &mut Constants,
    uses: &Uses,
    shapes: &ShapeMap,
    limit: u64,
    report: &mut PassReport,
) -> Vec<Folded> {
    let mut folded = Vec::new();
    // Outputs of Shape nodes whose dims are only partly known.
    let mut partial: HashMap<String, Vec<Option<i64>>> = HashMap::new();
    for (pos, (ix, n)) in g.nodes().enumerate() {
        if n.domain() != "" || n.op_type() == "Constant" || n.inputs().iter().all(String::is_empty)
        {
            continue;
        }
        if n.subgraphs().next().is_some() {
            continue;
        }
        let op = n.op_type();
        // Shape/Size of a value whose (selected) dims are statically known.
        if matches!(op, "Shape" | "Size") && !consts.is_constant(&n.inputs()[0]) {
            let Some(out) = n.outputs().first().filter(|o| !o.is_empty()) else {
                continue;
            };
            let known = match op {
                "Shape" => partial::partial_shape(n, shapes),
                _ => None,
            };
            let v = match (
                &known,
                shapes.get(&n.inputs()[0]).and_then(|s| s.known_dims()),
            ) {
                (Some(dims), _) if dims.iter().all(Option::is_some) => {
                    let d: Vec<i64> = dims.iter().flatten().copied().collect();
                    Some(Value::from_vec(vec![d.len()], &d))
                }
                (None, Some(dims)) if op == "Size" => Some(Value::from_vec(
                    vec![],
                    &[dims.iter().product::<u64>() as i64],
                )),
                _ => None,
            };
            match v {
                Some(v) => {
                    report.changes.push(format!(
                        "folded {} from the static shape -> {out}: {}",
                        n.label(pos),
                        describe(&v)
                    ));
                    consts.values.insert(out.clone(), v.clone());
                    folded.push(Folded {
                        node: ix,
                        outputs: vec![(out.clone(), v)],
                        hoist: false,
                    });
                }
                None => {
                    if let Some(p) = known {
                        partial.insert(out.clone(), p);
                    }
                }
            }
            continue;
        }
        let rest_constant = n
            .inputs()
            .iter()
            .skip(1)
            .all(|i| i.is_empty() || consts.is_constant(i));
        if let (true, Some(shape)) = (
            matches!(op, "Gather" | "Slice") && rest_constant,
            partial.get(&n.inputs()[0]),
        ) {
            for i in n.inputs().iter().skip(1).filter(|i| !i.is_empty()) {
                let _ = consts.get(i);
            }
            let rest: Vec<Option<&Value>> =
                n.inputs().iter().map(|i| consts.values.get(i)).collect();
            if let (Some(v), Some(out)) = (
                partial::select_known(n, shape, &rest, cx.opset),
                n.outputs().first(),
            ) {
                report.changes.push(format!(
                    "folded {} from the known dims -> {out}: {}",
                    n.label(pos),
                    describe(&v)
                ));
                consts.values.insert(out.clone(), v.clone());
                folded.push(Folded {
                    node: ix,
                    outputs: vec![(out.clone(), v)],
                    hoist: false,
                });
            }
            continue;
        }
        if !n
            .inputs()
            .iter()
            .all(|i| i.is_empty() || consts.is_constant(i))
        {
            continue;
        }
        // Convert (and cache) every input first, then borrow them all: no copies.
        let mut failed = None;
        for i in n.inputs().iter().filter(|i| !i.is_empty()) {
            match consts.get(i) {
                Some(Ok(_)) => {}
                Some(Err(e)) => failed = Some(format!("input {i:?}: {e}")),
                None => failed = Some(format!("input {i:?} is not constant")),
            }
        }
        if let Some(why) = failed {
            report.skipped.push(format!("{}: {why}", n.label(pos)));
            continue;
        }
        let refs: Vec<Option<&Value>> = n.inputs().iter().map(|i| consts.values.get(i)).collect();
        let budget = budget_for(n.inputs(), &refs, uses, cx, g, limit);
        match eval::eval(n, &refs, cx.opset, budget) {
            Ok(outs) if outs.len() == n.outputs().len() => {
                let outputs: Vec<(String, Value)> = n
                    .outputs()
                    .iter()
                    .cloned()
                    .zip(outs)
                    .filter(|(name, _)| !name.is_empty())
                    .collect();
                let shown: Vec<String> = outputs
                    .iter()
                    .map(|(name, v)| format!("{name}: {}", describe(v)))
                    .collect();
                report
                    .changes
                    .push(format!("folded {} -> {}", n.label(pos), shown.join(", ")));
                for (name, v) in &outputs {
                    consts.values.insert(name.clone(), v.clone());
                }
                folded.push(Folded {
                    node: ix,
                    outputs,
                    hoist: !cx.is_main,
                });
            }
            Ok(_) => report.skipped.push(format!(
                "{}: kernel returned the wrong number of outputs",
                n.label(pos)
            )),
            Err(e) => report.skipped.push(format!("{}: {e}", n.label(pos))),
        }
    }
    folded
}

/// The byte budget of one node's outputs: the limit, or the size of its constant inputs
/// when this node is their only user (folding then replaces data, it does not add any).
fn budget_for(
    names: &[String],
    inputs: &[Option<&Value>],
    uses: &Uses,
    cx: &GraphCx,
    g: &Graph,
    limit: u64,
) -> u64 {
    let mut own = 0u64;
    for (name, v) in names.iter().zip(inputs) {
        let Some(v) = v else { continue };
        let exclusive = uses.consumers(name).len() == 1
            && !uses.is_output(name)
            && scope::is_constant_init(g, name, cx);
        if !exclusive {
            return limit;
        }
        own += v.bytes.len() as u64;
    }
    limit.max(own)
}

/// `i64[2] = [1, -1]` (values shown for small integer tensors), `f32[3,4]`.
fn describe(v: &Value) -> String {
    let dims: Vec<String> = v.dims.iter().map(|d| d.to_string()).collect();
    let ty = format!("{}[{}]", v.dtype, dims.join(","));
    match v.to_i64s() {
        Ok(x) if x.len() <= 8 && !v.dtype.is_float() => format!("{ty} = {x:?}"),
        _ => ty,
    }
}
