//! Model input descriptions, shape overrides and deterministic seeded inputs.
//!
//! Invariants:
//! - [`resolve_shapes`] either returns a concrete shape for every input, in spec order, or
//!   fails; when dims are missing it fails with ONE [`InputError::Unresolved`] that lists
//!   every input dim still lacking a value (not just the first).
//! - [`seeded_inputs`] is a pure function of (name, dtype, shape, seed): same arguments, same
//!   bytes, on every platform and every version (see [`crate::rng`]). Each input draws from
//!   its own SplitMix64 stream seeded with `seed XOR fnv1a(name)`, so adding, removing or
//!   reordering inputs never changes the values of the others.
//! - Value ranges: floats are uniform in `[-1, 1)` on a grid that every float type represents
//!   exactly (f16: steps of 2^-10, f32: 2^-23, f64: 2^-52), so a value is the same number in
//!   every backend; integers (signed and unsigned) are uniform in `[0, 10)` so they are valid
//!   as indices into small tables and never overflow; bools are fair coin flips.

use std::fmt::Write as _;

use half::f16;

use crate::rng::{SplitMix64, fnv1a};
use crate::tensor::{DType, HostTensor, NamedTensor, TensorData, element_count};

/// Exclusive upper bound of seeded integer values (lower bound 0).
pub const SEEDED_INT_END: u32 = 10;

/// One dimension of a declared input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(u64),
    /// A named dimension (`dim_param`), e.g. `"batch"`.
    Symbolic(String),
    /// Neither a value nor a name.
    Unknown,
}

/// A model input as the graph declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

/// A user-given shape: either a whole input shape (`x=1x3x224x224`) or, when the name is
/// not an input but a symbolic dim and one value is given, a binding of that symbol
/// everywhere (`batch=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeOverride {
    pub name: String,
    pub dims: Vec<usize>,
}

/// One input dim that still needs a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDim {
    pub input: String,
    pub axis: usize,
    /// The symbolic name, if the dim has one.
    pub symbol: Option<String>,
    /// Suggested `--shape` argument with the known dims filled in.
    pub suggestion: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("cannot parse shape {text:?}: {reason} (expected NAME=DIMS, e.g. input=1x3x224x224)")]
    BadOverride { text: String, reason: String },
    #[error("shape given twice for \"{name}\"")]
    DuplicateOverride { name: String },
    #[error(
        "shape given for \"{name}\", which is neither an input nor a symbolic dim (inputs: {})",
        inputs.join(", ")
    )]
    UnknownOverride { name: String, inputs: Vec<String> },
    #[error("input \"{input}\" has rank {expected} but the shape given has {given} dims")]
    RankMismatch {
        input: String,
        expected: usize,
        given: usize,
    },
    #[error("input \"{input}\" dim {axis} is fixed at {declared} but {given} was given")]
    FixedDimConflict {
        input: String,
        axis: usize,
        declared: u64,
        given: usize,
    },
    #[error("{}", render_missing(missing))]
    Unresolved { missing: Vec<MissingDim> },
    #[error("input \"{input}\": shape {shape:?} is too large")]
    TooLarge { input: String, shape: Vec<usize> },
    #[error("{specs} input specs but {shapes} shapes were given")]
    CountMismatch { specs: usize, shapes: usize },
}

fn render_missing(missing: &[MissingDim]) -> String {
    let mut out = format!("{} input dim(s) need a value:", missing.len());
    for m in missing {
        let what = match &m.symbol {
            Some(s) => format!("(\"{s}\")"),
            None => "(unnamed)".to_string(),
        };
        let _ = write!(
            out,
            "\n  input \"{}\" dim {} {what} needs a value: pass --shape {}",
            m.input, m.axis, m.suggestion
        );
    }
    out
}

