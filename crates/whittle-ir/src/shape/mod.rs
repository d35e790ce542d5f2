//! Static shape propagation: element type and dims of every value of a model, as far as
//! they follow from the graph inputs, the initializers and the ops.
//!
//! **What is inferred.** Starting from the declared graph inputs (or the user's
//! [`ShapeOverrides`]), the initializers' dims and the `Constant` nodes, each default-domain
//! node of a known op gets its outputs' dtype and dims by the op's ONNX definition:
//! elementwise unary ops and numpy broadcasting binary/variadic ops (legacy `broadcast`
//! form before opset 7), comparisons, Where, Cast/CastLike, BatchNormalization,
//! InstanceNormalization, LayerNormalization, Dropout, Identity, Softmax/LogSoftmax,
//! Quantize/DequantizeLinear, Conv/ConvInteger/QLinearConv, ConvTranspose, Max/Average/
//! LpPool, Global*Pool, MatMul (1-D rules, batch broadcasting), MatMulInteger,
//! QLinearMatMul, Gemm, Flatten, Reshape (0 and −1), Transpose, Concat, Squeeze/Unsqueeze,
//! Expand, Tile, Depth/SpaceToDepth, Shape, Size, ConstantOfShape, Range, Gather,
//! GatherElements, GatherND, Slice, Split, Pad, Resize/Upsample, Reduce*, ArgMax/ArgMin, TopK,
//! NonZero, LSTM/GRU/RNN and If. The contents of small integer tensors (shape vectors,
//! axes, indices, pads; up to 1024 elements) are tracked too — through Shape, Size,
//! Gather, Slice, Concat, Reshape, Transpose, (Un)Squeeze, Cast, ConstantOfShape, Range,
//! integer Add/Sub/Mul/Div, comparisons and Not — so exporter shape arithmetic resolves
//! (`Shape → Gather → Concat → Reshape`, symbols included; PyTorch's computed `F.pad`
//! pads). An `If` whose condition is such a tracked constant takes its branch's output
//! shapes; otherwise each output is what both branches agree on.
//!
//! **Declared dims.** A `dim_param` is a symbol shared by every dim of that name, except
//! `"?"` (some exporters write it for every unknown dim), which is unknown; a negative
//! `dim_value` is unknown too.
//!
//! **It never guesses.** A dim is a number only when it follows from numbers; a symbol
//! (`N`) flows where the op keeps it (N stays N) and becomes [`Dim::Unknown`] where the
//! result would depend on its value. Ops it does not know (other domains, model-local
//! functions, Loop/Scan, anything not listed) get unknown outputs — not an error — unless
//! the file declares them in `value_info`/graph outputs: declared types only fill what
//! inference left unknown and never override a computed dim. Subgraphs are walked in
//! place (outer-scope names resolve); Loop and Scan bodies see their declared input types.
//!
//! The result, a [`ShapeMap`] keyed by value name, is the input of `inspect` (MACs) and of
//! passes that need shapes (constant folding, pruning).
mod conv;
mod cx;
mod dim;
mod layout;
mod overrides;
mod reduce;
mod rules;
mod slicing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_graph;
#[cfg(test)]
mod tests_layout;
#[cfg(test)]
mod tests_values;
#[cfg(test)]
pub(crate) mod testutil;
mod values;
mod walk;

pub use conv::matmul_dims;
pub use dim::{Dim, ValueShape, broadcast, product, product_dim, tensor_value_info};

use crate::model::Model;
use std::collections::BTreeMap;

/// Shapes the user fixes before inference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeOverrides {
    /// Full shapes of main-graph inputs, by name (`--shape NAME=1x3x224x224`).
    pub inputs: BTreeMap<String, Vec<u64>>,
    /// The leading dim of every main-graph input whose leading dim is not fixed
    /// (`--batch N`); a named one binds its symbol everywhere it is declared.
    pub batch: Option<u64>,
}

impl ShapeOverrides {
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.batch.is_none()
    }
}

/// An override that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error(
        "shape override for {name:?}: the model has no input of that name (its inputs: {inputs})"
    )]
    UnknownInput { name: String, inputs: String },
    #[error("shape override for {name:?}: {given} dims given, but the input has rank {rank}")]
    Rank {
        name: String,
        given: usize,
        rank: usize,
    },
    #[error(
        "shape override for {name:?}: dim {index} is fixed at {fixed} by the model, not {given}"
    )]
    Fixed {
        name: String,
        index: usize,
        fixed: i64,
        given: u64,
    },
    #[error("shape overrides give symbol {symbol:?} two values: {first} and {second}")]
    Conflict {
        symbol: String,
        first: u64,
        second: u64,
    },
}

/// Inferred dtype and dims of every value of a model (main graph and subgraphs), by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShapeMap {
    values: BTreeMap<String, ValueShape>,
    /// The symbols the overrides fixed, and their numbers.
    bindings: BTreeMap<String, u64>,
}

impl ShapeMap {
    pub fn get(&self, name: &str) -> Option<&ValueShape> {
        self.values.get(name)
    }

    /// The dims of a value, when its rank is known.
    pub fn dims(&self, name: &str) -> Option<&[Dim]> {
        self.values.get(name)?.dims.as_deref()
    }

    /// Every value, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ValueShape)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Symbols fixed by the overrides (e.g. `N` → 1 from `--batch 1`).
    pub fn bindings(&self) -> &BTreeMap<String, u64> {
        &self.bindings
    }
}

/// Infers the shapes of every value of `model`. Errors only when an override does not
/// fit the model; an empty [`ShapeOverrides`] never fails.
pub fn infer_shapes(model: &Model, overrides: &ShapeOverrides) -> Result<ShapeMap, ShapeError> {
    let resolved = overrides::resolve(model, overrides)?;
    let opset = model.opset("").unwrap_or(1);
    let mut state = walk::State::new(opset, model.proto.ir_version(), &resolved.bindings);
    state.graph(&model.graph, &resolved.inputs);
    Ok(ShapeMap {
        values: state.shapes,
        bindings: resolved.bindings,
    })
}
