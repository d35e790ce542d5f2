//! Channel dependency analysis: which tensors (and which axis of each) must lose the same
//! channel indices together.
//!
//! Every Conv/Gemm/MatMul with an initializer weight opens a fresh *channel space* (its
//! output channels). Walking the main graph in order, each value gets a [`Layout`]: the
//! axis its channels live on and the spaces laid end to end along it (several after a
//! `Concat`), each channel spread over `run` consecutive features (after `Flatten`).
//! Ops that tie two spaces (residual `Add`/`Mul`/`Sub`, depthwise `Conv`) merge them in a
//! union-find; every initializer slice indexed by a space is recorded as a tensor mapping.
//!
//! Invariants:
//! - a space is prunable only if every use of every value carrying it was understood;
//!   anything else (unknown op, channel-mixing reshape, graph output, subgraph capture,
//!   shared initializer, unknown channel count) adds a *blocker* naming the node and why;
//! - the result is data ([`ChannelGroup`], [`TensorMap`]) and never holds a `NodeIndex`.
use super::ops::{self, Op};
use super::slicing::IntFix;
use std::collections::BTreeMap;
use whittle_ir::Model;
use whittle_ir::shape::{Dim, ShapeMap};

/// What a coupled tensor is to its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Output channels of a Conv/Gemm/MatMul weight (the importance source).
    Producer,
    /// Bias of the producing layer.
    Bias,
    /// BatchNormalization scale (gamma).
    BnScale,
    /// Other per-channel parameters (BN bias/mean/var, per-channel Mul/Add constants, PRelu).
    Param,
    /// Depthwise Conv weight/bias (one filter per channel).
    Depthwise,
    /// Input channels of a consumer Conv/Gemm/MatMul.
    Consumer,
}

/// One tensor whose `axis` is indexed by the channels of a group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub tensor: String,
    pub axis: usize,
    pub role: Role,
    /// The node using the tensor this way.
    pub node: String,
    /// Channel offset of this group inside the tensor's axis (after `Concat`).
    pub offset: u64,
    /// Consecutive features per channel along the axis (spatial size after `Flatten`).
    pub run: u64,
}

/// A set of channels that can only be removed together.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChannelGroup {
    pub id: usize,
    pub channels: u64,
    /// Nodes whose output channels open the group.
    pub producers: Vec<String>,
    pub members: Vec<Member>,
    /// Why the group cannot be pruned (empty: prunable).
    pub blockers: Vec<String>,
    /// The last value (in node order) carrying exactly this group's channels on axis 1,
    /// as its consumers see them: where activation statistics are read.
    pub activation_value: Option<String>,
}

/// How the axis of one initializer maps to groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMap {
    pub axis: usize,
    /// Groups laid end to end along the axis, with their channel counts.
    pub segs: Vec<(usize, u64)>,
    pub run: u64,
}

/// The analysis result.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub groups: Vec<ChannelGroup>,
    /// Initializer name → its mapping on each indexed axis.
    pub tensors: BTreeMap<String, Vec<TensorMap>>,
    /// Depthwise Conv node name → the groups of its channels (its `group` attribute follows).
    pub depthwise: BTreeMap<String, Vec<usize>>,
    /// Value name → groups on its channel axis (stale `value_info` when one is pruned).
    pub values: BTreeMap<String, Vec<usize>>,
    /// Split sizes and Slice bounds to recompute from the kept channel counts.
    pub int_fixes: Vec<IntFix<usize>>,
    /// Splits whose sizes are a `split` attribute (opset < 13), keyed by their first
    /// output: the groups going to each output (the attribute follows their counts).
    pub split_attrs: BTreeMap<String, Vec<Vec<usize>>>,
}

/// Channels of one value: the axis and the spaces along it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub axis: usize,
    pub rank: usize,
    pub segs: Vec<usize>,
    pub run: u64,
}

struct Space {
    size: u64,
    producer: String,
    /// Replaced by two narrower spaces ([`Builder::cut`]); referenced nowhere any more.
    cut: bool,
}

pub(super) struct Registration {
    pub tensor: String,
    pub axis: usize,
    pub segs: Vec<usize>,
    pub run: u64,
    pub role: Role,
    pub node: String,
}

/// The walk's state; `ops` fills it node by node.
pub(super) struct Builder<'a> {
    pub model: &'a Model,
    pub shapes: &'a ShapeMap,
    spaces: Vec<Space>,
    parent: Vec<usize>,
    blockers: Vec<Vec<String>>,
    pub regs: Vec<Registration>,
    pub layouts: BTreeMap<String, Layout>,
    depthwise: Vec<(String, Vec<usize>)>,
    int_fixes: Vec<IntFix<usize>>,
    split_attrs: Vec<(String, Vec<Vec<usize>>)>,
}

