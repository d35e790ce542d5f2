//! `whittle prune`: structured channel pruning. Shows the dependency groups (`--explain`),
//! removes a fraction of each prunable group's channels, writes the smaller model and
//! reports channels, parameters and MACs before/after. A failed prune writes nothing.
//! With `--reconstruct`, the consumer layers of the pruned groups are then re-fitted by
//! least squares on `--calib` (`prune_reconstruct.rs`); with `--eval`, top-1 accuracy of
//! the original and the pruned model is measured and reported.
use super::backend_args::BackendArgs;
use super::compress::measure;
use crate::output::{check_not_overwriting, print_json};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use whittle_ir::{Model, SaveOptions};
use whittle_passes::prune::{
    ChannelGroup, Criterion, Prune, PruneOptions, PruneReport, analyse_model, explain, rewrites,
};
use whittle_passes::{Pass, PassContext, PassManager};

#[path = "prune_macs.rs"]
mod macs;
#[path = "prune_prepare.rs"]
mod prepare;
#[path = "prune_reconstruct.rs"]
pub(crate) mod reconstruct;
#[path = "prune_scores.rs"]
mod scores;

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
    /// With --target-macs or --max-mac-reduction, give it no value: the search picks it.
    #[arg(long, value_name = "R", num_args = 0..=1, conflicts_with = "ratio")]
    pub global: Option<Option<f64>>,
    /// Prune just enough to reach at most X MACs (batch 1, --shape applied; suffixes K, M,
    /// G: thousands, millions, billions): searches the smallest --ratio (or --global) that
    /// gets there.
    #[arg(long, value_name = "X", value_parser = macs::parse_macs, conflicts_with = "ratio")]
    pub target_macs: Option<u64>,
    /// Prune just enough to remove at least the fraction F of the MACs (batch 1): the
    /// target is MACs <= (1 - F) x the original's, reached by the smallest ratio that does.
    #[arg(
        long,
        value_name = "F",
        conflicts_with_all = ["ratio", "target_macs"]
    )]
    pub max_mac_reduction: Option<f64>,
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
    /// Calibration samples (.npz keyed by input name) for `--criterion activation` and
    /// `--reconstruct`.
    #[arg(long, value_name = "FILE.npz")]
    pub calib: Option<PathBuf>,
    /// After pruning, re-fit the weights of the layers that lost input channels by least
    /// squares so their outputs on --calib match the original model's (needs --calib).
    #[arg(long)]
    pub reconstruct: bool,
    /// Ridge term of the re-fit, as a fraction of the mean diagonal of XᵀX (pulls the
    /// weights toward the pruned ones where the calibration data says little).
    #[arg(
        long,
        value_name = "R",
        default_value_t = 1e-3,
        requires = "reconstruct"
    )]
    pub ridge: f64,
    /// Labelled set (.npz with `input` and `label`): report top-1 accuracy of the original
    /// and the pruned model.
    #[arg(long, value_name = "FILE.npz")]
    pub eval: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Print the channel groups (coupled tensors and axes, blockers) and exit.
    #[arg(long)]
    pub explain: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
}

#[derive(serde::Serialize)]
struct Report {
    output: String,
    /// The ratio used (the one found for --target-macs / --max-mac-reduction).
    ratio: f64,
    /// What the MAC target search found.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<macs::TargetReport>,
    /// The exact clean-up run first when the weights were in Constant nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    prepared: Option<prepare::Prepared>,
    before: macs::Totals,
    after: macs::Totals,
    #[serde(flatten)]
    prune: PruneReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconstruction: Option<reconstruct::ReconstructReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<Accuracy>,
    /// With `--calib`: the pruned model's first output against the original's on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    agreement: Option<measure::Agreement>,
}

/// A group as `--explain --json` prints it: the analysis plus what follows its count.
#[derive(serde::Serialize)]
struct ExplainedGroup<'a> {
    #[serde(flatten)]
    group: &'a ChannelGroup,
    /// Attributes and integer tensors rewritten when the group shrinks.
    rewrites: Vec<String>,
}

/// Top-1 accuracy on `--eval`.
#[derive(serde::Serialize)]
struct Accuracy {
    data: String,
    before: f64,
    after: f64,
    /// before − after.
    loss: f64,
}

