//! Whole-graph checks run after the per-node walk: values captured by subgraphs, and
//! initializers that cannot be shrunk for their registered uses only (used elsewhere,
//! registered twice differently, a graph input, a Constant, or an axis whose length does
//! not match the channels mapped onto it), and Split sizes tensors read by a use the
//! analysis does not follow.
use super::groups::{Builder, Registration, node_name};
use super::slicing::IntFix;
use std::collections::BTreeMap;

pub(super) fn block_subgraph_captures(b: &mut Builder) {
    let mut captured: Vec<(String, String)> = Vec::new();
    for (i, (_, n)) in b.model.graph.nodes().enumerate() {
        for sub in n.subgraphs() {
            sub.walk(&mut |sg, _| {
                for (_, inner) in sg.nodes() {
                    for input in inner.inputs() {
                        captured.push((input.clone(), node_name(n, i)));
                    }
                }
            });
        }
    }
    for (value, node) in captured {
        let why = format!("{node}: {value:?} is used inside a subgraph");
        b.block_values(std::slice::from_ref(&value), &why);
    }
}

/// An initializer used anywhere else than where it was registered, or registered twice
/// on one axis with different mappings, cannot be shrunk for one use only.
pub(super) fn block_shared_tensors(b: &mut Builder) {
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    b.model.graph.walk(&mut |g, _| {
        for (_, n) in g.nodes() {
            for input in n.inputs() {
                *uses.entry(input.as_str()).or_default() += 1;
            }
        }
    });
    let graph_inputs: Vec<&str> = b.model.graph.input_names().collect();
    let mut by_tensor: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in b.regs.iter().enumerate() {
        by_tensor.entry(r.tensor.clone()).or_default().push(i);
    }
    let mut blocks: Vec<(Vec<usize>, String)> = Vec::new();
    let mut unions: Vec<(usize, usize, String)> = Vec::new();
    for (tensor, ixs) in &by_tensor {
        let used = uses.get(tensor.as_str()).copied().unwrap_or(0);
        let first = &b.regs[ixs[0]];
        let all_segs: Vec<usize> = ixs.iter().flat_map(|&i| b.regs[i].segs.clone()).collect();
        let mut nodes: Vec<&str> = ixs.iter().map(|&i| b.regs[i].node.as_str()).collect();
        nodes.dedup();
        let mut consistent = true;
        for &i in ixs {
            for &j in ixs {
                let (x, y) = (&b.regs[i], &b.regs[j]);
                if i < j && x.axis == y.axis {
                    if x.run != y.run || x.segs.len() != y.segs.len() {
                        consistent = false;
                    } else {
                        for (p, q) in x.segs.iter().zip(&y.segs) {
                            unions.push((*p, *q, y.node.clone()));
                        }
                    }
                }
            }
        }
        let fits = |r: &Registration| {
            let dims = b.model.graph.initializer(tensor).map(|t| t.dims().to_vec());
            let len = dims.and_then(|d| d.get(r.axis).copied()).unwrap_or(-1);
            let want: u64 = r.segs.iter().map(|&s| b.space_size(s)).sum::<u64>() * r.run;
            len >= 0 && len as u64 == want
        };
        if b.model.graph.initializer(tensor).is_none() {
            blocks.push((
                all_segs,
                format!("{}: {tensor:?} is not an initializer", first.node),
            ));
        } else if let Some(r) = ixs.iter().map(|&i| &b.regs[i]).find(|r| !fits(r)) {
            let why = format!(
                "{}: {tensor:?} axis {} does not match the channels",
                r.node, r.axis
            );
            blocks.push((all_segs, why));
        } else if graph_inputs.contains(&tensor.as_str()) {
            blocks.push((all_segs, format!("{tensor:?} is also a graph input")));
        } else if used > nodes.len() || !consistent {
            blocks.push((all_segs, format!("{tensor:?} is shared with another use")));
        }
    }
    for (x, y, node) in unions {
        b.union(x, y, &node);
    }
    for (segs, why) in blocks {
        b.block(&segs, &why);
    }
}

/// PyTorch exports one sizes tensor for every Split with the same sizes (YOLOv8: the C2f
/// blocks of equal width share `onnx::Split_158`). Those Splits stay independent — apply
/// gives each Split whose sizes change its own copy (`split_sizes`) — but a sizes tensor
/// also read where the analysis recorded no fix (an untracked Split, another op, a
/// subgraph) cannot be rewritten for the Splits alone: their groups are blocked.
pub(super) fn block_untracked_split_sizes(b: &mut Builder) {
    let mut by_tensor: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for fix in b.int_fixes() {
        if let IntFix::SplitSizes {
            tensor, outputs, ..
        } = fix
        {
            let e = by_tensor.entry(tensor.clone()).or_default();
            e.0 += 1;
            e.1.extend(outputs.iter().flatten());
        }
    }
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    b.model.graph.walk(&mut |g, _| {
        for (_, n) in g.nodes() {
            for input in n.inputs() {
                *uses.entry(input.as_str()).or_default() += 1;
            }
        }
    });
    let untracked: Vec<(String, Vec<usize>)> = by_tensor
        .into_iter()
        .filter(|(t, (splits, _))| uses.get(t.as_str()).copied().unwrap_or(0) != *splits)
        .map(|(t, (_, spaces))| (t, spaces))
        .collect();
    for (tensor, spaces) in untracked {
        let why =
            format!("Split sizes {tensor:?} are shared with a use the analysis does not follow");
        b.block(&spaces, &why);
    }
}
