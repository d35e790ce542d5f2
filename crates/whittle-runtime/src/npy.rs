//! The `.npy` array format (numpy `format.py`, versions 1.0, 2.0 and 3.0) for one array.
//!
//! Reading accepts little- and big-endian (`<`, `>`, `=`, `|`) plain numeric and bool dtypes
//! and both C and Fortran order; Fortran-ordered data is reordered to row-major on read, so a
//! [`HostTensor`] is always row-major. Structured dtypes, object arrays, strings, complex
//! numbers and pickles are refused with the reason. Writing always produces version 1.0,
//! little-endian, C order, with the header padded to a multiple of 64 bytes like numpy does.

use half::f16;

use crate::tensor::{DType, HostTensor, TensorData, element_count, map_variant};

const MAGIC: &[u8] = b"\x93NUMPY";

/// What went wrong decoding one `.npy` payload (the caller adds file and key).
pub type NpyResult<T> = Result<T, String>;

/// numpy's `descr` string for a dtype, little-endian.
pub fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
    }
}

/// Parses a numpy `descr` into (dtype, is_big_endian).
fn parse_descr(d: &str) -> NpyResult<(DType, bool)> {
    let (order, code) = match d.chars().next() {
        Some(c @ ('<' | '>' | '=' | '|')) => (c, &d[1..]),
        _ => ('=', d),
    };
    let big = order == '>' || (order == '=' && cfg!(target_endian = "big"));
    let dtype = match code {
        "f2" | "e" => DType::F16,
        "f4" | "f" => DType::F32,
        "f8" | "d" => DType::F64,
        "i1" | "b" => DType::I8,
        "i2" | "h" => DType::I16,
        "i4" | "i" => DType::I32,
        "i8" | "q" => DType::I64,
        "u1" | "B" => DType::U8,
        "u2" | "H" => DType::U16,
        "u4" | "I" => DType::U32,
        "u8" | "Q" => DType::U64,
        "b1" | "?" => DType::Bool,
        _ => {
            return Err(format!(
                "unsupported dtype '{d}' (only plain numeric and bool arrays are read)"
            ));
        }
    };
    Ok((dtype, big))
}

#[derive(Debug)]
struct Header {
    dtype: DType,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Decodes a whole `.npy` file held in memory.
pub fn decode(bytes: &[u8]) -> NpyResult<HostTensor> {
    let (header, data) = split_header(bytes)?;
    let header = parse_header(header)?;
    let count = element_count(&header.shape)
        .ok_or_else(|| format!("shape {:?} overflows", header.shape))?;
    let size = header.dtype.size_of();
    let needed = count
        .checked_mul(size)
        .ok_or_else(|| format!("shape {:?} overflows", header.shape))?;
    if data.len() < needed {
        return Err(format!(
            "truncated data: shape {:?} of {} needs {needed} bytes, found {}",
            header.shape,
            header.dtype,
            data.len()
        ));
    }
    let values = decode_values(&data[..needed], header.dtype, header.big_endian)?;
    let values = if header.fortran_order && header.shape.len() > 1 {
        let order = fortran_to_c_order(&header.shape);
        map_variant!(values, v => order.iter().map(|&i| v[i]).collect())
    } else {
        values
    };
    HostTensor::new(header.shape, values).map_err(|e| e.to_string())
}

fn split_header(bytes: &[u8]) -> NpyResult<(&str, &[u8])> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (missing \\x93NUMPY magic)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(n).map_err(|_| "header too long")?, 12)
        }
        v => return Err(format!("unsupported .npy format version {v}.{}", bytes[7])),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not UTF-8")?;
    Ok((header, &bytes[end..]))
}

/// Parses the header dict, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(text: &str) -> NpyResult<Header> {
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("header is not a dict: {text:?}"))?;
    let descr = dict_value(body, "descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .ok_or_else(|| format!("unsupported descr {descr} (structured dtypes are not read)"))?;
    let (dtype, big_endian) = parse_descr(descr)?;
    let fortran_order = match dict_value(body, "fortran_order")? {
        "True" => true,
        "False" => false,
        other => return Err(format!("bad fortran_order value {other:?}")),
    };
    let shape_text = dict_value(body, "shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {shape_text:?}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("bad shape {shape_text:?}"))?;
    Ok(Header {
        dtype,
        big_endian,
        fortran_order,
        shape,
    })
}

/// The raw text of the value of `key` in a flat Python dict body (values hold no nested dicts;
/// a tuple value may contain commas, so it is taken up to its closing parenthesis).
fn dict_value<'a>(body: &'a str, key: &str) -> NpyResult<&'a str> {
    let missing = || format!("header has no '{key}' entry");
    let pos = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| body.find(k.as_str()).map(|p| p + k.len()))
        .ok_or_else(missing)?;
    let rest = body[pos..]
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(missing)?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|p| p + 1)
    } else if let Some(q @ ('\'' | '"')) = rest.chars().next() {
        rest[1..].find(q).map(|p| p + 2)
    } else if rest.starts_with('[') {
        rest.find(']').map(|p| p + 1)
    } else {
        Some(rest.find([',', '}']).unwrap_or(rest.len()))
    };
    let end = end.ok_or_else(|| format!("unterminated '{key}' value"))?;
    Ok(rest[..end].trim())
}

