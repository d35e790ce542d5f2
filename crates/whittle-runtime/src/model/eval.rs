//! Classification accuracy over a labelled dataset.
//!
//! Definitions: the scores of a sample are the model's first output for that sample,
//! flattened (`[N, C]`, `[N, C, 1, 1]` … give C scores per sample); the prediction is the
//! best-ranked class ([`crate::metrics::topk::ranking`]: descending score, ties to the lower
//! index, NaN last — numpy's `argmax` for NaN-free rows); a sample is a top-k hit when its
//! label is among the k best. Labels are class indices (any numeric dtype holding
//! non-negative integers below C). Recall of a class = correct / count over the samples
//! labelled with it.

use super::ModelError;
use super::dataset::{Dataset, SampleLayout};
use super::runner::{Progress, Runner};
use crate::metrics::topk::ranking;
use crate::tensor::HostTensor;

/// One class of the per-class summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassStats {
    pub class: usize,
    /// Samples labelled with this class.
    pub count: usize,
    /// Of those, predicted correctly.
    pub correct: usize,
    /// Samples predicted as this class.
    pub predicted: usize,
    /// `correct / count`; None when no sample has this label.
    pub recall: Option<f64>,
}

/// How often samples of `label` were predicted as `predicted` (≠ label).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    pub label: usize,
    pub predicted: usize,
    pub count: usize,
}

/// Accuracy, top-k and the per-class summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// The backend that computed the scores.
    pub backend: &'static str,
    /// The output read as class scores.
    pub output: String,
    pub count: usize,
    pub classes_in_output: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub top_k: usize,
    pub top_k_correct: usize,
    pub top_k_accuracy: f64,
    /// Classes that occur as a label or a prediction, by index.
    pub classes: Vec<ClassStats>,
    /// Up to 10 (label, prediction) pairs with label ≠ prediction, most frequent first
    /// (ties by label, then prediction).
    pub most_confused: Vec<Confusion>,
    /// The prediction for every sample, in order.
    pub predictions: Vec<usize>,
}

/// Runs `runner` over `data` and scores `output` (by default its first output) against
/// `labels` (one per sample).
pub fn evaluate(
    runner: &Runner,
    data: &Dataset,
    labels: &HostTensor,
    output: Option<&str>,
    top_k: usize,
    threads: usize,
    progress: Option<Progress>,
) -> Result<EvalReport, ModelError> {
    let labels = label_indices(labels, data.samples())?;
    let names = runner.output_names();
    let output = match output {
        Some(name) if names.iter().any(|n| n == name) => name.to_string(),
        Some(name) => {
            return Err(ModelError::Data(format!(
                "the model has no output \"{name}\" (its outputs: {})",
                names.join(", ")
            )));
        }
        None => names.first().cloned().ok_or_else(|| {
            ModelError::Data("the model has no output to read scores from".into())
        })?,
    };
    let mut rankings: Vec<Vec<usize>> = Vec::with_capacity(labels.len());
    runner.for_each_run(data, threads, progress, |k, outputs| {
        let samples = data.sample_ranges()[k].len();
        let scores = outputs
            .into_iter()
            .find(|(n, _)| *n == output)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                ModelError::Tap(format!("the backend returned no output \"{output}\""))
            })?;
        let rows = match data.layout() {
            SampleLayout::BatchAxis => scores.shape().first().copied().unwrap_or(1),
            SampleLayout::Stacked => 1,
        };
        if rows != samples || scores.is_empty() {
            return Err(ModelError::Data(format!(
                "output \"{output}\" has shape {:?} for a run of {samples} samples; \
                 expected one row of class scores per sample",
                scores.shape()
            )));
        }
        let values = scores.to_f64_vec();
        rankings.extend(values.chunks_exact(values.len() / rows).map(ranking));
        Ok(())
    })?;
    let mut report = classification_report(&rankings, &labels, top_k)?;
    report.backend = runner.backend();
    report.output = output;
    Ok(report)
}

