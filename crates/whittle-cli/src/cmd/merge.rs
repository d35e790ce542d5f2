//! `whittle merge`: several models into one graph with a combiner over their outputs
//! (ensembles), or two models with both outputs and their difference (`--combine diff`).
//!
//! The merged model is written with its tensor data inline (members' external data is
//! read from their memory maps), or with `--external-data` to `OUT.data`; never over an
//! input file unless `--force`. A refused merge writes nothing and exits 1 with one line
//! naming the members involved.
use crate::output::{check_not_overwriting, print_json, print_saved};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use whittle_ir::{ExternalMode, SaveOptions};
use whittle_passes::merge::{Combine, InputMap, Member, MergeOptions, MergeReport, merge};
use whittle_passes::opset::{MAX_TARGET, MIN_TARGET};

#[derive(Args)]
pub struct MergeArgs {
    /// The models to merge (two or more); their names get the prefixes m0/, m1/, … in this order.
    #[arg(required = true, num_args = 2.., value_name = "MODEL")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// How to combine the matched outputs: mean, weighted:W1,W2,… (weights normalised to sum 1),
    /// max, softmax-mean, vote (outputs NAME/winner and NAME/votes), concat, stack (new leading
    /// axis), all (every member's outputs, renamed), diff (two models: both outputs and NAME/absdiff).
    #[arg(long, value_name = "HOW", value_parser = parse_combine)]
    pub combine: Combine,
    /// The axis of softmax-mean, vote and concat (negative counts from the end) [default: -1].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub axis: Option<i64>,
    /// Name prefixes of the members, comma-separated (a `/` is added when missing) [default: m0/,m1/,…].
    #[arg(long, value_delimiter = ',', value_name = "P1,P2,…")]
    pub prefix: Vec<String>,
    /// Feed member input NAME (of member M, 0-based, or of every member) from merged input SHARED; repeatable.
    #[arg(long = "input-map", value_name = "[M:]NAME=SHARED", value_parser = parse_input_map)]
    pub input_map: Vec<InputMap>,
    /// The ai.onnx opset of the result (7 to 21) [default: the highest of the members].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(MIN_TARGET..=MAX_TARGET))]
    pub opset: Option<i64>,
    /// Write tensors of at least THRESHOLD_BYTES (default 1024) to `OUT.data`; otherwise all data is inline.
    #[arg(long, value_name = "THRESHOLD_BYTES", num_args = 0..=1, default_missing_value = "1024")]
    pub external_data: Option<u64>,
    /// Allow writing over an input file.
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_combine(s: &str) -> Result<Combine, String> {
    s.parse()
}

fn parse_input_map(s: &str) -> Result<InputMap, String> {
    s.parse()
}

pub fn run(args: MergeArgs) -> Result<()> {
    if args.axis.is_some() && !args.combine.uses_axis() {
        bail!(
            "--axis is used by softmax-mean, vote and concat, not by {}",
            args.combine
        );
    }
    let mut members = Vec::new();
    let mut inputs = Vec::new();
    for path in &args.inputs {
        let m = Member::load(path)?; // IrError names the file
        inputs.push(path.clone());
        inputs.extend(m.model.external_files());
        members.push(m);
    }
    let opts = MergeOptions {
        combine: args.combine.clone(),
        axis: args.axis.unwrap_or(-1),
        prefixes: args.prefix.clone(),
        input_map: args.input_map.clone(),
        opset: args.opset,
    };
    let merged = merge(members, &opts)?;
    let save_opts = SaveOptions {
        external: match args.external_data {
            Some(t) => ExternalMode::Threshold(t),
            None => ExternalMode::Inline,
        },
        ..Default::default()
    };
    let outputs = whittle_ir::save::target_files(&merged.model, &args.output, &save_opts)?;
    check_not_overwriting(&outputs, &inputs, args.force)?;
    let saved = whittle_ir::save(&merged.model, &args.output, &save_opts)
        .with_context(|| format!("{}: cannot write the merged model", args.output.display()))?;
    if args.json {
        let json = serde_json::json!({ "merge": merged.report, "save": saved });
        return print_json(&json);
    }
    print_report(&merged.report);
    print_saved(&saved);
    Ok(())
}

fn print_report(r: &MergeReport) {
    for m in &r.members {
        let opset = m.opset.map_or(String::new(), |v| format!("ai.onnx {v}, "));
        let shared = match m.shared_initializers {
            0 => String::new(),
            k => format!(
                "; {k} stored once with an earlier member ({} bytes)",
                m.shared_bytes
            ),
        };
        println!(
            "member {} {}: {opset}{} nodes, {} initializers ({} bytes){shared}",
            m.prefix, m.file, m.nodes, m.initializers, m.initializer_bytes
        );
    }
    for i in &r.inputs {
        println!(
            "input  {}: {} -> {}",
            i.name,
            i.type_text,
            i.feeds.join(", ")
        );
    }
    for o in &r.outputs {
        println!("output {}: {} = {}", o.name, o.type_text, o.expr);
    }
    println!(
        "merged ({}): opsets [{}], IR {}, {} nodes, {} initializers ({} bytes); {} shared tensors ({} bytes stored once)",
        r.combine,
        r.opset_imports.join(", "),
        r.ir_version,
        r.nodes,
        r.initializers,
        r.initializer_bytes,
        r.shared.len(),
        r.shared_bytes
    );
    for note in &r.notes {
        println!("note: {note}");
    }
}
