//! `whittle inspect MODEL [--json] [--graph] [--dot FILE] [--shape NAME=DIMS]… [--batch N]`:
//! the model's summary (producer, IR, opsets, inputs/outputs, node counts, op histogram,
//! parameters and weight bytes per dtype, largest tensors, functions, metadata, MACs).
//!
//! The report is `whittle_ir::inspect::InspectReport`; `--json` prints it as the
//! `whittle.inspect/1` schema (docs/inspect-json.md). Errors name the file.
use crate::output::print_json;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use whittle_ir::Model;
use whittle_ir::inspect::{InspectReport, write_dot};
use whittle_ir::shape::ShapeOverrides;

#[derive(Args)]
pub struct InspectArgs {
    /// The model to read.
    pub model: PathBuf,
    /// Print the report as JSON (schema `whittle.inspect/1`).
    #[arg(long)]
    pub json: bool,
    /// After the summary, print the graph in the canonical text form.
    #[arg(long, conflicts_with = "json")]
    pub graph: bool,
    /// Write the graph as Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Fix an input's shape, e.g. `input=1x3x224x224` (repeatable); makes MACs computable.
    #[arg(long = "shape", value_name = "NAME=DIMS", value_parser = parse_shape)]
    pub shapes: Vec<(String, Vec<u64>)>,
    /// Fix the leading (batch) dim of every input whose leading dim is symbolic or unknown
    /// (inputs given with --shape excepted).
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,
}

/// `NAME=1x3x224x224` (or `NAME=1,3,224,224`; `NAME=` for a scalar). The name is what
/// precedes the last `=`.
fn parse_shape(s: &str) -> Result<(String, Vec<u64>), String> {
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=DIMS, e.g. input=1x3x224x224"))?;
    if name.is_empty() {
        return Err(format!("{s:?}: the input name is empty"));
    }
    let dims = dims
        .split(['x', ','])
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?}: {d:?} is not a dimension (a whole number ≥ 0)"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    Ok((name.to_string(), dims))
}

fn overrides(args: &InspectArgs) -> Result<ShapeOverrides> {
    let mut inputs = BTreeMap::new();
    for (name, dims) in &args.shapes {
        if inputs.insert(name.clone(), dims.clone()).is_some() {
            bail!("--shape {name}=… is given twice");
        }
    }
    Ok(ShapeOverrides {
        inputs,
        batch: args.batch,
    })
}

/// Whether both paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

pub fn run(args: InspectArgs) -> Result<()> {
    let overrides = overrides(&args)?;
    let model = Model::load(&args.model)?;
    let label = args.model.display();
    let report = InspectReport::new(&model, &overrides).with_context(|| format!("{label}"))?;
    if let Some(dot) = &args.dot {
        let mut inputs = vec![args.model.clone()];
        inputs.extend(model.external_files());
        if inputs.iter().any(|i| same_file(i, dot)) {
            bail!(
                "{}: refusing to write the Graphviz file over an input of the model",
                dot.display()
            );
        }
        write_dot(&model, dot)
            .with_context(|| format!("{label}: cannot write the Graphviz file"))?;
    }
    if args.json {
        return print_json(&report);
    }
    print!("{}", report.to_text());
    if let Some(dot) = &args.dot {
        println!("\nwrote {}", dot.display());
    }
    if args.graph {
        println!();
        print!("{}", whittle_ir::text::model_to_text(&model));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_shape;

    #[test]
    fn shapes_parse() {
        assert_eq!(
            parse_shape("input=1x3x224x224"),
            Ok(("input".into(), vec![1, 3, 224, 224]))
        );
        assert_eq!(parse_shape("a=b=2,3"), Ok(("a=b".into(), vec![2, 3])));
        assert_eq!(parse_shape("s="), Ok(("s".into(), vec![])));
        assert!(parse_shape("x").is_err());
        assert!(parse_shape("=1").is_err());
        assert!(parse_shape("x=1xN").unwrap_err().contains("\"N\""));
    }
}
