//! Walking the model: every graph (subgraphs first), every ai.onnx node through its
//! version steps, then clean-up of what rules stopped reading. Function bodies and training
//! graphs are converted in place on their protos (attribute and input changes only).
use super::edit::{Edit, Refusal};
use super::rules::{Way, rule};
use super::scope::{Names, Scope};
use super::table::{self, Step};
use std::collections::{BTreeMap, HashSet};
use whittle_ir::node::Attribute;
use whittle_ir::proto::NodeProto;
use whittle_ir::{Graph, Model, Node, Tensor};

/// State of one conversion.
pub(super) struct Cx {
    pub from: i64,
    pub to: i64,
    pub initializers_ok: bool,
    pub names: Names,
    pub changes: Vec<String>,
    pub refusals: Vec<String>,
    /// ai.onnx nodes that only had their version bumped.
    pub bumped: usize,
    untouched: BTreeMap<String, usize>,
}

impl Cx {
    pub fn new(model: &Model, from: i64, to: i64, initializers_ok: bool) -> Cx {
        Cx {
            from,
            to,
            initializers_ok,
            names: Names::of_graph(&model.graph),
            changes: Vec::new(),
            refusals: Vec::new(),
            bumped: 0,
            untouched: BTreeMap::new(),
        }
    }

    /// One line per other domain: how many nodes were left as they are.
    pub fn skipped(&self) -> Vec<String> {
        self.untouched
            .iter()
            .map(|(d, n)| {
                let (s, they) = if *n == 1 {
                    ("", "it is")
                } else {
                    ("s", "they are")
                };
                format!("domain {d:?}: {n} node{s} left as {they} (not ai.onnx)")
            })
            .collect()
    }
}

pub(super) fn convert_main(model: &mut Model, cx: &mut Cx) {
    convert_graph(&mut model.graph, &Scope::default(), cx, "");
    let (from, to) = (cx.from, cx.to);
    for f in &mut model.proto.functions {
        let fname = format!("function {}::{}", f.domain(), f.name());
        let Some(import) = f
            .opset_import
            .iter_mut()
            .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        else {
            continue;
        };
        let fv = import.version.unwrap_or(from);
        import.version = Some(to);
        if fv < super::MIN_SOURCE {
            cx.refusals.push(format!(
                "cannot convert {fname}: it imports ai.onnx opset {fv}, older than {}",
                super::MIN_SOURCE
            ));
            continue;
        }
        convert_raw(&mut f.node, &f.output, fv, to, cx, &fname);
    }
    for (k, t) in model.proto.training_info.iter_mut().enumerate() {
        for (what, g) in [
            ("initialization", t.initialization.as_mut()),
            ("algorithm", t.algorithm.as_mut()),
        ] {
            if let Some(g) = g {
                convert_raw(
                    &mut g.node,
                    &g.output
                        .iter()
                        .map(|v| v.name().to_string())
                        .collect::<Vec<_>>(),
                    from,
                    to,
                    cx,
                    &format!("training_info {k} {what} graph"),
                );
            }
        }
    }
}

/// Names read by any node of `g` (its subgraphs included) or listed as its outputs.
fn used_names(g: &Graph) -> HashSet<String> {
    let mut used: HashSet<String> = g.output_names().map(str::to_string).collect();
    g.walk(&mut |g, _| {
        for (_, n) in g.nodes() {
            used.extend(n.inputs().iter().filter(|s| !s.is_empty()).cloned());
        }
    });
    used
}

