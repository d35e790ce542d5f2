//! Host tensors: a dtype, a row-major shape and the element values.
//!
//! Invariants: `shape.iter().product() == data.len()` for every [`HostTensor`] (checked by
//! every constructor); data is always row-major (C order); a rank-0 tensor has shape `[]`
//! and one element. Names are not stored here: the backends and the npz module pass
//! tensors around as `(String, HostTensor)` pairs ([`NamedTensor`]).

use half::f16;

pub use crate::dtype::DType;

/// A tensor together with the graph input/output (or npz key) it belongs to.
pub type NamedTensor = (String, HostTensor);

/// The element values of a tensor, one variant per [`DType`].
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// Applies `$body` to the inner `Vec` of any [`TensorData`] variant, binding it to `$v`.
macro_rules! for_each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F16($v) => $body,
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::Bool($v) => $body,
        }
    };
}
pub(crate) use for_each_variant;

/// Rebuilds a [`TensorData`] of the same variant from `$data` via `$v => $body` (a `Vec`).
macro_rules! map_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::F16($v) => TensorData::F16($body),
            TensorData::F32($v) => TensorData::F32($body),
            TensorData::F64($v) => TensorData::F64($body),
            TensorData::I8($v) => TensorData::I8($body),
            TensorData::I16($v) => TensorData::I16($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::I64($v) => TensorData::I64($body),
            TensorData::U8($v) => TensorData::U8($body),
            TensorData::U16($v) => TensorData::U16($body),
            TensorData::U32($v) => TensorData::U32($body),
            TensorData::U64($v) => TensorData::U64($body),
            TensorData::Bool($v) => TensorData::Bool($body),
        }
    };
}
pub(crate) use map_variant;

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F16(_) => DType::F16,
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I8(_) => DType::I8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::U8(_) => DType::U8,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        for_each_variant!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64 (see [`HostTensor::to_f64_vec`] for the conversion rules).
    fn get_f64(&self, i: usize) -> f64 {
        match self {
            TensorData::F16(v) => v[i].to_f64(),
            TensorData::F32(v) => f64::from(v[i]),
            TensorData::F64(v) => v[i],
            TensorData::I8(v) => f64::from(v[i]),
            TensorData::I16(v) => f64::from(v[i]),
            TensorData::I32(v) => f64::from(v[i]),
            TensorData::I64(v) => v[i] as f64,
            TensorData::U8(v) => f64::from(v[i]),
            TensorData::U16(v) => f64::from(v[i]),
            TensorData::U32(v) => f64::from(v[i]),
            TensorData::U64(v) => v[i] as f64,
            TensorData::Bool(v) => f64::from(u8::from(v[i])),
        }
    }
}

/// A Rust element type that has a [`DType`]; lets callers build and view tensors generically.
pub trait Element: Copy + Send + Sync + 'static {
    const DTYPE: DType;
    fn wrap(values: Vec<Self>) -> TensorData;
    fn slice(data: &TensorData) -> Option<&[Self]>;
}

macro_rules! impl_element {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
            fn slice(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}
impl_element!(
    f16 => F16, f32 => F32, f64 => F64, i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, bool => Bool,
);

/// Why a tensor could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {actual} values were given")]
    ShapeMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("shape {shape:?} has more elements than fit in memory")]
    ShapeOverflow { shape: Vec<usize> },
}

