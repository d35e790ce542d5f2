//! Backends by kind, a model's input specs, and the file handed to a backend.
//!
//! Invariant: [`prepare_file`] never changes what the model computes. It hands over the
//! original file when it can; otherwise it writes a copy to a private temporary folder that
//! is deleted when the [`PreparedFile`] is dropped. The copy differs from the model only by
//! (a) for tract, the exact lowering, initializer-backed graph inputs turned into plain
//! constants (which they are as long as nobody feeds them — whittle never does) and f16
//! made f32 (see `lower_f16`; tract computes f16 in f32 anyway), and
//! (b) graph outputs left out because they are not tensors whittle can read (sequences,
//! maps, strings), which are listed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use whittle_ir::types::{Dim as IrDim, tensor_type, type_string};
use whittle_ir::{Model, SaveOptions};
use whittle_passes::lower::LowerForVerification;
use whittle_passes::{Pass, PassContext};

use super::ModelError;
use super::lower_f16::{f16_to_f32, uses_f16};
use crate::backend::{Backend, BackendError};
use crate::inputs::{Dim, InputSpec};
use crate::tensor::{DType, NamedTensor};
use crate::tract_backend::TractBackend;

/// Which numeric backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Tract,
    Ort,
}

impl BackendKind {
    /// The backend's short name as reports carry it (`tract`, `ort`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Tract => "tract",
            BackendKind::Ort => "ort",
        }
    }

    /// The name users know it by (`tract`, `onnxruntime`).
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Tract => "tract",
            BackendKind::Ort => "onnxruntime",
        }
    }
}

/// Builds a backend. For onnxruntime, `ort_library` is a library file or folder (`None`:
/// `WHITTLE_ORT_LIB`, then discovery) and `intra_threads` its intra-op threads (0 = its
/// default), with one session per loaded model.
pub fn make_backend(
    kind: BackendKind,
    ort_library: Option<&Path>,
    intra_threads: usize,
) -> Result<Box<dyn Backend>, BackendError> {
    make_pooled_backend(kind, ort_library, intra_threads, 1)
}

/// [`make_backend`] whose onnxruntime models hold `sessions` sessions, so that many runs
/// can go at once (tract models run concurrently anyway).
/// Whether an onnxruntime library can be found (`library`, else `WHITTLE_ORT_LIB`, else
/// discovery) whose file name does not say it is too old to load; the search is cached per
/// process, and the library is not loaded.
pub fn ort_library_found(library: Option<&Path>) -> bool {
    #[cfg(feature = "ort")]
    {
        use crate::ort_backend::discover::{find_ort_library, new_enough};
        find_ort_library(library).is_ok_and(|path| new_enough(&path))
    }
    #[cfg(not(feature = "ort"))]
    {
        let _ = library;
        false
    }
}

pub fn make_pooled_backend(
    kind: BackendKind,
    ort_library: Option<&Path>,
    intra_threads: usize,
    sessions: usize,
) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Tract => Ok(Box::new(TractBackend::new())),
        #[cfg(feature = "ort")]
        BackendKind::Ort => {
            let options = crate::OrtOptions {
                library: ort_library.map(Path::to_path_buf),
                intra_threads,
                sessions,
            };
            Ok(Box::new(crate::OrtBackend::new(&options)?))
        }
        #[cfg(not(feature = "ort"))]
        BackendKind::Ort => {
            let _ = (ort_library, intra_threads, sessions);
            Err(BackendError::OrtLibrary(
                "this build of whittle has no onnxruntime backend (cargo feature `ort`)".into(),
            ))
        }
    }
}

