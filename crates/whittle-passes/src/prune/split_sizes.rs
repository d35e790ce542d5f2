//! Rewriting the sizes of Splits on the channel axis once the kept channels are known:
//! int64 sizes tensors ([`rewrite`]) and `split` attributes of opset < 13
//! ([`fix_split_attributes`]).
//!
//! Why copies: PyTorch exports one sizes initializer for every Split with equal sizes
//! (YOLOv8's C2f blocks of one width all read `onnx::Split_158`). Rewriting it in place
//! would force every such Split to the same new sizes, i.e. tie groups that have nothing
//! to do with each other. Instead a Split whose sizes change while its tensor is shared
//! reads a copy of its own (`<tensor>_<first output>`, made unique), inserted next to the
//! original.
//!
//! Invariants: a tensor whose readers all want the same new sizes (in particular a tensor
//! read by one Split) is rewritten in place, once; otherwise it is never written, each
//! reader whose sizes change gets a copy, and the tensor is removed only when no node reads it any more (and it is not a
//! graph input or output); every Split reading a tensor has a fix here (`checks` blocks the groups
//! of a sizes tensor with any other reader), so no reader is left with stale sizes.
use super::apply::Keep;
use super::groups::Analysis;
use super::slicing::IntFix;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use whittle_ir::{DataType, Model, Tensor};

/// The sizes each output of a Split gets: the kept channels of its groups.
fn new_sizes(outputs: &[Vec<usize>], analysis: &Analysis, keep: &Keep) -> Vec<i64> {
    outputs
        .iter()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    keep.get(g)
                        .map_or(analysis.groups[*g].channels, |k| k.len() as u64)
                        as i64
                })
                .sum()
        })
        .collect()
}

fn read_ints(model: &Model, tensor: &str) -> Result<(Vec<i64>, Vec<i64>), String> {
    let t = model
        .graph
        .initializer(tensor)
        .ok_or(format!("Split sizes {tensor:?} is not an initializer"))?;
    let bytes = t.le_bytes().map_err(|e| format!("{tensor:?}: {e}"))?;
    let values = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok((values, t.dims().to_vec()))
}

