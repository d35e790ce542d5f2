//! Datasets: the model's inputs for many samples, cut into independent runs ("batches").
//!
//! Invariants: batches cover the samples in order, without gaps or overlap
//! ([`Dataset::sample_ranges`]); every batch feeds every model input; how batches are cut
//! depends only on the model's specs, the user's shape overrides, the data shapes and
//! [`BatchOptions`] — never on the thread count — so results are the same for any
//! parallelism.

use std::ops::Range;
use std::path::Path;

use super::ModelError;
use super::join::{concat_axis0, slice_axis0, stack};
use crate::inputs::{Dim, InputSpec, ShapeOverride, resolve_shapes, seeded_inputs};
use crate::npz::read_npz;
use crate::tensor::{HostTensor, NamedTensor};

/// How the runs' outputs go back together ([`Dataset::join`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleLayout {
    /// Samples sit on the model's own axis 0: outputs are concatenated along axis 0
    /// (rank-0 outputs are stacked).
    BatchAxis,
    /// The model has no batch axis; each run is one sample: outputs are stacked on a new
    /// axis 0.
    Stacked,
}

/// Knobs of the batching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Largest run when the model's batch dim is symbolic and not fixed by the user.
    pub max_batch: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { max_batch: 32 }
    }
}

/// Inputs for many samples, cut into runs.
#[derive(Debug, Clone)]
pub struct Dataset {
    batches: Vec<Vec<NamedTensor>>,
    ranges: Vec<Range<usize>>,
    layout: SampleLayout,
    /// One line per conversion made while reading (dtype casts).
    pub notes: Vec<String>,
}

/// How one input's array relates to the samples.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// Axis 0 of the array is the model's axis 0.
    Batched,
    /// The array has one more axis than the input: a stack of unbatched samples.
    Stacked,
    /// A scalar input given as a scalar: the same value in every run.
    Broadcast,
}

impl Dataset {
    /// One run of the given inputs (one sample).
    pub fn single(inputs: Vec<NamedTensor>) -> Dataset {
        Dataset {
            batches: vec![inputs],
            ranges: std::iter::once(0..1).collect(),
            layout: SampleLayout::BatchAxis,
            notes: Vec::new(),
        }
    }

    /// `count` seeded runs: run `i` gets [`seeded_inputs`] with seed `seed + i` and the
    /// shapes `specs` and `overrides` resolve to.
    pub fn seeded(
        specs: &[InputSpec],
        overrides: &[ShapeOverride],
        seed: u64,
        count: usize,
    ) -> Result<Dataset, ModelError> {
        let shapes = resolve_shapes(specs, overrides)?;
        let batches = (0..count.max(1) as u64)
            .map(|i| seeded_inputs(specs, &shapes, seed.wrapping_add(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset {
            ranges: (0..batches.len()).map(|i| i..i + 1).collect(),
            batches,
            layout: SampleLayout::BatchAxis,
            notes: Vec::new(),
        })
    }

    /// Reads an `.npz` whose keys are input names and cuts it with [`Dataset::from_arrays`].
    pub fn from_npz(
        specs: &[InputSpec],
        path: &Path,
        overrides: &[ShapeOverride],
        options: &BatchOptions,
    ) -> Result<Dataset, ModelError> {
        let arrays = read_npz(path)?;
        Self::from_arrays(specs, &arrays, overrides, options)
            .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))
    }