impl<'a> Builder<'a> {
    pub fn new_space(&mut self, size: u64, producer: &str) -> usize {
        self.spaces.push(Space {
            size,
            producer: producer.to_string(),
            cut: false,
        });
        self.parent.push(self.parent.len());
        self.blockers.push(Vec::new());
        self.spaces.len() - 1
    }

    pub fn find(&mut self, mut s: usize) -> usize {
        while self.parent[s] != s {
            self.parent[s] = self.parent[self.parent[s]];
            s = self.parent[s];
        }
        s
    }

    /// Ties two spaces: they lose the same indices. Different sizes block both.
    pub fn union(&mut self, a: usize, b: usize, node: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.spaces[ra].size != self.spaces[rb].size {
            let why = format!(
                "{node}: couples {} channels with {}",
                self.spaces[ra].size, self.spaces[rb].size
            );
            self.block(&[ra, rb], &why);
            return;
        }
        let (keep, gone) = (ra.min(rb), ra.max(rb));
        self.parent[gone] = keep;
        let moved = std::mem::take(&mut self.blockers[gone]);
        self.blockers[keep].extend(moved);
    }

    pub fn block(&mut self, spaces: &[usize], why: &str) {
        for &s in spaces {
            let r = self.find(s);
            if !self.blockers[r].iter().any(|b| b == why) {
                self.blockers[r].push(why.to_string());
            }
        }
    }

    /// Blocks the channels of every named value that carries a layout.
    pub fn block_values(&mut self, names: &[String], why: &str) {
        let segs: Vec<usize> = names
            .iter()
            .filter_map(|n| self.layouts.get(n))
            .flat_map(|l| l.segs.clone())
            .collect();
        self.block(&segs, why);
    }

    pub fn space_size(&self, s: usize) -> u64 {
        self.spaces[s].size
    }

    pub fn register(&mut self, tensor: &str, axis: usize, l: &Layout, role: Role, node: &str) {
        self.regs.push(Registration {
            tensor: tensor.to_string(),
            axis,
            segs: l.segs.clone(),
            run: l.run,
            role,
            node: node.to_string(),
        });
    }

    pub fn add_int_fix(&mut self, fix: IntFix<usize>) {
        self.int_fixes.push(fix);
    }

    pub fn add_split_attr(&mut self, first_output: &str, outputs: Vec<Vec<usize>>) {
        self.split_attrs.push((first_output.to_string(), outputs));
    }

    pub fn int_fixes(&self) -> &[IntFix<usize>] {
        &self.int_fixes
    }

    /// Cuts space `s` — and every space tied to it, which must lose the same indices — at
    /// channel `at` into a lower and an upper space, replacing it wherever it is referenced
    /// (layouts, registrations, depthwise nodes, Split/Slice fixes).
    ///
    /// Why: a Split or Slice bound inside one layer's output channels (YOLOv8's C2f splits
    /// `cv1` into halves) makes each side its own group; channel `at + k` of the old space
    /// is channel `k` of the upper one, so every tensor axis keeps its length and order.
    pub fn cut(&mut self, s: usize, at: u64) {
        let root = self.find(s);
        let size = self.spaces[s].size;
        if at == 0 || at >= size {
            return;
        }
        let class: Vec<usize> = (0..self.spaces.len())
            .filter(|&t| !self.spaces[t].cut && self.find(t) == root)
            .collect();
        let blockers = self.blockers[root].clone();
        let mut halves: BTreeMap<usize, [usize; 2]> = BTreeMap::new();
        for &t in &class {
            let producer = self.spaces[t].producer.clone();
            let lo = self.new_space(at, &producer);
            let hi = self.new_space(size - at, &producer);
            self.spaces[t].cut = true;
            halves.insert(t, [lo, hi]);
        }
        let first = halves[&class[0]];
        for h in halves.values() {
            for (a, b) in first.iter().zip(h) {
                self.union(*a, *b, "cut");
            }
        }
        for h in first {
            let r = self.find(h);
            self.blockers[r] = blockers.clone();
        }
        let replace = |segs: &mut Vec<usize>| {
            if segs.iter().any(|x| halves.contains_key(x)) {
                *segs = segs
                    .iter()
                    .flat_map(|x| halves.get(x).map_or(vec![*x], |h| h.to_vec()))
                    .collect();
            }
        };
        self.layouts.values_mut().for_each(|l| replace(&mut l.segs));
        self.regs.iter_mut().for_each(|r| replace(&mut r.segs));
        self.depthwise
            .iter_mut()
            .for_each(|(_, segs)| replace(segs));
        for (_, outputs) in &mut self.split_attrs {
            outputs.iter_mut().for_each(&replace);
        }
        for fix in &mut self.int_fixes {
            match fix {
                IntFix::SplitSizes { outputs, .. } => outputs.iter_mut().for_each(&replace),
                IntFix::SliceBounds { before, inside, .. } => {
                    replace(before);
                    replace(inside);
                }
            }
        }
    }

    pub fn add_depthwise(&mut self, node: &str, segs: &[usize]) {
        self.depthwise.push((node.to_string(), segs.to_vec()));
    }

