//! The onnxruntime backend (cargo feature `ort`, on by default), through the `ort` crate
//! with `load-dynamic`: nothing is linked or downloaded at build time; the user's
//! `libonnxruntime` (≥ 1.31, the `api-31` floor) is loaded at run time.
//!
//! Invariants:
//! - One library and one environment per process (an onnxruntime rule): the first
//!   successful [`OrtBackend::new`] loads the library and builds the environment; later
//!   calls with the same library reuse it, a different library is an error. A failed
//!   attempt leaves nothing behind, so a later call with a good path still works.
//! - No `ort` function is called before the library is loaded: `ort` would otherwise fall
//!   back to `ORT_DYLIB_PATH` and panic when that fails.
//! - Threads: `intra_threads` is handed to onnxruntime's intra-op pool (0 = onnxruntime's
//!   default, one per physical core). A session runs one call at a time (`ort` needs
//!   `&mut Session`), so a loaded model holds `sessions` of them (built in parallel) and
//!   each `run` takes a free one: N concurrent runs with one intra-op thread each beat one
//!   session with N threads on batch-1 CNNs (YOLOv8n calibration: 0.26 vs 0.35 s for 16
//!   samples on 2 cores). A model file over [`POOL_LIMIT_BYTES`] gets one session with
//!   `sessions × intra_threads` threads instead (every session holds its own weights).

mod convert;
pub mod discover;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;

use crate::backend::{Backend, BackendError, InputFact, LoadedModel, error_chain, order_inputs};
use crate::tensor::NamedTensor;

pub use discover::{ORT_LIB_ENV, find_ort_library};

const NAME: &str = "ort";

/// How to find the library and how many threads a session may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtOptions {
    /// Library file or folder; `None` = `WHITTLE_ORT_LIB`, then discovery (see [`discover`]).
    pub library: Option<PathBuf>,
    /// onnxruntime intra-op threads per session; 0 = onnxruntime's default. Default 1.
    pub intra_threads: usize,
    /// Sessions per loaded model, for concurrent runs (at least 1). Default 1.
    pub sessions: usize,
}

/// Model files larger than this get a single session: every session holds its own copy of
/// the weights.
pub const POOL_LIMIT_BYTES: u64 = 512 << 20;

impl Default for OrtOptions {
    fn default() -> Self {
        OrtOptions {
            library: None,
            intra_threads: 1,
            sessions: 1,
        }
    }
}

/// The process-wide (library path, environment), set once.
static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
/// Serialises load attempts so two threads never race to load different libraries.
static INIT_LOCK: Mutex<()> = Mutex::new(());

fn environment(library: &Path) -> Result<Environment, BackendError> {
    let canonical = library
        .canonicalize()
        .unwrap_or_else(|_| library.to_path_buf());
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((loaded, env)) = ENVIRONMENT.get() {
        return if *loaded == canonical {
            Ok(env.clone())
        } else {
            Err(BackendError::OrtLibrary(format!(
                "onnxruntime is already loaded from {} in this process; cannot also load {} \
                 (one library per process)",
                loaded.display(),
                canonical.display()
            )))
        };
    }
    let builder = ort::init_from(&canonical).map_err(|e| {
        // ort's LoadError keeps dlopen's reason in a field, not in `source()`.
        let detail = match &e {
            ort::LoadDynamicError::Dlopen { error, .. } => error_chain(error),
            other => error_chain(other),
        };
        BackendError::OrtLibrary(format!(
            "cannot load {}: {detail}\npoint to a libonnxruntime >= 1.31 with --ort-lib PATH or {ORT_LIB_ENV}",
            canonical.display(),
        ))
    })?;
    let env = builder.with_name("whittle").build().map_err(|e| {
        BackendError::OrtLibrary(format!(
            "loaded {} but cannot create an environment: {}",
            canonical.display(),
            error_chain(&e)
        ))
    })?;
    // Cannot fail: INIT_LOCK is held and ENVIRONMENT was empty.
    let _ = ENVIRONMENT.set((canonical, env.clone()));
    Ok(env)
}

/// onnxruntime through a run-time-loaded library.
#[derive(Clone)]
pub struct OrtBackend {
    library: PathBuf,
    env: Environment,
    intra_threads: usize,
    sessions: usize,
}

impl std::fmt::Debug for OrtBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtBackend")
            .field("library", &self.library)
            .field("intra_threads", &self.intra_threads)
            .field("sessions", &self.sessions)
            .finish()
    }
}