    /// Cuts per-input arrays (keyed by input name; other keys are ignored) into runs.
    ///
    /// The rule, per input: an array with the input's rank holds samples on the model's
    /// axis 0; an array with one more axis is a stack of unbatched samples (each run gets
    /// one, axis dropped); a scalar for a scalar input is fed to every run. All sample
    /// counts N must agree. The run size B is: 1 if any input is stacked; else the model's
    /// axis-0 dim where it is fixed — a number in the model, or a symbol (or whole shape)
    /// the user gave with `overrides` — and then N must be a multiple of B; else (symbolic,
    /// unbound) at most `options.max_batch`, the last run taking the rest. An array whose
    /// dtype differs from the input's is cast (noted in [`Dataset::notes`]).
    pub fn from_arrays(
        specs: &[InputSpec],
        arrays: &[NamedTensor],
        overrides: &[ShapeOverride],
        options: &BatchOptions,
    ) -> Result<Dataset, ModelError> {
        let data = |m: String| ModelError::Data(m);
        let keys = || {
            arrays
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut notes = Vec::new();
        let mut feeds = Vec::with_capacity(specs.len());
        let mut count: Option<(usize, &str)> = None;
        for spec in specs {
            let Some((_, arr)) = arrays.iter().find(|(k, _)| *k == spec.name) else {
                return Err(data(format!(
                    "no array for input \"{}\" (arrays: {})",
                    spec.name,
                    keys()
                )));
            };
            // Borrowed unless it must be cast: calibration sets are often the largest thing
            // in memory, and the runs copy out of it anyway.
            let arr: std::borrow::Cow<'_, HostTensor> = if arr.dtype() == spec.dtype {
                std::borrow::Cow::Borrowed(arr)
            } else {
                notes.push(format!(
                    "array \"{}\" cast from {} to {}, the input's dtype",
                    spec.name,
                    arr.dtype(),
                    spec.dtype
                ));
                std::borrow::Cow::Owned(arr.cast(spec.dtype))
            };
            let rank = spec.dims.len();
            let feed = match arr.shape().len() {
                r if r == rank + 1 => Feed::Stacked,
                0 if rank == 0 => Feed::Broadcast,
                r if r == rank => Feed::Batched,
                r => {
                    return Err(data(format!(
                        "array \"{}\" has rank {r} but input \"{}\" has rank {rank} \
                         (give the samples on axis 0: rank {rank}, or {} for a stack)",
                        spec.name,
                        spec.name,
                        rank + 1
                    )));
                }
            };
            if feed != Feed::Broadcast {
                let n = arr.shape()[0];
                match count {
                    Some((m, other)) if m != n => {
                        return Err(data(format!(
                            "array \"{}\" holds {n} samples but \"{other}\" holds {m}",
                            spec.name
                        )));
                    }
                    _ => count = Some((n, &spec.name)),
                }
                check_sample_dims(spec, &arr, feed, overrides)?;
            }
            feeds.push((feed, arr));
        }
        let n = count.map_or(1, |(n, _)| n);
        if n == 0 {
            return Err(data(
                "the arrays hold no samples (axis 0 has length 0)".into(),
            ));
        }
        let size = run_size(specs, &feeds, overrides, options, n)?;
        let mut batches = Vec::new();
        let mut ranges = Vec::new();
        let mut start = 0;
        while start < n {
            let len = size.min(n - start);
            let batch = specs
                .iter()
                .zip(&feeds)
                .map(|(spec, (feed, arr))| {
                    let t = match feed {
                        Feed::Batched => slice_axis0(arr, start, len, false),
                        Feed::Stacked => slice_axis0(arr, start, 1, true),
                        Feed::Broadcast => Ok(arr.clone().into_owned()),
                    };
                    t.map(|t| (spec.name.clone(), t)).map_err(data)
                })
                .collect::<Result<Vec<_>, _>>()?;
            batches.push(batch);
            ranges.push(start..start + len);
            start += len;
        }
        let stacked = feeds.iter().any(|(f, _)| *f == Feed::Stacked);
        Ok(Dataset {
            batches,
            ranges,
            layout: if stacked {
                SampleLayout::Stacked
            } else {
                SampleLayout::BatchAxis
            },
            notes,
        })
    }

    /// The same runs with each batch's inputs rewritten by `f` (e.g. renamed for another
    /// model with the same inputs).
    pub fn map_batches(&self, f: impl Fn(&[NamedTensor]) -> Vec<NamedTensor>) -> Dataset {
        Dataset {
            batches: self.batches.iter().map(|b| f(b)).collect(),
            ranges: self.ranges.clone(),
            layout: self.layout,
            notes: self.notes.clone(),
        }
    }

    pub fn batches(&self) -> &[Vec<NamedTensor>] {
        &self.batches
    }

