//! The constant values folding computes with: a dtype, dims and packed little-endian
//! element bytes (whole-byte element types only; strings and sub-byte types are not
//! folded).
//!
//! Data-movement kernels work on the bytes directly (so they handle every dtype, f16 and
//! bf16 included); arithmetic kernels decode to typed vectors through [`Elem`].
use whittle_ir::{DataType, Tensor};

/// Why a node was not folded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoldError {
    /// The op, dtype or attribute combination has no kernel here.
    Unsupported(String),
    /// The output would exceed the size budget.
    TooBig { bytes: u64, budget: u64 },
    /// The inputs do not fit the op (the model is wrong, or this kernel is): leave it.
    Invalid(String),
}

impl std::fmt::Display for FoldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FoldError::Unsupported(m) => write!(f, "unsupported: {m}"),
            FoldError::TooBig { bytes, budget } => {
                write!(
                    f,
                    "output would be {bytes} bytes, over the fold limit ({budget} bytes)"
                )
            }
            FoldError::Invalid(m) => write!(f, "cannot evaluate: {m}"),
        }
    }
}

pub type FoldResult<T> = Result<T, FoldError>;

pub fn unsupported<T>(m: impl Into<String>) -> FoldResult<T> {
    Err(FoldError::Unsupported(m.into()))
}

pub fn invalid<T>(m: impl Into<String>) -> FoldResult<T> {
    Err(FoldError::Invalid(m.into()))
}

/// A constant tensor value.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub dtype: DataType,
    pub dims: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// Bytes per element of a dtype this module can fold.
pub fn elem_size(dtype: DataType) -> FoldResult<usize> {
    match dtype.bits() {
        Some(b) if b % 8 == 0 && dtype != DataType::STRING => Ok((b / 8) as usize),
        _ => unsupported(format!("{dtype} elements")),
    }
}

/// Product of dims, or an error on overflow.
pub fn numel(dims: &[usize]) -> FoldResult<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| FoldError::Invalid(format!("dims {dims:?} overflow")))
}

impl Value {
    pub fn from_tensor(t: &Tensor) -> FoldResult<Value> {
        let dtype = t.dtype();
        elem_size(dtype)?;
        let dims = t
            .dims()
            .iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| FoldError::Invalid(format!("negative dim {d}")))
            })
            .collect::<FoldResult<Vec<_>>>()?;
        let bytes = t
            .le_bytes()
            .map_err(|e| FoldError::Invalid(e.to_string()))?
            .into_owned();
        Ok(Value { dtype, dims, bytes })
    }

    pub fn to_tensor(&self, name: &str) -> Tensor {
        let dims = self.dims.iter().map(|&d| d as i64).collect();
        Tensor::new_raw(
            name,
            self.dtype,
            dims,
            bytes::Bytes::from(self.bytes.clone()),
        )
    }

    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Builds a value from typed elements.
    pub fn from_vec<T: Elem>(dims: Vec<usize>, data: &[T]) -> Value {
        let mut bytes = Vec::with_capacity(data.len() * T::SIZE);
        for x in data {
            x.put(&mut bytes);
        }
        Value {
            dtype: T::DTYPE,
            dims,
            bytes,
        }
    }

    /// The elements as `T`; the dtype must be `T`'s.
    pub fn to_vec<T: Elem>(&self) -> FoldResult<Vec<T>> {
        if self.dtype != T::DTYPE {
            return invalid(format!("expected {} data, got {}", T::DTYPE, self.dtype));
        }
        Ok(self.bytes.chunks_exact(T::SIZE).map(T::get).collect())
    }

    /// Integer contents (i64, i32, and the small integer types) as i64, for shape-like
    /// inputs (shapes, axes, indices, starts/ends).
    pub fn to_i64s(&self) -> FoldResult<Vec<i64>> {
        match self.dtype {
            DataType::INT64 => self.to_vec::<i64>(),
            DataType::INT32 => Ok(self.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
            DataType::INT8 => Ok(self.bytes.iter().map(|&b| i64::from(b as i8)).collect()),
            DataType::UINT8 => Ok(self.bytes.iter().map(|&b| i64::from(b)).collect()),
            d => invalid(format!("expected integer data, got {d}")),
        }
    }

    /// Non-negative integer contents as usize (for shapes).
    pub fn to_usizes(&self) -> FoldResult<Vec<usize>> {
        self.to_i64s()?
            .into_iter()
            .map(|v| {
                usize::try_from(v).map_err(|_| FoldError::Invalid(format!("negative size {v}")))
            })
            .collect()
    }

    /// The single element of a one-element value, as bytes.
    pub fn scalar_bytes(&self) -> FoldResult<&[u8]> {
        if self.numel() != 1 {
            return invalid(format!("expected one element, got dims {:?}", self.dims));
        }
        Ok(&self.bytes)
    }
}

/// An element type with a fixed little-endian layout.
pub trait Elem: Copy + PartialOrd + std::fmt::Debug {
    const DTYPE: DataType;
    const SIZE: usize;
    fn get(b: &[u8]) -> Self;
    fn put(self, out: &mut Vec<u8>);
}

macro_rules! elem {
    ($t:ty, $d:expr) => {
        impl Elem for $t {
            const DTYPE: DataType = $d;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

elem!(f32, DataType::FLOAT);
elem!(f64, DataType::DOUBLE);
elem!(i64, DataType::INT64);
elem!(i32, DataType::INT32);
elem!(i8, DataType::INT8);
elem!(u8, DataType::UINT8);

impl Elem for bool {
    const DTYPE: DataType = DataType::BOOL;
    const SIZE: usize = 1;
    fn get(b: &[u8]) -> Self {
        b[0] != 0
    }
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Normalizes an axis against a rank (negative counts from the end).
pub fn norm_axis(axis: i64, rank: usize) -> FoldResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        invalid(format!("axis {axis} out of range for rank {rank}"))
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> FoldResult<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + a.len()).checked_sub(rank).map_or(1, |j| a[j]);
        let db = (i + b.len()).checked_sub(rank).map_or(1, |j| b[j]);
        out.push(match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return invalid(format!("shapes {a:?} and {b:?} do not broadcast")),
        });
    }
    Ok(out)
}

/// For each element of the `out` shape, the flat index of the element of an input of
/// shape `dims` (broadcast to `out`) it reads.
pub fn broadcast_index(dims: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let offset = out.len() - dims.len();
    let in_strides = strides(dims);
    // Stride per output axis: 0 where the input is broadcast (missing or size 1).
    let st: Vec<usize> = (0..out.len())
        .map(|i| match i.checked_sub(offset) {
            Some(j) if dims[j] != 1 => in_strides[j],
            _ => 0,
        })
        .collect();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; out.len()];
    let mut flat = 0usize;
    for _ in 0..n {
        idx.push(flat);
        for ax in (0..out.len()).rev() {
            counter[ax] += 1;
            flat += st[ax];
            if counter[ax] < out[ax] {
                break;
            }
            flat -= st[ax] * counter[ax];
            counter[ax] = 0;
        }
    }
    idx
}
