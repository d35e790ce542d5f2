//! The data side of `--gptq`: each layer's input second moments H = Σ x xᵀ over the
//! calibration set, read from the float model (see `whittle_passes::quantize::gptq` for the
//! rounding and its invariants).
//!
//! Layers are read in passes whose matrices fit [`BUDGET_BYTES`] together, each pass one run
//! of the model over the set with those layers' inputs as extra outputs; the sums are folded
//! on this thread in batch order, so they do not depend on the thread count.
use super::super::backend_args::BackendArgs;
use super::calibrate;
use crate::cmd::eval::progress_bar;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use whittle_ir::Model;
use whittle_passes::quantize::QuantizeOptions;
use whittle_passes::quantize::gptq::{self, LayerHessian, Target};
use whittle_runtime::model::{Runner, with_outputs};

/// Memory for the matrices of one pass.
const BUDGET_BYTES: usize = 512 << 20;
/// Output positions (Conv) or rows (Gemm/MatMul) per sample that feed H, evenly spaced.
const MAX_POSITIONS: usize = 512;

/// H of every layer GPTQ can round, by weight name; what could not be measured is noted.
pub fn hessians(
    model: &Model,
    opts: &QuantizeOptions,
    path: &Path,
    backend: &BackendArgs,
    quiet: bool,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, LayerHessian>> {
    let targets = gptq::targets(model, opts);
    let mut out: BTreeMap<String, LayerHessian> = BTreeMap::new();
    if targets.is_empty() {
        notes.push("GPTQ: no Conv/Gemm/MatMul weight to round".into());
        return Ok(out);
    }
    let data = calibrate::dataset(model, path, backend, None)?;
    let (rt, threads) = backend.backend()?;
    let mut passes: Vec<Vec<&Target>> = vec![Vec::new()];
    let mut used = 0;
    for t in &targets {
        let bytes = LayerHessian::bytes(t);
        if bytes > BUDGET_BYTES {
            notes.push(format!(
                "GPTQ: {} rounded to nearest ({} input features: its moments would take {} MiB)",
                t.node,
                t.features,
                bytes >> 20
            ));
            continue;
        }
        if used + bytes > BUDGET_BYTES {
            passes.push(Vec::new());
            used = 0;
        }
        used += bytes;
        if let Some(last) = passes.last_mut() {
            last.push(t);
        }
    }
    let graph_inputs: Vec<&str> = model.graph.input_names().collect();
    let passes: Vec<Vec<&Target>> = passes.into_iter().filter(|p| !p.is_empty()).collect();
    let bar = progress_bar((passes.len() * data.samples()) as u64, quiet);
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    for pass in &passes {
        let mut computed: Vec<String> = Vec::new();
        for t in pass {
            if !graph_inputs.contains(&t.input.as_str()) && !computed.contains(&t.input) {
                computed.push(t.input.clone());
            }
        }
        let runner =
            Runner::for_dataset(&with_outputs(model, &computed)?, None, rt.as_ref(), &data)
                .with_context(|| {
                    format!(
                        "{}: cannot run the model to measure layer inputs",
                        path.display()
                    )
                })?;
        // One accumulator per layer, folded side by side (each batch's runs are done by then).
        let mut acc: Vec<(&Target, LayerHessian, Option<String>)> = pass
            .iter()
            .map(|&t| (t, LayerHessian::new(t), None))
            .collect();
        runner.for_each_run(&data, threads, None, |k, outputs| {
            let batch = &data.batches()[k];
            acc.par_iter_mut().for_each(|(t, h, error)| {
                if error.is_some() {
                    return;
                }
                let found = outputs
                    .iter()
                    .chain(batch.iter())
                    .find(|(n, _)| *n == t.input);
                *error = match found {
                    Some((_, x)) => {
                        gptq::accumulate(t, h, &x.to_f32_vec(), x.shape(), MAX_POSITIONS).err()
                    }
                    None => Some(format!("the runtime returned no value {:?}", t.input)),
                };
            });
            bar.inc(data.sample_ranges()[k].len() as u64);
            Ok(())
        })?;
        for (t, h, error) in acc {
            if let Some(why) = error {
                failed.insert(t.weight.clone(), why);
                continue;
            }
            // A weight read by several layers sees all their inputs: the moments add up.
            match out.get_mut(&t.weight) {
                None => {
                    out.insert(t.weight.clone(), h);
                }
                Some(prev)
                    if prev.groups.len() == h.groups.len()
                        && prev.groups[0].shape() == h.groups[0].shape() =>
                {
                    for (a, b) in prev.groups.iter_mut().zip(&h.groups) {
                        *a += b;
                    }
                    prev.rows += h.rows;
                }
                Some(_) => {
                    failed.insert(
                        t.weight.clone(),
                        "the weight is shared by layers that read it differently".into(),
                    );
                }
            }
        }
    }
    bar.finish_and_clear();
    for (weight, why) in failed {
        out.remove(&weight);
        notes.push(format!("GPTQ: weight {weight:?} rounded to nearest: {why}"));
    }
    notes.push(format!(
        "GPTQ: input moments of {} layers over {} samples of {} ({})",
        out.len(),
        data.samples(),
        path.display(),
        rt.name()
    ));
    Ok(out)
}