    /// The samples each batch holds, in order.
    pub fn sample_ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// Number of samples (for seeded datasets: runs).
    pub fn samples(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.end)
    }

    pub fn layout(&self) -> SampleLayout {
        self.layout
    }

    /// Joins per-batch outputs (same names in every batch, as a backend returns them) into
    /// one tensor per output over all samples (see [`SampleLayout`]).
    pub fn join(&self, per_batch: Vec<Vec<NamedTensor>>) -> Result<Vec<NamedTensor>, ModelError> {
        let Some(first) = per_batch.first() else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = first.iter().map(|(n, _)| n.clone()).collect();
        let mut parts: Vec<Vec<HostTensor>> =
            vec![Vec::with_capacity(per_batch.len()); names.len()];
        for batch in per_batch {
            for (k, (_, t)) in batch.into_iter().enumerate().take(names.len()) {
                parts[k].push(t);
            }
        }
        names
            .into_iter()
            .zip(parts)
            .map(|(name, parts)| {
                let joined = match (self.layout, parts[0].shape().is_empty()) {
                    (SampleLayout::BatchAxis, false) => concat_axis0(&parts),
                    _ => stack(&parts),
                };
                joined.map(|t| (name.clone(), t)).map_err(|e| {
                    ModelError::Data(format!(
                        "output \"{name}\": cannot join the results of the runs: {e}"
                    ))
                })
            })
            .collect()
    }
}

/// Fixed dims past the sample axis must match the data.
fn check_sample_dims(
    spec: &InputSpec,
    arr: &HostTensor,
    feed: Feed,
    overrides: &[ShapeOverride],
) -> Result<(), ModelError> {
    let (data_dims, first_axis) = match feed {
        Feed::Stacked => (&arr.shape()[1..], 0),
        _ => (&arr.shape()[1..], 1),
    };
    let whole = overrides.iter().find(|o| o.name == spec.name);
    for (k, &got) in data_dims.iter().enumerate() {
        let axis = first_axis + k;
        let want = match (&spec.dims[axis], whole) {
            (_, Some(o)) => o.dims.get(axis).copied(),
            (Dim::Fixed(v), None) => usize::try_from(*v).ok(),
            _ => None,
        };
        if let Some(want) = want.filter(|&w| w != got) {
            return Err(ModelError::Data(format!(
                "array \"{}\" has {got} along axis {} but input \"{}\" dim {axis} is {want}",
                spec.name,
                axis + usize::from(feed == Feed::Stacked),
                spec.name
            )));
        }
    }
    Ok(())
}

/// The run size B of the batching rule (see [`Dataset::from_arrays`]).
fn run_size(
    specs: &[InputSpec],
    feeds: &[(Feed, std::borrow::Cow<'_, HostTensor>)],
    overrides: &[ShapeOverride],
    options: &BatchOptions,
    n: usize,
) -> Result<usize, ModelError> {
    let stacked = feeds.iter().any(|(f, _)| *f == Feed::Stacked);
    let mut fixed: Option<(usize, &str)> = stacked.then_some((1, "a stacked input"));
    for (spec, (feed, _)) in specs.iter().zip(feeds) {
        if *feed != Feed::Batched {
            continue;
        }
        let whole = overrides.iter().find(|o| o.name == spec.name);
        let b = match (&spec.dims[0], whole) {
            (_, Some(o)) => o.dims.first().copied(),
            (Dim::Fixed(v), None) => usize::try_from(*v).ok(),
            (Dim::Symbolic(s), None) => overrides
                .iter()
                .find(|o| o.name == *s && o.dims.len() == 1)
                .map(|o| o.dims[0]),
            (Dim::Unknown, None) => None,
        };
        let Some(b) = b else { continue };
        match fixed {
            Some((other, who)) if other != b => {
                return Err(ModelError::Data(format!(
                    "input \"{}\" runs {b} samples at a time but {who} runs {other}",
                    spec.name
                )));
            }
            _ => fixed = Some((b, &spec.name)),
        }
    }
    match fixed {
        Some((0, who)) => Err(ModelError::Data(format!("{who} has a batch dim of 0"))),
        Some((b, who)) if !n.is_multiple_of(b) => Err(ModelError::Data(format!(
            "{n} samples do not split into runs of {b} (the batch dim of {who}); \
             give a multiple of {b} samples"
        ))),
        Some((b, _)) => Ok(b),
        None => Ok(options.max_batch.clamp(1, n)),
    }
}