/// The inputs a caller must feed: graph inputs that are not initializers, in graph order,
/// with their dtype and declared dims (`dim_param` → [`Dim::Symbolic`], missing or negative
/// → [`Dim::Unknown`]).
pub fn input_specs(model: &Model) -> Result<Vec<InputSpec>, ModelError> {
    let graph = &model.graph;
    let mut constants: HashSet<&str> = graph.initializers.iter().map(|t| t.name()).collect();
    for sparse in &graph.proto.sparse_initializer {
        if let Some(values) = &sparse.values {
            constants.insert(values.name());
        }
    }
    let bad = |input: &str, reason: String| ModelError::Unfeedable {
        model: model.label(),
        input: input.to_string(),
        reason,
    };
    let mut specs = Vec::new();
    for info in &graph.proto.input {
        let name = info.name();
        if constants.contains(name) {
            continue;
        }
        let Some(ty) = info.r#type.as_ref() else {
            return Err(bad(name, "declares no type".into()));
        };
        let Some((elem, dims)) = tensor_type(ty) else {
            return Err(bad(
                name,
                format!(
                    "is a {}, not a tensor: whittle can only feed tensors",
                    type_string(ty)
                ),
            ));
        };
        let dtype = DType::from_onnx_code(elem.0).ok_or_else(|| {
            bad(
                name,
                format!("has dtype {}, which whittle cannot feed", elem.short_name()),
            )
        })?;
        let dims =
            dims.ok_or_else(|| bad(name, "declares no shape (its rank is unknown)".into()))?;
        let dims = dims
            .into_iter()
            .map(|d| match d {
                IrDim::Fixed(v) => u64::try_from(v).map_or(Dim::Unknown, Dim::Fixed),
                IrDim::Symbolic(s) => Dim::Symbolic(s),
                IrDim::Unknown => Dim::Unknown,
            })
            .collect();
        specs.push(InputSpec {
            name: name.to_string(),
            dtype,
            dims,
        });
    }
    Ok(specs)
}

