//! Rewriting constant weights for the fusion passes: reading f32 data as f64, and putting
//! the rewritten data back — in place when the fused node is the tensor's only user,
//! under a fresh name otherwise (so other users keep the original numbers).
use super::scope::{self, GraphCx, Uses};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use whittle_ir::{DataType, Graph, Tensor};

/// The numbers of an f32 tensor, widened to f64; `None` for any other dtype or bad data.
pub fn f32_data(t: &Tensor) -> Option<Vec<f64>> {
    if t.dtype() != DataType::FLOAT {
        return None;
    }
    let b = t.le_bytes().ok()?;
    Some(
        b.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    )
}

/// An f32 tensor from f64 numbers (each rounded once, to nearest).
pub fn f32_tensor(name: &str, dims: Vec<i64>, values: &[f64]) -> Tensor {
    let data: Vec<u8> = values
        .iter()
        .flat_map(|&v| (v as f32).to_le_bytes())
        .collect();
    Tensor::new_raw(name, DataType::FLOAT, dims, Bytes::from(data))
}

/// Collects new weight data for one graph and writes it in one batch.
pub struct WeightWriter {
    taken: HashSet<String>,
    replace: HashMap<String, Tensor>,
    added: Vec<Tensor>,
}

impl WeightWriter {
    pub fn new(taken: HashSet<String>) -> WeightWriter {
        WeightWriter {
            taken,
            replace: HashMap::new(),
            added: Vec::new(),
        }
    }

    /// Stores `values` (dims `dims`) as the new data of the constant `old` read by one node;
    /// returns the name that node should read. With `old` absent, a new tensor named
    /// after `base` is made.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        g: &Graph,
        cx: &GraphCx,
        uses: &Uses,
        old: Option<&str>,
        base: &str,
        dims: Vec<i64>,
        values: &[f64],
    ) -> String {
        if let Some(old) = old {
            let local = g.initializer(old).is_some() && scope::is_constant_init(g, old, cx);
            let exclusive = uses.consumers(old).len() == 1 && !uses.is_output(old);
            if local && exclusive && !self.replace.contains_key(old) {
                self.replace
                    .insert(old.to_string(), f32_tensor(old, dims, values));
                return old.to_string();
            }
        }
        let name = scope::unique_name(&mut self.taken, base);
        self.added.push(f32_tensor(&name, dims, values));
        name
    }

    /// Writes the collected tensors; returns the names now taken (for the next graph).
    pub fn apply(self, g: &mut Graph, cx: &GraphCx) -> HashSet<String> {
        for t in g.initializers.iter_mut() {
            if let Some(new) = self.replace.get(t.name()) {
                *t = new.clone();
            }
        }
        for t in self.added {
            scope::add_initializer(g, t, cx);
        }
        self.taken
    }
}

/// Per-output-channel view of a conv-like weight: for each flat element of the weight, the
/// output channel it contributes to.
pub enum ChannelLayout {
    /// `Conv`: `[M, C/group, k…]`, channel = first index.
    Conv,
    /// `ConvTranspose`: `[C, M/group, k…]`, channel = group · (M/group) + second index.
    ConvTranspose { group: usize },
    /// `Gemm` weight `[K, N]` (channel = column), or `[N, K]` with `transB` (channel = row).
    Gemm { trans_b: bool },
}

impl ChannelLayout {
    /// Output channel count for a weight of these dims.
    pub fn channels(&self, dims: &[i64]) -> Option<usize> {
        let d = |i: usize| dims.get(i).and_then(|&v| usize::try_from(v).ok());
        match self {
            ChannelLayout::Conv => d(0),
            ChannelLayout::ConvTranspose { group } => d(1).map(|m| m * group),
            ChannelLayout::Gemm { trans_b } => {
                if dims.len() != 2 {
                    return None;
                }
                if *trans_b { d(0) } else { d(1) }
            }
        }
    }

    /// The output channel of each element, for a weight of these dims.
    pub fn channel_of_each(&self, dims: &[i64]) -> Option<Vec<usize>> {
        let d: Vec<usize> = dims
            .iter()
            .map(|&v| usize::try_from(v).ok())
            .collect::<Option<_>>()?;
        let n: usize = d.iter().product();
        let inner: usize = d.iter().skip(2).product();
        Some(match self {
            ChannelLayout::Conv => {
                let per = n.checked_div(*d.first()?)?;
                (0..n).map(|i| i / per.max(1)).collect()
            }
            ChannelLayout::ConvTranspose { group } => {
                let (cin, mg) = (*d.first()?, *d.get(1)?);
                let cin_per_group = cin.checked_div(*group)?;
                (0..n)
                    .map(|i| {
                        let (ci, j) = (i / (mg * inner), (i / inner.max(1)) % mg.max(1));
                        (ci / cin_per_group.max(1)) * mg + j
                    })
                    .collect()
            }
            ChannelLayout::Gemm { trans_b } => {
                let (r, c) = (*d.first()?, *d.get(1)?);
                (0..n)
                    .map(|i| if *trans_b { i / c.max(1) } else { i % c.max(1) })
                    .filter(|_| r > 0)
                    .collect()
            }
        })
    }
}
