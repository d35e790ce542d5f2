//! `whittle prune`: structured channel pruning. Shows the dependency groups (`--explain`),
//! removes a fraction of each prunable group's channels, writes the smaller model and
//! reports channels, parameters and MACs before/after. A failed prune writes nothing.
use super::backend_args::BackendArgs;
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use whittle_ir::inspect::InspectReport;
use whittle_ir::shape::ShapeOverrides;
use whittle_ir::{Model, SaveOptions};
use whittle_passes::prune::{Criterion, Prune, PruneOptions, PruneReport, analyse_model, explain};
use whittle_passes::{Pass, PassContext, PassManager};
use whittle_runtime::StatsConfig;
use whittle_runtime::model::{BatchOptions, Dataset, Taps, collect_stats, input_specs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CriterionArg {
    L1,
    L2,
    BnScale,
    /// Mean |activation| per channel over --calib, read where the consumers see it.
    Activation,
}

#[derive(Args)]
pub struct PruneArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the pruned model (not needed with --explain).
    #[arg(short, long, required_unless_present = "explain")]
    pub output: Option<PathBuf>,
    /// Fraction of each group's channels to remove (0 to 1).
    #[arg(long, default_value_t = 0.25)]
    pub ratio: f64,
    /// Remove this fraction of all prunable channels, ranked together across groups
    /// (each group's scores normalised by their mean) instead of --ratio per group.
    #[arg(long, value_name = "R", conflicts_with = "ratio")]
    pub global: Option<f64>,
    /// Prune just enough to reach at most X MACs (batch 1): searches the smallest
    /// --ratio (or --global) that gets there.
    #[arg(long, value_name = "X")]
    pub target_macs: Option<u64>,
    /// How channels are ranked.
    #[arg(long, value_enum, default_value = "l2")]
    pub criterion: CriterionArg,
    /// Keep channel counts multiples of N.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub round_to: u64,
    /// Never keep fewer than N channels in a group.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_channels: u64,
    /// Leave every group that touches these nodes alone.
    #[arg(long, value_name = "NODE", num_args = 1..)]
    pub protect: Vec<String>,
    /// Calibration samples (.npz keyed by input name) for `--criterion activation`.
    #[arg(long, value_name = "FILE.npz")]
    pub calib: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Print the channel groups (coupled tensors and axes, blockers) and exit.
    #[arg(long)]
    pub explain: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
}

#[derive(serde::Serialize)]
struct Totals {
    parameters: u64,
    weight_bytes: u64,
    macs: Option<u64>,
}

#[derive(serde::Serialize)]
struct Report {
    output: String,
    /// The ratio used (the one found for --target-macs).
    ratio: f64,
    before: Totals,
    after: Totals,
    #[serde(flatten)]
    prune: PruneReport,
}

