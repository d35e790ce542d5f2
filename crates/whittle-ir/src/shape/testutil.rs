//! A small builder for in-memory models, for the shape tests (and `inspect`'s).
use crate::dtype::DataType;
use crate::graph::Graph;
use crate::model::Model;
use crate::node::{Attribute, Node};
use crate::shape::{ShapeMap, ShapeOverrides, infer_shapes};
use crate::tensor::Tensor;
use bytes::Bytes;
use whittle_proto::attribute_proto::AttributeType;
use whittle_proto::tensor_shape_proto::{Dimension, dimension};
use whittle_proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use whittle_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

pub const F32: DataType = DataType::FLOAT;
pub const I64: DataType = DataType::INT64;

/// `"N,3,?,8"`: numbers are fixed, `?` unknown, anything else a symbol (quotes are
/// stripped: `'?'` is the symbol named `?`); `".."` unranked.
pub fn value_info(name: &str, dtype: DataType, dims: &str) -> ValueInfoProto {
    let shape = (dims != "..").then(|| TensorShapeProto {
        dim: dims
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| Dimension {
                value: match d.parse::<i64>() {
                    Ok(v) => Some(dimension::Value::DimValue(v)),
                    Err(_) if d == "?" => None,
                    Err(_) => Some(dimension::Value::DimParam(d.trim_matches('\'').to_string())),
                },
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(dtype.0),
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

pub fn wrap(proto: AttributeProto) -> Attribute {
    Attribute {
        proto,
        t: None,
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}

pub fn int(name: &str, v: i64) -> Attribute {
    wrap(AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    })
}

pub fn ints(name: &str, v: &[i64]) -> Attribute {
    wrap(AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    })
}

pub fn floats(name: &str, v: &[f32]) -> Attribute {
    wrap(AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    })
}

pub fn string(name: &str, v: &str) -> Attribute {
    wrap(AttributeProto {
        s: Some(Bytes::copy_from_slice(v.as_bytes())),
        ..attr(name, AttributeType::String)
    })
}

pub fn tensor_attr(name: &str, t: Tensor) -> Attribute {
    Attribute {
        t: Some(t),
        ..wrap(attr(name, AttributeType::Tensor))
    }
}

pub fn graph_attr(name: &str, g: Graph) -> Attribute {
    Attribute {
        g: Some(g),
        ..wrap(attr(name, AttributeType::Graph))
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<Attribute>) -> Node {
    Node {
        proto: NodeProto {
            op_type: Some(op.into()),
            name: Some(outputs.first().map_or(op, |o| o).to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        attributes,
    }
}

pub fn i64_tensor(name: &str, v: &[i64]) -> Tensor {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Tensor::new_raw(name, I64, vec![v.len() as i64], Bytes::from(data))
}

pub fn f32_tensor(name: &str, dims: &[i64]) -> Tensor {
    let n: i64 = dims.iter().product();
    let data = vec![0u8; 4 * usize::try_from(n).unwrap_or(0)];
    Tensor::new_raw(name, F32, dims.to_vec(), Bytes::from(data))
}

pub fn f32_values(name: &str, v: &[f32]) -> Tensor {
    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Tensor::new_raw(name, F32, vec![v.len() as i64], Bytes::from(data))
}

/// A graph under construction.
#[derive(Default)]
pub struct G {
    pub proto: GraphProto,
    pub inits: Vec<Tensor>,
    pub nodes: Vec<Node>,
}

impl G {
    pub fn new() -> G {
        G::default()
    }
    pub fn input(mut self, name: &str, dtype: DataType, dims: &str) -> G {
        self.proto.input.push(value_info(name, dtype, dims));
        self
    }
    pub fn output(mut self, name: &str, dtype: DataType, dims: &str) -> G {
        self.proto.output.push(value_info(name, dtype, dims));
        self
    }
    pub fn value_info(mut self, name: &str, dtype: DataType, dims: &str) -> G {
        self.proto.value_info.push(value_info(name, dtype, dims));
        self
    }
    pub fn init(mut self, t: Tensor) -> G {
        self.inits.push(t);
        self
    }
    pub fn node(mut self, n: Node) -> G {
        self.nodes.push(n);
        self
    }
    pub fn graph(self) -> Graph {
        Graph::new(self.proto, self.inits, self.nodes)
    }
    pub fn model(self, opset: i64) -> Model {
        Model {
            proto: ModelProto {
                ir_version: Some(8),
                opset_import: vec![OperatorSetIdProto {
                    domain: Some(String::new()),
                    version: Some(opset),
                }],
                ..Default::default()
            },
            graph: self.graph(),
            path: None,
            source_len: None,
        }
    }
}

/// Infers with no overrides.
pub fn infer(m: &Model) -> ShapeMap {
    infer_shapes(m, &ShapeOverrides::default()).expect("no overrides, no error")
}

/// A value's inferred shape as text (`f32[N,8]`), `-` when the value has no entry.
pub fn shape_text(map: &ShapeMap, name: &str) -> String {
    map.get(name).map_or("-".into(), |s| s.to_string())
}

/// Builds a one-node model (opset `opset`) and returns the shape text of `out`.
pub fn one_node(opset: i64, g: G, n: Node) -> String {
    let out = n.outputs()[0].clone();
    shape_text(&infer(&g.node(n).model(opset)), &out)
}
