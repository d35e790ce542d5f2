//! A model loaded in one backend, ready to run single inputs or whole datasets.
//!
//! Invariants:
//! - The file the backend loaded (maybe a temporary copy) outlives every loaded model: the
//!   loaded models are dropped first (field order).
//! - Backends that specialise to input shapes (tract) get one load per distinct shape set
//!   of the dataset (at most two with the batching rule: full runs and the remainder);
//!   others are loaded once.
//! - Errors name the user's model file, never the temporary copy; a tract load failure
//!   becomes [`ModelError::TractCannotRun`] (op, node, and the onnxruntime suggestion).
//! - [`Runner::for_each_run`] hands results over in run order whatever the thread count,
//!   and on failure reports the lowest failing run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use whittle_ir::Model;

use super::ModelError;
use super::dataset::Dataset;
use super::prepare::{PreparedFile, input_specs, prepare_file};
use crate::backend::{Backend, BackendError, InputFact, LoadedModel};
use crate::inputs::{Dim, InputSpec};
use crate::tensor::{DType, NamedTensor};

/// Told the number of samples finished so far, after each run (from worker threads).
pub type Progress<'a> = &'a (dyn Fn(usize) + Sync);

/// A model prepared for and loaded in one backend.
pub struct Runner {
    loaded: Vec<(Vec<InputFact>, Box<dyn LoadedModel>)>,
    file: PreparedFile,
    specs: Vec<InputSpec>,
    /// Graph outputs declared f16 (the tract copy computes them in f32).
    f16_outputs: Vec<String>,
    backend: &'static str,
    label: PathBuf,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("backend", &self.backend)
            .field("model", &self.label)
            .field("file", &self.file)
            .field("loads", &self.loaded.len())
            .finish()
    }
}

