//! The `Backend` / `LoadedModel` traits every numeric oracle implements.
//!
//! Invariants every implementation keeps:
//! - A model is always loaded from a file path, so external data resolves next to it.
//! - [`LoadedModel::run`] matches inputs by name (order of the given slice does not matter;
//!   a missing or unknown name is an error naming it) and returns every graph output, by
//!   name, in graph order, with the dtype the graph declares for it.
//! - Errors never panic and always name the model file; backend error chains are kept whole
//!   in the message (tract and onnxruntime put the failing node and op deep in the chain).

use std::path::{Path, PathBuf};

use crate::tensor::{DType, HostTensor, NamedTensor};

/// The concrete shape (and dtype) an input will be fed with; backends that specialise a
/// model to its input shapes (tract) use these at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFact {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl InputFact {
    /// The fact describing an existing tensor.
    pub fn of(name: &str, tensor: &HostTensor) -> Self {
        InputFact {
            name: name.to_string(),
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
        }
    }
}

/// A numeric backend able to load ONNX model files.
pub trait Backend: Send + Sync {
    /// Short stable name (`"tract"`, `"ort"`), used in reports and errors.
    fn name(&self) -> &'static str;

    /// Loads `model_path`, specialised to `inputs` where the backend needs concrete shapes.
    /// Inputs not listed keep the shapes the model declares.
    fn load(
        &self,
        model_path: &Path,
        inputs: &[InputFact],
    ) -> Result<Box<dyn LoadedModel>, BackendError>;

    /// True when a loaded model only accepts the input shapes it was loaded for (tract
    /// builds a plan per shape set); false when one load serves every shape (onnxruntime).
    fn specialises_shapes(&self) -> bool {
        true
    }
}

/// A model ready to run. `Send + Sync`: one loaded model may serve many threads.
pub trait LoadedModel: Send + Sync {
    fn backend_name(&self) -> &'static str;
    fn model_path(&self) -> &Path;
    /// Graph input names in graph order (initializers excluded).
    fn input_names(&self) -> &[String];
    /// Graph output names in graph order.
    fn output_names(&self) -> &[String];
    /// Runs once; see the module invariants.
    fn run(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, BackendError>;
}

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{backend}: cannot load {}: {detail}", path.display())]
    Load {
        backend: &'static str,
        path: PathBuf,
        /// The backend's whole error chain, outermost first, joined with `: `.
        detail: String,
        /// The failing node's name, when the backend's error names one.
        node: Option<String>,
        /// The failing node's op type, when the backend's error names one.
        op: Option<String>,
    },
    #[error("{backend}: running {} failed: {detail}", path.display())]
    Run {
        backend: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "{backend}: {}: input \"{input}\" was not given (given: {})",
        path.display(),
        given.join(", ")
    )]
    MissingInput {
        backend: &'static str,
        path: PathBuf,
        input: String,
        given: Vec<String>,
    },
    #[error(
        "{backend}: {}: \"{input}\" is not an input of the model (inputs: {})",
        path.display(),
        inputs.join(", ")
    )]
    UnknownInput {
        backend: &'static str,
        path: PathBuf,
        input: String,
        inputs: Vec<String>,
    },
    #[error("{backend}: {}: {what} \"{name}\" has dtype {dtype}, which whittle-runtime does not handle", path.display())]
    UnsupportedDType {
        backend: &'static str,
        path: PathBuf,
        /// `"input"` or `"output"`.
        what: &'static str,
        name: String,
        dtype: String,
    },
    #[error("onnxruntime library: {0}")]
    OrtLibrary(String),
}

/// Orders `given` by `expected` names; errors on a missing or unknown name.
pub(crate) fn order_inputs<'a>(
    backend: &'static str,
    path: &Path,
    expected: &[String],
    given: &'a [NamedTensor],
) -> Result<Vec<&'a HostTensor>, BackendError> {
    if let Some((unknown, _)) = given.iter().find(|(n, _)| !expected.contains(n)) {
        return Err(BackendError::UnknownInput {
            backend,
            path: path.to_path_buf(),
            input: unknown.clone(),
            inputs: expected.to_vec(),
        });
    }
    expected
        .iter()
        .map(|name| {
            given
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| BackendError::MissingInput {
                    backend,
                    path: path.to_path_buf(),
                    input: name.clone(),
                    given: given.iter().map(|(n, _)| n.clone()).collect(),
                })
        })
        .collect()
}

/// Joins an error and its sources, outermost first, skipping a source whose text the
/// previous message already ends with (anyhow-style wrappers often repeat it).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
