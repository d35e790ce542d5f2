//! HostTensor ↔ `ort` value conversions (copies; all twelve [`DType`]s both ways).

use ort::value::{DynValue, Tensor, TensorElementType};

use crate::tensor::{DType, HostTensor, TensorData, for_each_variant};

/// An owned onnxruntime tensor holding a copy of `t`.
pub(super) fn to_ort(t: &HostTensor) -> ort::Result<DynValue> {
    let shape = t.shape().to_vec();
    for_each_variant!(t.data(), v => Ok(Tensor::from_array((shape, v.clone()))?.into_dyn()))
}

/// A host copy of an onnxruntime tensor output; non-tensor outputs and unsupported element
/// types (strings, bfloat16, float8, int4, complex) are refused with their type named.
pub(super) fn from_ort(value: &DynValue) -> Result<HostTensor, String> {
    let Some(element) = value.dtype().tensor_type() else {
        return Err(format!(
            "is a {:?}, not a tensor (whittle-runtime only reads tensors)",
            value.dtype()
        ));
    };
    let dtype = dtype_of(element)
        .ok_or_else(|| format!("element type {element:?} is not supported by whittle-runtime"))?;
    macro_rules! take {
        ($variant:ident, $ty:ty) => {{
            let (shape, data) = value
                .try_extract_tensor::<$ty>()
                .map_err(|e| e.to_string())?;
            let shape = shape
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("negative dim {d}")))
                .collect::<Result<Vec<_>, _>>()?;
            (shape, TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match dtype {
        DType::F16 => take!(F16, half::f16),
        DType::F32 => take!(F32, f32),
        DType::F64 => take!(F64, f64),
        DType::I8 => take!(I8, i8),
        DType::I16 => take!(I16, i16),
        DType::I32 => take!(I32, i32),
        DType::I64 => take!(I64, i64),
        DType::U8 => take!(U8, u8),
        DType::U16 => take!(U16, u16),
        DType::U32 => take!(U32, u32),
        DType::U64 => take!(U64, u64),
        DType::Bool => take!(Bool, bool),
    };
    HostTensor::new(shape, data).map_err(|e| e.to_string())
}

fn dtype_of(t: TensorElementType) -> Option<DType> {
    Some(match t {
        TensorElementType::Float16 => DType::F16,
        TensorElementType::Float32 => DType::F32,
        TensorElementType::Float64 => DType::F64,
        TensorElementType::Int8 => DType::I8,
        TensorElementType::Int16 => DType::I16,
        TensorElementType::Int32 => DType::I32,
        TensorElementType::Int64 => DType::I64,
        TensorElementType::Uint8 => DType::U8,
        TensorElementType::Uint16 => DType::U16,
        TensorElementType::Uint32 => DType::U32,
        TensorElementType::Uint64 => DType::U64,
        TensorElementType::Bool => DType::Bool,
        _ => return None,
    })
}
