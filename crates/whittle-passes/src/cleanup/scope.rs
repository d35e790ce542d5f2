//! Scope bookkeeping shared by the clean-up passes: what a graph defines, what it reads
//! from enclosing graphs, who uses a value, renaming uses, and adding or removing
//! initializers.
//!
//! Invariants:
//! - a value read by a subgraph (directly or through deeper subgraphs) counts as used by
//!   the node holding that subgraph: [`Uses`] records it as an implicit use;
//! - renaming never reaches into a subgraph that defines the old name itself (shadowing),
//!   and callers check [`rename_is_safe`] so a subgraph never captures the new name;
//! - in models older than IR 4 every initializer is also listed as a graph input; the
//!   helpers here keep that listing in step ([`GraphCx::legacy`]).
use petgraph::stable_graph::NodeIndex;
use std::collections::{BTreeSet, HashMap, HashSet};
use whittle_ir::proto::tensor_shape_proto::{Dimension, dimension};
use whittle_ir::proto::{TensorShapeProto, TypeProto, ValueInfoProto, type_proto};
use whittle_ir::{Graph, Model, Node, Tensor};

/// What a pass needs to know about the graph it is rewriting.
#[derive(Clone, Copy, Debug)]
pub struct GraphCx {
    /// Opset of the default domain (0 when the model does not import it).
    pub opset: i64,
    /// The model is older than IR 4: initializers double as graph inputs, and those inputs
    /// are weights (onnxruntime does not let them be fed), not real inputs.
    pub legacy: bool,
    /// True for the model's main graph, false inside `If`/`Loop`/`Scan` bodies.
    pub is_main: bool,
}

impl GraphCx {
    pub fn main(model: &Model) -> GraphCx {
        GraphCx {
            opset: model.opset("").unwrap_or(0),
            legacy: model.proto.ir_version.unwrap_or(0) < 4,
            is_main: true,
        }
    }

    pub fn sub(self) -> GraphCx {
        GraphCx {
            is_main: false,
            ..self
        }
    }

    /// Whether a pass may add initializers to this graph. In a legacy subgraph a new
    /// initializer would need a new graph input, which changes the body's signature.
    pub fn can_add_initializers(&self) -> bool {
        !self.legacy || self.is_main
    }
}

/// Names this graph defines itself: inputs, initializers, sparse initializers, node outputs.
pub fn defined_here(g: &Graph) -> HashSet<String> {
    let mut d: HashSet<String> = g.input_names().map(str::to_string).collect();
    d.extend(g.initializers.iter().map(|t| t.name().to_string()));
    d.extend(
        g.proto
            .sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref())
            .map(|v| v.name().to_string()),
    );
    for (_, n) in g.nodes() {
        d.extend(n.outputs().iter().filter(|o| !o.is_empty()).cloned());
    }
    d
}

/// Names `g` (or any graph nested in it) reads without defining them: its outer-scope
/// references.
pub fn free_vars(g: &Graph) -> BTreeSet<String> {
    let defined = defined_here(g);
    let mut free = BTreeSet::new();
    for (_, n) in g.nodes() {
        for i in n.inputs().iter().filter(|i| !i.is_empty()) {
            if !defined.contains(i) {
                free.insert(i.clone());
            }
        }
        for v in implicit_inputs(n) {
            if !defined.contains(&v) {
                free.insert(v);
            }
        }
    }
    for o in g.output_names() {
        if !defined.contains(o) {
            free.insert(o.to_string());
        }
    }
    free
}

/// Values of the enclosing graph that `n`'s subgraphs read.
pub fn implicit_inputs(n: &Node) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in n.subgraphs() {
        out.extend(free_vars(sub));
    }
    out
}

/// One use of a value inside a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    pub node: NodeIndex,
    /// The input slot, or `None` when the node's subgraphs read the value.
    pub slot: Option<usize>,
}

/// Every use of every value in one graph (not counting deeper graphs separately: a use
/// inside a subgraph is an implicit use by the node that holds it).
#[derive(Default, Debug)]
pub struct Uses {
    by_value: HashMap<String, Vec<Use>>,
    outputs: HashSet<String>,
}

impl Uses {
    pub fn of(g: &Graph) -> Uses {
        let mut u = Uses {
            outputs: g.output_names().map(str::to_string).collect(),
            ..Default::default()
        };
        for (ix, n) in g.nodes() {
            for (slot, i) in n.inputs().iter().enumerate().filter(|(_, i)| !i.is_empty()) {
                u.by_value.entry(i.clone()).or_default().push(Use {
                    node: ix,
                    slot: Some(slot),
                });
            }
            for v in implicit_inputs(n) {
                u.by_value.entry(v).or_default().push(Use {
                    node: ix,
                    slot: None,
                });
            }
        }
        u
    }