/// Batch 1 plus the whole-input shapes of `--shape NAME=DIMS` (symbol bindings are left
/// to the runtime), so MACs are computable for models with symbolic spatial dims.
fn mac_overrides(m: &Model, shapes: &[String]) -> ShapeOverrides {
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

fn totals(m: &Model, overrides: &ShapeOverrides) -> Result<Totals> {
    let r = InspectReport::new(m, overrides).context("cannot count parameters and MACs")?;
    Ok(Totals {
        parameters: r.parameters.total,
        weight_bytes: r.parameters.bytes,
        macs: r.macs.total,
    })
}

pub fn run(args: PruneArgs) -> Result<()> {
    for (flag, r) in [("--ratio", Some(args.ratio)), ("--global", args.global)] {
        if let Some(r) = r.filter(|r| !(0.0..=1.0).contains(r)) {
            bail!("{flag} must be between 0 and 1, not {r}");
        }
    }
    let model = Model::load(&args.input)?;
    if args.explain {
        let analysis = analyse_model(&model);
        if args.json {
            return print_json(&analysis.groups);
        }
        print!("{}", explain(&analysis));
        return Ok(());
    }
    let Some(output) = args.output.clone() else {
        bail!("--output is required");
    };
    let opts = SaveOptions::default();
    let mut inputs = vec![args.input.clone()];
    inputs.extend(model.external_files());
    let outputs = whittle_ir::save::target_files(&model, &output, &opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    let overrides = mac_overrides(&model, &args.backend.shapes);
    let before = totals(&model, &overrides)?;
    let mut scores = BTreeMap::new();
    let criterion = match args.criterion {
        CriterionArg::L1 => Criterion::L1,
        CriterionArg::L2 => Criterion::L2,
        CriterionArg::BnScale => Criterion::BnScale,
        CriterionArg::Activation => {
            let Some(calib) = &args.calib else {
                bail!("--criterion activation needs --calib FILE.npz");
            };
            scores = activation_scores(&model, calib, &args.backend)?;
            Criterion::External
        }
    };
    let mut options = PruneOptions {
        ratio: args.global.unwrap_or(args.ratio),
        global: args.global.is_some(),
        criterion,
        round_to: args.round_to,
        min_channels: args.min_channels,
        protect: args.protect.clone(),
        scores,
    };
    if let Some(target) = args.target_macs {
        options.ratio = ratio_for_macs(&model, &options, &overrides, target)
            .with_context(|| args.input.display().to_string())?;
    }
    let label = args.input.display().to_string();
    let (model, prune) = prune_once(&model, options).with_context(|| label.clone())?;
    let after = totals(&model, &overrides)?;
    whittle_ir::save(&model, &output, &opts)
        .with_context(|| format!("{}: cannot write the pruned model", output.display()))?;
    let report = Report {
        output: output.display().to_string(),
        before,
        after,
        ratio: prune.1,
        prune: prune.0,
    };
    if args.json {
        return print_json(&report);
    }
    print_table(&report);
    Ok(())
}

/// Mean |x| per channel (axis 1) of each prunable group's activation value over `calib`.
fn activation_scores(
    model: &Model,
    calib: &Path,
    backend: &BackendArgs,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let analysis = analyse_model(model);
    let values: Vec<String> = analysis
        .groups
        .iter()
        .filter(|g| g.blockers.is_empty())
        .filter_map(|g| g.activation_value.clone())
        .collect();
    if values.is_empty() {
        return Ok(BTreeMap::new());
    }
    let specs = input_specs(model)?;
    let data = Dataset::from_npz(
        &specs,
        calib,
        &backend.overrides()?,
        &BatchOptions::default(),
    )
    .with_context(|| format!("{}: cannot feed the model", calib.display()))?;
    let (runtime, threads) = backend.backend()?;
    let config = StatsConfig {
        bins: 2,
        channel_axis: Some(1),
    };
    let stats = collect_stats(
        model,
        &Taps::Values(values),
        &data,
        runtime.as_ref(),
        threads,
        &config,
        None,
    )
    .context("cannot collect activation statistics")?;
    Ok(stats
        .iter()
        .map(|s| {
            let per_channel = s.channels().iter().map(|c| c.mean_abs() as f32).collect();
            (s.name().to_string(), per_channel)
        })
        .collect())
}

/// Prunes a copy of `model`; returns it with the pass's report and the ratio used.
pub fn prune_once(model: &Model, options: PruneOptions) -> Result<(Model, (PruneReport, f64))> {
    let mut model = model.clone();
    let ratio = options.ratio;
    let pass = std::rc::Rc::new(Prune::new(options));
    let mut pm = PassManager::new();
    pm.add(Box::new(Shared(pass.clone())));
    pm.run(&mut model, &mut PassContext::default())?;
    Ok((model, (pass.last_report(), ratio)))
}

/// The smallest ratio (to 1/1024) whose pruned model has at most `target` MACs (batch 1).
fn ratio_for_macs(
    model: &Model,
    options: &PruneOptions,
    overrides: &ShapeOverrides,
    target: u64,
) -> Result<f64> {
    let macs_at = |ratio: f64| -> Result<u64> {
        let opts = PruneOptions {
            ratio,
            ..options.clone()
        };
        let (m, _) = prune_once(model, opts)?;
        totals(&m, overrides)?
            .macs
            .context("MACs are unknown (fix symbolic input dims with --shape NAME=DIMS)")
    };
    let most = macs_at(1.0)?;
    if most > target {
        bail!(
            "--target-macs {target} is out of reach: pruning every group to its minimum leaves {most} MACs"
        );
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    if macs_at(lo)? <= target {
        return Ok(0.0);
    }
    for _ in 0..10 {
        let mid = (lo + hi) / 2.0;
        if macs_at(mid)? <= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// Lets the CLI keep a handle on the pass (for its detailed report) while the manager runs it.
struct Shared(std::rc::Rc<Prune>);

impl Pass for Shared {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn run(
        &self,
        model: &mut Model,
        cx: &mut PassContext,
    ) -> Result<whittle_passes::PassReport, whittle_passes::PassError> {
        self.0.run(model, cx)
    }
}

fn print_table(r: &Report) {
    for g in &r.prune.groups {
        let who = g.producers.join(", ");
        match &g.skipped {
            Some(why) => println!("group {} ({who}): skipped: {why}", g.id),
            None => println!(
                "group {} ({who}): {} -> {} channels, removed {:?}",
                g.id, g.channels_before, g.channels_after, g.removed
            ),
        }
    }
    let macs = |m: Option<u64>| m.map_or("?".to_string(), |m| m.to_string());
    println!(
        "parameters: {} -> {}",
        r.before.parameters, r.after.parameters
    );
    println!(
        "weight bytes: {} -> {}",
        r.before.weight_bytes, r.after.weight_bytes
    );
    println!(
        "MACs (batch 1): {} -> {}",
        macs(r.before.macs),
        macs(r.after.macs)
    );
    println!("wrote {}", r.output);
}
