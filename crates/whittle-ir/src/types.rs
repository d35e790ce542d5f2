//! Readable forms of `TypeProto`s: `f32[N,3,224,224]`, `seq(f32[?])`, `map(i64,f32)`.
use crate::dtype::DataType;
use whittle_proto::tensor_shape_proto::dimension::Value as DimValue;
use whittle_proto::type_proto::Value as TypeValue;
use whittle_proto::{TensorShapeProto, TypeProto, ValueInfoProto};

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
    #[serde(serialize_with = "unknown_dim")]
    Unknown,
}

fn unknown_dim<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// The dims of a shape proto.
pub fn dims_of(shape: &TensorShapeProto) -> Vec<Dim> {
    shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(DimValue::DimValue(v)) => Dim::Fixed(*v),
            Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
            _ => Dim::Unknown,
        })
        .collect()
}

/// Element type and dims of a tensor-typed value; `None` for other types or missing info.
/// The dims are `None` when the rank itself is unknown.
pub fn tensor_type(t: &TypeProto) -> Option<(DataType, Option<Vec<Dim>>)> {
    match &t.value {
        Some(TypeValue::TensorType(tt)) => Some((
            DataType(tt.elem_type.unwrap_or(0)),
            tt.shape.as_ref().map(dims_of),
        )),
        _ => None,
    }
}

fn shape_string(dtype: i32, shape: Option<&TensorShapeProto>) -> String {
    let d = DataType(dtype);
    match shape {
        None => format!("{d}[..]"),
        Some(s) => {
            let dims: Vec<String> = dims_of(s).iter().map(|d| d.to_string()).collect();
            format!("{d}[{}]", dims.join(","))
        }
    }
}

/// A short readable form of a type.
pub fn type_string(t: &TypeProto) -> String {
    match &t.value {
        None => "?".into(),
        Some(TypeValue::TensorType(tt)) => {
            shape_string(tt.elem_type.unwrap_or(0), tt.shape.as_ref())
        }
        Some(TypeValue::SparseTensorType(st)) => {
            format!(
                "sparse({})",
                shape_string(st.elem_type.unwrap_or(0), st.shape.as_ref())
            )
        }
        Some(TypeValue::SequenceType(s)) => format!(
            "seq({})",
            s.elem_type.as_deref().map_or("?".into(), type_string)
        ),
        Some(TypeValue::OptionalType(o)) => format!(
            "optional({})",
            o.elem_type.as_deref().map_or("?".into(), type_string)
        ),
        Some(TypeValue::OpaqueType(o)) => format!("opaque({}.{})", o.domain(), o.name()),
        Some(TypeValue::MapType(m)) => format!(
            "map({},{})",
            DataType(m.key_type.unwrap_or(0)),
            m.value_type.as_deref().map_or("?".into(), type_string)
        ),
    }
}

/// `name: type` of a value info.
pub fn value_info_string(v: &ValueInfoProto) -> String {
    format!(
        "{}: {}",
        v.name(),
        v.r#type.as_ref().map_or("?".into(), type_string)
    )
}