fn convert_graph(g: &mut Graph, outer: &Scope, cx: &mut Cx, path: &str) {
    let scope = Scope::for_graph(g, outer);
    let used = used_names(g);
    let old: Vec<Node> = g.nodes().map(|(_, n)| n.clone()).collect();
    let mut nodes = Vec::with_capacity(old.len());
    let mut inits = std::mem::take(&mut g.initializers);
    let (mut released, mut dropped) = (Vec::new(), Vec::new());
    for (i, mut node) in old.into_iter().enumerate() {
        let label = match path {
            "" => node.label(i),
            p => format!("{} in {p}", node.label(i)),
        };
        for a in &mut node.attributes {
            let attr_name = a.proto.name().to_string();
            for sub in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                let sub_path = format!("subgraph {:?} of node {label}", attr_name);
                convert_graph(sub, &scope, cx, &sub_path);
            }
        }
        if !node.domain().is_empty() {
            *cx.untouched.entry(node.domain().to_string()).or_default() += 1;
            nodes.push(node);
            continue;
        }
        let mut e = new_edit(
            node,
            &scope,
            &used,
            &mut cx.names,
            cx.initializers_ok,
            cx.to,
        );
        let result = step_node(&mut e, cx.from, cx.to);
        let Edit {
            node,
            mut before,
            mut after,
            inits: mut new_inits,
            released: mut rel,
            dropped_outputs: mut drop,
            notes,
            ..
        } = e;
        match result {
            Ok(summary) => {
                record(cx, &label, &summary, &notes);
                nodes.append(&mut before);
                inits.append(&mut new_inits);
                released.append(&mut rel);
                dropped.append(&mut drop);
                nodes.push(node);
                nodes.append(&mut after);
            }
            Err(why) => {
                cx.refusals.push(format!(
                    "cannot convert node {label} from opset {} to {}: {why}",
                    cx.from, cx.to
                ));
                nodes.push(node);
            }
        }
    }
    g.proto
        .value_info
        .retain(|v| !dropped.iter().any(|d| d == v.name()));
    clean_up(&mut nodes, &mut inits, &released, g);
    *g = Graph::new(std::mem::take(&mut g.proto), inits, nodes);
}

fn new_edit<'a>(
    node: Node,
    scope: &'a Scope,
    used: &'a HashSet<String>,
    names: &'a mut Names,
    initializers_ok: bool,
    target: i64,
) -> Edit<'a> {
    Edit {
        node,
        before: Vec::new(),
        after: Vec::new(),
        inits: Vec::new(),
        released: Vec::new(),
        dropped_outputs: Vec::new(),
        notes: Vec::new(),
        scope,
        used,
        names,
        initializers_ok,
        frozen: false,
        target,
    }
}

fn record(cx: &mut Cx, label: &str, summary: &str, notes: &[String]) {
    if notes.is_empty() {
        cx.bumped += 1;
    } else {
        cx.changes
            .push(format!("node {label}: {summary}: {}", notes.join("; ")));
    }
}

/// Removes initializers and `Constant` nodes that a rule stopped reading and nothing else
/// reads (graph inputs and outputs are kept).
fn clean_up(nodes: &mut Vec<Node>, inits: &mut Vec<Tensor>, released: &[String], g: &Graph) {
    if released.is_empty() {
        return;
    }
    let mut still: HashSet<&str> = g.output_names().collect();
    still.extend(g.input_names());
    let probe = Graph::new(Default::default(), Vec::new(), nodes.clone());
    let read = used_names(&probe);
    let dead: HashSet<&str> = released
        .iter()
        .map(String::as_str)
        .filter(|r| !read.contains(*r) && !still.contains(r))
        .collect();
    inits.retain(|t| !dead.contains(t.name()));
    nodes.retain(|n| {
        !(n.op_type() == "Constant"
            && n.domain().is_empty()
            && n.outputs().iter().all(|o| dead.contains(o.as_str())))
    });
}

