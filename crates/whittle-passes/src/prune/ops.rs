//! How each op moves channels: the per-op rules of the dependency analysis.
//!
//! Invariant: a rule either gives every output it understands a layout and records every
//! coupled initializer, or blocks the channels of its inputs with a reason. Channel counts
//! are checked against inferred shapes where an op could change them (pooling, Resize, Pad).
use super::groups::{Builder, Layout, Role};
use whittle_ir::Node;
use whittle_ir::shape::Dim;

/// The rule a node falls under.
pub(super) enum Op {
    Conv,
    ConvTranspose,
    Gemm,
    MatMul,
    BatchNorm,
    /// Input 0's channels go to output 0 unchanged.
    PassThrough,
    /// Numpy-broadcasting elementwise op over all inputs.
    Broadcast,
    Concat,
    Flatten,
    Reshape,
    Split,
    Slice,
    Unknown(String),
}

const PASS_THROUGH: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Clip",
    "HardSwish",
    "HardSigmoid",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "Gelu",
    "Mish",
    "Identity",
    "Dropout",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sin",
    "Cos",
    "ThresholdedRelu",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "Resize",
    "Upsample",
    "Pad",
];
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu",
];

pub(super) fn classify(n: &Node) -> Op {
    if !n.domain().is_empty() {
        return Op::Unknown(format!(
            "op {}::{} is not understood",
            n.domain(),
            n.op_type()
        ));
    }
    if n.subgraphs().next().is_some() {
        return Op::Unknown(format!("{} holds a subgraph", n.op_type()));
    }
    match n.op_type() {
        "Conv" => Op::Conv,
        "ConvTranspose" => Op::ConvTranspose,
        "Gemm" => Op::Gemm,
        "MatMul" => Op::MatMul,
        "BatchNormalization" => Op::BatchNorm,
        "Concat" => Op::Concat,
        "Flatten" => Op::Flatten,
        "Reshape" => Op::Reshape,
        "Split" => Op::Split,
        "Slice" => Op::Slice,
        op if PASS_THROUGH.contains(&op) => Op::PassThrough,
        op if BROADCAST.contains(&op) => Op::Broadcast,
        op => Op::Unknown(format!("op {op} is not understood")),
    }
}

pub(super) fn apply(b: &mut Builder, n: &Node, label: &str, op: Op) {
    let layer = matches!(
        op,
        Op::Conv | Op::ConvTranspose | Op::Gemm | Op::MatMul | Op::BatchNorm
    );
    if layer && n.inputs().iter().skip(1).any(|i| b.layouts.contains_key(i)) {
        let why = format!(
            "{label}: channels reach a parameter input of {}",
            n.op_type()
        );
        b.block_values(n.inputs(), &why);
        return;
    }
    let result = match op {
        Op::Conv => conv(b, n, label),
        Op::ConvTranspose => super::transpose::conv_transpose(b, n, label),
        Op::Gemm => gemm(b, n, label),
        Op::MatMul => matmul(b, n, label),
        Op::BatchNorm => batch_norm(b, n, label),
        Op::PassThrough => pass_through(b, n),
        Op::Broadcast => broadcast(b, n, label),
        Op::Concat => super::slicing::concat(b, n),
        Op::Flatten | Op::Reshape => super::slicing::flatten(b, n),
        Op::Split => super::slicing::split(b, n, label),
        Op::Slice => super::slicing::slice(b, n),
        Op::Unknown(why) => Err(why),
    };
    if let Err(why) = result {
        b.block_values(n.inputs(), &format!("{label}: {why}"));
        // Outputs get no layout; a later use of them cannot reach these channels.
    }
}

pub(super) type Rule = Result<(), String>;