    pub fn consumers(&self, name: &str) -> &[Use] {
        self.by_value.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn is_output(&self, name: &str) -> bool {
        self.outputs.contains(name)
    }

    /// Used by a node or as a graph output.
    pub fn is_used(&self, name: &str) -> bool {
        self.is_output(name) || !self.consumers(name).is_empty()
    }

    /// The only consumer of `name`, when it has exactly one (through a real input slot)
    /// and is not a graph output.
    pub fn sole_consumer(&self, name: &str) -> Option<Use> {
        match self.consumers(name) {
            [u] if u.slot.is_some() && !self.is_output(name) => Some(*u),
            _ => None,
        }
    }
}

/// Follows a rename map to its end (`a → b → c` gives `c`); cycles stop where they close.
pub fn resolve<'a>(map: &'a HashMap<String, String>, name: &'a str) -> &'a str {
    let mut cur = name;
    let mut steps = 0;
    while let Some(next) = map.get(cur) {
        cur = next;
        steps += 1;
        if steps > map.len() {
            break;
        }
    }
    cur
}

/// Renames uses of values in `g` (node inputs, and reads inside subgraphs that do not
/// define the old name themselves). Graph outputs of `g` itself are renamed only when
/// `rename_outputs` is set (subgraph outputs that name outer values are always renamed).
pub fn rename_uses(g: &mut Graph, map: &HashMap<String, String>, rename_outputs: bool) {
    if map.is_empty() {
        return;
    }
    let full: HashMap<String, String> = map
        .keys()
        .map(|k| (k.clone(), resolve(map, k).to_string()))
        .collect();
    rename_in(g, &full, rename_outputs);
}

fn rename_in(g: &mut Graph, map: &HashMap<String, String>, rename_outputs: bool) {
    for n in g.nodes_mut() {
        for i in n.proto.input.iter_mut() {
            if let Some(to) = map.get(i.as_str()) {
                *i = to.clone();
            }
        }
        for sub in n.subgraphs_mut() {
            let local = defined_here(sub);
            let inner: HashMap<String, String> = map
                .iter()
                .filter(|(k, _)| !local.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !inner.is_empty() {
                rename_in(sub, &inner, true);
            }
        }
    }
    if rename_outputs {
        for o in g.proto.output.iter_mut() {
            if let Some(to) = map.get(o.name()) {
                o.name = Some(to.clone());
            }
        }
    }
    g.rebuild_edges();
}

/// Whether uses of `from` can become uses of `to` without a subgraph capturing `to`: no
/// subgraph that reads `from` from outside defines a value named `to`.
pub fn rename_is_safe(g: &Graph, from: &str, to: &str) -> bool {
    fn ok(g: &Graph, from: &str, to: &str) -> bool {
        g.nodes().all(|(_, n)| {
            n.subgraphs().all(|sub| {
                if !free_vars(sub).contains(from) {
                    return true;
                }
                !defined_here(sub).contains(to) && ok(sub, from, to)
            })
        })
    }
    ok(g, from, to)
}

/// Renames or drops `value_info` entries: entries for names in `drop` go, entries for
/// names in `rename` are renamed unless the new name already has an entry.
pub fn fix_value_info(g: &mut Graph, drop: &HashSet<String>, rename: &HashMap<String, String>) {
    let mut taken: HashSet<String> = g
        .proto
        .value_info
        .iter()
        .map(|v| v.name().to_string())
        .collect();
    g.proto.value_info.retain_mut(|v| {
        let name = v.name().to_string();
        if drop.contains(&name) {
            return false;
        }
        if let Some(to) = rename.get(&name) {
            if taken.contains(to) || g.proto.output.iter().any(|o| o.name() == to) {
                return false;
            }
            taken.insert(to.clone());
            v.name = Some(to.clone());
        }
        true
    });
}

/// Whether `name` is a constant of `g`: an initializer that no graph input overrides (in
/// legacy models initializers are listed as inputs and are still constants).
pub fn is_constant_init(g: &Graph, name: &str, cx: &GraphCx) -> bool {
    g.initializer(name).is_some() && (cx.legacy || !g.input_names().any(|i| i == name))
}

/// The constants visible in `g`: its own non-overridable initializers plus `outer` ones
/// that `g` does not redefine.
pub fn constants<'a>(
    g: &'a Graph,
    cx: &GraphCx,
    outer: &HashMap<String, &'a Tensor>,
) -> HashMap<String, &'a Tensor> {
    let local = defined_here(g);
    let mut c: HashMap<String, &Tensor> = outer
        .iter()
        .filter(|(k, _)| !local.contains(*k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for t in &g.initializers {
        if is_constant_init(g, t.name(), cx) {
            c.insert(t.name().to_string(), t);
        }
    }
    c
}

/// A `ValueInfoProto` declaring a tensor's type and dims.
pub fn tensor_value_info(t: &Tensor) -> ValueInfoProto {
    let dims = t
        .dims()
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(t.name().to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(t.dtype().0),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Adds an initializer (and, in legacy models, its graph input).
pub fn add_initializer(g: &mut Graph, t: Tensor, cx: &GraphCx) {
    if cx.legacy && !g.input_names().any(|i| i == t.name()) {
        g.proto.input.push(tensor_value_info(&t));
    }
    g.initializers.push(t);
}

/// Removes initializers by name (and, in a legacy main graph, the graph inputs that only
/// mirror them).
pub fn remove_initializers(g: &mut Graph, names: &HashSet<String>, cx: &GraphCx) {
    if names.is_empty() {
        return;
    }
    g.initializers.retain(|t| !names.contains(t.name()));
    if cx.legacy && cx.is_main {
        g.proto.input.retain(|i| !names.contains(i.name()));
    }
}

/// The first of `base`, `base_1`, `base_2`, … not in `taken`; records it as taken.
pub fn unique_name(taken: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while taken.contains(&name) {
        name = format!("{base}_{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

/// Every name used anywhere in the model (for picking fresh names).
pub fn all_names(g: &Graph) -> HashSet<String> {
    let mut names = HashSet::new();
    g.walk(&mut |sub, _| {
        names.extend(defined_here(sub));
        names.extend(
            sub.nodes()
                .filter(|(_, n)| !n.name().is_empty())
                .map(|(_, n)| n.name().to_string()),
        );
    });
    names
}

/// A node label for reports: `name (Op)` or `#i Op`.
pub fn label(g: &Graph, ix: NodeIndex) -> String {
    let pos = g.nodes().position(|(i, _)| i == ix).unwrap_or(0);
    g.node(ix)
        .map_or_else(|| format!("#{pos}"), |n| n.label(pos))
}

/// Runs `body` on every subgraph of `g` (depth first, in node order) and then on `g`
/// itself, so a graph is rewritten after everything nested in it. `path` is the chain of
/// nodes holding the graph (`"if0" (If)/`), for report lines.
pub fn bottom_up(
    g: &mut Graph,
    cx: GraphCx,
    path: &str,
    report: &mut crate::PassReport,
    body: fn(&mut Graph, GraphCx, &str, &mut crate::PassReport),
) {
    for (k, n) in g.nodes_mut().enumerate() {
        let label = format!("{path}{}/", n.label(k));
        for sub in n.subgraphs_mut() {
            bottom_up(sub, cx.sub(), &label, report, body);
        }
    }
    body(g, cx, path, report);
}

/// Constants by name, owned (as handed from a graph to its subgraphs).
pub type Constants = HashMap<String, Tensor>;

/// The constants of `g` and its enclosing graphs, owned (for handing to subgraphs).
pub fn visible_constants(
    g: &Graph,
    cx: &GraphCx,
    outer: &HashMap<String, Tensor>,
) -> HashMap<String, Tensor> {
    let refs: HashMap<String, &Tensor> = outer.iter().map(|(k, v)| (k.clone(), v)).collect();
    constants(g, cx, &refs)
        .into_iter()
        .map(|(k, v)| (k, v.clone()))
        .collect()
}

/// Runs `body` on every subgraph of `g` (depth first, in node order) and then on `g`
/// itself, handing each graph the constants of the graphs enclosing it (`outer` for `g`),
/// taken before anything nested is rewritten — the walk the fusion passes share.
pub fn bottom_up_with_constants(
    g: &mut Graph,
    cx: GraphCx,
    outer: &HashMap<String, Tensor>,
    body: &mut dyn FnMut(&mut Graph, GraphCx, &Constants),
) {
    let inner = visible_constants(g, &cx, outer);
    for n in g.nodes_mut() {
        for sub in n.subgraphs_mut() {
            bottom_up_with_constants(sub, cx.sub(), &inner, body);
        }
    }
    body(g, cx, outer);
}