/// Walks `e.node` from opset `from` to `to` one schema version at a time; returns a
/// `Op-a -> Op-b` summary.
fn step_node(e: &mut Edit, from: i64, to: i64) -> Result<String, Refusal> {
    let op0 = e.op().to_string();
    let name0 = table::known(&op0)
        .ok_or_else(|| format!("{op0} is not an ai.onnx operator whittle knows"))?;
    let since0 =
        table::since(name0, from).ok_or_else(|| format!("{op0} does not exist in opset {from}"))?;
    // A deprecated schema means the same as the one before it.
    let start = if table::deprecated(name0, since0) {
        since0 - 1
    } else {
        from
    };
    let versions: Vec<i64> = if to > from {
        (start + 1..=to).collect()
    } else {
        (to + 1..=start).rev().collect()
    };
    for v in versions {
        let op = e.op().to_string();
        let name = table::known(&op)
            .ok_or_else(|| format!("{op} is not an ai.onnx operator whittle knows"))?;
        if !table::versions(name).is_some_and(|vs| vs.contains(&v)) {
            continue;
        }
        let step = table::step(name, v).unwrap_or(Step::first(name, v));
        let r = rule(name, v);
        let way = match (r, to > from) {
            (Some(r), true) => r.up,
            (Some(r), false) => r.down,
            (None, _) => Way::Generic,
        };
        apply(e, way, &step, to > from)?;
    }
    let op = e.op().to_string();
    let since_to = table::since(&op, to).ok_or_else(|| {
        let first = table::versions(&op)
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        format!("{op} does not exist before opset {first}")
    })?;
    Ok(format!("{op0}-{since0} -> {op}-{since_to}"))
}

fn apply(e: &mut Edit, way: Way, step: &Step, up: bool) -> Result<(), Refusal> {
    let unknown = || {
        let what = if step.prev == 0 {
            format!("{} was introduced in opset {}", step.op, step.since)
        } else {
            format!("{}-{} changed: {}", step.op, step.since, step.what)
        };
        Err(format!(
            "{what}; whittle has no rule to convert it {}",
            if up { "up" } else { "down" }
        ))
    };
    match way {
        Way::Generic if !step.additive => unknown(),
        Way::Generic if up => Ok(()),
        Way::Generic => e.generic_down(step),
        Way::Apply(f) => f(e, step),
        Way::Refuse(why) => Err(why.to_string()),
    }
}

/// Converts raw nodes (function bodies, training graphs) in place: only rules that change
/// attributes and inputs may apply; anything needing new nodes or constants is refused.
fn convert_raw(
    protos: &mut [NodeProto],
    outputs: &[String],
    from: i64,
    to: i64,
    cx: &mut Cx,
    path: &str,
) {
    if from == to {
        return;
    }
    let mut used: HashSet<String> = protos
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    used.extend(outputs.iter().cloned());
    let scope = Scope::default();
    for (i, np) in protos.iter_mut().enumerate() {
        for a in &mut np.attribute {
            let sub_path = format!("{path} subgraph {:?}", a.name());
            for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                let outs: Vec<String> = g.output.iter().map(|v| v.name().to_string()).collect();
                convert_raw(&mut g.node, &outs, from, to, cx, &sub_path);
            }
        }
        if !(np.domain().is_empty() || np.domain() == "ai.onnx") {
            continue;
        }
        let mut proto = np.clone();
        let attributes = std::mem::take(&mut proto.attribute)
            .into_iter()
            .map(bare_attribute)
            .collect();
        let node = Node { proto, attributes };
        let label = format!("{} in {path}", node.label(i));
        let mut e = new_edit(node, &scope, &used, &mut cx.names, false, to);
        e.frozen = true;
        let result = step_node(&mut e, from, to).and_then(|s| match e.before.is_empty() && e.after.is_empty() {
            true => Ok(s),
            false => Err("needs new nodes, which whittle does not add inside function bodies or training graphs".into()),
        });
        let Edit { node, notes, .. } = e;
        match result {
            Ok(summary) => {
                record(cx, &label, &summary, &notes);
                let mut out = node.proto;
                out.attribute = node.attributes.into_iter().map(|a| a.proto).collect();
                *np = out;
            }
            Err(why) => cx.refusals.push(format!(
                "cannot convert node {label} from opset {from} to {to}: {why}"
            )),
        }
    }
}

/// An attribute whose tensors and graphs stay inside its proto (raw conversion only reads
/// and sets plain values).
fn bare_attribute(proto: whittle_ir::proto::AttributeProto) -> Attribute {
    Attribute {
        proto,
        t: None,
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}
