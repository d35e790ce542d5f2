//! The numeric self-check commands that rewrite a model run before writing it: the result
//! and the original run on the same seeded inputs, and outputs beyond the bound are an
//! error (nothing is written).
//!
//! Backend: onnxruntime when its library is found (it runs the most models), else tract.
//! Symbolic dims not fixed by `--shape`/`--batch` are bound to 1 for the check. When no
//! backend can run the original (an op neither has, a dim without a name), the check is
//! reported as not run, with the reason — never silently passed.
use anyhow::{Result, bail};
use std::path::Path;
use whittle_ir::Model;
use whittle_runtime::model::{
    BackendKind, Dataset, Runner, candidate_dataset, compare_models, input_specs, make_backend,
};
use whittle_runtime::{Dim, ShapeOverride, Tolerance, parse_shape_override};

/// What the check found.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckOutcome {
    Skipped,
    /// Every output within the bound.
    Passed {
        backend: &'static str,
        max_abs: f64,
        max_rel: f64,
    },
    /// No backend could run the original model.
    Unavailable {
        reason: String,
    },
}

/// Fixed dims for the check: the user's `--shape` values, `--batch` for symbolic leading
/// dims, and 1 for every other symbolic dim.
fn overrides(model: &Model, shapes: &[String], batch: Option<u64>) -> Result<Vec<ShapeOverride>> {
    let mut out = shapes
        .iter()
        .map(|s| parse_shape_override(s).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let given: Vec<String> = out.iter().map(|o| o.name.clone()).collect();
    let mut symbols = std::collections::BTreeMap::new();
    for spec in input_specs(model)?
        .iter()
        .filter(|s| !given.contains(&s.name))
    {
        for (k, d) in spec.dims.iter().enumerate() {
            if let Dim::Symbolic(sym) = d {
                let value = if k == 0 { batch.unwrap_or(1) } else { 1 };
                symbols.entry(sym.clone()).or_insert(value);
            }
        }
    }
    for (sym, value) in symbols {
        out.push(parse_shape_override(&format!("{sym}={value}"))?);
    }
    Ok(out)
}

/// Runs `candidate` against the model at `original` on seeded inputs; an error when any
/// output is outside `atol + rtol·|ref|`.
pub fn check_against_original(
    original: &Path,
    candidate: &Model,
    shapes: &[String],
    batch: Option<u64>,
    tolerance: Tolerance,
) -> Result<CheckOutcome> {
    let reference = Model::load(original)?;
    let specs = input_specs(&reference)?;
    let data = match Dataset::seeded(&specs, &overrides(&reference, shapes, batch)?, 0, 1) {
        Ok(d) => d,
        Err(e) => {
            return Ok(CheckOutcome::Unavailable {
                reason: e.to_string(),
            });
        }
    };
    let backend = make_backend(BackendKind::Ort, None, 1)
        .or_else(|_| make_backend(BackendKind::Tract, None, 1))?;
    let r = match Runner::for_dataset(&reference, Some(original), backend.as_ref(), &data) {
        Ok(r) => r,
        Err(e) => {
            return Ok(CheckOutcome::Unavailable {
                reason: e.to_string(),
            });
        }
    };
    let (_, cand_data) = candidate_dataset(&specs, &input_specs(candidate)?, &data)?;
    let c = Runner::for_dataset(candidate, None, backend.as_ref(), &cand_data)?;
    let report = compare_models(&r, &data, &c, &cand_data, &tolerance, 1, None)?;
    let max_abs = report
        .outputs
        .iter()
        .map(|o| o.metrics.max_abs)
        .fold(0.0, f64::max);
    let max_rel = report
        .outputs
        .iter()
        .map(|o| o.metrics.max_rel)
        .fold(0.0, f64::max);
    if !report.pass {
        let bad: Vec<String> = report
            .outputs
            .iter()
            .filter(|o| !o.bounds.pass)
            .map(|o| format!("output {:?}: max |Δ| {:.3e}", o.output, o.metrics.max_abs))
            .collect();
        bail!(
            "{}: the result differs from the original beyond atol {} + rtol {}·|ref| on {} ({}); nothing was written",
            original.display(),
            tolerance.atol,
            tolerance.rtol,
            report.backend,
            bad.join(", ")
        );
    }
    Ok(CheckOutcome::Passed {
        backend: report.backend,
        max_abs,
        max_rel,
    })
}
