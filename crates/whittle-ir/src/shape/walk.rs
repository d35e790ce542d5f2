//! The propagation itself: one pass over each graph in node order, subgraphs first where
//! a node holds them (so their values, and the outer values they read, are known).
//!
//! Invariants:
//! - a value's entry is written once (SSA: the first definition wins; a nested graph
//!   cannot replace an outer value);
//! - a declared type (`value_info`, graph outputs) only fills what the rules left unknown:
//!   a whole unknown shape, or single unknown dims of a shape of the same rank;
//! - contents are tracked for constants (initializers that are not graph inputs — or
//!   all initializers before IR 4, where weights had to be listed as inputs — and
//!   `Constant` nodes) and for what shape arithmetic computes from them.
use super::cx::{Cx, Inferred, Sv, tensor_floats, tensor_ints};
use super::dim::{Dim, ValueShape};
use super::rules::infer_node;
use crate::dtype::DataType;
use crate::graph::Graph;
use crate::node::Node;
use crate::types::{self, tensor_type};
use std::collections::{BTreeMap, HashMap, HashSet};
use whittle_proto::ValueInfoProto;

pub(super) struct State<'b> {
    pub opset: i64,
    pub ir_version: i64,
    pub bindings: &'b BTreeMap<String, u64>,
    pub shapes: BTreeMap<String, ValueShape>,
    vals: HashMap<String, Vec<Sv>>,
    floats: HashMap<String, Vec<f32>>,
}

