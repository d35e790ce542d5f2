//! Which nodes can be quantized, which input is their weight, along which axes its
//! channels and its reduction run — or why a node is left alone.
//!
//! Weight roles (input slot, output-channel axis, reduction axis):
//! - `Conv` W `[M, C/g, k…]`: slot 1, channel 0, reduction 1;
//! - `ConvTranspose` W `[C, M/g, k…]`: slot 1, channel 1, reduction 0;
//! - `Gemm` B: slot 1; `transB=1` `[N, K]`: channel 0, reduction 1; else `[K, N]`: 1, 0;
//! - `MatMul` B `[…, K, N]`: slot 1, channel rank-1, reduction rank-2 (rank 1: per tensor).
//!
//! Invariants: a weight is quantized only when it is a constant of the node's own graph
//! (an initializer no graph input can override), float32 or float16, finite, and at least
//! `min_elements` large; everything else is reported with the reason.
use super::options::{Granularity, QuantizeOptions};
use super::report::NodeEntry;
use super::weights::Layout;
use crate::cleanup::scope::{self, GraphCx};
use petgraph::stable_graph::NodeIndex;
use whittle_ir::{DataType, Graph, Node};

/// The ops weight quantization looks at.
pub const WEIGHT_OPS: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// Where a node's weight is and how it is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightRole {
    pub slot: usize,
    pub channel_axis: Option<usize>,
    pub reduce_axis: Option<usize>,
    /// A convolution weight (dims past 1 are the kernel's spatial dims).
    pub conv: bool,
}

/// The weight role of `n` when its weight has rank `rank`.
pub fn weight_role(n: &Node, rank: usize) -> Option<WeightRole> {
    let role = |channel, reduce, conv| WeightRole {
        slot: 1,
        channel_axis: Some(channel),
        reduce_axis: Some(reduce),
        conv,
    };
    match n.op_type() {
        "Conv" if rank >= 3 => Some(role(0, 1, true)),
        "ConvTranspose" if rank >= 3 => Some(role(1, 0, true)),
        "Gemm" if rank == 2 => Some(if n.attr_int("transB").unwrap_or(0) != 0 {
            role(0, 1, false)
        } else {
            role(1, 0, false)
        }),
        "MatMul" if rank >= 2 => Some(role(rank - 1, rank - 2, false)),
        "MatMul" if rank == 1 => Some(WeightRole {
            slot: 1,
            channel_axis: None,
            reduce_axis: None,
            conv: false,
        }),
        _ => None,
    }
}

/// A node whose weight will be quantized.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub ix: NodeIndex,
    /// The report entry, filled in as far as the choice goes.
    pub entry: NodeEntry,
    pub weight: String,
    pub role: WeightRole,
    pub layout: Layout,
    pub weight_dtype: DataType,
    pub dims: Vec<usize>,
}

/// The layout `granularity` asks for, given the role. Falls back when an axis is missing;
/// block-wise becomes per-channel where blocks would not help: when the whole reduction
/// axis fits in one block, and for convolutions with a spatial kernel (blocks along the
/// input channels would need one scale per kernel position).
pub fn layout_for(granularity: Granularity, role: WeightRole, dims: &[usize]) -> Layout {
    let per_channel = match role.channel_axis {
        Some(axis) if dims.get(axis).is_some_and(|&d| d > 1) => Layout::PerAxis { axis },
        _ => Layout::PerTensor,
    };
    match (granularity, role.reduce_axis) {
        (Granularity::PerTensor, _) => Layout::PerTensor,
        (Granularity::Block(block), Some(axis)) => {
            let spatial: usize = dims.get(2..).map_or(1, |s| s.iter().product());
            if dims.get(axis).is_some_and(|&d| d > block) && !(role.conv && spatial > 1) {
                Layout::Blocked { axis, block }
            } else {
                per_channel
            }
        }
        _ => per_channel,
    }
}

