//! Nodes and their attributes.
//!
//! Invariants: a node's `proto` is the `NodeProto` as read with its `attribute` list moved
//! into [`Node::attributes`]; an attribute's `proto` is the `AttributeProto` as read with
//! its tensors and graphs moved into the typed fields beside it. Export puts every piece
//! back in place, so fields this crate does not interpret survive untouched.
use crate::graph::Graph;
use crate::tensor::Tensor;
use whittle_proto::{AttributeProto, NodeProto};

/// One operator application.
#[derive(Clone, Debug)]
pub struct Node {
    /// Everything but the attributes, as read.
    pub proto: NodeProto,
    pub attributes: Vec<Attribute>,
}

/// One attribute; tensors and subgraphs are lifted out of the proto so passes can reach
/// them (and external data in them is resolved).
#[derive(Clone, Debug)]
pub struct Attribute {
    /// Everything but `t`, `tensors`, `g` and `graphs`, as read.
    pub proto: AttributeProto,
    pub t: Option<Tensor>,
    pub tensors: Vec<Tensor>,
    pub g: Option<Graph>,
    pub graphs: Vec<Graph>,
}

impl Node {
    pub fn name(&self) -> &str {
        self.proto.name()
    }
    pub fn op_type(&self) -> &str {
        self.proto.op_type()
    }
    /// The domain, with `ai.onnx` spelled as the empty default domain.
    pub fn domain(&self) -> &str {
        match self.proto.domain() {
            "ai.onnx" => "",
            d => d,
        }
    }
    pub fn inputs(&self) -> &[String] {
        &self.proto.input
    }
    pub fn outputs(&self) -> &[String] {
        &self.proto.output
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.proto.name() == name)
    }
    /// An integer attribute, if present.
    pub fn attr_int(&self, name: &str) -> Option<i64> {
        self.attribute(name).and_then(|a| a.proto.i)
    }
    /// An integer-list attribute, if present.
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.attribute(name).map(|a| a.proto.ints.as_slice())
    }
    /// A name for messages: the node name, or `#index OpType` when the node is unnamed.
    pub fn label(&self, index: usize) -> String {
        match self.name() {
            "" => format!("#{index} {}", self.op_type()),
            n => format!("{n:?} ({})", self.op_type()),
        }
    }
    /// Subgraphs held by this node's attributes, in attribute order.
    pub fn subgraphs(&self) -> impl Iterator<Item = &Graph> {
        self.attributes
            .iter()
            .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
    }
    pub fn subgraphs_mut(&mut self) -> impl Iterator<Item = &mut Graph> {
        self.attributes
            .iter_mut()
            .flat_map(|a| a.g.iter_mut().chain(a.graphs.iter_mut()))
    }
    /// Tensors held by this node's attributes (e.g. a `Constant`'s value).
    pub fn attribute_tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.attributes
            .iter()
            .flat_map(|a| a.t.iter().chain(a.tensors.iter()))
    }
    pub fn attribute_tensors_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.attributes
            .iter_mut()
            .flat_map(|a| a.t.iter_mut().chain(a.tensors.iter_mut()))
    }
}
