//! MAC counting for `whittle prune` and the search behind `--target-macs X` and
//! `--max-mac-reduction F`: the smallest ratio (per group, or `--global`) whose pruned
//! model has at most a target number of MACs.
//!
//! Invariants:
//! - MACs are those of `whittle_ir::inspect` (Conv, ConvTranspose, Gemm, MatMul of the main
//!   graph) at batch 1 with the `--shape` overrides; a model whose MACs are unknown or zero
//!   is refused before any search, naming the nodes and the inputs to fix;
//! - the search is a bisection on the grid of 1/1024 that keeps "`below` does not reach the
//!   target, `ratio` does" at every step, so the chosen ratio never overshoots the target by
//!   more than one grid step whether or not MACs fall monotonically with the ratio.
use super::prune_once;
use anyhow::{Context, Result, bail};
use whittle_ir::Model;
use whittle_ir::inspect::InspectReport;
use whittle_ir::shape::ShapeOverrides;
use whittle_passes::prune::PruneOptions;

/// Bisection steps on [0, 1]: the grid is 1/2^STEPS.
const STEPS: u32 = 10;

#[derive(serde::Serialize)]
pub struct Totals {
    pub parameters: u64,
    pub weight_bytes: u64,
    pub macs: Option<u64>,
}

/// What the MAC target search found.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TargetReport {
    /// The MAC budget (`--target-macs`, or `(1 − F)·before` for `--max-mac-reduction F`).
    pub target_macs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mac_reduction: Option<f64>,
    pub macs_before: u64,
    /// The smallest ratio on the grid that reaches the target, and the MACs it leaves.
    pub ratio: f64,
    pub macs: u64,
    /// One grid step below `ratio` (absent when `ratio` is 0): misses the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<(f64, u64)>,
    /// Pruned models the search built and counted.
    pub evaluations: u32,
}

/// Parses a MAC count: an integer or decimal with an optional K, M or G suffix
/// (powers of 1000: MACs are counts, not bytes), e.g. `250M`, `1.5G`, `120000`.
pub fn parse_macs(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 1e3),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 1e6),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a MAC count (e.g. 120000, 250M, 1.5G)"))?;
    let v = v * scale;
    if !v.is_finite() || v < 1.0 || v >= u64::MAX as f64 {
        return Err(format!("{s:?} is not a positive MAC count"));
    }
    Ok(v.floor() as u64)
}

/// Batch 1 plus the whole-input shapes of `--shape NAME=DIMS` (symbol bindings are left
/// to the runtime), so MACs are computable for models with symbolic spatial dims.
pub fn overrides(m: &Model, shapes: &[String]) -> ShapeOverrides {
    let inputs: Vec<&str> = m.graph.input_names().collect();
    let parse = |s: &String| -> Option<(String, Vec<u64>)> {
        let (name, dims) = s.rsplit_once('=')?;
        if !inputs.contains(&name) {
            return None;
        }
        let dims = dims
            .split(['x', ','])
            .map(|d| d.trim().parse().ok())
            .collect::<Option<_>>()?;
        Some((name.to_string(), dims))
    };
    ShapeOverrides {
        inputs: shapes.iter().filter_map(parse).collect(),
        batch: Some(1),
    }
}

pub fn totals(m: &Model, overrides: &ShapeOverrides) -> Result<Totals> {
    let r = InspectReport::new(m, overrides).context("cannot count parameters and MACs")?;
    Ok(Totals {
        parameters: r.parameters.total,
        weight_bytes: r.parameters.bytes,
        macs: r.macs.total,
    })
}

/// The model's MACs, or an error saying why they cannot be a target: unknown (naming the
/// nodes and the inputs whose dims to fix) or zero (nothing to reduce).
pub fn known_macs(m: &Model, overrides: &ShapeOverrides) -> Result<u64> {
    let r = InspectReport::new(m, overrides).context("cannot count MACs")?;
    if let Some(total) = r.macs.total.filter(|&t| t > 0) {
        return Ok(total);
    }
    if r.macs.nodes.is_empty() {
        bail!(
            "the model has no Conv, ConvTranspose, Gemm or MatMul in its main graph: no MACs to reduce"
        );
    }
    if r.macs.total == Some(0) {
        bail!("the model's Conv/Gemm/MatMul nodes count 0 MACs: nothing to reduce");
    }
    let unknown: Vec<&str> = r
        .macs
        .nodes
        .iter()
        .filter(|n| n.macs.is_none())
        .map(|n| n.name.as_str())
        .collect();
    let shown = unknown[..unknown.len().min(3)].join(", ");
    let inputs: Vec<String> = r
        .inputs
        .iter()
        .map(|i| format!("{} {}", i.name, i.type_text))
        .collect();
    bail!(
        "MACs are unknown at batch 1: {} of {} Conv/Gemm/MatMul nodes have a symbolic or \
         uninferred dim ({shown}{}); fix the inputs with --shape NAME=DIMS (inputs: {})",
        unknown.len(),
        r.macs.nodes.len(),
        if unknown.len() > 3 { ", …" } else { "" },
        inputs.join(", ")
    )
}

