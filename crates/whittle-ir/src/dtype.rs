//! ONNX tensor element types: names, storage widths and which typed field holds them.
use whittle_proto::tensor_proto::DataType as P;

/// An ONNX element type as stored in `TensorProto.data_type`. Unknown codes are kept
/// (as `Other`) so a model from a newer onnx still round-trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataType(pub i32);

impl DataType {
    pub const FLOAT: DataType = DataType(P::Float as i32);
    pub const UINT8: DataType = DataType(P::Uint8 as i32);
    pub const INT8: DataType = DataType(P::Int8 as i32);
    pub const UINT16: DataType = DataType(P::Uint16 as i32);
    pub const INT16: DataType = DataType(P::Int16 as i32);
    pub const INT32: DataType = DataType(P::Int32 as i32);
    pub const INT64: DataType = DataType(P::Int64 as i32);
    pub const STRING: DataType = DataType(P::String as i32);
    pub const BOOL: DataType = DataType(P::Bool as i32);
    pub const FLOAT16: DataType = DataType(P::Float16 as i32);
    pub const DOUBLE: DataType = DataType(P::Double as i32);
    pub const BFLOAT16: DataType = DataType(P::Bfloat16 as i32);

    fn known(self) -> Option<P> {
        P::try_from(self.0).ok()
    }

    /// The short lowercase name used in reports and the canonical text (`f32`, `i64`, …).
    pub fn short_name(self) -> String {
        let name = match self.known() {
            Some(P::Undefined) => "undefined",
            Some(P::Float) => "f32",
            Some(P::Uint8) => "u8",
            Some(P::Int8) => "i8",
            Some(P::Uint16) => "u16",
            Some(P::Int16) => "i16",
            Some(P::Int32) => "i32",
            Some(P::Int64) => "i64",
            Some(P::String) => "string",
            Some(P::Bool) => "bool",
            Some(P::Float16) => "f16",
            Some(P::Double) => "f64",
            Some(P::Uint32) => "u32",
            Some(P::Uint64) => "u64",
            Some(P::Complex64) => "c64",
            Some(P::Complex128) => "c128",
            Some(P::Bfloat16) => "bf16",
            Some(P::Float8e4m3fn) => "f8e4m3fn",
            Some(P::Float8e4m3fnuz) => "f8e4m3fnuz",
            Some(P::Float8e5m2) => "f8e5m2",
            Some(P::Float8e5m2fnuz) => "f8e5m2fnuz",
            Some(P::Uint4) => "u4",
            Some(P::Int4) => "i4",
            Some(P::Float4e2m1) => "f4e2m1",
            Some(P::Float8e8m0) => "f8e8m0",
            Some(P::Uint2) => "u2",
            Some(P::Int2) => "i2",
            Some(P::Float6e2m3) => "f6e2m3",
            Some(P::Float6e3m2) => "f6e3m2",
            None => return format!("dtype{}", self.0),
        };
        name.to_string()
    }

    /// Bits one element occupies in `raw_data` (strings: `None`, they have no fixed width).
    pub fn bits(self) -> Option<u64> {
        Some(match self.known()? {
            P::Undefined | P::String => return None,
            P::Bool | P::Uint8 | P::Int8 => 8,
            P::Float8e4m3fn | P::Float8e4m3fnuz | P::Float8e5m2 | P::Float8e5m2fnuz => 8,
            P::Float8e8m0 => 8,
            P::Uint16 | P::Int16 | P::Float16 | P::Bfloat16 => 16,
            P::Float | P::Int32 | P::Uint32 => 32,
            P::Double | P::Int64 | P::Uint64 | P::Complex64 => 64,
            P::Complex128 => 128,
            P::Uint4 | P::Int4 | P::Float4e2m1 => 4,
            P::Uint2 | P::Int2 => 2,
            P::Float6e2m3 | P::Float6e3m2 => 6,
        })
    }

    /// Bytes that `n` elements occupy in `raw_data` (sub-byte types are packed, rounded up).
    pub fn byte_len(self, n: u64) -> Option<u64> {
        let bits = self.bits()?;
        n.checked_mul(bits).map(|b| b.div_ceil(8))
    }

    /// Whether this is a floating-point type (including the small float formats).
    pub fn is_float(self) -> bool {
        matches!(
            self.known(),
            Some(
                P::Float
                    | P::Double
                    | P::Float16
                    | P::Bfloat16
                    | P::Float8e4m3fn
                    | P::Float8e4m3fnuz
                    | P::Float8e5m2
                    | P::Float8e5m2fnuz
                    | P::Float8e8m0
                    | P::Float4e2m1
                    | P::Float6e2m3
                    | P::Float6e3m2
            )
        )
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_names() {
        assert_eq!(DataType::FLOAT.byte_len(3), Some(12));
        assert_eq!(DataType(P::Int4 as i32).byte_len(3), Some(2));
        assert_eq!(DataType(P::Float6e2m3 as i32).byte_len(4), Some(3));
        assert_eq!(DataType::STRING.byte_len(3), None);
        assert_eq!(DataType(99).short_name(), "dtype99");
        assert_eq!(DataType::FLOAT16.to_string(), "f16");
        assert_eq!(DataType::INT64.byte_len(u64::MAX), None);
    }
}