/// Number of elements of `shape`, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// A dense, row-major tensor held in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl HostTensor {
    /// Builds a tensor, checking that `shape` holds exactly `data.len()` elements.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, TensorError> {
        let expected = element_count(&shape).ok_or_else(|| TensorError::ShapeOverflow {
            shape: shape.clone(),
        })?;
        if expected != data.len() {
            return Err(TensorError::ShapeMismatch {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(HostTensor { shape, data })
    }

    /// Builds a tensor from a typed `Vec` (e.g. `HostTensor::from_vec(vec![2, 3], vec![0f32; 6])`).
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> Result<Self, TensorError> {
        HostTensor::new(shape, T::wrap(values))
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar<T: Element>(value: T) -> Self {
        HostTensor {
            shape: Vec::new(),
            data: T::wrap(vec![value]),
        }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values as a typed slice, or `None` when `T` is not this tensor's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice(&self.data)
    }

    /// All values as f64, row-major. Floats widen exactly (NaN and ±inf kept); integers
    /// convert exactly up to 2^53 in magnitude and round to nearest beyond; bool is 0 or 1.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.data.get_f64(i)).collect()
    }

    /// All values as f32 (via f64, so rounding happens once, to nearest).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        (0..self.len())
            .map(|i| self.data.get_f64(i) as f32)
            .collect()
    }

    /// The values in their little-endian byte form (bool as one byte 0/1): what `.npy`
    /// files hold and what the determinism checksums are taken over.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.dtype().size_of());
        match &self.data {
            TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
            TensorData::F16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::I8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::U8(v) => out.extend_from_slice(v),
            TensorData::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            TensorData::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        }
        out
    }

    /// The same values with a new shape holding the same number of elements.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self, TensorError> {
        HostTensor::new(shape, self.data)
    }

    /// A copy with the values cast to `dtype` (float→int truncates toward zero and
    /// saturates, NaN→0; anything→bool is `x != 0`). Used to feed backends that changed
    /// a model's dtype (tract's f16→f32 transform) and to cast their outputs back.
    pub fn cast(&self, dtype: DType) -> HostTensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let values = self.to_f64_vec();
        let data = match dtype {
            DType::F16 => TensorData::F16(values.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::F32 => TensorData::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F64 => TensorData::F64(values),
            DType::I8 => TensorData::I8(values.iter().map(|&x| x as i8).collect()),
            DType::I16 => TensorData::I16(values.iter().map(|&x| x as i16).collect()),
            DType::I32 => TensorData::I32(values.iter().map(|&x| x as i32).collect()),
            DType::I64 => TensorData::I64(values.iter().map(|&x| x as i64).collect()),
            DType::U8 => TensorData::U8(values.iter().map(|&x| x as u8).collect()),
            DType::U16 => TensorData::U16(values.iter().map(|&x| x as u16).collect()),
            DType::U32 => TensorData::U32(values.iter().map(|&x| x as u32).collect()),
            DType::U64 => TensorData::U64(values.iter().map(|&x| x as u64).collect()),
            DType::Bool => TensorData::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        HostTensor {
            shape: self.shape.clone(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_element_count() {
        let err = HostTensor::from_vec(vec![2, 3], vec![1f32; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape [2, 3] holds 6 elements but 5 values were given"
        );
        let t = HostTensor::scalar(7i64);
        assert_eq!(t.shape(), &[] as &[usize]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn conversions_to_f64_and_bytes() {
        let t = HostTensor::from_vec(vec![3], vec![true, false, true]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0, 0.0, 1.0]);
        assert_eq!(t.to_le_bytes(), vec![1, 0, 1]);
        let t =
            HostTensor::from_vec(vec![2], vec![f16::from_f32(0.5), f16::from_f32(-2.0)]).unwrap();
        assert_eq!(t.to_f32_vec(), vec![0.5, -2.0]);
        assert_eq!(t.to_le_bytes(), vec![0x00, 0x38, 0x00, 0xC0]);
        let t = HostTensor::from_vec(vec![1], vec![-2i32]).unwrap();
        assert_eq!(t.to_le_bytes(), vec![0xFE, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn cast_rules() {
        let t = HostTensor::from_vec(vec![4], vec![1.7f32, -1.7, f32::NAN, 300.0]).unwrap();
        assert_eq!(
            t.cast(DType::I8).as_slice::<i8>(),
            Some(&[1i8, -1, 0, 127][..])
        );
        assert_eq!(
            t.cast(DType::Bool).as_slice::<bool>(),
            Some(&[true, true, true, true][..])
        );
    }

    #[test]
    fn onnx_codes_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_onnx_code(d.onnx_code()), Some(d));
        }
        assert_eq!(DType::from_onnx_code(16), None); // bfloat16: not supported
    }
}
