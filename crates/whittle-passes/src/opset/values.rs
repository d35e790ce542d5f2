//! Building blocks for rules: attributes, nodes and small constant tensors, and reading
//! the numbers of constant tensors.
use super::edit::Refusal;
use whittle_ir::node::Attribute;
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::proto::{AttributeProto, NodeProto, TensorProto};
use whittle_ir::{DataType, Node, Tensor};

/// A bare attribute of `kind`.
pub(crate) fn attr(name: &str, kind: AttributeType) -> Attribute {
    Attribute {
        proto: AttributeProto {
            name: Some(name.to_string()),
            r#type: Some(kind as i32),
            ..Default::default()
        },
        t: None,
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}

pub(crate) fn attr_int(name: &str, v: i64) -> Attribute {
    let mut a = attr(name, AttributeType::Int);
    a.proto.i = Some(v);
    a
}

pub(crate) fn attr_ints(name: &str, v: Vec<i64>) -> Attribute {
    let mut a = attr(name, AttributeType::Ints);
    a.proto.ints = v;
    a
}

pub(crate) fn attr_float(name: &str, v: f32) -> Attribute {
    let mut a = attr(name, AttributeType::Float);
    a.proto.f = Some(v);
    a
}

pub(crate) fn attr_floats(name: &str, v: Vec<f32>) -> Attribute {
    let mut a = attr(name, AttributeType::Floats);
    a.proto.floats = v;
    a
}

pub(crate) fn attr_str(name: &str, v: &str) -> Attribute {
    let mut a = attr(name, AttributeType::String);
    a.proto.s = Some(v.as_bytes().to_vec().into());
    a
}

/// A new ai.onnx node.
pub(crate) fn new_node(
    op: &str,
    name: &str,
    inputs: &[String],
    outputs: &[String],
    attributes: Vec<Attribute>,
) -> Node {
    Node {
        proto: NodeProto {
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            input: inputs.to_vec(),
            output: outputs.to_vec(),
            ..Default::default()
        },
        attributes,
    }
}

/// A 1-D int64 tensor (name set by [`Edit::constant`]).
pub(crate) fn ints_tensor(v: &[i64]) -> Tensor {
    Tensor::from_proto(TensorProto {
        data_type: Some(DataType::INT64.0),
        dims: vec![v.len() as i64],
        int64_data: v.to_vec(),
        ..Default::default()
    })
}

/// A 1-D float32 tensor (name set by [`Edit::constant`]).
pub(crate) fn floats_tensor(v: &[f32]) -> Tensor {
    Tensor::from_proto(TensorProto {
        data_type: Some(DataType::FLOAT.0),
        dims: vec![v.len() as i64],
        float_data: v.to_vec(),
        ..Default::default()
    })
}

/// A scalar of element type `dtype` holding `v` (float types and integers).
pub(crate) fn scalar(dtype: DataType, v: f64) -> Result<Tensor, Refusal> {
    let mut p = TensorProto {
        data_type: Some(dtype.0),
        ..Default::default()
    };
    match dtype {
        DataType::FLOAT => p.float_data = vec![v as f32],
        DataType::DOUBLE => p.double_data = vec![v],
        DataType::FLOAT16 => p.int32_data = vec![i32::from(half::f16::from_f64(v).to_bits())],
        DataType::BFLOAT16 => p.int32_data = vec![i32::from(half::bf16::from_f64(v).to_bits())],
        DataType::INT64 => p.int64_data = vec![v as i64],
        DataType::INT32 | DataType::INT8 | DataType::UINT8 => p.int32_data = vec![v as i32],
        d => return Err(format!("cannot write a {d} constant")),
    }
    Ok(Tensor::from_proto(p))
}

/// The integers of an int64/int32 tensor.
pub(crate) fn tensor_ints(t: &Tensor) -> Result<Vec<i64>, Refusal> {
    let bytes = t.le_bytes().map_err(|e| e.to_string())?;
    match t.dtype() {
        DataType::INT64 => Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()),
        DataType::INT32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()),
        d => Err(format!(
            "constant {:?} is {d}, not an integer tensor",
            t.name()
        )),
    }
}

/// The numbers of a float/integer tensor as f32.
pub(crate) fn tensor_floats(t: &Tensor) -> Result<Vec<f32>, Refusal> {
    t.to_f32_vec().map_err(|e| e.to_string())
}