impl<'b> State<'b> {
    pub fn new(opset: i64, ir_version: i64, bindings: &'b BTreeMap<String, u64>) -> State<'b> {
        State {
            opset,
            ir_version,
            bindings,
            shapes: BTreeMap::new(),
            vals: HashMap::new(),
            floats: HashMap::new(),
        }
    }

    /// A declared type as a shape, with the bound symbols replaced by their numbers.
    pub fn declared(&self, v: &ValueInfoProto) -> Option<ValueShape> {
        let (dtype, dims) = tensor_type(v.r#type.as_ref()?)?;
        let dims = dims.map(|d| d.iter().map(|d| self.dim_of(d)).collect());
        Some(ValueShape {
            dtype: (dtype.0 != 0).then_some(dtype),
            dims,
        })
    }

    fn dim_of(&self, d: &types::Dim) -> Dim {
        match d {
            types::Dim::Fixed(v) => Dim::from_i64(*v),
            // Some exporters name every unknown dim "?": that is no symbol to share.
            types::Dim::Symbolic(s) if s == "?" => Dim::Unknown,
            types::Dim::Symbolic(s) => self
                .bindings
                .get(s)
                .map_or_else(|| Dim::Symbolic(s.clone()), |&n| Dim::Known(n)),
            types::Dim::Unknown => Dim::Unknown,
        }
    }

    fn define(&mut self, name: &str, shape: ValueShape) {
        if !name.is_empty() {
            self.shapes.entry(name.to_string()).or_insert(shape);
        }
    }

    /// Infers every value of `g` (and of its subgraphs). `inputs` replaces the declared
    /// shapes of the named graph inputs.
    pub fn graph(&mut self, g: &Graph, inputs: &BTreeMap<String, Vec<Dim>>) {
        let input_names: HashSet<&str> = g.input_names().collect();
        for v in &g.proto.input {
            let declared = self.declared(v).unwrap_or_default();
            let shape = match inputs.get(v.name()) {
                Some(dims) => ValueShape::new(declared.dtype, dims.clone()),
                None => declared,
            };
            self.define(v.name(), shape);
        }
        for t in &g.initializers {
            let shape = ValueShape::new(
                Some(t.dtype()),
                t.dims().iter().map(|&d| Dim::from_i64(d)).collect(),
            );
            let is_input = input_names.contains(t.name());
            if is_input && !inputs.contains_key(t.name()) {
                // The initializer is the input's default value: its dims are the real ones.
                self.shapes.insert(t.name().to_string(), shape);
            } else {
                self.define(t.name(), shape);
            }
            if !is_input || self.ir_version < 4 {
                self.track(
                    t.name(),
                    tensor_ints(t).map(|v| v.into_iter().map(Sv::Int).collect()),
                    tensor_floats(t),
                );
            }
        }
        let mut fallback: HashMap<&str, ValueShape> = HashMap::new();
        for v in g.proto.value_info.iter().chain(&g.proto.output) {
            if let Some(s) = self.declared(v) {
                fallback.entry(v.name()).or_insert(s);
            }
        }
        for (_, n) in g.nodes() {
            for sub in n.subgraphs() {
                self.graph(sub, &BTreeMap::new());
            }
            let inferred = self.node(n).unwrap_or_default();
            self.record(n, inferred, &fallback);
        }
    }

    fn track(&mut self, name: &str, ints: Option<Vec<Sv>>, floats: Option<Vec<f32>>) {
        if let Some(v) = ints {
            self.vals.entry(name.to_string()).or_insert(v);
        }
        if let Some(f) = floats {
            self.floats.entry(name.to_string()).or_insert(f);
        }
    }

    fn node(&self, n: &Node) -> Option<Inferred> {
        if n.op_type() == "If" && n.domain().is_empty() {
            return Some(self.if_node(n));
        }
        let get = |name: &String| self.shapes.get(name).cloned().unwrap_or_default();
        let cx = Cx {
            node: n,
            opset: self.opset,
            ins: n.inputs().iter().map(get).collect(),
            vals: n
                .inputs()
                .iter()
                .map(|i| self.vals.get(i).cloned())
                .collect(),
            floats: n
                .inputs()
                .iter()
                .map(|i| self.floats.get(i).cloned())
                .collect(),
        };
        infer_node(&cx)
    }

    /// `If`: the taken branch's outputs when the condition is a tracked constant (shape
    /// tests such as `Equal(Gather(Shape(x), -1), 1)`), else what both branches agree on
    /// (dims that differ are unknown).
    fn if_node(&self, n: &Node) -> Inferred {
        let branch = |name: &str| n.attribute(name).and_then(|a| a.g.as_ref());
        let (Some(then_g), Some(else_g)) = (branch("then_branch"), branch("else_branch")) else {
            return Inferred::default();
        };
        let outs = |g: &Graph| -> Vec<ValueShape> {
            g.output_names()
                .map(|o| self.shapes.get(o).cloned().unwrap_or_default())
                .collect()
        };
        let cond = n.inputs().first().and_then(|c| self.vals.get(c));
        if let Some([Sv::Int(c)]) = cond.map(Vec::as_slice) {
            return Inferred::many(outs(if *c != 0 { then_g } else { else_g }));
        }
        let merged = outs(then_g)
            .into_iter()
            .zip(outs(else_g))
            .map(|(a, b)| merge(&a, &b))
            .collect();
        Inferred::many(merged)
    }

    fn record(&mut self, n: &Node, inferred: Inferred, fallback: &HashMap<&str, ValueShape>) {
        let Inferred {
            outputs,
            value,
            floats,
        } = inferred;
        for (i, name) in n.outputs().iter().enumerate() {
            let computed = outputs.get(i).cloned().unwrap_or_default();
            let shape = match fallback.get(name.as_str()) {
                Some(declared) => fill(computed, declared),
                None => computed,
            };
            self.define(name, shape);
        }
        if let Some(out) = n.outputs().first() {
            self.track(out, value, floats);
        }
    }
}

/// What two possible shapes of one value have in common.
fn merge(a: &ValueShape, b: &ValueShape) -> ValueShape {
    let dtype = if a.dtype == b.dtype { a.dtype } else { None };
    let dims = match (&a.dims, &b.dims) {
        (Some(x), Some(y)) if x.len() == y.len() => Some(
            x.iter()
                .zip(y)
                .map(|(p, q)| if p == q { p.clone() } else { Dim::Unknown })
                .collect(),
        ),
        _ => None,
    };
    ValueShape { dtype, dims }
}

/// Fills what inference left unknown from a declared type; never replaces a computed dim.
fn fill(computed: ValueShape, declared: &ValueShape) -> ValueShape {
    let dtype: Option<DataType> = computed.dtype.or(declared.dtype);
    let dims = match (computed.dims, &declared.dims) {
        (None, d) => d.clone(),
        (Some(c), Some(d)) if c.len() == d.len() => Some(
            c.into_iter()
                .zip(d)
                .map(|(c, d)| if c == Dim::Unknown { d.clone() } else { c })
                .collect(),
        ),
        (c, _) => c,
    };
    ValueShape { dtype, dims }
}