/// For each row-major position, the index of that element in column-major storage.
fn fortran_to_c_order(shape: &[usize]) -> Vec<usize> {
    let mut f_strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        f_strides[k] = f_strides[k - 1] * shape[k - 1];
    }
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..count {
        out.push(index.iter().zip(&f_strides).map(|(i, s)| i * s).sum());
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

fn decode_values(data: &[u8], dtype: DType, big: bool) -> NpyResult<TensorData> {
    macro_rules! num {
        ($t:ty, $n:literal) => {
            data.chunks_exact($n)
                .map(|c| {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(c);
                    if big {
                        <$t>::from_be_bytes(b)
                    } else {
                        <$t>::from_le_bytes(b)
                    }
                })
                .collect()
        };
    }
    Ok(match dtype {
        DType::F16 => TensorData::F16(num!(f16, 2)),
        DType::F32 => TensorData::F32(num!(f32, 4)),
        DType::F64 => TensorData::F64(num!(f64, 8)),
        DType::I8 => TensorData::I8(data.iter().map(|&b| b as i8).collect()),
        DType::I16 => TensorData::I16(num!(i16, 2)),
        DType::I32 => TensorData::I32(num!(i32, 4)),
        DType::I64 => TensorData::I64(num!(i64, 8)),
        DType::U8 => TensorData::U8(data.to_vec()),
        DType::U16 => TensorData::U16(num!(u16, 2)),
        DType::U32 => TensorData::U32(num!(u32, 4)),
        DType::U64 => TensorData::U64(num!(u64, 8)),
        DType::Bool => TensorData::Bool(
            data.iter()
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    other => Err(format!("bool array holds byte {other} (expected 0 or 1)")),
                })
                .collect::<NpyResult<_>>()?,
        ),
    })
}

/// A tensor from its little-endian element bytes (the inverse of
/// [`HostTensor::to_le_bytes`]); e.g. an ONNX `TensorProto`'s raw data.
pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> NpyResult<HostTensor> {
    let expected = crate::tensor::element_count(&shape)
        .and_then(|n| n.checked_mul(dtype.size_of()))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    if bytes.len() != expected {
        return Err(format!(
            "{dtype} {shape:?} needs {expected} bytes, {} given",
            bytes.len()
        ));
    }
    HostTensor::new(shape, decode_values(bytes, dtype, false)?).map_err(|e| e.to_string())
}

/// Encodes one tensor as a version 1.0 `.npy` file.
pub fn encode(tensor: &HostTensor) -> Vec<u8> {
    let shape = match tensor.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(tensor.dtype())
    );
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + tensor.len() * tensor.dtype().size_of());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // Headers longer than u16 need version 2.0; a shape string never gets near 64 KiB.
    let len = u16::try_from(header.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(tensor.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_numpy_forms() {
        let h = parse_header("{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }    \n")
            .unwrap();
        assert_eq!(
            (h.dtype, h.big_endian, h.fortran_order),
            (DType::I32, true, true)
        );
        assert_eq!(h.shape, vec![2, 3]);
        let h = parse_header("{'descr': '|b1', 'fortran_order': False, 'shape': (), }").unwrap();
        assert!(h.shape.is_empty());
        let h = parse_header("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }").unwrap();
        assert_eq!(h.shape, vec![5]);
    }

    #[test]
    fn refuses_structured_and_unknown() {
        let e = parse_header("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }");
        assert!(e.unwrap_err().contains("structured"));
        let e = parse_header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }");
        assert!(e.unwrap_err().contains("unsupported dtype '<c8'"));
    }

    #[test]
    fn fortran_order_index_map() {
        // 2x3 in column-major storage: [a00 a10 a01 a11 a02 a12].
        assert_eq!(fortran_to_c_order(&[2, 3]), vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn encode_decode_round_trip_and_alignment() {
        let t = HostTensor::from_vec(vec![2, 2], vec![1u16, 2, 3, 65535]).unwrap();
        let bytes = encode(&t);
        assert_eq!((bytes.len() - 8) % 64, 0, "header padded to 64 bytes");
        assert_eq!(decode(&bytes).unwrap(), t);
        let s = HostTensor::scalar(2.5f64);
        assert_eq!(decode(&encode(&s)).unwrap(), s);
    }

    #[test]
    fn truncated_data_is_an_error() {
        let t = HostTensor::from_vec(vec![4], vec![1i64, 2, 3, 4]).unwrap();
        let bytes = encode(&t);
        let err = decode(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.contains("truncated data"), "{err}");
    }
}