    /// Known dims of a value (`None` for an unknown rank).
    pub fn dims(&self, name: &str) -> Option<&[Dim]> {
        self.shapes.dims(name)
    }
}

/// Analyses the main graph of `model`.
pub fn analyse(model: &Model, shapes: &ShapeMap) -> Analysis {
    let mut b = Builder {
        model,
        shapes,
        spaces: Vec::new(),
        parent: Vec::new(),
        blockers: Vec::new(),
        regs: Vec::new(),
        layouts: BTreeMap::new(),
        depthwise: Vec::new(),
        int_fixes: Vec::new(),
        split_attrs: Vec::new(),
    };
    let g = &model.graph;
    for (i, (_, n)) in g.nodes().enumerate() {
        let label = node_name(n, i);
        match ops::classify(n) {
            Op::Unknown(why) => {
                let why = format!("{label}: {why}");
                b.block_values(n.inputs(), &why);
            }
            op => ops::apply(&mut b, n, &label, op),
        }
    }
    for out in g.output_names().map(str::to_string).collect::<Vec<_>>() {
        let why = format!("{out:?} is a graph output");
        b.block_values(std::slice::from_ref(&out), &why);
    }
    super::checks::block_subgraph_captures(&mut b);
    super::checks::block_untracked_split_sizes(&mut b);
    super::checks::block_shared_tensors(&mut b);
    finish(b)
}

/// The node's name, or `#index Op` when it has none.
pub(super) fn node_name(n: &whittle_ir::Node, i: usize) -> String {
    match n.name() {
        "" => format!("#{i} {}", n.op_type()),
        s => s.to_string(),
    }
}

fn finish(mut b: Builder) -> Analysis {
    let mut group_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut groups: Vec<ChannelGroup> = Vec::new();
    for s in 0..b.spaces.len() {
        if b.spaces[s].cut {
            continue;
        }
        let r = b.find(s);
        let next = group_of.len();
        let id = *group_of.entry(r).or_insert(next);
        if id == groups.len() {
            groups.push(ChannelGroup {
                id,
                channels: b.spaces[r].size,
                producers: Vec::new(),
                members: Vec::new(),
                blockers: b.blockers[r].clone(),
                activation_value: None,
            });
        }
        // Both halves of a cut space tied together (Add of the halves) name one producer.
        let producer = &b.spaces[s].producer;
        if !groups[id].producers.contains(producer) {
            groups[id].producers.push(producer.clone());
        }
    }
    let gid = |b: &mut Builder, s: usize| group_of[&b.find(s)];
    let mut tensors: BTreeMap<String, Vec<TensorMap>> = BTreeMap::new();
    let regs = std::mem::take(&mut b.regs);
    for r in &regs {
        let segs: Vec<(usize, u64)> = r
            .segs
            .iter()
            .map(|&s| (gid(&mut b, s), b.spaces[s].size))
            .collect();
        let mut offset = 0;
        for &(g, size) in &segs {
            let m = Member {
                tensor: r.tensor.clone(),
                axis: r.axis,
                role: r.role,
                node: r.node.clone(),
                offset,
                run: r.run,
            };
            if !groups[g].members.contains(&m) {
                groups[g].members.push(m);
            }
            offset += size;
        }
        let maps: &mut Vec<TensorMap> = tensors.entry(r.tensor.clone()).or_default();
        if !maps.iter().any(|m| m.axis == r.axis) {
            maps.push(TensorMap {
                axis: r.axis,
                segs,
                run: r.run,
            });
        }
    }
    let depthwise = std::mem::take(&mut b.depthwise)
        .into_iter()
        .map(|(n, segs)| {
            let gs = segs.iter().map(|&s| gid(&mut b, s)).collect();
            (n, gs)
        })
        .collect();
    for (_, n) in b.model.graph.nodes() {
        for o in n.outputs() {
            let Some(l) = b.layouts.get(o).cloned() else {
                continue;
            };
            if let ([s], 1, 1) = (l.segs.as_slice(), l.axis, l.run) {
                let g = gid(&mut b, *s);
                groups[g].activation_value = Some(o.clone());
            }
        }
    }
    let int_fixes = std::mem::take(&mut b.int_fixes)
        .iter()
        .map(|f| f.map(|s| gid(&mut b, s)))
        .collect();
    let split_attrs = std::mem::take(&mut b.split_attrs)
        .into_iter()
        .map(|(o, outs)| {
            let gs = outs
                .iter()
                .map(|segs| segs.iter().map(|&s| gid(&mut b, s)).collect())
                .collect();
            (o, gs)
        })
        .collect();
    let layouts = std::mem::take(&mut b.layouts);
    let values = layouts
        .into_iter()
        .map(|(v, l)| (v, l.segs.iter().map(|&s| gid(&mut b, s)).collect()))
        .collect();
    Analysis {
        groups,
        tensors,
        depthwise,
        values,
        int_fixes,
        split_attrs,
    }
}
