//! Per-channel means of values over a dataset (signed, unlike the mean |x| of
//! [`super::collect_stats`]): what quantization's bias correction needs of each layer input.
//!
//! Invariants: graph inputs are read straight from the dataset, every other value comes
//! out of the model as an extra output ([`super::with_outputs`]); sums are accumulated in
//! f64 in batch order, so the result does not depend on the thread count; a value whose
//! rank does not reach its axis, or whose channel count changes between runs, is an error
//! naming it.
use super::ModelError;
use super::dataset::Dataset;
use super::runner::{Progress, Runner};
use super::taps::with_outputs;
use crate::backend::Backend;
use crate::tensor::{HostTensor, NamedTensor};
use whittle_ir::Model;

/// Which axis of a value holds its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelAxis {
    Axis(usize),
    Last,
}

/// Running per-channel sums of one value.
#[derive(Debug, Default)]
struct Sums {
    sum: Vec<f64>,
    count: u64,
}

impl Sums {
    fn update(&mut self, name: &str, axis: ChannelAxis, t: &HostTensor) -> Result<(), ModelError> {
        let shape = t.shape();
        let axis = match axis {
            ChannelAxis::Axis(a) => a,
            ChannelAxis::Last => shape.len().saturating_sub(1),
        };
        let Some(&channels) = shape.get(axis) else {
            return Err(ModelError::Tap(format!(
                "value \"{name}\" has rank {} (no channel axis {axis})",
                shape.len()
            )));
        };
        if self.sum.is_empty() {
            self.sum = vec![0.0; channels];
        } else if self.sum.len() != channels {
            return Err(ModelError::Tap(format!(
                "value \"{name}\" has {channels} channels on axis {axis} in one run and {} in another",
                self.sum.len()
            )));
        }
        let inner: usize = shape[axis + 1..].iter().product();
        for (i, x) in t.to_f64_vec().into_iter().enumerate() {
            self.sum[(i / inner.max(1)) % channels.max(1)] += x;
        }
        self.count += (t.len() / channels.max(1)) as u64;
        Ok(())
    }

    fn means(self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.sum.into_iter().map(|s| s / n).collect()
    }
}

/// The mean of every channel of each value in `targets` over `data`, in `targets` order
/// (empty for a value no run produced).
pub fn collect_channel_means(
    model: &Model,
    targets: &[(String, ChannelAxis)],
    data: &Dataset,
    backend: &dyn Backend,
    threads: usize,
    progress: Option<Progress>,
) -> Result<Vec<Vec<f64>>, ModelError> {
    let inputs: Vec<&str> = model.graph.input_names().collect();
    let computed: Vec<String> = targets
        .iter()
        .filter(|(n, _)| !inputs.contains(&n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    let mut sums: Vec<Sums> = targets.iter().map(|_| Sums::default()).collect();
    let mut fold = |k: usize, outputs: &[NamedTensor]| -> Result<(), ModelError> {
        let batch = &data.batches()[k];
        for ((name, axis), s) in targets.iter().zip(sums.iter_mut()) {
            let t = outputs
                .iter()
                .chain(batch.iter())
                .find(|(n, _)| n == name)
                .ok_or_else(|| {
                    ModelError::Tap(format!("the backend returned no value \"{name}\""))
                })?;
            s.update(name, *axis, &t.1)?;
        }
        Ok(())
    };
    if computed.is_empty() {
        for k in 0..data.batches().len() {
            fold(k, &[])?;
        }
    } else {
        let runner = Runner::for_dataset(&with_outputs(model, &computed)?, None, backend, data)?;
        runner.for_each_run(data, threads, progress, |k, outputs| fold(k, &outputs))?;
    }
    Ok(sums.into_iter().map(Sums::means).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_per_channel_on_axis_1_and_last() {
        // [2, 3, 2]: channel c on axis 1 holds 10c + {0, 1} in sample 0 and 10c + {2, 3} in 1.
        let v: Vec<f32> = (0..2)
            .flat_map(|s| {
                (0..3).flat_map(move |c| {
                    [
                        10.0 * c as f32 + 2.0 * s as f32,
                        10.0 * c as f32 + 2.0 * s as f32 + 1.0,
                    ]
                })
            })
            .collect();
        let t = HostTensor::from_vec(vec![2, 3, 2], v).unwrap();
        let mut s = Sums::default();
        s.update("x", ChannelAxis::Axis(1), &t).unwrap();
        assert_eq!(s.means(), vec![1.5, 11.5, 21.5]);
        let mut s = Sums::default();
        s.update("x", ChannelAxis::Last, &t).unwrap();
        assert_eq!(s.means(), vec![11.0, 12.0]);
        let mut s = Sums::default();
        assert!(s.update("x", ChannelAxis::Axis(3), &t).is_err());
    }
}