/// Why `n`'s weight cannot be quantized, or the candidate. `ops` are the op types the mode
/// handles; nodes of other types return `None` (not candidates at all).
pub fn examine(
    g: &Graph,
    cx: &GraphCx,
    ix: NodeIndex,
    label: String,
    opts: &QuantizeOptions,
    ops: &[&str],
) -> Option<Result<Candidate, NodeEntry>> {
    let n = g.node(ix)?;
    if !n.domain().is_empty() || !ops.contains(&n.op_type()) {
        return None;
    }
    let mut entry = NodeEntry::new(label, n.op_type());
    entry.output = n.outputs().first().cloned();
    if opts.exclude_ops.iter().any(|o| o == n.op_type()) {
        return Some(Err(entry.skipped("excluded by --exclude-ops")));
    }
    if opts.exclude_nodes.iter().any(|o| o == n.name()) {
        return Some(Err(entry.skipped("excluded by --exclude-nodes")));
    }
    let Some(weight) = n.inputs().get(1).filter(|s| !s.is_empty()).cloned() else {
        return Some(Err(entry.skipped("no weight input")));
    };
    entry.weight = Some(weight.clone());
    if let Err(why) = constant_weight(g, cx, &weight) {
        return Some(Err(entry.skipped(why)));
    }
    let Some(t) = g.initializer(&weight) else {
        return Some(Err(entry.skipped("weight is not an initializer")));
    };
    let dtype = t.dtype();
    if dtype != DataType::FLOAT && dtype != DataType::FLOAT16 {
        return Some(Err(entry.skipped(format!(
            "weight is {dtype} (only float32 and float16 weights are quantized)"
        ))));
    }
    let elements = t.num_elements().unwrap_or(0);
    entry.weight_bytes_before = Some(t.data_byte_len());
    if elements < opts.min_elements.max(1) {
        return Some(Err(entry.skipped(format!(
            "weight has {elements} elements (< --min-elements {})",
            opts.min_elements.max(1)
        ))));
    }
    let dims: Vec<usize> = t.dims().iter().map(|&d| d.max(0) as usize).collect();
    let Some(role) = weight_role(n, dims.len()) else {
        return Some(Err(entry.skipped(format!(
            "weight of rank {} is not a layout whittle quantizes for {}",
            dims.len(),
            n.op_type()
        ))));
    };
    let layout = layout_for(opts.granularity, role, &dims);
    Some(Ok(Candidate {
        ix,
        entry,
        weight,
        role,
        layout,
        weight_dtype: dtype,
        dims,
    }))
}

/// Ok when `name` is a constant of `g`; else the reason it is not.
pub fn constant_weight(g: &Graph, cx: &GraphCx, name: &str) -> Result<(), String> {
    if scope::is_constant_init(g, name, cx) {
        return Ok(());
    }
    if g.initializer(name).is_some() {
        return Err("weight is also a graph input (it can be fed at run time)".into());
    }
    let producer = g
        .nodes()
        .find(|(_, p)| p.outputs().iter().any(|o| o == name))
        .map(|(_, p)| p.op_type().to_string());
    Err(match producer {
        Some(op) if op == "DequantizeLinear" => {
            "weight is already quantized (DequantizeLinear output)".into()
        }
        Some(op) => format!("weight is computed at run time (output of {op})"),
        None if g.input_names().any(|i| i == name) => "weight is a graph input".into(),
        None => "weight is defined in an enclosing graph".into(),
    })
}

/// Graph labels for reports: `path` + `name (Op)` / `#i Op`, position `pos` in the graph.
pub fn node_label(path: &str, n: &Node, pos: usize) -> String {
    format!("{path}{}", n.label(pos))
}

/// The ops whose weight comes from a `Constant` node anywhere in the model (they need the
/// constants turned into initializers before quantizing).
pub fn has_constant_node_weights(g: &Graph, ops: &[&str]) -> bool {
    let mut found = false;
    g.walk(&mut |sub, _| {
        let constants: std::collections::HashSet<&str> = sub
            .nodes()
            .filter(|(_, n)| n.op_type() == "Constant" && n.domain().is_empty())
            .flat_map(|(_, n)| n.outputs().iter().map(String::as_str))
            .collect();
        found |= sub.nodes().any(|(_, n)| {
            ops.contains(&n.op_type())
                && n.inputs()
                    .get(1)
                    .is_some_and(|w| constants.contains(w.as_str()))
        });
    });
    found
}
