//! The canonical text form of a model: one line per node, for snapshots and `inspect --graph`.
//!
//! ```text
//! model ir=8 opsets=[ai.onnx:17] producer="whittle-fixtures 1"
//! graph "main"
//!   input  x: f32[N,4]
//!   init   w: f32[4,2] #9f86d081
//!   output y: f32[N,2]
//!   mm: MatMul(x, w) -> y
//! ```
//! Tensors print as dtype, shape and the first 8 hex digits of their content hash; nested
//! graphs print indented under the node that holds them. The form is stable: the same
//! model always prints the same text.
use crate::graph::Graph;
use crate::model::Model;
use crate::node::{Attribute, Node};
use crate::tensor::Tensor;
use crate::types::{type_string, value_info_string};
use std::fmt::Write;
use whittle_proto::attribute_proto::AttributeType;

const MAX_LIST: usize = 16;

/// `f32[8,1,3,3] #1a2b3c4d` (`ext` marks external data).
pub fn tensor_summary(t: &Tensor) -> String {
    let dims: Vec<String> = t.dims().iter().map(|d| d.to_string()).collect();
    let ext = if t.is_external() { " ext" } else { "" };
    format!("{}[{}] #{}{ext}", t.dtype(), dims.join(","), t.short_hash())
}

fn list<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(MAX_LIST)
        .map(|x| format!("{x:?}"))
        .collect();
    if items.len() > MAX_LIST {
        format!("[{}, … ({} items)]", shown.join(", "), items.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn attribute_value(a: &Attribute) -> String {
    let p = &a.proto;
    if let Some(r) = &p.ref_attr_name {
        return format!("@{r}");
    }
    let kind = AttributeType::try_from(p.r#type.unwrap_or(0)).unwrap_or(AttributeType::Undefined);
    let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    match kind {
        AttributeType::Float => format!("{:?}", p.f.unwrap_or_default()),
        AttributeType::Int => p.i.unwrap_or_default().to_string(),
        AttributeType::String => text(p.s.as_deref().unwrap_or_default()),
        AttributeType::Tensor => a.t.as_ref().map_or("?".into(), tensor_summary),
        AttributeType::Graph => format!("<graph {:?}>", a.g.as_ref().map_or("", |g| g.name())),
        AttributeType::SparseTensor => "<sparse tensor>".into(),
        AttributeType::TypeProto => p.tp.as_ref().map_or("?".into(), type_string),
        AttributeType::Floats => list(&p.floats),
        AttributeType::Ints => list(&p.ints),
        AttributeType::Strings => {
            let s: Vec<String> = p
                .strings
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect();
            list(&s)
        }
        AttributeType::Tensors => {
            let s: Vec<String> = a.tensors.iter().map(tensor_summary).collect();
            format!("[{}]", s.join(", "))
        }
        AttributeType::Graphs => format!("<{} graphs>", a.graphs.len()),
        AttributeType::SparseTensors => format!("<{} sparse tensors>", p.sparse_tensors.len()),
        AttributeType::TypeProtos => {
            let s: Vec<String> = p.type_protos.iter().map(type_string).collect();
            format!("[{}]", s.join(", "))
        }
        AttributeType::Undefined => "<undefined>".into(),
    }
}

/// One node line (without indentation or nested graphs).
pub fn node_line(n: &Node) -> String {
    let mut line = String::new();
    let op = match n.domain() {
        "" => n.op_type().to_string(),
        d => format!("{d}::{}", n.op_type()),
    };
    let _ = write!(
        line,
        "{}: {op}({}) -> {}",
        n.name(),
        n.inputs().join(", "),
        n.outputs().join(", ")
    );
    if !n.attributes.is_empty() {
        let attrs: Vec<String> = n
            .attributes
            .iter()
            .map(|a| format!("{}={}", a.proto.name(), attribute_value(a)))
            .collect();
        let _ = write!(line, " {{{}}}", attrs.join(", "));
    }
    line
}

fn graph_text(g: &Graph, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    let _ = writeln!(out, "{pad}graph {:?}", g.name());
    for v in &g.proto.input {
        let _ = writeln!(out, "{pad}  input  {}", value_info_string(v));
    }
    for t in &g.initializers {
        let _ = writeln!(out, "{pad}  init   {}: {}", t.name(), tensor_summary(t));
    }
    for s in &g.proto.sparse_initializer {
        let name = s.values.as_ref().map_or("", |v| v.name());
        let _ = writeln!(out, "{pad}  sparse {name}: dims {:?}", s.dims);
    }
    for v in &g.proto.output {
        let _ = writeln!(out, "{pad}  output {}", value_info_string(v));
    }
    for (_, n) in g.nodes() {
        let _ = writeln!(out, "{pad}  {}", node_line(n));
        for sub in n.subgraphs() {
            graph_text(sub, indent + 2, out);
        }
    }
}

/// The canonical text of a graph.
pub fn graph_to_text(g: &Graph) -> String {
    let mut out = String::new();
    graph_text(g, 0, &mut out);
    out
}

/// The canonical text of a whole model: a header line, then the main graph, then the
/// model-local functions (one line each).
pub fn model_to_text(m: &Model) -> String {
    let opsets: Vec<String> = m
        .proto
        .opset_import
        .iter()
        .map(|o| {
            format!(
                "{}:{}",
                if o.domain().is_empty() {
                    "ai.onnx"
                } else {
                    o.domain()
                },
                o.version()
            )
        })
        .collect();
    let mut out = format!(
        "model ir={} opsets=[{}] producer={:?}\n",
        m.proto.ir_version(),
        opsets.join(", "),
        format!("{} {}", m.proto.producer_name(), m.proto.producer_version()).trim()
    );
    graph_text(&m.graph, 0, &mut out);
    for f in &m.proto.functions {
        let _ = writeln!(
            out,
            "function {}::{}({}) -> {} [{} nodes]",
            f.domain(),
            f.name(),
            f.input.join(", "),
            f.output.join(", "),
            f.node.len()
        );
    }
    out
}
