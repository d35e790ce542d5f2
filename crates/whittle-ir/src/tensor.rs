//! Tensors as read: the `TensorProto` itself plus, for external data, the bytes it points at.
//!
//! Invariants:
//! - `proto` is the tensor exactly as read, so export writes back what was read (typed
//!   `*_data` fields stay typed, `raw_data` stays raw, external entries stay as they were);
//! - `raw_data` and external bytes are [`Bytes`] slices of the file buffer or of an mmap:
//!   nothing is copied until a pass asks for numbers ([`Tensor::le_bytes`], [`Tensor::to_f32_vec`]).
use crate::dtype::DataType;
use crate::error::{IrError, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use whittle_proto::TensorProto;
use whittle_proto::tensor_proto::DataLocation;

/// One tensor (initializer, attribute value) with its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The tensor as read. For external tensors `raw_data` is absent and `external_data`
    /// holds location/offset/length as the file had them.
    pub proto: TensorProto,
    /// The bytes an external tensor points at (a slice of an mmap of its data file).
    pub external: Option<Bytes>,
}

/// Where a tensor's numbers are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Raw,
    Typed,
    External,
    Empty,
}

impl Tensor {
    /// Wraps a tensor that has inline data (no external reference).
    pub fn from_proto(proto: TensorProto) -> Tensor {
        Tensor {
            proto,
            external: None,
        }
    }

    /// A new tensor stored as `raw_data`.
    pub fn new_raw(name: &str, dtype: DataType, dims: Vec<i64>, data: Bytes) -> Tensor {
        Tensor::from_proto(TensorProto {
            name: Some(name.to_string()),
            data_type: Some(dtype.0),
            dims,
            raw_data: Some(data),
            ..Default::default()
        })
    }

    pub fn name(&self) -> &str {
        self.proto.name()
    }

    pub fn dtype(&self) -> DataType {
        DataType(self.proto.data_type.unwrap_or(0))
    }

    pub fn dims(&self) -> &[i64] {
        &self.proto.dims
    }