/// Parses `NAME=D0xD1x...` (`,` also separates dims). The name is everything before the
/// last `=`, so names containing `:` or `/` work.
pub fn parse_shape_override(text: &str) -> Result<ShapeOverride, InputError> {
    let bad = |reason: &str| InputError::BadOverride {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let (name, dims) = text.rsplit_once('=').ok_or_else(|| bad("no '='"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    let dims = dims
        .split(['x', 'X', ','])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|_| bad(&format!("{:?} is not a dim size", d.trim())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShapeOverride {
        name: name.to_string(),
        dims,
    })
}

/// Turns declared input shapes plus overrides into one concrete shape per spec.
pub fn resolve_shapes(
    specs: &[InputSpec],
    overrides: &[ShapeOverride],
) -> Result<Vec<Vec<usize>>, InputError> {
    let mut whole: Vec<Option<&[usize]>> = vec![None; specs.len()];
    let mut symbols: Vec<(&str, usize)> = Vec::new();
    for (i, o) in overrides.iter().enumerate() {
        if overrides[..i].iter().any(|p| p.name == o.name) {
            return Err(InputError::DuplicateOverride {
                name: o.name.clone(),
            });
        }
        if let Some(k) = specs.iter().position(|s| s.name == o.name) {
            whole[k] = Some(&o.dims);
        } else if o.dims.len() == 1 && declares_symbol(specs, &o.name) {
            symbols.push((&o.name, o.dims[0]));
        } else {
            return Err(InputError::UnknownOverride {
                name: o.name.clone(),
                inputs: specs.iter().map(|s| s.name.clone()).collect(),
            });
        }
    }
    let mut shapes = Vec::with_capacity(specs.len());
    let mut missing = Vec::new();
    for (spec, given) in specs.iter().zip(whole) {
        if let Some(given) = given {
            check_override(spec, given)?;
            shapes.push(given.to_vec());
            continue;
        }
        let mut shape = Vec::with_capacity(spec.dims.len());
        for (axis, dim) in spec.dims.iter().enumerate() {
            let value = match dim {
                Dim::Fixed(v) => usize::try_from(*v).ok(),
                Dim::Symbolic(s) => symbols.iter().find(|(n, _)| n == s).map(|&(_, v)| v),
                Dim::Unknown => None,
            };
            match value {
                Some(v) => shape.push(v),
                None => missing.push(MissingDim {
                    input: spec.name.clone(),
                    axis,
                    symbol: match dim {
                        Dim::Symbolic(s) => Some(s.clone()),
                        _ => None,
                    },
                    suggestion: suggestion(spec, &symbols),
                }),
            }
        }
        shapes.push(shape);
    }
    if missing.is_empty() {
        Ok(shapes)
    } else {
        Err(InputError::Unresolved { missing })
    }
}

fn declares_symbol(specs: &[InputSpec], symbol: &str) -> bool {
    specs
        .iter()
        .flat_map(|s| &s.dims)
        .any(|d| matches!(d, Dim::Symbolic(s) if s == symbol))
}

fn check_override(spec: &InputSpec, given: &[usize]) -> Result<(), InputError> {
    if given.len() != spec.dims.len() {
        return Err(InputError::RankMismatch {
            input: spec.name.clone(),
            expected: spec.dims.len(),
            given: given.len(),
        });
    }
    for (axis, (dim, &g)) in spec.dims.iter().zip(given).enumerate() {
        if let Dim::Fixed(declared) = dim
            && usize::try_from(*declared).ok() != Some(g)
        {
            return Err(InputError::FixedDimConflict {
                input: spec.name.clone(),
                axis,
                declared: *declared,
                given: g,
            });
        }
    }
    Ok(())
}

/// `name=` followed by the dims, known ones as numbers and missing ones as `<symbol>` or `<dN>`.
fn suggestion(spec: &InputSpec, symbols: &[(&str, usize)]) -> String {
    let dims: Vec<String> = spec
        .dims
        .iter()
        .enumerate()
        .map(|(axis, d)| match d {
            Dim::Fixed(v) => v.to_string(),
            Dim::Symbolic(s) => match symbols.iter().find(|(n, _)| n == s) {
                Some((_, v)) => v.to_string(),
                None => format!("<{s}>"),
            },
            Dim::Unknown => format!("<d{axis}>"),
        })
        .collect();
    format!("{}={}", spec.name, dims.join("x"))
}

/// Deterministic inputs for `specs` with the concrete `shapes` (one per spec, same order).
pub fn seeded_inputs(
    specs: &[InputSpec],
    shapes: &[Vec<usize>],
    seed: u64,
) -> Result<Vec<NamedTensor>, InputError> {
    if specs.len() != shapes.len() {
        return Err(InputError::CountMismatch {
            specs: specs.len(),
            shapes: shapes.len(),
        });
    }
    specs
        .iter()
        .zip(shapes)
        .map(|(spec, shape)| {
            seeded_tensor(&spec.name, spec.dtype, shape, seed).map(|t| (spec.name.clone(), t))
        })
        .collect()
}

/// One deterministic tensor (see the module docs for the ranges and the stream).
pub fn seeded_tensor(
    name: &str,
    dtype: DType,
    shape: &[usize],
    seed: u64,
) -> Result<HostTensor, InputError> {
    let too_large = || InputError::TooLarge {
        input: name.to_string(),
        shape: shape.to_vec(),
    };
    let n = element_count(shape).ok_or_else(too_large)?;
    let mut rng = SplitMix64::new(seed ^ fnv1a(name.as_bytes()));
    let ints = |rng: &mut SplitMix64| rng.below(SEEDED_INT_END);
    let data = match dtype {
        DType::F16 => TensorData::F16(
            (0..n)
                .map(|_| f16::from_f32((rng.next_u64() >> 53) as f32 / 1024.0 - 1.0))
                .collect(),
        ),
        DType::F32 => TensorData::F32(
            (0..n)
                .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
                .collect(),
        ),
        DType::F64 => TensorData::F64(
            (0..n)
                .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
                .collect(),
        ),
        DType::I8 => TensorData::I8((0..n).map(|_| ints(&mut rng) as i8).collect()),
        DType::I16 => TensorData::I16((0..n).map(|_| ints(&mut rng) as i16).collect()),
        DType::I32 => TensorData::I32((0..n).map(|_| ints(&mut rng) as i32).collect()),
        DType::I64 => TensorData::I64((0..n).map(|_| i64::from(ints(&mut rng))).collect()),
        DType::U8 => TensorData::U8((0..n).map(|_| ints(&mut rng) as u8).collect()),
        DType::U16 => TensorData::U16((0..n).map(|_| ints(&mut rng) as u16).collect()),
        DType::U32 => TensorData::U32((0..n).map(|_| ints(&mut rng)).collect()),
        DType::U64 => TensorData::U64((0..n).map(|_| u64::from(ints(&mut rng))).collect()),
        DType::Bool => TensorData::Bool((0..n).map(|_| rng.next_u64() >> 63 == 1).collect()),
    };
    HostTensor::new(shape.to_vec(), data).map_err(|_| too_large())
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
