//! The tract-onnx backend (always compiled in): a faithful, single-threaded oracle.
//!
//! Loading follows what was measured on tract-onnx 0.23.9: value_info and declared output
//! shapes/types are ignored (symbolic value_info clashes with concrete inputs), the given
//! input facts are set, the model is typed, and when any input, weight or intermediate is
//! f16 the `f16_to_f32` transform runs (tract's f16 kernels are slow and its f16 Gemm does
//! not type). After that transform tract computes in f32: inputs are cast to what the
//! transformed model expects and outputs are cast back to the dtype the graph declares,
//! so callers always see the graph's dtypes (values then differ from a true f16 runtime by
//! at most the f16 rounding of intermediates).
//!
//! A panic inside tract (it has a few on malformed inputs, e.g. Gather indices out of
//! range) is caught and returned as an error: nothing here panics on user data.
//!
//! Threads: tract runs a model on the calling thread only; parallelism comes from running
//! several samples at once ([`crate::parallel::run_many`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::transform::get_transform;

use crate::backend::{Backend, BackendError, InputFact, LoadedModel, error_chain, order_inputs};
use crate::tensor::{DType, HostTensor, NamedTensor, TensorData, for_each_variant};

const NAME: &str = "tract";

/// tract-onnx 0.23 backend. Stateless; every `load` builds a fresh plan.
#[derive(Debug, Clone, Default)]
pub struct TractBackend {
    _private: (),
}

impl TractBackend {
    pub fn new() -> Self {
        TractBackend::default()
    }
}

struct TractModel {
    path: PathBuf,
    plan: Arc<TypedSimplePlan>,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// What the runnable model expects (after any f16→f32 transform).
    plan_input_types: Vec<DatumType>,
    /// The concrete input shapes the plan was specialised to (None where symbolic).
    plan_input_shapes: Vec<Option<Vec<usize>>>,
    /// What the graph declares, i.e. what callers get back.
    graph_output_types: Vec<DType>,
}

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(
        &self,
        model_path: &Path,
        inputs: &[InputFact],
    ) -> Result<Box<dyn LoadedModel>, BackendError> {
        let loaded = std::panic::catch_unwind(|| load(model_path, inputs)).map_err(|panic| {
            BackendError::Load {
                backend: NAME,
                path: model_path.to_path_buf(),
                detail: format!("tract panicked: {}", panic_text(&panic)),
                node: None,
                op: None,
            }
        })?;
        loaded
            .map(|m| Box::new(m) as Box<dyn LoadedModel>)
            .map_err(|e| e.into_backend_error(model_path))
    }
}

/// Internal error: either already a BackendError or a tract error still to be rendered.
enum LoadFailure {
    Tract(TractError),
    Ready(BackendError),
}

impl From<TractError> for LoadFailure {
    fn from(e: TractError) -> Self {
        LoadFailure::Tract(e)
    }
}

impl LoadFailure {
    fn into_backend_error(self, path: &Path) -> BackendError {
        match self {
            LoadFailure::Ready(e) => e,
            LoadFailure::Tract(e) => {
                let detail = tract_chain(&e);
                let (node, op) = node_and_op(&detail);
                BackendError::Load {
                    backend: NAME,
                    path: path.to_path_buf(),
                    detail,
                    node,
                    op,
                }
            }
        }
    }
}

fn load(path: &Path, facts: &[InputFact]) -> Result<TractModel, LoadFailure> {
    let onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .with_ignore_output_types(true);
    let mut model = onnx.model_for_path(path)?;
    let input_names = outlet_names(&model, model.input_outlets()?)?;
    let output_names = outlet_names(&model, model.output_outlets()?)?;
    for fact in facts {
        let Some(ix) = input_names.iter().position(|n| *n == fact.name) else {
            return Err(LoadFailure::Ready(BackendError::UnknownInput {
                backend: NAME,
                path: path.to_path_buf(),
                input: fact.name.clone(),
                inputs: input_names.clone(),
            }));
        };
        let dt = datum_type(fact.dtype);
        model.set_input_fact(ix, InferenceFact::dt_shape(dt, &fact.shape[..]))?;
    }
    let typed = model.into_typed()?;
    let graph_output_types = (0..output_names.len())
        .map(|ix| {
            let dt = typed.output_fact(ix)?.datum_type;
            Ok(dtype_of(dt).ok_or_else(|| unsupported(path, "output", &output_names[ix], dt)))
        })
        .collect::<TractResult<Vec<_>>>()?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(LoadFailure::Ready)?;
    let typed = if uses_f16(&typed) {
        let transform = get_transform("f16_to_f32")?
            .ok_or_else(|| TractError::msg("tract has no f16_to_f32 transform"))?;
        transform.transform_into(typed)?
    } else {
        typed
    };
    let plan = typed.into_optimized()?.into_runnable()?;
    let mut plan_input_types = Vec::with_capacity(input_names.len());
    let mut plan_input_shapes = Vec::with_capacity(input_names.len());
    for ix in 0..input_names.len() {
        let fact = plan.model().input_fact(ix)?;
        plan_input_types.push(fact.datum_type);
        plan_input_shapes.push(fact.shape.as_concrete().map(<[usize]>::to_vec));
    }
    Ok(TractModel {
        path: path.to_path_buf(),
        plan,
        input_names,
        output_names,
        plan_input_types,
        plan_input_shapes,
        graph_output_types,
    })
}

