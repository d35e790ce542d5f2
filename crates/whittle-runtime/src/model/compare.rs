//! Comparing two models on the same inputs (same backend for both).
//!
//! Pairing rule, for inputs and for outputs alike: by name when every name of one side is
//! among the other's, else by position when both sides have as many, else an error listing
//! both sides. Metrics are taken over all samples at once (each output joined across runs,
//! see [`Dataset::join`]); definitions in [`crate::metrics`]. An output passes when every
//! element satisfies `|r − c| ≤ atol + rtol·|r|` and its cosine similarity is at least
//! `min_cosine`; the report passes when every output does.

use super::ModelError;
use super::dataset::Dataset;
use super::runner::{Progress, Runner};
use crate::inputs::InputSpec;
use crate::metrics::{BoundsReport, Metrics, Tolerance, compare, within_bounds};

/// How two lists of names were paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchedBy {
    Name,
    Position,
}

/// One output of the reference next to its candidate counterpart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutputComparison {
    pub output: String,
    pub candidate_output: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub metrics: Metrics,
    pub bounds: BoundsReport,
}

/// What [`compare_models`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComparisonReport {
    /// The backend that produced both sides' numbers.
    pub backend: &'static str,
    /// Samples compared (runs, for seeded inputs).
    pub samples: usize,
    pub inputs_matched_by: MatchedBy,
    pub outputs_matched_by: MatchedBy,
    pub tolerance: Tolerance,
    pub outputs: Vec<OutputComparison>,
    /// Every output within the tolerance.
    pub pass: bool,
}

/// Pairs every `reference` name with a `candidate` name (see the module docs). `what` names
/// the lists in the error (`"outputs"`, `"inputs"`).
pub fn pair_names(
    what: &str,
    reference: &[String],
    candidate: &[String],
) -> Result<(MatchedBy, Vec<(String, String)>), ModelError> {
    if reference.iter().all(|r| candidate.contains(r)) {
        let pairs = reference.iter().map(|r| (r.clone(), r.clone())).collect();
        return Ok((MatchedBy::Name, pairs));
    }
    if reference.len() == candidate.len() {
        let pairs = reference
            .iter()
            .cloned()
            .zip(candidate.iter().cloned())
            .collect();
        return Ok((MatchedBy::Position, pairs));
    }
    Err(ModelError::Pairing(format!(
        "cannot match the {what}: by name, {} of the first model's are missing from the second's; \
         by position, the counts differ ({} vs {})\n  first:  {}\n  second: {}",
        reference.iter().filter(|r| !candidate.contains(r)).count(),
        reference.len(),
        candidate.len(),
        reference.join(", "),
        candidate.join(", ")
    )))
}

/// The dataset for the candidate: `data` (made for the reference's inputs) with each input
/// renamed to the candidate's name for it. Inputs the candidate lacks are left out.
pub fn candidate_dataset(
    reference: &[InputSpec],
    candidate: &[InputSpec],
    data: &Dataset,
) -> Result<(MatchedBy, Dataset), ModelError> {
    let names = |s: &[InputSpec]| s.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    // Every candidate input must be fed: pair from the candidate's side.
    let (by, pairs) = pair_names("inputs", &names(candidate), &names(reference))?;
    let renamed = data.map_batches(|batch| {
        pairs
            .iter()
            .filter_map(|(cand, refn)| {
                batch
                    .iter()
                    .find(|(n, _)| n == refn)
                    .map(|(_, t)| (cand.clone(), t.clone()))
            })
            .collect()
    });
    Ok((by, renamed))
}

/// Runs both models over their datasets (`candidate_data` from [`candidate_dataset`]) and
/// measures every reference output against its candidate counterpart.
pub fn compare_models(
    reference: &Runner,
    reference_data: &Dataset,
    candidate: &Runner,
    candidate_data: &Dataset,
    tolerance: &Tolerance,
    threads: usize,
    progress: Option<Progress>,
) -> Result<ComparisonReport, ModelError> {
    let (outputs_matched_by, pairs) = pair_names(
        "outputs",
        reference.output_names(),
        candidate.output_names(),
    )?;
    let inputs_matched_by = pair_names(
        "inputs",
        &candidate_data.batches()[0]
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>(),
        reference.input_names(),
    )?
    .0;
    let r = reference_data.join(reference.run_all(reference_data, threads, progress)?)?;
    let c = candidate_data.join(candidate.run_all(candidate_data, threads, progress)?)?;
    let mut outputs = Vec::with_capacity(pairs.len());
    for (rname, cname) in pairs {
        let find = |side: &[(String, crate::HostTensor)], name: &str| {
            side.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| {
                    ModelError::Tap(format!("the backend returned no output \"{name}\""))
                })
        };
        let (rt, ct) = (find(&r, &rname)?, find(&c, &cname)?);
        let metrics = compare(&rname, &rt, &ct)?;
        let bounds = within_bounds(&rname, &rt, &ct, tolerance)?;
        outputs.push(OutputComparison {
            output: rname,
            candidate_output: cname,
            dtype: rt.dtype().to_string(),
            shape: rt.shape().to_vec(),
            metrics,
            bounds,
        });
    }
    Ok(ComparisonReport {
        backend: reference.backend(),
        samples: reference_data.samples(),
        inputs_matched_by,
        outputs_matched_by,
        tolerance: *tolerance,
        pass: outputs.iter().all(|o| o.bounds.pass),
        outputs,
    })
}