/// The inputs of ONE run from per-input arrays keyed by input name, fed as they are (no
/// splitting). Arrays of another dtype are cast; keys that name no input are ignored. Both
/// are reported in the returned notes.
pub fn inputs_from_arrays(
    specs: &[InputSpec],
    arrays: &[NamedTensor],
) -> Result<(Vec<NamedTensor>, Vec<String>), ModelError> {
    let mut notes = Vec::new();
    let mut inputs = Vec::with_capacity(specs.len());
    let missing: Vec<&str> = specs
        .iter()
        .filter(|s| !arrays.iter().any(|(k, _)| *k == s.name))
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ModelError::Data(format!(
            "no array for input(s) {} (arrays: {})",
            missing.join(", "),
            arrays
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for spec in specs {
        if let Some((_, t)) = arrays.iter().find(|(k, _)| *k == spec.name) {
            let t = if t.dtype() == spec.dtype {
                t.clone()
            } else {
                notes.push(format!(
                    "array \"{}\" cast from {} to {}, the input's dtype",
                    spec.name,
                    t.dtype(),
                    spec.dtype
                ));
                t.cast(spec.dtype)
            };
            inputs.push((spec.name.clone(), t));
        }
    }
    for (k, _) in arrays
        .iter()
        .filter(|(k, _)| !specs.iter().any(|s| s.name == *k))
    {
        notes.push(format!(
            "array \"{k}\" is not an input of the model: ignored"
        ));
    }
    Ok((inputs, notes))
}

/// A model file ready for a backend; a temporary copy lives as long as this value.
#[derive(Debug)]
pub struct PreparedFile {
    path: PathBuf,
    /// Holds the temporary copy (and its external data) on disk.
    dir: Option<tempfile::TempDir>,
    /// What the copy changed, one line each (lowering steps, outputs left out).
    pub notes: Vec<String>,
    /// Graph outputs left out of the copy, with their declared type.
    pub skipped_outputs: Vec<(String, String)>,
    /// The copy computes in f32 what the model declares f16 (load with f32 input facts).
    pub f16_as_f32: bool,
}

impl PreparedFile {
    /// The file to load.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file is a temporary copy rather than the user's file.
    pub fn is_copy(&self) -> bool {
        self.dir.is_some()
    }
}

/// Prepares `model` for the backend named `backend` (`"tract"` lowers, anything else takes
/// the model as is). `unchanged_file` is the file `model` was loaded from, when `model` has
/// not been changed since: it is handed over directly when no copy is needed.
pub fn prepare_file(
    model: &Model,
    unchanged_file: Option<&Path>,
    backend: &str,
) -> Result<PreparedFile, ModelError> {
    let mut notes = Vec::new();
    let mut copy: Option<Model> = None;
    let mut f16_as_f32 = false;
    let skipped_outputs = unreadable_outputs(model);
    if !skipped_outputs.is_empty() {
        if skipped_outputs.len() == model.graph.proto.output.len() {
            return Err(ModelError::Data(format!(
                "{}: no graph output is a tensor whittle can read ({})",
                model.label(),
                describe(&skipped_outputs)
            )));
        }
        let mut m = model.clone();
        let skip: HashSet<&str> = skipped_outputs.iter().map(|(n, _)| n.as_str()).collect();
        m.graph.proto.output.retain(|o| !skip.contains(o.name()));
        notes.push(format!(
            "outputs left out (not tensors whittle can read): {}",
            describe(&skipped_outputs)
        ));
        copy = Some(m);
    }
    if backend == "tract" {
        let mut m = copy.take().unwrap_or_else(|| model.clone());
        let mut rewrites = drop_initializer_inputs(&mut m);
        if rewrites > 0 {
            notes.push(format!(
                "lowered for tract: {rewrites} graph inputs that have initializers made constants \
                 (tract would otherwise ask for them)"
            ));
        }
        if uses_f16(&m) {
            let n = f16_to_f32(&mut m).map_err(|message| ModelError::Lowering {
                model: model.label(),
                message,
            })?;
            notes.push(format!(
                "lowered for tract: {n} float16 tensors, types and casts made float32 \
                 (tract computes f16 models in f32; outputs are cast back)"
            ));
            rewrites += n;
            f16_as_f32 = true;
        }
        let report = LowerForVerification
            .run(&mut m, &mut PassContext::default())
            .map_err(|e| ModelError::Lowering {
                model: model.label(),
                message: e.to_string(),
            })?;
        let lowered = !report.changes.is_empty();
        notes.extend(
            report
                .changes
                .iter()
                .map(|c| format!("lowered for tract: {c}")),
        );
        if lowered || rewrites > 0 || !skipped_outputs.is_empty() {
            copy = Some(m);
        }
    }
    match (copy, unchanged_file) {
        (None, Some(file)) => Ok(PreparedFile {
            path: file.to_path_buf(),
            dir: None,
            notes,
            skipped_outputs,
            f16_as_f32,
        }),
        (copy, _) => {
            let m = copy.as_ref().unwrap_or(model);
            let dir = tempfile::Builder::new()
                .prefix("whittle-run-")
                .tempdir()
                .map_err(|e| {
                    ModelError::Data(format!(
                        "cannot create a temporary folder for the model: {e}"
                    ))
                })?;
            let name = model
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map_or_else(|| "model.onnx".into(), |n| n.to_os_string());
            let path = dir.path().join(name);
            // Deleted when the runner is done with it: no need to reach the disk.
            let scratch = SaveOptions {
                scratch: true,
                ..Default::default()
            };
            whittle_ir::save(m, &path, &scratch)?;
            Ok(PreparedFile {
                path,
                dir: Some(dir),
                notes,
                skipped_outputs,
                f16_as_f32,
            })
        }
    }
}

/// Removes main-graph inputs backed by an initializer (IR < 4 lists every initializer as an
/// input); whittle never feeds them, so they are constants either way. Returns how many.
fn drop_initializer_inputs(m: &mut Model) -> usize {
    let constants: HashSet<String> = m
        .graph
        .initializers
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let before = m.graph.proto.input.len();
    m.graph
        .proto
        .input
        .retain(|i| !constants.contains(i.name()));
    before - m.graph.proto.input.len()
}

/// Graph outputs declared with a type whittle cannot read back (not a tensor, or a dtype
/// [`DType`] lacks). Outputs with no declared type are kept.
fn unreadable_outputs(model: &Model) -> Vec<(String, String)> {
    model
        .graph
        .proto
        .output
        .iter()
        .filter_map(|o| {
            let ty = o.r#type.as_ref()?;
            let readable = match tensor_type(ty) {
                Some((elem, _)) => elem.0 == 0 || DType::from_onnx_code(elem.0).is_some(),
                None => ty.value.is_none(),
            };
            (!readable).then(|| (o.name().to_string(), type_string(ty)))
        })
        .collect()
}

fn describe(outputs: &[(String, String)]) -> String {
    outputs
        .iter()
        .map(|(n, t)| format!("\"{n}\" {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}