fn outlet_names(model: &InferenceModel, outlets: &[OutletId]) -> TractResult<Vec<String>> {
    outlets
        .iter()
        .map(|&o| {
            Ok(model
                .outlet_label(o)
                .map(str::to_string)
                .unwrap_or_else(|| model.node(o.node).name.clone()))
        })
        .collect()
}

fn uses_f16(model: &TypedModel) -> bool {
    model.nodes().iter().any(|n| {
        n.outputs
            .iter()
            .any(|o| o.fact.datum_type == DatumType::F16)
    })
}

fn unsupported(path: &Path, what: &'static str, name: &str, dt: DatumType) -> BackendError {
    BackendError::UnsupportedDType {
        backend: NAME,
        path: path.to_path_buf(),
        what,
        name: name.to_string(),
        dtype: format!("{dt:?}"),
    }
}

/// The message of a caught panic.
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// The whole tract error chain, outermost first.
fn tract_chain(e: &TractError) -> String {
    error_chain(e.as_ref())
}

/// Finds the innermost `#<id> "<node name>" <Op>` (tract's node display) in an error chain.
pub(crate) fn node_and_op(detail: &str) -> (Option<String>, Option<String>) {
    let mut found = (None, None);
    let mut rest = detail;
    while let Some(hash) = rest.find('#') {
        let after = &rest[hash + 1..];
        rest = after;
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let Some(quoted) = after[digits..].strip_prefix(" \"").filter(|_| digits > 0) else {
            continue;
        };
        let Some(close) = quoted.find('"') else {
            continue;
        };
        let name = &quoted[..close];
        let op_text = quoted[close + 1..].trim_start();
        let op_end = op_text.find([' ', ':', ',']).unwrap_or(op_text.len());
        let op = &op_text[..op_end];
        let op = op
            .strip_prefix("Unimplemented(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(op);
        found = (
            Some(name.to_string()),
            (!op.is_empty()).then(|| op.to_string()),
        );
    }
    found
}

fn datum_type(d: DType) -> DatumType {
    match d {
        DType::F16 => DatumType::F16,
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::I8 => DatumType::I8,
        DType::I16 => DatumType::I16,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::U8 => DatumType::U8,
        DType::U16 => DatumType::U16,
        DType::U32 => DatumType::U32,
        DType::U64 => DatumType::U64,
        DType::Bool => DatumType::Bool,
    }
}

fn dtype_of(d: DatumType) -> Option<DType> {
    // tract computes shape values (ONNX int64, e.g. a tapped `Shape` output) as symbolic
    // dims; at run time they are numbers and come back as int64.
    if d == DatumType::TDim {
        return Some(DType::I64);
    }
    DType::ALL.into_iter().find(|&x| datum_type(x) == d)
}

fn to_tract(t: &HostTensor) -> TractResult<Tensor> {
    for_each_variant!(t.data(), v => Tensor::from_shape(t.shape(), v))
}

fn from_tract(t: &Tensor) -> TractResult<HostTensor> {
    if t.datum_type() == DatumType::TDim {
        return from_tract(t.cast_to::<i64>()?.as_ref());
    }
    let shape = t.shape().to_vec();
    let plain = t.try_as_plain_ram()?;
    macro_rules! take {
        ($variant:ident, $ty:ty) => {
            TensorData::$variant(plain.as_slice::<$ty>()?.to_vec())
        };
    }
    let data = match t.datum_type() {
        DatumType::F16 => take!(F16, half::f16),
        DatumType::F32 => take!(F32, f32),
        DatumType::F64 => take!(F64, f64),
        DatumType::I8 => take!(I8, i8),
        DatumType::I16 => take!(I16, i16),
        DatumType::I32 => take!(I32, i32),
        DatumType::I64 => take!(I64, i64),
        DatumType::U8 => take!(U8, u8),
        DatumType::U16 => take!(U16, u16),
        DatumType::U32 => take!(U32, u32),
        DatumType::U64 => take!(U64, u64),
        DatumType::Bool => take!(Bool, bool),
        other => {
            return Err(TractError::msg(format!(
                "dtype {other:?} is not supported by whittle-runtime"
            )));
        }
    };
    HostTensor::new(shape, data).map_err(|e| TractError::msg(e.to_string()))
}

impl TractModel {
    fn run_inner(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, BackendError> {
        let ordered = order_inputs(NAME, &self.path, &self.input_names, inputs)?;
        let run_err = |e: TractError| BackendError::Run {
            backend: NAME,
            path: self.path.clone(),
            detail: tract_chain(&e),
        };
        let mut values: TVec<TValue> = TVec::new();
        for (ix, (tensor, name)) in ordered.iter().zip(&self.input_names).enumerate() {
            let want = self.plan_input_types[ix];
            self.check_input(ix, name, tensor)?;
            // Only f16 is converted: that is the one dtype the f16_to_f32 transform changes.
            let converted;
            let tensor: &HostTensor = match dtype_of(want) {
                Some(d) if d != tensor.dtype() && tensor.dtype() == DType::F16 => {
                    converted = tensor.cast(d);
                    &converted
                }
                _ => tensor,
            };
            let t =
                to_tract(tensor).map_err(|e| run_err(e.context(format!("input \"{name}\""))))?;
            values.push(t.into());
        }
        // tract panics on some bad inputs (e.g. Gather indices out of range): an error here.
        let outputs =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.plan.run(values)))
                .map_err(|panic| BackendError::Run {
                    backend: NAME,
                    path: self.path.clone(),
                    detail: format!("tract panicked: {}", panic_text(&panic)),
                })?
                .map_err(run_err)?;
        outputs
            .iter()
            .zip(&self.output_names)
            .zip(&self.graph_output_types)
            .map(|((value, name), &dtype)| {
                let host = from_tract(value)
                    .map_err(|e| run_err(e.context(format!("output \"{name}\""))))?;
                let host = if host.dtype() == dtype {
                    host
                } else {
                    host.cast(dtype)
                };
                Ok((name.clone(), host))
            })
            .collect()
    }
}

