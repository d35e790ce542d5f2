//! Parameter accounting: every stored tensor of every graph (main graph and subgraphs,
//! not model-local function bodies nor training_info), counted by element and byte.
//!
//! Counting rules (the same as `tests/python/onnx_counts.py`, which checks them):
//! - dense initializers: product of dims (1 for a scalar);
//! - sparse initializers: the stored `values` (non-zeros), not the dense dims; their
//!   bytes are the values' bytes (indices are storage overhead and not counted);
//! - `Constant` nodes: the `value` tensor, `sparse_value`'s values, `value_float`/
//!   `value_int`/`value_string` as 1 element, `value_floats`/`_ints`/`_strings` as their
//!   length (f32, i64, strings by byte length).
use super::{DtypeCount, Parameters, TensorReport};
use crate::dtype::DataType;
use crate::graph::Graph;
use crate::node::Node;
use crate::tensor::Tensor;
use std::collections::BTreeMap;

/// Which kind of tensor a counted tensor is.
#[derive(Clone, Copy)]
enum Kind {
    Initializer,
    Sparse,
    Constant,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Initializer => "initializer",
            Kind::Sparse => "sparse_initializer",
            Kind::Constant => "constant",
        }
    }
}

/// One counted tensor.
struct Counted {
    kind: Kind,
    name: String,
    graph: String,
    dtype: DataType,
    shape: Vec<i64>,
    elements: u64,
    bytes: u64,
    external: bool,
}

impl Counted {
    fn tensor(kind: Kind, name: &str, graph: &Graph, t: &Tensor, shape: Vec<i64>) -> Counted {
        Counted {
            kind,
            name: name.to_string(),
            graph: graph.name().to_string(),
            dtype: t.dtype(),
            shape,
            elements: t.num_elements().unwrap_or(0),
            bytes: t.data_byte_len(),
            external: t.is_external(),
        }
    }

    fn list(
        name: &str,
        graph: &Graph,
        dtype: DataType,
        elements: u64,
        bytes: u64,
        shape: Vec<i64>,
    ) -> Counted {
        Counted {
            kind: Kind::Constant,
            name: name.to_string(),
            graph: graph.name().to_string(),
            dtype,
            shape,
            elements,
            bytes,
            external: false,
        }
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The tensors a `Constant` node holds.
fn constant_tensors(n: &Node, g: &Graph, out: &mut Vec<Counted>) {
    let name = n.outputs().first().map_or(n.name(), String::as_str);
    for a in &n.attributes {
        let p = &a.proto;
        let strings = |v: &[bytes::Bytes]| v.iter().map(|s| s.len() as u64).sum::<u64>();
        let c = match p.name() {
            "value" => {
                a.t.as_ref()
                    .map(|t| Counted::tensor(Kind::Constant, name, g, t, t.dims().to_vec()))
            }
            "sparse_value" => p.sparse_tensor.as_ref().and_then(|s| {
                let values = Tensor::from_proto(s.values.clone()?);
                Some(Counted::tensor(
                    Kind::Constant,
                    name,
                    g,
                    &values,
                    s.dims.clone(),
                ))
            }),
            "value_float" => Some(Counted::list(name, g, DataType::FLOAT, 1, 4, vec![])),
            "value_int" => Some(Counted::list(name, g, DataType::INT64, 1, 8, vec![])),
            "value_string" => {
                let bytes = p.s.as_ref().map_or(0, |s| s.len() as u64);
                Some(Counted::list(name, g, DataType::STRING, 1, bytes, vec![]))
            }
            "value_floats" => {
                let n = p.floats.len() as u64;
                Some(Counted::list(
                    name,
                    g,
                    DataType::FLOAT,
                    n,
                    4 * n,
                    vec![len_i64(p.floats.len())],
                ))
            }
            "value_ints" => {
                let n = p.ints.len() as u64;
                Some(Counted::list(
                    name,
                    g,
                    DataType::INT64,
                    n,
                    8 * n,
                    vec![len_i64(p.ints.len())],
                ))
            }
            "value_strings" => {
                let n = p.strings.len() as u64;
                Some(Counted::list(
                    name,
                    g,
                    DataType::STRING,
                    n,
                    strings(&p.strings),
                    vec![len_i64(p.strings.len())],
                ))
            }
            _ => None,
        };
        out.extend(c);
    }
}

/// Every counted tensor of `g` and its subgraphs, in graph order.
fn collect(root: &Graph) -> Vec<Counted> {
    let mut out = Vec::new();
    root.walk(&mut |g, _| {
        for t in &g.initializers {
            out.push(Counted::tensor(
                Kind::Initializer,
                t.name(),
                g,
                t,
                t.dims().to_vec(),
            ));
        }
        for s in &g.proto.sparse_initializer {
            if let Some(v) = &s.values {
                let values = Tensor::from_proto(v.clone());
                out.push(Counted::tensor(
                    Kind::Sparse,
                    v.name(),
                    g,
                    &values,
                    s.dims.clone(),
                ));
            }
        }
        for (_, n) in g.nodes() {
            if n.op_type() == "Constant" && n.domain().is_empty() {
                constant_tensors(n, g, &mut out);
            }
        }
    });
    out
}

/// How many of the largest tensors the report lists.
pub const LARGEST: usize = 10;

/// Parameter totals and the largest tensors of a graph and its subgraphs.
pub fn parameters(root: &Graph) -> (Parameters, Vec<TensorReport>) {
    let counted = collect(root);
    let mut p = Parameters {
        sparse_count: "values",
        ..Default::default()
    };
    let mut by_dtype: BTreeMap<String, DtypeCount> = BTreeMap::new();
    for c in &counted {
        let field = match c.kind {
            Kind::Initializer => &mut p.initializer_elements,
            Kind::Sparse => &mut p.sparse_initializer_elements,
            Kind::Constant => &mut p.constant_node_elements,
        };
        *field = field.saturating_add(c.elements);
        p.total = p.total.saturating_add(c.elements);
        p.bytes = p.bytes.saturating_add(c.bytes);
        p.external_tensors += u64::from(c.external);
        let d = by_dtype.entry(c.dtype.short_name()).or_default();
        d.tensors += 1;
        d.elements = d.elements.saturating_add(c.elements);
        d.bytes = d.bytes.saturating_add(c.bytes);
    }
    p.tensors = counted.len() as u64;
    p.by_dtype = by_dtype;
    (p, largest(counted))
}

/// The [`LARGEST`] tensors by bytes (ties: by name, then graph order).
fn largest(mut counted: Vec<Counted>) -> Vec<TensorReport> {
    counted.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    counted
        .into_iter()
        .take(LARGEST)
        .map(|c| TensorReport {
            name: c.name,
            kind: c.kind.name(),
            graph: c.graph,
            dtype: c.dtype.short_name(),
            shape: c.shape,
            elements: c.elements,
            bytes: c.bytes,
        })
        .collect()
}
