//! Dimensions and value shapes as shape inference sees them, and the dim arithmetic the
//! op rules share (products, numpy broadcasting).
//!
//! Invariant: arithmetic never invents a number. A result is `Known` only when every dim
//! it depends on is known (or the rule holds whatever the symbol's value is, e.g. a
//! symbol broadcast against 1 stays that symbol); otherwise it is `Unknown`.
use crate::dtype::DataType;

/// One dimension: a number, a named symbol (`dim_param`, e.g. `N`), or unknown.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Known(u64),
    Symbolic(String),
    Unknown,
}

impl Dim {
    pub fn known(&self) -> Option<u64> {
        match self {
            Dim::Known(n) => Some(*n),
            _ => None,
        }
    }

    /// From a signed value as ONNX stores dims (negative: unknown).
    pub fn from_i64(v: i64) -> Dim {
        u64::try_from(v).map_or(Dim::Unknown, Dim::Known)
    }
}

impl serde::Serialize for Dim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dim::Known(n) => s.serialize_u64(*n),
            Dim::Symbolic(name) => s.serialize_str(name),
            Dim::Unknown => s.serialize_none(),
        }
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// What is known about one value: its element type and its dims (`None`: rank unknown).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueShape {
    pub dtype: Option<DataType>,
    pub dims: Option<Vec<Dim>>,
}

impl ValueShape {
    pub fn new(dtype: Option<DataType>, dims: Vec<Dim>) -> ValueShape {
        ValueShape {
            dtype,
            dims: Some(dims),
        }
    }

    /// Nothing known.
    pub fn unknown() -> ValueShape {
        ValueShape::default()
    }

    pub fn rank(&self) -> Option<usize> {
        self.dims.as_ref().map(Vec::len)
    }

    /// The dims when every one is a number.
    pub fn known_dims(&self) -> Option<Vec<u64>> {
        self.dims.as_ref()?.iter().map(Dim::known).collect()
    }

    /// True when the rank is known and no dim is `Unknown` (symbols allowed).
    pub fn is_complete(&self) -> bool {
        self.dims
            .as_ref()
            .is_some_and(|d| !d.contains(&Dim::Unknown))
    }
}

impl serde::Serialize for ValueShape {
    /// `{"dtype": "f32", "dims": ["N", 1, 8, 8]}`; `null` for what is unknown.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ValueShape", 2)?;
        st.serialize_field("dtype", &self.dtype.map(|d| d.short_name()))?;
        st.serialize_field("dims", &self.dims)?;
        st.end()
    }
}

impl std::fmt::Display for ValueShape {
    /// `f32[N,1,8,8]`; `?` for an unknown dtype, `[..]` for an unknown rank.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dtype {
            Some(d) => write!(f, "{d}")?,
            None => f.write_str("?")?,
        }
        match &self.dims {
            None => f.write_str("[..]"),
            Some(dims) => {
                let parts: Vec<String> = dims.iter().map(Dim::to_string).collect();
                write!(f, "[{}]", parts.join(","))
            }
        }
    }
}

/// Product of dims when all are known (and it does not overflow).
pub fn product(dims: &[Dim]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, d| d.known().and_then(|n| acc.checked_mul(n)))
}

/// Product of dims kept symbolic where possible: all known → the number; exactly one
/// symbol and the known rest multiplying to 1 → that symbol; otherwise unknown.
pub fn product_dim(dims: &[Dim]) -> Dim {
    let mut known = 1u64;
    let mut symbol = None;
    for d in dims {
        match d {
            Dim::Known(n) => match known.checked_mul(*n) {
                Some(k) => known = k,
                None => return Dim::Unknown,
            },
            Dim::Symbolic(s) if symbol.is_none() => symbol = Some(s.clone()),
            _ => return Dim::Unknown,
        }
    }
    match symbol {
        None => Dim::Known(known),
        Some(s) if known == 1 => Dim::Symbolic(s),
        Some(_) if known == 0 => Dim::Known(0),
        Some(_) => Dim::Unknown,
    }
}

/// Broadcasts two dims (numpy rules). A symbol against a number > 1 gives the number
/// (the symbol must be that number or 1); two different symbols give unknown.
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (x, y) if x == y => x.clone(),
        (Dim::Known(1), other) | (other, Dim::Known(1)) => other.clone(),
        // Two different numbers, neither 1: the model is invalid; say unknown, pick none.
        (Dim::Known(_), Dim::Known(_)) => Dim::Unknown,
        (Dim::Known(n), _) | (_, Dim::Known(n)) => Dim::Known(*n),
        _ => Dim::Unknown,
    }
}

/// Broadcasts two shapes (numpy rules: aligned on the right).
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Vec<Dim> {
    let rank = a.len().max(b.len());
    let one = Dim::Known(1);
    (0..rank)
        .map(|i| {
            let da = (i + a.len()).checked_sub(rank).map_or(&one, |j| &a[j]);
            let db = (i + b.len()).checked_sub(rank).map_or(&one, |j| &b[j]);
            broadcast_dim(da, db)
        })
        .collect()
}

/// Normalizes a possibly negative axis against `rank`; `None` when out of range.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = i64::try_from(rank).ok()?;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        usize::try_from(a).ok()
    } else {
        None
    }
}

/// Adds two dims (both must be known).
pub fn add_dims(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => x.checked_add(*y).map_or(Dim::Unknown, Dim::Known),
        (Dim::Known(0), other) | (other, Dim::Known(0)) => other.clone(),
        _ => Dim::Unknown,
    }
}

/// `ceil(a / b)` for `a ≥ 0`, `b > 0` (i64's own `div_ceil` is not stable).
pub fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// A tensor-typed `ValueInfoProto` for `name` (`dims: None` = rank unknown; an unknown dim
/// is written without a value).
pub fn tensor_value_info(
    name: &str,
    dtype: crate::DataType,
    dims: Option<&[Dim]>,
) -> whittle_proto::ValueInfoProto {
    use whittle_proto::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
    use whittle_proto::type_proto::{Tensor as TensorType, Value as TypeValue};
    use whittle_proto::{TensorShapeProto, TypeProto, ValueInfoProto};
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                denotation: None,
                value: match d {
                    Dim::Known(n) => Some(DimValue::DimValue(*n as i64)),
                    Dim::Symbolic(s) => Some(DimValue::DimParam(s.clone())),
                    Dim::Unknown => None,
                },
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(dtype.0),
                shape,
            })),
        }),
        ..Default::default()
    }
}