/// The report for per-sample class rankings (best first) and labels.
pub fn classification_report(
    rankings: &[Vec<usize>],
    labels: &[usize],
    top_k: usize,
) -> Result<EvalReport, ModelError> {
    let classes = rankings.first().map_or(0, Vec::len);
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(ModelError::Data(format!(
            "sample {i} has label {l} but the output scores only {classes} classes"
        )));
    }
    let top_k = top_k.max(1);
    let n = rankings.len().min(labels.len());
    let predictions: Vec<usize> = rankings.iter().map(|r| r[0]).collect();
    let mut per_class = vec![(0usize, 0usize, 0usize); classes];
    let mut pairs = vec![0usize; classes * classes];
    let (mut correct, mut top_k_correct) = (0, 0);
    for ((rank, &p), &l) in rankings.iter().zip(&predictions).zip(labels) {
        per_class[l].0 += 1;
        per_class[p].2 += 1;
        if p == l {
            correct += 1;
            per_class[l].1 += 1;
        } else {
            pairs[l * classes + p] += 1;
        }
        if rank.iter().take(top_k).any(|&c| c == l) {
            top_k_correct += 1;
        }
    }
    let mut most_confused: Vec<Confusion> = pairs
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c > 0)
        .map(|(i, &count)| Confusion {
            label: i / classes,
            predicted: i % classes,
            count,
        })
        .collect();
    most_confused.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then((a.label, a.predicted).cmp(&(b.label, b.predicted)))
    });
    most_confused.truncate(10);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(EvalReport {
        backend: "",
        output: String::new(),
        count: n,
        classes_in_output: classes,
        correct,
        accuracy: ratio(correct, n),
        top_k,
        top_k_correct,
        top_k_accuracy: ratio(top_k_correct, n),
        classes: per_class
            .iter()
            .enumerate()
            .filter(|(_, (count, _, predicted))| count + predicted > 0)
            .map(|(class, &(count, correct, predicted))| ClassStats {
                class,
                count,
                correct,
                predicted,
                recall: (count > 0).then(|| ratio(correct, count)),
            })
            .collect(),
        most_confused,
        predictions,
    })
}

/// Labels as class indices; one per sample.
fn label_indices(labels: &HostTensor, samples: usize) -> Result<Vec<usize>, ModelError> {
    if labels.len() != samples {
        return Err(ModelError::Data(format!(
            "{} labels (shape {:?}) for {samples} samples",
            labels.len(),
            labels.shape()
        )));
    }
    labels
        .to_f64_vec()
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            if x >= 0.0 && x.fract() == 0.0 && x < usize::MAX as f64 {
                Ok(x as usize)
            } else {
                Err(ModelError::Data(format!(
                    "label of sample {i} is {x}, not a class index (a non-negative integer)"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_report() {
        // 4 samples, 3 classes. Rankings (best first) and labels:
        // s0 [0,1,2] l0 hit; s1 [2,1,0] l1 miss (top2 hit); s2 [2,0,1] l1 miss (top2 miss);
        // s3 [1,0,2] l1 hit.
        let r = vec![vec![0, 1, 2], vec![2, 1, 0], vec![2, 0, 1], vec![1, 0, 2]];
        let rep = classification_report(&r, &[0, 1, 1, 1], 2).unwrap();
        assert_eq!((rep.count, rep.correct, rep.top_k_correct), (4, 2, 3));
        assert_eq!(rep.accuracy, 0.5);
        assert_eq!(rep.predictions, vec![0, 2, 2, 1]);
        let c1 = &rep.classes[1];
        assert_eq!(
            (c1.count, c1.correct, c1.predicted, c1.recall),
            (3, 1, 1, Some(1.0 / 3.0))
        );
        assert_eq!(rep.classes[2].recall, None);
        assert_eq!(
            rep.most_confused,
            vec![Confusion {
                label: 1,
                predicted: 2,
                count: 2
            }]
        );
        assert!(classification_report(&r, &[0, 1, 1, 3], 1).is_err());
    }
}
