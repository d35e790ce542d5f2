//! What an op rule sees of one node (its attributes, the shapes and known contents of its
//! inputs) and what it returns.
//!
//! Known contents are tracked for small tensors only ([`MAX_TRACKED`] elements): shape
//! vectors, axes, indices, pads, scales. Integer contents are [`Sv`]s, so a `Shape` of a
//! value with a symbolic dim carries the symbol on into `Gather`, `Concat` and `Reshape`.
use super::dim::{Dim, ValueShape};
use crate::dtype::DataType;
use crate::node::Node;
use crate::tensor::Tensor;

/// Contents are tracked for tensors of at most this many elements.
pub const MAX_TRACKED: u64 = 1024;

/// One element of a tracked integer tensor: a number, a symbolic dim, or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sv {
    Int(i64),
    Sym(String),
    Unknown,
}

impl Sv {
    pub fn from_dim(d: &Dim) -> Sv {
        match d {
            Dim::Known(n) => i64::try_from(*n).map_or(Sv::Unknown, Sv::Int),
            Dim::Symbolic(s) => Sv::Sym(s.clone()),
            Dim::Unknown => Sv::Unknown,
        }
    }

    /// As a dim of a shape (negative numbers are not dims).
    pub fn to_dim(&self) -> Dim {
        match self {
            Sv::Int(n) => Dim::from_i64(*n),
            Sv::Sym(s) => Dim::Symbolic(s.clone()),
            Sv::Unknown => Dim::Unknown,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Sv::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Integer contents of a small integer tensor.
pub fn tensor_ints(t: &Tensor) -> Option<Vec<i64>> {
    if t.num_elements()? > MAX_TRACKED {
        return None;
    }
    let b = t.le_bytes().ok()?;
    let v = match t.dtype() {
        DataType::INT64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        DataType::INT32 => b
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        DataType::INT8 => b.iter().map(|&x| i64::from(x as i8)).collect(),
        DataType::UINT8 | DataType::BOOL => b.iter().map(|&x| i64::from(x)).collect(),
        _ => return None,
    };
    Some(v)
}

/// Float contents of a small floating-point tensor (for `Resize` scales).
pub fn tensor_floats(t: &Tensor) -> Option<Vec<f32>> {
    if !t.dtype().is_float() || t.num_elements()? > MAX_TRACKED {
        return None;
    }
    t.to_f32_vec().ok()
}

/// One node as a rule sees it. Input slots that are absent (empty name, or past the end)
/// read as unknown.
pub struct Cx<'a> {
    pub node: &'a Node,
    /// The default-domain opset the model imports.
    pub opset: i64,
    pub ins: Vec<ValueShape>,
    pub vals: Vec<Option<Vec<Sv>>>,
    pub floats: Vec<Option<Vec<f32>>>,
}

static UNKNOWN: ValueShape = ValueShape {
    dtype: None,
    dims: None,
};

impl Cx<'_> {
    pub fn input(&self, i: usize) -> &ValueShape {
        self.ins.get(i).unwrap_or(&UNKNOWN)
    }

    pub fn dims(&self, i: usize) -> Option<&[Dim]> {
        self.input(i).dims.as_deref()
    }

    pub fn dtype(&self, i: usize) -> Option<DataType> {
        self.input(i).dtype
    }

    /// Input `i`'s rank as a dim.
    pub fn rank_dim(&self, i: usize) -> Dim {
        self.dims(i)
            .map_or(Dim::Unknown, |d| Dim::Known(d.len() as u64))
    }

    /// Whether input slot `i` is given (optional inputs may be absent or empty).
    pub fn has_input(&self, i: usize) -> bool {
        self.node.inputs().get(i).is_some_and(|n| !n.is_empty())
    }

    /// Tracked contents of input `i`.
    pub fn values(&self, i: usize) -> Option<&[Sv]> {
        self.vals.get(i)?.as_deref()
    }

    /// Contents of input `i` when every element is a number.
    pub fn ints(&self, i: usize) -> Option<Vec<i64>> {
        self.values(i)?.iter().map(Sv::int).collect()
    }

    pub fn float_values(&self, i: usize) -> Option<&[f32]> {
        self.floats.get(i)?.as_deref()
    }

    pub fn attr_int(&self, name: &str, default: i64) -> i64 {
        self.node.attr_int(name).unwrap_or(default)
    }

    pub fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.node.attr_ints(name).map(<[i64]>::to_vec)
    }

    pub fn attr_str(&self, name: &str) -> Option<String> {
        let a = self.node.attribute(name)?;
        a.proto
            .s
            .as_deref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// Integers given by attribute `name` before `since_opset`, by input `input` from then on.
    pub fn ints_attr_or_input(
        &self,
        name: &str,
        input: usize,
        since_opset: i64,
    ) -> Option<Vec<i64>> {
        if self.opset < since_opset {
            self.attr_ints(name)
        } else {
            self.ints(input)
        }
    }

    /// Whether the attribute-or-input of [`Cx::ints_attr_or_input`] is given at all.
    pub fn has_attr_or_input(&self, name: &str, input: usize, since_opset: i64) -> bool {
        if self.opset < since_opset {
            self.node.attribute(name).is_some()
        } else {
            self.has_input(input)
        }
    }

    /// The output shape `dims` with input 0's dtype.
    pub fn like0(&self, dims: Option<Vec<Dim>>) -> ValueShape {
        ValueShape {
            dtype: self.dtype(0),
            dims,
        }
    }
}

/// What a rule found: one shape per output (missing ones read as unknown) and, when
/// known, the contents of output 0 (integer or float).
#[derive(Default)]
pub struct Inferred {
    pub outputs: Vec<ValueShape>,
    pub value: Option<Vec<Sv>>,
    pub floats: Option<Vec<f32>>,
}

impl Inferred {
    pub fn one(shape: ValueShape) -> Inferred {
        Inferred::many(vec![shape])
    }

    pub fn many(outputs: Vec<ValueShape>) -> Inferred {
        Inferred {
            outputs,
            ..Default::default()
        }
    }

    pub fn with_value(mut self, value: Option<Vec<Sv>>) -> Inferred {
        self.value = value;
        self
    }
}