pub(super) fn input(n: &Node, i: usize) -> Option<&str> {
    n.inputs()
        .get(i)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

fn out0(n: &Node) -> Option<String> {
    n.outputs().first().cloned()
}

pub(super) fn init_dims(b: &Builder, name: Option<&str>) -> Option<Vec<i64>> {
    Some(b.model.graph.initializer(name?)?.dims().to_vec())
}

fn rank_of(b: &Builder, name: &str) -> Option<usize> {
    b.dims(name).map(<[Dim]>::len)
}

fn channel_dim(b: &Builder, name: &str, axis: usize) -> Option<u64> {
    b.dims(name)?.get(axis)?.known()
}

/// Opens a new space for the output channels of a layer.
pub(super) fn open(
    b: &mut Builder,
    n: &Node,
    label: &str,
    size: u64,
    out_axis: usize,
    out_rank: usize,
) -> Layout {
    let s = b.new_space(size, label);
    let l = Layout {
        axis: out_axis,
        rank: out_rank,
        segs: vec![s],
        run: 1,
    };
    if let Some(o) = out0(n) {
        b.layouts.insert(o, l.clone());
    }
    l
}

fn single_output(n: &Node) -> Rule {
    if n.outputs().iter().skip(1).any(|o| !o.is_empty()) {
        return Err(format!("{} with more than one output", n.op_type()));
    }
    Ok(())
}

fn conv(b: &mut Builder, n: &Node, label: &str) -> Rule {
    let w = input(n, 1).unwrap_or_default().to_string();
    let wd = init_dims(b, Some(&w)).ok_or("Conv weight is not an initializer")?;
    if wd.len() < 3 {
        return Err("Conv weight of rank < 3".into());
    }
    let bias = input(n, 2).map(str::to_string);
    let group = n.attr_int("group").unwrap_or(1);
    let x = input(n, 0).unwrap_or_default().to_string();
    let xl = b.layouts.get(&x).cloned();
    let rank = wd.len();
    let m = u64::try_from(wd[0]).map_err(|_| "negative weight dim")?;
    if group == 1 {
        if let Some(l) = &xl {
            if l.axis != 1 || l.run != 1 {
                return Err("input channels are not on axis 1".into());
            }
            b.register(&w, 1, l, Role::Consumer, label);
        }
        let out = open(b, n, label, m, 1, rank);
        b.register(&w, 0, &out, Role::Producer, label);
        if let Some(bias) = bias {
            b.register(&bias, 0, &out, Role::Bias, label);
        }
        return Ok(());
    }
    let total: Option<u64> = xl
        .as_ref()
        .map(|l| l.segs.iter().map(|&s| b.space_size(s)).sum());
    match xl {
        Some(l) if wd[1] == 1 && Some(group as u64) == total && group == wd[0] && l.run == 1 => {
            b.register(&w, 0, &l, Role::Depthwise, label);
            if let Some(bias) = bias {
                b.register(&bias, 0, &l, Role::Depthwise, label);
            }
            b.add_depthwise(label, &l.segs);
            if let Some(o) = out0(n) {
                b.layouts.insert(o, l);
            }
            Ok(())
        }
        _ => {
            let why = format!("{label}: grouped Conv (group={group}) couples channels in blocks");
            b.block_values(n.inputs(), &why);
            let out = open(b, n, label, m, 1, rank);
            b.block(&out.segs, &why);
            Ok(())
        }
    }
}

fn gemm(b: &mut Builder, n: &Node, label: &str) -> Rule {
    if n.attr_int("transA").unwrap_or(0) != 0 {
        return Err("Gemm with transA".into());
    }
    let w = input(n, 1).unwrap_or_default().to_string();
    let wd = init_dims(b, Some(&w)).ok_or("Gemm B is not an initializer")?;
    if wd.len() != 2 {
        return Err("Gemm B is not 2-D".into());
    }
    let trans_b = n.attr_int("transB").unwrap_or(0) != 0;
    let (in_axis, out_axis) = if trans_b { (1, 0) } else { (0, 1) };
    let x = input(n, 0).unwrap_or_default().to_string();
    if let Some(l) = b.layouts.get(&x).cloned() {
        if l.axis != 1 || l.rank != 2 {
            return Err("Gemm input channels are not on axis 1 of a matrix".into());
        }
        b.register(&w, in_axis, &l, Role::Consumer, label);
    }
    let size = u64::try_from(wd[out_axis]).map_err(|_| "negative weight dim")?;
    let out = open(b, n, label, size, 1, 2);
    b.register(&w, out_axis, &out, Role::Producer, label);
    if let Some(c) = input(n, 2) {
        // The output space is open: a C the analysis cannot shrink blocks it, not the input.
        let Some(cd) = init_dims(b, Some(c)) else {
            b.block(&out.segs, &format!("{label}: Gemm C is not an initializer"));
            return Ok(());
        };
        match cd.as_slice() {
            [k] if *k as u64 == size && size > 1 => b.register(c, 0, &out, Role::Bias, label),
            [_, k] if *k as u64 == size && size > 1 => b.register(c, 1, &out, Role::Bias, label),
            d if d.iter().all(|&k| k == 1) => {}
            _ => b.block(&out.segs, &format!("{label}: Gemm C of shape {cd:?}")),
        }
    }
    Ok(())
}

fn matmul(b: &mut Builder, n: &Node, label: &str) -> Rule {
    let w = input(n, 1).unwrap_or_default().to_string();
    let wd = init_dims(b, Some(&w)).ok_or("MatMul B is not an initializer")?;
    if wd.len() != 2 {
        return Err("MatMul B is not 2-D".into());
    }
    let x = input(n, 0).unwrap_or_default().to_string();
    let xr = rank_of(b, &x).ok_or("MatMul input of unknown rank")?;
    if xr < 2 {
        return Err("MatMul with a 1-D input".into());
    }
    if let Some(l) = b.layouts.get(&x).cloned() {
        if l.axis + 1 != l.rank {
            return Err("MatMul input channels are not on the last axis".into());
        }
        b.register(&w, 0, &l, Role::Consumer, label);
    }
    let size = u64::try_from(wd[1]).map_err(|_| "negative weight dim")?;
    let out = open(b, n, label, size, xr - 1, xr);
    b.register(&w, 1, &out, Role::Producer, label);
    Ok(())
}

fn batch_norm(b: &mut Builder, n: &Node, label: &str) -> Rule {
    single_output(n)?;
    let x = input(n, 0).unwrap_or_default().to_string();
    let Some(l) = b.layouts.get(&x).cloned() else {
        return Ok(());
    };
    if l.axis != 1 || l.run != 1 {
        return Err("BatchNormalization input channels are not on axis 1".into());
    }
    for i in 1..5 {
        let p = input(n, i).ok_or("BatchNormalization with a missing input")?;
        let role = if i == 1 { Role::BnScale } else { Role::Param };
        b.register(p, 0, &l, role, label);
    }
    if let Some(o) = out0(n) {
        b.layouts.insert(o, l);
    }
    Ok(())
}

fn pass_through(b: &mut Builder, n: &Node) -> Rule {
    let x = input(n, 0).unwrap_or_default().to_string();
    if n.inputs().iter().skip(1).any(|i| b.layouts.contains_key(i)) {
        return Err(format!(
            "channels reach a parameter input of {}",
            n.op_type()
        ));
    }
    let Some(l) = b.layouts.get(&x).cloned() else {
        return Ok(());
    };
    let extra = n.outputs().iter().skip(1).any(|o| !o.is_empty());
    if extra && n.op_type() != "Dropout" {
        return Err(format!("{} with more than one output", n.op_type()));
    }
    let o = out0(n).unwrap_or_default();
    let before = channel_dim(b, &x, l.axis);
    let after = channel_dim(b, &o, l.axis);
    if before.is_none() || before != after || rank_of(b, &o) != Some(l.rank) {
        return Err(format!(
            "cannot prove {} keeps the channel axis",
            n.op_type()
        ));
    }
    if n.op_type() == "Resize" && input(n, 3).is_some() {
        return Err("Resize with explicit sizes".into());
    }
    for out in n.outputs().iter().filter(|o| !o.is_empty()) {
        b.layouts.insert(out.clone(), l.clone());
    }
    Ok(())
}

fn broadcast(b: &mut Builder, n: &Node, label: &str) -> Rule {
    let o = out0(n).unwrap_or_default();
    let out_rank = rank_of(b, &o).ok_or("output of unknown rank")?;
    let mut tracked: Vec<Layout> = Vec::new();
    for x in n.inputs().iter().filter(|x| !x.is_empty()) {
        if let Some(l) = b.layouts.get(x) {
            let mut l = l.clone();
            l.axis += out_rank.checked_sub(l.rank).ok_or("rank shrinks")?;
            l.rank = out_rank;
            tracked.push(l);
        }
    }
    let Some(first) = tracked.first().cloned() else {
        return Ok(());
    };
    for l in &tracked[1..] {
        if l.axis != first.axis || l.run != first.run || l.segs.len() != first.segs.len() {
            return Err("operands carry channels differently".into());
        }
        for (x, y) in first.segs.clone().iter().zip(&l.segs) {
            b.union(*x, *y, label);
        }
    }
    for x in n.inputs().iter().filter(|x| !x.is_empty()) {
        if b.layouts.contains_key(x) {
            continue;
        }
        let dims: Vec<Option<u64>> = match b.model.graph.initializer(x) {
            Some(t) => t.dims().iter().map(|&d| u64::try_from(d).ok()).collect(),
            None => b
                .dims(x)
                .ok_or(format!("operand {x:?} has unknown shape"))?
                .iter()
                .map(Dim::known)
                .collect(),
        };
        let Some(axis) = (first.axis + dims.len()).checked_sub(out_rank) else {
            continue; // too short to reach the channel axis: broadcast
        };
        match dims.get(axis) {
            Some(Some(1)) => {}
            Some(Some(_)) if b.model.graph.initializer(x).is_some() => {
                b.register(x, axis, &first, Role::Param, label);
            }
            _ => return Err(format!("operand {x:?} carries untracked channels")),
        }
    }
    b.layouts.insert(o, first);
    Ok(())
}
