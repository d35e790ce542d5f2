//! Flags shared by the commands that execute models (`run`, `compare`, `eval`, `bench`):
//! which runtime, where onnxruntime's library is, input shapes and threads; plus the
//! helpers they share (loading, input files, printing notes).
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use whittle_ir::Model;
use whittle_runtime::model::{BackendKind, make_backend, make_pooled_backend, ort_library_found};
use whittle_runtime::{Backend, ShapeOverride, parse_shape_override};

/// The runtime that computes the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// tract-onnx, built into whittle (models are lowered exactly first: constant
    /// DequantizeLinear folded, constant-condition If inlined, f16 computed in f32).
    Tract,
    /// onnxruntime, loaded at run time from a libonnxruntime ≥ 1.31 (see --ort-lib).
    Onnxruntime,
}

#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Runtime that computes the numbers [default: tract; quantize's and compress's
    /// calibration of models of 128 KiB or more: onnxruntime when its library is found].
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub runtime: Option<Runtime>,
    /// onnxruntime library file or folder. Default: $WHITTLE_ORT_LIB, else the one inside
    /// the onnxruntime Python package (the active venv, then .venv in this folder or above, then python3).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Fix an input's shape (NAME=1x3x224x224) or a symbolic dim everywhere (batch=1).
    /// Repeatable.
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    pub shapes: Vec<String>,
    /// Threads [default: one per CPU]: this many runs go at once (onnxruntime: one session
    /// of one thread each; a model over 512 MiB gets one session using them all).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl BackendArgs {
    /// The chosen runtime (tract unless told otherwise).
    pub fn kind(&self) -> BackendKind {
        match self.runtime {
            Some(Runtime::Onnxruntime) => BackendKind::Ort,
            _ => BackendKind::Tract,
        }
    }

    pub fn overrides(&self) -> Result<Vec<ShapeOverride>> {
        self.shapes
            .iter()
            .map(|s| parse_shape_override(s).map_err(anyhow::Error::from))
            .collect()
    }

    /// The backend of `kind`, with onnxruntime using `intra_threads` per run.
    pub fn backend_with(
        &self,
        kind: BackendKind,
        intra_threads: usize,
    ) -> Result<Box<dyn Backend>> {
        make_backend(kind, self.ort_lib.as_deref(), intra_threads)
            .with_context(|| format!("cannot use the {} runtime", kind.label()))
    }

    /// The flags calibration of `model` runs with: the runtime asked for, else onnxruntime
    /// when a library new enough to load is found (an old one in the user's environment
    /// must not break the default) and the model holds at least [`ORT_CALIBRATION_BYTES`]
    /// of tensors, else tract. Calibration reads ranges and layer inputs, which the two agree
    /// on to float rounding, and onnxruntime runs CNNs 2–3× faster than tract on a small
    /// machine (YOLOv8n static: 0.38 against 1.18 s end to end); on a tiny model loading its
    /// library costs more than it saves (digits CNN, 22 KB: 0.04 against 0.01 s). The notes
    /// name the runtime that calibrated; `--runtime` decides.
    pub fn for_calibration(&self, model: &Model) -> BackendArgs {
        let mut b = self.clone();
        if b.runtime.is_none()
            && whittle_passes::quantize::tensor_bytes(model) >= ORT_CALIBRATION_BYTES
            && ort_library_found(b.ort_lib.as_deref())
        {
            b.runtime = Some(Runtime::Onnxruntime);
        }
        b
    }

    /// How many runs go at once: `--threads`, else one per CPU.
    pub fn workers(&self) -> usize {
        match self.threads {
            Some(n) if n > 0 => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The chosen backend, set up for running many samples, and how many runs go at once:
    /// `--threads` (default one per CPU). onnxruntime gets that many single-threaded
    /// sessions per model — several batch-1 runs side by side use the cores better than
    /// one run spread over them — unless the model is too large to hold it more than once.
    pub fn backend(&self) -> Result<(Box<dyn Backend>, usize)> {
        match self.kind() {
            BackendKind::Tract => Ok((
                self.backend_with(BackendKind::Tract, 0)?,
                self.threads.unwrap_or(0),
            )),
            BackendKind::Ort => {
                let workers = self.workers();
                let backend =
                    make_pooled_backend(BackendKind::Ort, self.ort_lib.as_deref(), 1, workers)
                        .with_context(|| {
                            format!("cannot use the {} runtime", BackendKind::Ort.label())
                        })?;
                Ok((backend, workers))
            }
        }
    }
}

/// Tensor bytes from which calibration prefers onnxruntime (see
/// [`BackendArgs::for_calibration`]).
pub const ORT_CALIBRATION_BYTES: u64 = 128 * 1024;

/// Loads a model's IR, naming the file on failure.
pub fn load_model(path: &Path) -> Result<Model> {
    Model::load(path).with_context(|| format!("{}: cannot load the model", path.display()))
}

/// The "backend: …" line every report starts with.
pub fn backend_line(backend: &str) -> String {
    let label = if backend == "ort" {
        "onnxruntime"
    } else {
        backend
    };
    format!("backend: {label}")
}

/// Prints notes (lowering steps, casts, skipped outputs) on stderr.
pub fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("note: {n}");
    }
}

/// Prints rows under a header, columns padded to their widest cell, two spaces apart.
pub fn print_aligned<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
