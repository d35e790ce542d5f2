//! A tiny model builder for the unit tests of the clean-up passes.
use bytes::Bytes;
use whittle_ir::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto};
use whittle_ir::shape::{Dim, tensor_value_info};
use whittle_ir::{Attribute, DataType, Graph, Model, Node, Tensor};

pub fn value_info(name: &str, dtype: DataType, dims: &[i64]) -> ValueInfoProto {
    let dims: Vec<Dim> = dims
        .iter()
        .map(|&d| {
            if d < 0 {
                Dim::Symbolic("N".into())
            } else {
                Dim::Known(d as u64)
            }
        })
        .collect();
    tensor_value_info(name, dtype, Some(&dims))
}

pub fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> Tensor {
    Tensor::new_raw(
        name,
        DataType::FLOAT,
        dims.to_vec(),
        Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
    )
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<Attribute>) -> Node {
    Node {
        proto: NodeProto {
            name: Some(
                outputs
                    .first()
                    .map_or(op.to_string(), |o| format!("{op}_{o}")),
            ),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        attributes,
    }
}

/// A model with one graph; `dims` < 0 are the symbol `N`.
pub fn model(
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<Tensor>,
    nodes: Vec<Node>,
    opset: i64,
) -> Model {
    let graph = Graph::new(
        GraphProto {
            name: Some("test".into()),
            input: inputs,
            output: outputs,
            ..Default::default()
        },
        inits,
        nodes,
    );
    Model {
        proto: ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            ..Default::default()
        },
        graph,
        path: None,
        source_len: None,
    }
}