/// The smallest ratio on the 1/1024 grid whose pruned model has at most `target` MACs.
pub fn search(
    model: &Model,
    options: &PruneOptions,
    overrides: &ShapeOverrides,
    target: u64,
) -> Result<TargetReport> {
    let macs_before = known_macs(model, overrides)?;
    let mut evaluations = 0;
    let mut macs_at = |ratio: f64| -> Result<u64> {
        evaluations += 1;
        let opts = PruneOptions {
            ratio,
            ..options.clone()
        };
        let (m, _) = prune_once(model, opts)?;
        totals(&m, overrides)?
            .macs
            .with_context(|| format!("MACs of the model pruned at ratio {ratio} are unknown"))
    };
    let found = |ratio, macs, below| TargetReport {
        target_macs: target,
        max_mac_reduction: None,
        macs_before,
        ratio,
        macs,
        below,
        evaluations: 0,
    };
    if macs_before <= target {
        return Ok(found(0.0, macs_before, None));
    }
    let most = macs_at(1.0)?;
    if most > target {
        bail!(
            "--target-macs {target} is out of reach: pruning every prunable group to its \
             minimum leaves {most} of {macs_before} MACs"
        );
    }
    // Invariant: lo misses the target (macs_lo > target), hi reaches it.
    let (mut lo, mut hi, mut macs_lo, mut macs_hi) = (0.0f64, 1.0f64, macs_before, most);
    for _ in 0..STEPS {
        let mid = (lo + hi) / 2.0;
        let m = macs_at(mid)?;
        if m <= target {
            (hi, macs_hi) = (mid, m);
        } else {
            (lo, macs_lo) = (mid, m);
        }
    }
    let mut r = found(hi, macs_hi, Some((lo, macs_lo)));
    r.evaluations = evaluations;
    Ok(r)
}

/// `--max-mac-reduction F`: the target is `floor((1 − F)·MACs before)`, i.e. the search
/// removes at least the fraction F of the MACs, by the smallest ratio that does.
pub fn target_for_reduction(
    model: &Model,
    overrides: &ShapeOverrides,
    fraction: f64,
) -> Result<u64> {
    if !(fraction > 0.0 && fraction < 1.0) {
        bail!("--max-mac-reduction must be between 0 and 1 (exclusive), not {fraction}");
    }
    let before = known_macs(model, overrides)?;
    Ok(((1.0 - fraction) * before as f64).floor() as u64)
}

pub fn print(t: &TargetReport) {
    let how = match t.max_mac_reduction {
        Some(f) => format!(" ({:.1}% fewer than {})", f * 100.0, t.macs_before),
        None => String::new(),
    };
    if t.below.is_none() {
        println!(
            "MAC target: <= {}{how}: already met ({} MACs), nothing pruned",
            t.target_macs, t.macs
        );
        return;
    }
    println!(
        "MAC target: <= {}{how}: ratio {:.4} leaves {} MACs",
        t.target_macs, t.ratio, t.macs
    );
    if let Some((r, m)) = t.below {
        println!("  one step lower (ratio {r:.4}) would leave {m} MACs");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_macs;

    #[test]
    fn mac_counts_take_decimal_suffixes() {
        assert_eq!(parse_macs("120000"), Ok(120_000));
        assert_eq!(parse_macs("250M"), Ok(250_000_000));
        assert_eq!(parse_macs("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_macs("64k"), Ok(64_000));
        assert!(parse_macs("0").is_err());
        assert!(parse_macs("-3M").is_err());
        assert!(parse_macs("lots").is_err());
        assert!(parse_macs("M").is_err());
    }
}