pub fn run(args: PruneArgs) -> Result<()> {
    let searching = args.target_macs.is_some() || args.max_mac_reduction.is_some();
    let global = match args.global {
        Some(Some(_)) if searching => bail!(
            "--global takes no value with --target-macs or --max-mac-reduction: the search picks the ratio"
        ),
        Some(None) if !searching => {
            bail!("--global needs a ratio (or --target-macs / --max-mac-reduction to pick one)")
        }
        Some(r) => Some(r.unwrap_or(0.0)),
        None => None,
    };
    for (flag, r) in [("--ratio", Some(args.ratio)), ("--global", global)] {
        if let Some(r) = r.filter(|r| !(0.0..=1.0).contains(r)) {
            bail!("{flag} must be between 0 and 1, not {r}");
        }
    }
    let mut model = Model::load(&args.input)?;
    let label = args.input.display().to_string();
    if args.explain {
        if let Some(p) = prepare::prepare(&mut model).with_context(|| label.clone())? {
            eprintln!("note: {}", p.summary());
        }
        let analysis = analyse_model(&model);
        if args.json {
            let groups: Vec<ExplainedGroup> = analysis
                .groups
                .iter()
                .map(|group| ExplainedGroup {
                    group,
                    rewrites: rewrites(&analysis, group.id),
                })
                .collect();
            return print_json(&groups);
        }
        print!("{}", explain(&analysis));
        return Ok(());
    }
    let Some(output) = args.output.clone() else {
        bail!("--output is required");
    };
    if args.reconstruct && args.calib.is_none() {
        bail!("--reconstruct needs --calib FILE.npz (the data the layers are re-fitted on)");
    }
    if !(args.ridge.is_finite() && args.ridge > 0.0) {
        bail!("--ridge must be a positive number, not {}", args.ridge);
    }
    let opts = SaveOptions::default();
    let mut inputs = vec![args.input.clone()];
    inputs.extend(model.external_files());
    let outputs = whittle_ir::save::target_files(&model, &output, &opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    let overrides = macs::overrides(&model, &args.backend.shapes);
    let before = macs::totals(&model, &overrides)?;
    // After counting the original: the report's "before" is the file as read.
    let prepared = prepare::prepare(&mut model).with_context(|| label.clone())?;
    let mut scores = BTreeMap::new();
    let criterion = match args.criterion {
        CriterionArg::L1 => Criterion::L1,
        CriterionArg::L2 => Criterion::L2,
        CriterionArg::BnScale => Criterion::BnScale,
        CriterionArg::Activation => {
            let Some(calib) = &args.calib else {
                bail!("--criterion activation needs --calib FILE.npz");
            };
            scores = scores::activation_scores(&model, calib, &args.backend)?;
            Criterion::External
        }
    };
    let mut options = PruneOptions {
        ratio: global.unwrap_or(args.ratio),
        global: global.is_some(),
        criterion,
        round_to: args.round_to,
        min_channels: args.min_channels,
        protect: args.protect.clone(),
        scores,
    };
    let target = match (args.target_macs, args.max_mac_reduction) {
        (Some(t), _) => Some(t),
        (None, Some(f)) => {
            Some(macs::target_for_reduction(&model, &overrides, f).with_context(|| label.clone())?)
        }
        (None, None) => None,
    };
    let target = match target {
        Some(t) => {
            let mut found =
                macs::search(&model, &options, &overrides, t).with_context(|| label.clone())?;
            found.max_mac_reduction = args.max_mac_reduction;
            options.ratio = found.ratio;
            Some(found)
        }
        None => None,
    };
    let (mut pruned, prune) = prune_once(&model, options).with_context(|| label.clone())?;
    let reconstruction = match (&args.calib, args.reconstruct) {
        (Some(calib), true) => Some(
            reconstruct::reconstruct(
                &model,
                &mut pruned,
                &prune.0.groups,
                calib,
                args.ridge,
                &args.backend,
                args.quiet || args.json,
            )
            .with_context(|| format!("{label}: least-squares reconstruction failed"))?,
        ),
        _ => None,
    };
    let accuracy = match &args.eval {
        Some(eval) => {
            let before = measure::accuracy(&model, eval, &args.backend)
                .with_context(|| format!("{label}: cannot evaluate the original"))?;
            let after = measure::accuracy(&pruned, eval, &args.backend)
                .context("cannot evaluate the pruned model")?;
            Some(Accuracy {
                data: eval.display().to_string(),
                before,
                after,
                loss: before - after,
            })
        }
        None => None,
    };
    let agreement = match &args.calib {
        Some(calib) => {
            let data = measure::comparison_data(&model, Some(calib), &args.backend)?;
            Some(
                measure::agreement(&model, &pruned, &data, &args.backend)
                    .context("cannot compare the pruned model with the original")?,
            )
        }
        None => None,
    };
    let after = macs::totals(&pruned, &overrides)?;
    whittle_ir::save(&pruned, &output, &opts)
        .with_context(|| format!("{}: cannot write the pruned model", output.display()))?;
    let report = Report {
        output: output.display().to_string(),
        before,
        after,
        ratio: prune.1,
        target,
        prepared,
        prune: prune.0,
        reconstruction,
        accuracy,
        agreement,
    };
    if args.json {
        return print_json(&report);
    }
    print_table(&report);
    Ok(())
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
    if let Some(p) = &r.prepared {
        println!("{}", p.summary());
    }
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
    if let Some(t) = &r.target {
        macs::print(t);
    }
    if let Some(rec) = &r.reconstruction {
        reconstruct::print(rec);
    }
    if let Some(a) = &r.accuracy {
        println!(
            "accuracy on {}: {:.4} -> {:.4} (loss {:.4})",
            a.data, a.before, a.after, a.loss
        );
    }
    if let Some(g) = &r.agreement {
        let top1 = g.top1_agreement.map_or("-".into(), |t| format!("{t:.4}"));
        let snr = g.snr_db.map_or("∞".into(), |s| format!("{s:.1} dB"));
        println!(
            "against the original on {}: top-1 agreement {top1}, cosine {:.6}, SNR {snr}",
            g.inputs, g.cosine
        );
    }
    println!("wrote {}", r.output);
}
