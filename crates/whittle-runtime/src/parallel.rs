//! Running one loaded model over many independent samples on several threads.
//!
//! Invariants: results come back in sample order whatever the thread count; each sample is
//! one independent [`LoadedModel::run`] call, so outputs are identical for 1 or N threads
//! (backends compute each run on its own; nothing is shared between samples). This is for
//! models whose batch dim is 1 or fixed: every sample must have the shapes the model was
//! loaded with. With the ort backend, runs on one session queue up (one call at a time); use
//! its `intra_threads` for parallelism there instead.
//! On failure the error names the lowest-numbered failing sample (deterministic too).

use rayon::prelude::*;

use crate::backend::{BackendError, LoadedModel};
use crate::tensor::NamedTensor;

#[derive(Debug, thiserror::Error)]
pub enum RunManyError {
    #[error("sample {index}: {source}")]
    Sample {
        index: usize,
        #[source]
        source: BackendError,
    },
    #[error("cannot start {threads} worker threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}

/// Runs `model` on every sample with `threads` workers (0 = one per CPU, 1 = on the
/// calling thread); returns each sample's outputs in sample order.
pub fn run_many(
    model: &dyn LoadedModel,
    samples: &[Vec<NamedTensor>],
    threads: usize,
) -> Result<Vec<Vec<NamedTensor>>, RunManyError> {
    let results: Vec<Result<Vec<NamedTensor>, BackendError>> = if threads == 1 {
        samples.iter().map(|s| model.run(s)).collect()
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("whittle-run-{i}"))
            .build()
            .map_err(|e| RunManyError::ThreadPool {
                threads,
                reason: e.to_string(),
            })?;
        pool.install(|| samples.par_iter().map(|s| model.run(s)).collect())
    };
    results
        .into_iter()
        .enumerate()
        .map(|(index, r)| r.map_err(|source| RunManyError::Sample { index, source }))
        .collect()
}
