//! Intermediate values: read any node output of a model over a dataset, as tensors or as
//! running statistics. Quantization calibration (activation ranges, histograms) and
//! data-driven pruning (mean |x| per channel) build on [`collect_stats`].
//!
//! How: the chosen values become extra graph outputs of a copy of the model
//! ([`with_outputs`]), which is run like any other model, so both backends see exactly the
//! graph they would otherwise run (plus outputs). Each added output declares its element
//! type when the model's value_info or shape inference know it and no shape (onnxruntime
//! infers the rest; tract ignores declared output types and shapes).
//!
//! Invariants: only values of the main graph can be read (a subgraph's values are not
//! visible to the graph's outputs); [`select_values`] returns names in node order without
//! duplicates; statistics are folded in sample order, so they do not depend on the thread
//! count.

use std::collections::HashSet;

use whittle_ir::Model;
use whittle_ir::proto::{TypeProto, ValueInfoProto, type_proto};
use whittle_ir::shape::{ShapeOverrides, infer_shapes};

use super::ModelError;
use super::dataset::Dataset;
use super::runner::{Progress, Runner};
use crate::backend::Backend;
use crate::stats::{RunningStats, StatsConfig};
use crate::tensor::{DType, NamedTensor};

/// Which values to read out of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taps {
    /// These values: node outputs (or graph outputs) of the main graph.
    Values(Vec<String>),
    /// Every output of every node of the main graph whose dtype whittle can read.
    AllNodeOutputs,
    /// Every readable output of the main-graph nodes of these op types (e.g. `Conv`).
    OpTypes(Vec<String>),
}

/// The value names `taps` selects, in node order. Explicitly named values must exist in the
/// main graph; the wholesale selections skip values whose dtype is known and not readable
/// (strings, bfloat16, …).
pub fn select_values(model: &Model, taps: &Taps) -> Result<Vec<String>, ModelError> {
    let graph = &model.graph;
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    let readable = |name: &str| {
        shapes
            .get(name)
            .and_then(|s| s.dtype)
            .is_none_or(|d| DType::from_onnx_code(d.0).is_some())
    };
    let node_outputs = graph
        .nodes()
        .flat_map(|(_, n)| n.outputs().iter().map(move |o| (n, o)))
        .filter(|(_, o)| !o.is_empty());
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    match taps {
        Taps::Values(wanted) => {
            let known: HashSet<&str> = graph
                .nodes()
                .flat_map(|(_, n)| n.outputs().iter().map(String::as_str))
                .chain(graph.output_names())
                .collect();
            for w in wanted {
                if !known.contains(w.as_str()) {
                    return Err(ModelError::Tap(format!(
                        "{}: no value \"{w}\" in the main graph (values inside If/Loop/Scan \
                         bodies cannot be read out)",
                        model.label()
                    )));
                }
                if seen.insert(w.clone()) {
                    names.push(w.clone());
                }
            }
        }
        Taps::AllNodeOutputs => {
            for (_, o) in node_outputs {
                if readable(o) && seen.insert(o.clone()) {
                    names.push(o.clone());
                }
            }
        }
        Taps::OpTypes(ops) => {
            for (n, o) in node_outputs {
                if ops.iter().any(|op| op == n.op_type()) && readable(o) && seen.insert(o.clone()) {
                    names.push(o.clone());
                }
            }
        }
    }
    Ok(names)
}

/// A copy of `model` with `names` added as graph outputs (those not outputs already), after
/// the existing ones, each typed with its element type when known.
pub fn with_outputs(model: &Model, names: &[String]) -> Result<Model, ModelError> {
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    let mut out = model.clone();
    let existing: HashSet<String> = model.graph.output_names().map(String::from).collect();
    for name in names.iter().filter(|n| !existing.contains(*n)) {
        let elem = shapes
            .get(name)
            .and_then(|s| s.dtype)
            .map(|d| d.0)
            .or_else(|| model.graph.initializer(name).map(|t| t.dtype().0));
        let r#type = elem.map(|code| TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(code),
                shape: None,
            })),
        });
        out.graph.proto.output.push(ValueInfoProto {
            name: Some(name.clone()),
            r#type,
            ..Default::default()
        });
    }
    Ok(out)
}

/// The selected values over the whole dataset, joined across runs (see
/// [`Dataset::join`]), in selection order.
pub fn collect_tensors(
    model: &Model,
    taps: &Taps,
    data: &Dataset,
    backend: &dyn Backend,
    threads: usize,
    progress: Option<Progress>,
) -> Result<Vec<NamedTensor>, ModelError> {
    let names = select_values(model, taps)?;
    let runner = Runner::for_dataset(&with_outputs(model, &names)?, None, backend, data)?;
    let per_run = runner.run_all(data, threads, progress)?;
    let per_run = per_run
        .into_iter()
        .map(|outputs| pick(outputs, &names))
        .collect::<Result<Vec<_>, _>>()?;
    data.join(per_run)
}

/// Running statistics (min, max, mean |x|, histogram; per channel along
/// `config.channel_axis` for the tensors whose rank reaches that axis, as one run returns
/// them) of the selected values over the whole dataset, in selection order.
pub fn collect_stats(
    model: &Model,
    taps: &Taps,
    data: &Dataset,
    backend: &dyn Backend,
    threads: usize,
    config: &StatsConfig,
    progress: Option<Progress>,
) -> Result<Vec<RunningStats>, ModelError> {
    let names = select_values(model, taps)?;
    let runner = Runner::for_dataset(&with_outputs(model, &names)?, None, backend, data)?;
    let mut stats: Vec<Option<RunningStats>> = vec![None; names.len()];
    runner.for_each_run(data, threads, progress, |_, outputs| {
        for (slot, (name, tensor)) in stats.iter_mut().zip(pick(outputs, &names)?) {
            let s = match slot {
                Some(s) => s,
                None => {
                    let axis = config.channel_axis.filter(|&a| a < tensor.shape().len());
                    let cfg = StatsConfig {
                        channel_axis: axis,
                        ..*config
                    };
                    slot.insert(RunningStats::new(&name, cfg)?)
                }
            };
            s.update(&tensor)?;
        }
        Ok(())
    })?;
    stats
        .into_iter()
        .zip(&names)
        .map(|(s, name)| match s {
            Some(s) => Ok(s),
            None => Ok(RunningStats::new(name, *config)?),
        })
        .collect()
}

/// The outputs named `names`, in that order.
fn pick(mut outputs: Vec<NamedTensor>, names: &[String]) -> Result<Vec<NamedTensor>, ModelError> {
    names
        .iter()
        .map(|name| {
            let at = outputs.iter().position(|(n, _)| n == name).ok_or_else(|| {
                ModelError::Tap(format!("the backend returned no value \"{name}\""))
            })?;
            Ok(outputs.swap_remove(at))
        })
        .collect()
}
