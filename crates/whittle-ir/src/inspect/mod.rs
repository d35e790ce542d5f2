//! The inspection report of a model: what `whittle inspect` prints, as data.
//!
//! [`InspectReport`] is the stable JSON schema `whittle.inspect/1`, documented field by
//! field in `docs/inspect-json.md`. Invariants:
//! - **deterministic**: every list is in file order or sorted, every map a `BTreeMap`;
//!   the same model and overrides give the same report;
//! - **never guessed**: a count that depends on a shape inference could not establish
//!   (MACs) is `null`/"unknown", and how many such nodes there are is reported;
//! - adding a field is compatible; renaming or changing one bumps the schema version.
mod dot;
mod macs;
mod params;
mod render;
#[cfg(test)]
mod tests;

pub use dot::{model_to_dot, write_dot};
pub use macs::{MAC_OPS, node_macs};
pub use params::LARGEST;

use crate::model::Model;
use crate::shape::{Dim, ShapeError, ShapeOverrides, infer_shapes};
use crate::types::{self, tensor_type, type_string};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use whittle_proto::{ModelProto, ValueInfoProto};

/// The schema name and version written in every report.
pub const SCHEMA: &str = "whittle.inspect/1";

/// Everything `inspect` reports about a model.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub schema: &'static str,
    pub file: Option<String>,
    pub file_bytes: Option<u64>,
    pub producer: Producer,
    pub ir_version: i64,
    pub model_version: Option<i64>,
    pub domain: String,
    pub opsets: Vec<Opset>,
    /// Graph inputs that are not initializers (the model's real inputs).
    pub inputs: Vec<ValueReport>,
    /// Graph inputs that also have an initializer (IR < 4 lists weights as inputs).
    pub initializer_inputs: u64,
    pub outputs: Vec<ValueReport>,
    pub nodes: NodeCounts,
    pub op_histogram: BTreeMap<String, u64>,
    pub parameters: Parameters,
    pub largest_tensors: Vec<TensorReport>,
    pub functions: Vec<FunctionReport>,
    pub metadata_props: Vec<MetadataEntry>,
    pub training_info_graphs: u64,
    pub macs: Macs,
}

#[derive(Clone, Debug, Serialize)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Opset {
    /// `ai.onnx` for the default domain.
    pub domain: String,
    pub version: i64,
}