    /// Product of the dims; `None` when a dim is negative or the product overflows.
    pub fn num_elements(&self) -> Option<u64> {
        self.proto.dims.iter().try_fold(1u64, |acc, &d| {
            u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    }

    pub fn is_external(&self) -> bool {
        self.proto.data_location == Some(DataLocation::External as i32)
    }

    pub fn storage(&self) -> Storage {
        let p = &self.proto;
        if self.is_external() {
            Storage::External
        } else if p.raw_data.is_some() {
            Storage::Raw
        } else if !(p.float_data.is_empty()
            && p.int32_data.is_empty()
            && p.string_data.is_empty()
            && p.int64_data.is_empty()
            && p.double_data.is_empty()
            && p.uint64_data.is_empty())
        {
            Storage::Typed
        } else {
            Storage::Empty
        }
    }

    /// Bytes this tensor's data occupies once packed little-endian (strings: total of
    /// their lengths). Computed from the dims, so it does not touch the data.
    pub fn data_byte_len(&self) -> u64 {
        if self.dtype() == DataType::STRING {
            return self.proto.string_data.iter().map(|s| s.len() as u64).sum();
        }
        self.num_elements()
            .and_then(|n| self.dtype().byte_len(n))
            .unwrap_or(0)
    }

    fn err(&self, message: impl Into<String>) -> IrError {
        IrError::Tensor {
            tensor: self.name().to_string(),
            message: message.into(),
        }
    }

    /// Checks that the stored data holds exactly what dtype and dims declare, without
    /// touching or copying the data: dims must be non-negative and their product must not
    /// overflow; raw/external bytes, typed-field entries or strings must match the count.
    pub fn check_size(&self) -> Result<()> {
        let dtype = self.dtype();
        let n = self.num_elements().ok_or_else(|| {
            self.err(format!(
                "dims {:?} are negative or their product overflows",
                self.proto.dims
            ))
        })?;
        let p = &self.proto;
        let mismatch = |what: &str, need: u64, have: u64| {
            self.err(format!(
                "dims {:?} of {dtype} need {need} {what} but {have} are stored",
                p.dims
            ))
        };
        if dtype == DataType::STRING {
            let have = p.string_data.len() as u64;
            return if have == n || (have == 0 && self.is_external()) {
                Ok(())
            } else {
                Err(mismatch("strings", n, have))
            };
        }
        let Some(bits) = dtype.bits() else {
            return Ok(());
        };
        let need_bytes = dtype.byte_len(n).unwrap_or(u64::MAX);
        match self.storage() {
            Storage::Raw => {
                let have = p.raw_data.as_ref().map_or(0, |b| b.len() as u64);
                if have != need_bytes {
                    return Err(mismatch("bytes of data", need_bytes, have));
                }
            }
            Storage::External => {
                let have = self.external.as_ref().map_or(0, |b| b.len() as u64);
                if self.external.is_some() && have != need_bytes {
                    return Err(mismatch("bytes of external data", need_bytes, have));
                }
            }
            Storage::Empty if n > 0 => return Err(mismatch("elements of data", n, 0)),
            Storage::Empty => {}
            Storage::Typed => {
                let entries = (p.float_data.len()
                    + p.int32_data.len()
                    + p.int64_data.len()
                    + p.double_data.len()
                    + p.uint64_data.len()) as u64;
                // Complex numbers take two entries; sub-byte types (except 6-bit floats)
                // pack into one int32 entry per byte.
                let need = match bits {
                    _ if dtype.short_name().starts_with('c') => n.saturating_mul(2),
                    2 | 4 => need_bytes,
                    _ => n,
                };
                if entries != need {
                    return Err(mismatch("typed-field entries", need, entries));
                }
            }
        }
        Ok(())
    }

    /// The data as packed little-endian bytes, whatever field holds it. Borrowed for raw and
    /// external storage; converted (a copy) for the typed fields. Strings have no such form.
    pub fn le_bytes(&self) -> Result<Cow<'_, [u8]>> {
        let dtype = self.dtype();
        let bits = dtype
            .bits()
            .ok_or_else(|| self.err(format!("{dtype} data has no fixed-width byte form")))?;
        let p = &self.proto;
        let bytes: Cow<'_, [u8]> = match self.storage() {
            Storage::External => Cow::Borrowed(self.external.as_deref().unwrap_or(&[])),
            Storage::Raw => Cow::Borrowed(p.raw_data.as_deref().unwrap_or(&[])),
            Storage::Empty => Cow::Borrowed(&[]),
            Storage::Typed => Cow::Owned(typed_to_le(p, bits)),
        };
        let expected = self.num_elements().and_then(|n| dtype.byte_len(n));
        match expected {
            Some(n) if n == bytes.len() as u64 => Ok(bytes),
            Some(n) => Err(self.err(format!(
                "dims {:?} of {dtype} need {n} bytes of data but {} are stored",
                p.dims,
                bytes.len()
            ))),
            None => Err(self.err(format!("dims {:?} are negative or overflow", p.dims))),
        }
    }