fn encode(values: &[i64]) -> Bytes {
    Bytes::from(
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

/// Every value and initializer name of the main graph (for picking a fresh one).
fn taken_names(model: &Model) -> BTreeSet<String> {
    let g = &model.graph;
    let mut names: BTreeSet<String> = g.initializers.iter().map(|t| t.name().into()).collect();
    names.extend(g.input_names().map(str::to_string));
    for (_, n) in g.nodes() {
        names.extend(n.inputs().iter().cloned());
        names.extend(n.outputs().iter().cloned());
    }
    names
}

/// Rewrites the sizes of every Split whose groups lost channels; returns what changed.
pub(super) fn rewrite(
    model: &mut Model,
    analysis: &Analysis,
    keep: &Keep,
) -> Result<Vec<String>, String> {
    // Every reader's new sizes, per tensor: when they all agree the tensor is rewritten
    // in place (the model stays as close to the original as it can).
    let mut wanted: BTreeMap<&str, BTreeSet<Vec<i64>>> = BTreeMap::new();
    for fix in &analysis.int_fixes {
        if let IntFix::SplitSizes {
            tensor, outputs, ..
        } = fix
        {
            let sizes = new_sizes(outputs, analysis, keep);
            wanted.entry(tensor.as_str()).or_default().insert(sizes);
        }
    }
    let mut taken = taken_names(model);
    let mut changes = Vec::new();
    let mut copied: BTreeSet<String> = BTreeSet::new();
    let mut written: BTreeSet<&str> = BTreeSet::new();
    for fix in &analysis.int_fixes {
        let IntFix::SplitSizes {
            tensor,
            split,
            outputs,
        } = fix
        else {
            continue;
        };
        if !outputs.iter().flatten().any(|g| keep.contains_key(g)) {
            continue;
        }
        let sizes = new_sizes(outputs, analysis, keep);
        let (old, dims) = read_ints(model, tensor)?;
        if sizes == old || written.contains(tensor.as_str()) {
            continue;
        }
        if old.len() != sizes.len() {
            return Err(format!(
                "Split sizes {tensor:?} hold {} values for {} outputs",
                old.len(),
                sizes.len()
            ));
        }
        let g = &mut model.graph;
        if wanted[tensor.as_str()].len() == 1 {
            let t = g
                .initializers
                .iter_mut()
                .find(|t| t.name() == tensor)
                .ok_or(format!("Split sizes {tensor:?} is not an initializer"))?;
            t.set_raw(encode(&sizes));
            written.insert(tensor);
            changes.push(format!("{tensor}: Split sizes {old:?} -> {sizes:?}"));
            continue;
        }
        let mut name = format!("{tensor}_{split}");
        let mut k = 1;
        while taken.contains(&name) {
            k += 1;
            name = format!("{tensor}_{split}_{k}");
        }
        taken.insert(name.clone());
        let node = g
            .nodes_mut()
            .find(|n| n.op_type() == "Split" && n.outputs().first() == Some(split))
            .ok_or(format!("no Split produces {split:?}"))?;
        let label = match node.name() {
            "" => split.clone(),
            s => s.to_string(),
        };
        match node.proto.input.get_mut(1) {
            Some(input) if input == tensor => *input = name.clone(),
            _ => return Err(format!("{label}: does not read Split sizes {tensor:?}")),
        }
        let at = g
            .initializers
            .iter()
            .position(|t| t.name() == tensor)
            .ok_or(format!("Split sizes {tensor:?} is not an initializer"))?;
        let copy = Tensor::new_raw(&name, DataType::INT64, dims, encode(&sizes));
        g.initializers.insert(at + 1, copy);
        copied.insert(tensor.clone());
        changes.push(format!(
            "{label}: Split sizes {tensor} (shared) -> own copy {name} {sizes:?}"
        ));
    }
    remove_unread(model, &copied);
    if !copied.is_empty() {
        model.graph.rebuild_edges();
    }
    Ok(changes)
}

/// Drops the shared sizes tensors no Split reads any more (all got their own copy).
fn remove_unread(model: &mut Model, tensors: &BTreeSet<String>) {
    let g = &mut model.graph;
    let inputs: BTreeSet<String> = g
        .input_names()
        .chain(g.output_names())
        .map(str::to_string)
        .collect();
    let mut read: BTreeSet<String> = BTreeSet::new();
    g.walk(&mut |sub, _| {
        for (_, n) in sub.nodes() {
            read.extend(n.inputs().iter().cloned());
        }
    });
    g.initializers.retain(|t| {
        let name = t.name();
        !tensors.contains(name) || read.contains(name) || inputs.contains(name)
    });
}

/// Rewrites the `split` attribute (opset < 13) of every Split in
/// [`Analysis::split_attrs`] whose groups lost channels; `keep` as in `apply`.
pub(super) fn fix_split_attributes(
    model: &mut Model,
    analysis: &Analysis,
    keep: &Keep,
) -> Vec<String> {
    let mut changes = Vec::new();
    for n in model.graph.nodes_mut() {
        let Some(outputs) = n
            .outputs()
            .first()
            .and_then(|o| analysis.split_attrs.get(o))
        else {
            continue;
        };
        if !outputs.iter().flatten().any(|g| keep.contains_key(g)) {
            continue;
        }
        let sizes = new_sizes(outputs, analysis, keep);
        let name = n.name().to_string();
        if let Some(a) = n.attributes.iter_mut().find(|a| a.proto.name() == "split") {
            a.proto.ints = sizes.clone();
            changes.push(format!("{name}: split -> {sizes:?}"));
        }
    }
    changes
}