impl Runner {
    /// Prepares `model` ([`prepare_file`]) and loads it for every input shape set in
    /// `shape_sets` (none: the declared shapes). `unchanged_file`: see [`prepare_file`].
    pub fn load(
        model: &Model,
        unchanged_file: Option<&Path>,
        backend: &dyn Backend,
        shape_sets: &[Vec<InputFact>],
    ) -> Result<Runner, ModelError> {
        let specs = input_specs(model)?;
        for facts in shape_sets {
            check_facts(&specs, facts, &model.label())?;
        }
        let file = prepare_file(model, unchanged_file, backend.name())?;
        let label = model
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(model.label()));
        let mut sets: Vec<Vec<InputFact>> = Vec::new();
        for set in shape_sets {
            if !sets.contains(set) {
                sets.push(set.clone());
            }
        }
        if sets.is_empty() || !backend.specialises_shapes() {
            sets.truncate(1);
            if sets.is_empty() {
                sets.push(Vec::new());
            }
        }
        let mut loaded = Vec::with_capacity(sets.len());
        for mut facts in sets {
            if file.f16_as_f32 {
                facts
                    .iter_mut()
                    .filter(|f| f.dtype == DType::F16)
                    .for_each(|f| f.dtype = DType::F32);
            }
            let m = backend
                .load(file.path(), &facts)
                .map_err(|e| load_error(relabel(e, &label)))?;
            loaded.push((facts, m));
        }
        let f16_outputs = model
            .graph
            .proto
            .output
            .iter()
            .filter(|o| {
                o.r#type
                    .as_ref()
                    .and_then(whittle_ir::types::tensor_type)
                    .is_some_and(|(d, _)| d == whittle_ir::DataType::FLOAT16)
            })
            .map(|o| o.name().to_string())
            .collect();
        Ok(Runner {
            loaded,
            file,
            specs,
            f16_outputs,
            backend: backend.name(),
            label,
        })
    }

    /// [`Runner::load`] for the shapes `data`'s batches have.
    pub fn for_dataset(
        model: &Model,
        unchanged_file: Option<&Path>,
        backend: &dyn Backend,
        data: &Dataset,
    ) -> Result<Runner, ModelError> {
        let sets: Vec<Vec<InputFact>> = data
            .batches()
            .iter()
            .map(|b| b.iter().map(|(n, t)| InputFact::of(n, t)).collect())
            .collect();
        Self::load(model, unchanged_file, backend, &sets)
    }

    /// The backend's short name (`tract`, `ort`): say it next to every number.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The model's inputs as declared.
    pub fn specs(&self) -> &[InputSpec] {
        &self.specs
    }

    pub fn input_names(&self) -> &[String] {
        self.loaded[0].1.input_names()
    }

    /// The outputs every run returns, in graph order.
    pub fn output_names(&self) -> &[String] {
        self.loaded[0].1.output_names()
    }

    /// The file the backend loaded and what the copy changed.
    pub fn file(&self) -> &PreparedFile {
        &self.file
    }

    /// Runs once; inputs by name.
    pub fn run(&self, inputs: &[NamedTensor]) -> Result<Vec<NamedTensor>, ModelError> {
        let model = self.loaded_for(inputs);
        let outputs = model
            .run(inputs)
            .map_err(|e| ModelError::from(relabel(e, &self.label)))?;
        Ok(outputs
            .into_iter()
            .map(|(name, t)| {
                if t.dtype() == DType::F32 && self.f16_outputs.contains(&name) {
                    let t = t.cast(DType::F16);
                    (name, t)
                } else {
                    (name, t)
                }
            })
            .collect())
    }

    /// The loaded model whose facts match the inputs' shapes (else the first: its backend
    /// then reports the mismatch by input name). For timing runs ([`crate::bench`]).
    pub fn loaded_for(&self, inputs: &[NamedTensor]) -> &dyn LoadedModel {
        let fits = |facts: &[InputFact]| {
            facts.iter().all(|f| {
                inputs
                    .iter()
                    .any(|(n, t)| *n == f.name && t.shape() == f.shape.as_slice())
            })
        };
        let found = self.loaded.iter().find(|(facts, _)| fits(facts));
        found.unwrap_or(&self.loaded[0]).1.as_ref()
    }

    /// Runs every batch of `data`; outputs per batch, in batch order.
    pub fn run_all(
        &self,
        data: &Dataset,
        threads: usize,
        progress: Option<Progress>,
    ) -> Result<Vec<Vec<NamedTensor>>, ModelError> {
        let mut out = Vec::with_capacity(data.batches().len());
        self.for_each_run(data, threads, progress, |_, outputs| {
            out.push(outputs);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs every batch of `data` on `threads` workers (0 = one per CPU, 1 = the calling
    /// thread) and hands each batch's outputs to `f` in batch order, a group at a time, so
    /// memory stays bounded by the group (4 runs per worker) and not the dataset.
    pub fn for_each_run(
        &self,
        data: &Dataset,
        threads: usize,
        progress: Option<Progress>,
        mut f: impl FnMut(usize, Vec<NamedTensor>) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("whittle-run-{i}"))
            .build()
            .map_err(|e| ModelError::ThreadPool {
                threads,
                reason: e.to_string(),
            })?;
        let workers = pool.current_num_threads().max(1);
        let done = AtomicUsize::new(0);
        let ranges = data.sample_ranges();
        let run_one = |k: usize| {
            let result = self.run(&data.batches()[k]);
            let finished = done.fetch_add(ranges[k].len(), Ordering::Relaxed) + ranges[k].len();
            if let Some(p) = progress {
                p(finished);
            }
            result
        };
        let indices: Vec<usize> = (0..data.batches().len()).collect();
        for group in indices.chunks(workers * 4) {
            let results: Vec<Result<Vec<NamedTensor>, ModelError>> = if workers == 1 {
                group.iter().map(|&k| run_one(k)).collect()
            } else {
                pool.install(|| group.par_iter().map(|&k| run_one(k)).collect())
            };
            for (&k, result) in group.iter().zip(results) {
                let outputs = result.map_err(|e| ModelError::Batch {
                    first: ranges[k].start,
                    end: ranges[k].end,
                    source: Box::new(e),
                })?;
                f(k, outputs)?;
            }
        }
        Ok(())
    }
}

/// Every fact must name an input and fit its declared rank, dtype and fixed dims.
fn check_facts(specs: &[InputSpec], facts: &[InputFact], model: &str) -> Result<(), ModelError> {
    for fact in facts {
        let Some(spec) = specs.iter().find(|s| s.name == fact.name) else {
            return Err(ModelError::Data(format!(
                "{model}: \"{}\" is not an input of the model (inputs: {})",
                fact.name,
                specs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let fits_dims = spec.dims.len() == fact.shape.len()
            && spec.dims.iter().zip(&fact.shape).all(|(d, &n)| match d {
                Dim::Fixed(v) => usize::try_from(*v).ok() == Some(n),
                _ => true,
            });
        if !fits_dims || spec.dtype != fact.dtype {
            return Err(ModelError::Data(format!(
                "{model}: input \"{}\" is declared {} {} but would be fed {} {:?}",
                spec.name,
                spec.dtype,
                declared(&spec.dims),
                fact.dtype,
                fact.shape
            )));
        }
    }
    Ok(())
}

fn declared(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => v.to_string(),
            Dim::Symbolic(s) => s.clone(),
            Dim::Unknown => "?".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A tract load failure becomes [`ModelError::TractCannotRun`].
fn load_error(e: BackendError) -> ModelError {
    match e {
        BackendError::Load {
            backend: "tract",
            ref node,
            ref op,
            ..
        } => ModelError::TractCannotRun {
            node: node.clone(),
            op: op.clone(),
            source: Box::new(e),
        },
        e => ModelError::from(e),
    }
}

/// Puts the user's model path in place of the temporary copy's.
fn relabel(mut e: BackendError, label: &Path) -> BackendError {
    match &mut e {
        BackendError::Load { path, .. }
        | BackendError::Run { path, .. }
        | BackendError::MissingInput { path, .. }
        | BackendError::UnknownInput { path, .. }
        | BackendError::UnsupportedDType { path, .. } => *path = label.to_path_buf(),
        BackendError::OrtLibrary(_) => {}
    }
    e
}