impl OrtBackend {
    /// Finds and loads the library (once per process) and prepares the environment.
    pub fn new(options: &OrtOptions) -> Result<Self, BackendError> {
        let library = find_ort_library(options.library.as_deref())?;
        let env = environment(&library)?;
        let library = ENVIRONMENT.get().map_or(library, |(path, _)| path.clone());
        Ok(OrtBackend {
            library,
            env,
            intra_threads: options.intra_threads,
            sessions: options.sessions.max(1),
        })
    }

    /// The library file in use (canonical path).
    pub fn library_path(&self) -> &Path {
        &self.library
    }
}

impl Backend for OrtBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn specialises_shapes(&self) -> bool {
        false
    }

    /// onnxruntime takes shapes from the tensors at run time; `inputs` only has to name
    /// real inputs.
    fn load(
        &self,
        model_path: &Path,
        inputs: &[InputFact],
    ) -> Result<Box<dyn LoadedModel>, BackendError> {
        let load_err = |e: ort::Error| BackendError::Load {
            backend: NAME,
            path: model_path.to_path_buf(),
            detail: error_chain(&e),
            node: None,
            op: None,
        };
        // A model too large to hold more than once gets one session with all the threads.
        let (count, intra) = if self.sessions > 1
            && std::fs::metadata(model_path).is_ok_and(|m| m.len() > POOL_LIMIT_BYTES)
        {
            (1, self.intra_threads.max(1) * self.sessions)
        } else {
            (self.sessions, self.intra_threads)
        };
        let build = || -> Result<Session, BackendError> {
            // No memory pattern: planning it costs more than it saves over the tens of runs
            // whittle makes per session (YOLOv8n with calibration reductions, 8 runs: 5%
            // faster without; plain YOLOv8n, 48 runs: the same).
            let mut builder = Session::builder(&self.env)
                .map_err(load_err)?
                .with_intra_threads(intra)
                .map_err(|e| load_err(e.into()))?
                .with_memory_pattern(false)
                .map_err(|e| load_err(e.into()))?;
            builder.commit_from_file(model_path).map_err(load_err)
        };
        // Built side by side: graph optimisation of one session uses one core.
        let mut sessions: Vec<Session> = std::thread::scope(|scope| {
            let extra: Vec<_> = (1..count).map(|_| scope.spawn(build)).collect();
            let mut all = vec![build()];
            all.extend(extra.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BackendError::Run {
                        backend: NAME,
                        path: model_path.to_path_buf(),
                        detail: "a session-building thread panicked".into(),
                    })
                })
            }));
            all.into_iter().collect::<Result<Vec<_>, _>>()
        })?;
        let session = sessions.remove(0);
        let input_names: Vec<String> = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        if let Some(unknown) = inputs.iter().find(|f| !input_names.contains(&f.name)) {
            return Err(BackendError::UnknownInput {
                backend: NAME,
                path: model_path.to_path_buf(),
                input: unknown.name.clone(),
                inputs: input_names,
            });
        }
        sessions.insert(0, session);
        Ok(Box::new(OrtModel {
            path: model_path.to_path_buf(),
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            input_names,
            output_names,
        }))
    }
}

struct OrtModel {
    path: PathBuf,
    /// At least one; see the module docs.
    sessions: Vec<Mutex<Session>>,
    /// Where the next run that finds every session busy waits.
    next: AtomicUsize,
    input_names: Vec<String>,
    output_names: Vec<String>,
}

impl LoadedModel for OrtModel {
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
        let ordered = order_inputs(NAME, &self.path, &self.input_names, inputs)?;
        let run_err = |detail: String| BackendError::Run {
            backend: NAME,
            path: self.path.clone(),
            detail,
        };
        let mut values = Vec::with_capacity(ordered.len());
        for (name, tensor) in self.input_names.iter().zip(ordered) {
            let value = convert::to_ort(tensor)
                .map_err(|e| run_err(format!("input \"{name}\": {}", error_chain(&e))))?;
            values.push((name.clone(), value));
        }
        // A panic while holding the lock cannot leave the session half-updated in a way we
        // rely on, so a poisoned lock is taken over rather than propagated as a panic.
        let mut session = self
            .sessions
            .iter()
            .find_map(|s| s.try_lock().ok())
            .unwrap_or_else(|| {
                let k = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
                self.sessions[k].lock().unwrap_or_else(|e| e.into_inner())
            });
        let outputs = session.run(values).map_err(|e| run_err(error_chain(&e)))?;
        self.output_names
            .iter()
            .map(|name| {
                let value = outputs.get(name.as_str()).ok_or_else(|| {
                    run_err(format!("output \"{name}\" missing from the results"))
                })?;
                let tensor = convert::from_ort(value)
                    .map_err(|detail| run_err(format!("output \"{name}\": {detail}")))?;
                Ok((name.clone(), tensor))
            })
            .collect()
    }
}