    /// The numbers as f32 (for float, double, float16, bfloat16 and integer types).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        let dtype = self.dtype();
        let bytes = self.le_bytes()?;
        let b = bytes.as_ref();
        let v = match dtype {
            DataType::FLOAT => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DataType::DOUBLE => b
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            DataType::FLOAT16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DataType::INT64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            DataType::INT32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            DataType::INT8 => b.iter().map(|&x| x as i8 as f32).collect(),
            DataType::UINT8 | DataType::BOOL => b.iter().map(|&x| x as f32).collect(),
            DataType::BFLOAT16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            d => return Err(self.err(format!("cannot read {d} data as numbers"))),
        };
        Ok(v)
    }

    /// A content hash over dtype, dims and data (in its canonical little-endian form, so the
    /// same numbers hash the same whether stored raw, typed or external).
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.dtype().0.to_le_bytes());
        h.update((self.proto.dims.len() as u64).to_le_bytes());
        for d in &self.proto.dims {
            h.update(d.to_le_bytes());
        }
        if self.dtype() == DataType::STRING {
            for s in &self.proto.string_data {
                h.update((s.len() as u64).to_le_bytes());
                h.update(s);
            }
        } else {
            match self.le_bytes() {
                Ok(b) => h.update(b.as_ref()),
                // Inconsistent data still gets a stable hash (of what is stored), so the
                // canonical text can show it; `verify` reports the inconsistency.
                Err(_) => {
                    h.update(b"inconsistent");
                    h.update(self.proto.raw_data.as_deref().unwrap_or(&[]));
                    h.update(self.external.as_deref().unwrap_or(&[]));
                }
            }
        }
        h.finalize().into()
    }

    /// First 8 hex digits of [`Tensor::content_hash`], for snapshots and reports.
    pub fn short_hash(&self) -> String {
        self.content_hash()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Replaces the data with `data` stored as `raw_data` (clears typed fields and any
    /// external reference).
    pub fn set_raw(&mut self, data: Bytes) {
        let p = &mut self.proto;
        p.float_data.clear();
        p.int32_data.clear();
        p.string_data.clear();
        p.int64_data.clear();
        p.double_data.clear();
        p.uint64_data.clear();
        p.external_data.clear();
        p.data_location = None;
        p.raw_data = Some(data);
        self.external = None;
    }
}

/// Packs the typed `*_data` fields into little-endian bytes of width `bits` per element.
/// `int32_data` carries one element per entry for 8/16-bit types (float16 as its bit
/// pattern) and one packed byte per entry for the sub-byte types, as onnx writes them.
fn typed_to_le(p: &TensorProto, bits: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for x in &p.float_data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for x in &p.double_data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for x in &p.int64_data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for x in &p.uint64_data {
        // uint32 values are stored in uint64_data but are 4 bytes wide.
        if bits == 32 {
            out.extend_from_slice(&(*x as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    if bits == 6 {
        // 6-bit floats are stored one element per entry; raw form packs 4 into 3 bytes,
        // LSB first.
        let mut acc = 0u32;
        let mut nbits = 0;
        for x in &p.int32_data {
            acc |= ((*x as u32) & 0x3f) << nbits;
            nbits += 6;
            while nbits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                nbits -= 8;
            }
        }
        if nbits > 0 {
            out.push(acc as u8);
        }
        return out;
    }
    for x in &p.int32_data {
        match bits {
            32 => out.extend_from_slice(&x.to_le_bytes()),
            16 => out.extend_from_slice(&(*x as u16).to_le_bytes()),
            _ => out.push(*x as u8),
        }
    }
    // complex64 in float_data: pairs of f32 are already laid out as 8-byte elements above.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_and_raw_hash_the_same() {
        let raw = Tensor::new_raw(
            "w",
            DataType::FLOAT,
            vec![2],
            Bytes::from(
                [1.0f32, 2.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
        );
        let typed = Tensor::from_proto(TensorProto {
            name: Some("w".into()),
            data_type: Some(DataType::FLOAT.0),
            dims: vec![2],
            float_data: vec![1.0, 2.0],
            ..Default::default()
        });
        assert_eq!(raw.storage(), Storage::Raw);
        assert_eq!(typed.storage(), Storage::Typed);
        assert_eq!(raw.content_hash(), typed.content_hash());
        assert_eq!(typed.to_f32_vec().unwrap(), vec![1.0, 2.0]);
    }

    #[test]
    fn wrong_data_length_is_an_error_naming_the_tensor() {
        let t = Tensor::new_raw("w", DataType::FLOAT, vec![3], Bytes::from_static(&[0; 8]));
        let e = t.le_bytes().unwrap_err().to_string();
        assert!(
            e.contains("\"w\"") && e.contains("need 12 bytes") && e.contains("8 are stored"),
            "{e}"
        );
    }

    #[test]
    fn overflowing_dims_do_not_panic() {
        let t = Tensor::new_raw("big", DataType::FLOAT, vec![1 << 40, 1 << 40], Bytes::new());
        assert_eq!(t.num_elements(), None);
        assert!(t.le_bytes().is_err());
        assert_eq!(t.data_byte_len(), 0);
    }
}