impl TractModel {
    /// Refuses, by name, an input whose shape or dtype differs from what the plan was
    /// specialised to (tract's own message would only give the input's index).
    fn check_input(&self, ix: usize, name: &str, tensor: &HostTensor) -> Result<(), BackendError> {
        let want_dtype = dtype_of(self.plan_input_types[ix]);
        let dtype_ok = want_dtype.is_none_or(|d| {
            d == tensor.dtype() || (d == DType::F32 && tensor.dtype() == DType::F16)
        });
        let shape_ok = self.plan_input_shapes[ix]
            .as_ref()
            .is_none_or(|s| s[..] == *tensor.shape());
        if dtype_ok && shape_ok {
            return Ok(());
        }
        let want_shape = self.plan_input_shapes[ix]
            .as_ref()
            .map_or_else(|| "a symbolic shape".to_string(), |s| format!("{s:?}"));
        Err(BackendError::Run {
            backend: NAME,
            path: self.path.clone(),
            detail: format!(
                "input \"{name}\" is {} {:?} but the model was loaded for {} {want_shape} \
                 (load it again for other shapes)",
                tensor.dtype(),
                tensor.shape(),
                want_dtype.map_or_else(
                    || format!("{:?}", self.plan_input_types[ix]),
                    |d| d.to_string()
                ),
            ),
        })
    }
}

impl LoadedModel for TractModel {
    fn backend_name(&self) -> &'static str {
        NAME
    }
    fn model_path(&self) -> &Path {
        &self.path
    }
    fn input_names(&self) -> &[String] {
        &self.input_names
    }
    fn output_names(&self) -> &[String] {
        &self.output_names
    }
    fn run(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, BackendError> {
        self.run_inner(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::node_and_op;

    #[test]
    fn finds_innermost_node_and_op() {
        let detail = "Translating node #3 \"conv_1\" Conv ToTypedTranslator: \
                      in node #4 \"mystery\" Unimplemented(NotARealOp): not supported";
        assert_eq!(
            node_and_op(detail),
            (Some("mystery".into()), Some("NotARealOp".into()))
        );
        assert_eq!(node_and_op("plain failure #hashtag"), (None, None));
    }
}