/// A graph input or output: declared type, and the shape inference gave it.
#[derive(Clone, Debug, Serialize)]
pub struct ValueReport {
    pub name: String,
    /// The declared type, readable: `f32[N,1,8,8]`.
    #[serde(rename = "type")]
    pub type_text: String,
    pub dtype: Option<String>,
    /// Declared dims (number, symbol name, or null); null when not a ranked tensor.
    pub shape: Option<Vec<types::Dim>>,
    /// Dims after shape inference with the overrides applied.
    pub inferred_shape: Option<Vec<Dim>>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeCounts {
    pub top_level: u64,
    pub total: u64,
    pub graphs: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Parameters {
    pub total: u64,
    pub initializer_elements: u64,
    pub sparse_initializer_elements: u64,
    pub constant_node_elements: u64,
    /// How sparse tensors count: `"values"` (stored non-zeros).
    pub sparse_count: &'static str,
    pub tensors: u64,
    /// How many of the tensors keep their data in external files.
    pub external_tensors: u64,
    pub bytes: u64,
    pub by_dtype: BTreeMap<String, DtypeCount>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DtypeCount {
    pub tensors: u64,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TensorReport {
    pub name: String,
    /// `initializer`, `sparse_initializer` or `constant`.
    pub kind: &'static str,
    /// Name of the graph holding it.
    pub graph: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionReport {
    pub domain: String,
    pub name: String,
    pub overload: Option<String>,
    pub nodes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetadataEntry {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Macs {
    /// Sum over all counted nodes; null when any is unknown.
    pub total: Option<u64>,
    /// Sum over the nodes whose MACs are known.
    pub known_total: u64,
    pub unknown_nodes: u64,
    pub by_op: BTreeMap<String, OpMacs>,
    pub nodes: Vec<NodeMacs>,
    pub subgraph_nodes_not_counted: u64,
    pub overrides: OverridesReport,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OpMacs {
    pub nodes: u64,
    pub unknown_nodes: u64,
    /// Sum over this op's nodes with known MACs.
    pub macs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeMacs {
    pub name: String,
    pub op: String,
    pub macs: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OverridesReport {
    pub batch: Option<u64>,
    pub shapes: BTreeMap<String, Vec<u64>>,
    /// Symbols the overrides fixed.
    pub bindings: BTreeMap<String, u64>,
}

fn value_report(v: &ValueInfoProto, inferred: Option<&[Dim]>) -> ValueReport {
    let tt = v.r#type.as_ref().and_then(tensor_type);
    ValueReport {
        name: v.name().to_string(),
        type_text: v.r#type.as_ref().map_or("?".into(), type_string),
        dtype: tt.as_ref().map(|(d, _)| d.short_name()),
        shape: tt.and_then(|(_, dims)| dims),
        inferred_shape: inferred.map(<[Dim]>::to_vec),
    }
}

/// Node counts and the op histogram (`Op`, or `domain::Op` outside the default domain)
/// over the main graph and every subgraph.
fn count_nodes(m: &Model) -> (NodeCounts, BTreeMap<String, u64>) {
    let mut counts = NodeCounts::default();
    let mut hist = BTreeMap::new();
    m.graph.walk(&mut |g, depth| {
        counts.graphs += 1;
        for (_, n) in g.nodes() {
            counts.total += 1;
            counts.top_level += u64::from(depth == 0);
            let key = match n.domain() {
                "" => n.op_type().to_string(),
                d => format!("{d}::{}", n.op_type()),
            };
            *hist.entry(key).or_insert(0) += 1;
        }
    });
    (counts, hist)
}

/// Every `opset_import`, sorted by domain (the default domain spelled `ai.onnx`).
fn opsets(p: &ModelProto) -> Vec<Opset> {
    let mut opsets: Vec<Opset> = p
        .opset_import
        .iter()
        .map(|o| Opset {
            domain: match o.domain() {
                "" => "ai.onnx".to_string(),
                d => d.to_string(),
            },
            version: o.version(),
        })
        .collect();
    opsets.sort_by(|a, b| a.domain.cmp(&b.domain).then(a.version.cmp(&b.version)));
    opsets
}

/// `metadata_props` sorted by key (stable: file order among equal keys).
fn metadata(p: &ModelProto) -> Vec<MetadataEntry> {
    let mut entries: Vec<MetadataEntry> = p
        .metadata_props
        .iter()
        .map(|e| MetadataEntry {
            key: e.key().to_string(),
            value: e.value().to_string(),
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries
}

fn functions(p: &ModelProto) -> Vec<FunctionReport> {
    p.functions
        .iter()
        .map(|f| FunctionReport {
            domain: f.domain().to_string(),
            name: f.name().to_string(),
            overload: f.overload.clone(),
            nodes: f.node.len() as u64,
        })
        .collect()
}

/// The main graph's inputs that are not initializers.
fn real_inputs(m: &Model) -> Vec<&ValueInfoProto> {
    let inits: HashSet<&str> = m.graph.initializers.iter().map(|t| t.name()).collect();
    m.graph
        .proto
        .input
        .iter()
        .filter(|v| !inits.contains(v.name()))
        .collect()
}

impl InspectReport {
    /// Builds the report; fails only when `overrides` do not fit the model.
    pub fn new(m: &Model, overrides: &ShapeOverrides) -> Result<InspectReport, ShapeError> {
        let shapes = infer_shapes(m, overrides)?;
        let (nodes, op_histogram) = count_nodes(m);
        let (parameters, largest_tensors) = params::parameters(&m.graph);
        let mut macs = macs::macs(&m.graph, &shapes);
        macs.overrides = OverridesReport {
            batch: overrides.batch,
            shapes: overrides.inputs.clone(),
            bindings: shapes.bindings().clone(),
        };
        let value = |v: &ValueInfoProto| value_report(v, shapes.dims(v.name()));
        let inputs = real_inputs(m);
        let p = &m.proto;
        Ok(InspectReport {
            schema: SCHEMA,
            file: m.path.as_ref().map(|p| p.display().to_string()),
            file_bytes: m.source_len,
            producer: Producer {
                name: p.producer_name().to_string(),
                version: p.producer_version().to_string(),
            },
            ir_version: p.ir_version(),
            model_version: p.model_version,
            domain: p.domain().to_string(),
            opsets: opsets(p),
            initializer_inputs: (m.graph.proto.input.len() - inputs.len()) as u64,
            inputs: inputs.into_iter().map(value).collect(),
            outputs: m.graph.proto.output.iter().map(value).collect(),
            nodes,
            op_histogram,
            parameters,
            largest_tensors,
            functions: functions(p),
            metadata_props: metadata(p),
            training_info_graphs: p
                .training_info
                .iter()
                .map(|t| u64::from(t.initialization.is_some()) + u64::from(t.algorithm.is_some()))
                .sum(),
            macs,
        })
    }
}
