//! Building attributes for rewritten nodes.
use whittle_ir::proto::AttributeProto;
use whittle_ir::proto::attribute_proto::AttributeType;

/// A float attribute.
pub fn float_attribute(name: &str, value: f32) -> whittle_ir::Attribute {
    attribute(AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    })
}

/// An int attribute.
pub fn int_attribute(name: &str, value: i64) -> whittle_ir::Attribute {
    attribute(AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    })
}

fn attribute(proto: AttributeProto) -> whittle_ir::Attribute {
    whittle_ir::Attribute {
        proto,
        t: None,
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}

/// An ints attribute.
pub fn ints_attribute(name: &str, values: &[i64]) -> whittle_ir::Attribute {
    attribute(AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    })
}
