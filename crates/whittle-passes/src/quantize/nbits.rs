//! `--format ort-nbits`: a MatMul with a 2-D constant weight `W [K, N]` becomes
//! com.microsoft `MatMulNBits` (onnxruntime's weight-only kernel).
//!
//! Layout (onnxruntime's contrib-op schema): attributes `K`, `N`, `bits` (4 or 8),
//! `block_size` (a power of two ≥ 16); input `B` uint8 `[N, ceil(K/block), block·bits/8]`
//! holding column n's codes along K, packed low bits first, a partial last block padded
//! with the zero point; `scales` `[N, ceil(K/block)]` in A's float type; optional
//! `zero_points` uint8 `[N, ceil(ceil(K/block)·bits/8)]` packed the same way — absent for
//! symmetric weights, whose zero point is the default `2^(bits-1)`. Dequantization is
//! `(code - zero_point) · scale`, so a signed symmetric weight is written as its unsigned
//! twin (`code = q + 2^(bits-1)`), which dequantizes to the same numbers.
//!
//! With `--gptq` the codes are GPTQ-rounded against the layer's input moments, in the
//! weight's own `[K, N]` orientation with blocks along K: the same groups, so the same
//! scales and zero points as rounding to nearest, only other codes.
use super::candidates::Candidate;
use super::gptq::{self, LayerHessian};
use super::options::{Granularity, QuantizeOptions};
use super::report::{NodeEntry, QuantizeReport, Status};
use super::scheme::{self, QuantType};
use super::weight_mode::{Hessians, drop_unused, weight_values};
use super::weights::{self, Layout, Quantized};
use crate::PassError;
use crate::cleanup::attrs::int_attribute;
use crate::cleanup::scope::{self, GraphCx};
use bytes::Bytes;
use std::collections::HashSet;
use whittle_ir::proto::NodeProto;
use whittle_ir::{DataType, Graph, Node, Tensor};

/// The block size `MatMulNBits` uses when none was asked for.
pub const DEFAULT_BLOCK: usize = 32;

fn block_size(opts: &QuantizeOptions) -> Result<usize, PassError> {
    let b = match opts.granularity {
        Granularity::Block(b) => b,
        _ => DEFAULT_BLOCK,
    };
    if b < 16 || !b.is_power_of_two() {
        return Err(PassError::Failed {
            pass: "quantize".into(),
            message: format!("MatMulNBits needs a block size that is a power of two ≥ 16, not {b}"),
        });
    }
    Ok(b)
}

/// Rewrites one graph's MatMul candidates; returns whether any MatMulNBits was written.
/// `hessians` (main graph, `--gptq`): the input moments per weight.
pub fn rewrite(
    g: &mut Graph,
    cx: &GraphCx,
    found: Vec<Result<Candidate, NodeEntry>>,
    opts: &QuantizeOptions,
    hessians: Option<&Hessians>,
    taken: &mut HashSet<String>,
    report: &mut QuantizeReport,
) -> Result<bool, PassError> {
    let block = block_size(opts)?;
    let bits = opts.weight_type.bits() as usize;
    let code_type = opts.weight_type.unsigned();
    let mut replacements = Vec::new();
    let mut replaced = HashSet::new();
    for item in found {
        let mut c = match item {
            Ok(c) => c,
            Err(e) => {
                report.nodes.push(e);
                continue;
            }
        };
        let why_not = if c.entry.op != "MatMul" {
            Some("--format ort-nbits rewrites MatMul only".to_string())
        } else if c.dims.len() != 2 {
            Some(format!(
                "MatMulNBits needs a 2-D weight, this one has rank {}",
                c.dims.len()
            ))
        } else if !cx.can_add_initializers() {
            Some("a pre-IR-4 subgraph cannot take new initializers".to_string())
        } else {
            None
        };
        if let Some(why) = why_not {
            report.nodes.push(c.entry.skipped(why));
            continue;
        }
        let Some(t) = g.initializer(&c.weight) else {
            continue;
        };
        let values = match weight_values(t) {
            Ok(v) => v,
            Err(why) => {
                report.nodes.push(c.entry.skipped(why));
                continue;
            }
        };
        let (k, n) = (c.dims[0], c.dims[1]);
        let round = weights::rounding_for(c.weight_dtype);
        let hessian = hessians.map(|h| h.get(&c.weight));
        let (q, gptq) = quantize_columns(&values, k, n, block, code_type, opts, round, hessian);
        let dequantized: Vec<f32> = (0..k * n)
            .map(|i| q.dequantized[(i % n) * k + i / n])
            .collect();
        let base = c.weight.clone();
        let mut tensors = vec![
            Tensor::new_raw(
                &scope::unique_name(taken, &format!("{base}_Q{bits}")),
                DataType::UINT8,
                vec![
                    n as i64,
                    k.div_ceil(block) as i64,
                    (block * bits / 8) as i64,
                ],
                pack_blocks(&q, n, k, block, code_type),
            ),
            weights::scale_tensor(
                &scope::unique_name(taken, &format!("{base}_scales")),
                &q,
                c.weight_dtype,
            ),
        ];
        if !opts.symmetric {
            tensors.push(zero_points(
                &scope::unique_name(taken, &format!("{base}_zero_points")),
                &q,
                n,
                code_type,
            ));
        }
        let Some(node) = g.node(c.ix) else { continue };
        let mut inputs = vec![node.inputs()[0].clone()];
        inputs.extend(tensors.iter().map(|t| t.name().to_string()));
        let new = Node {
            proto: NodeProto {
                name: node.proto.name.clone(),
                op_type: Some("MatMulNBits".into()),
                domain: Some("com.microsoft".into()),
                input: inputs,
                output: node.outputs().to_vec(),
                doc_string: node.proto.doc_string.clone(),
                ..Default::default()
            },
            attributes: vec![
                int_attribute("K", k as i64),
                int_attribute("N", n as i64),
                int_attribute("bits", bits as i64),
                int_attribute("block_size", block as i64),
            ],
        };
        c.entry.status = Status::Quantized;
        c.entry.form = Some(format!(
            "MatMulNBits {bits}-bit block {block} {}{}",
            if opts.symmetric {
                "symmetric"
            } else {
                "asymmetric"
            },
            match gptq {
                Ok(true) => ", GPTQ rounding".to_string(),
                Ok(false) => String::new(),
                Err(why) => format!(", rounded to nearest (GPTQ: {why})"),
            }
        ));
        c.entry.weight_sqnr_db = scheme::sqnr_db(&values, &dequantized);
        c.entry.weight_bytes_after = Some(tensors.iter().map(Tensor::data_byte_len).sum());
        report.nodes.push(c.entry);
        replaced.insert(c.weight.clone());
        replacements.push((c.ix, new, tensors));
    }
    let wrote = !replacements.is_empty();
    for (ix, new, tensors) in replacements {
        if let Some(slot) = g.node_mut(ix) {
            *slot = new;
        }
        for t in tensors {
            scope::add_initializer(g, t, cx);
        }
    }
    g.rebuild_edges();
    drop_unused(g, cx, &replaced);
    Ok(wrote)
}

/// Column n's codes along K — the `[N, K]` order `B` stores — rounded to nearest, or with
/// GPTQ when `hessian` is `Some` (`Some(None)`: `--gptq` without moments for this layer).
#[allow(clippy::too_many_arguments)]
fn quantize_columns(
    values: &[f32],
    k: usize,
    n: usize,
    block: usize,
    t: QuantType,
    opts: &QuantizeOptions,
    round: fn(f32) -> f32,
    hessian: Option<Option<&LayerHessian>>,
) -> (Quantized, Result<bool, String>) {
    let transposed: Vec<f32> = (0..n * k).map(|i| values[(i % k) * n + i / k]).collect();
    let layout = Layout::Blocked { axis: 1, block };
    let mut q = weights::quantize(&transposed, &[n, k], layout, t, opts.symmetric, round);
    let h = match hessian {
        None => return (q, Ok(false)),
        Some(None) => return (q, Err(gptq::NOT_COVERED.to_string())),
        Some(Some(h)) => h,
    };
    let along_k = Layout::Blocked { axis: 0, block };
    let mut kn = weights::quantize(values, &[k, n], along_k, t, opts.symmetric, round);
    if let Err(why) = gptq::round(values, &[k, n], along_k, t, h, &mut kn) {
        return (q, Err(why));
    }
    for (i, (&v, &d)) in kn.values.iter().zip(&kn.dequantized).enumerate() {
        let (row, col) = (i / n, i % n);
        q.values[col * k + row] = v;
        q.dequantized[col * k + row] = round(d);
    }
    (q, Ok(true))
}

/// `B`: per column, per block, the codes packed low bits first; padding gets the zero point.
fn pack_blocks(q: &Quantized, n: usize, k: usize, block: usize, t: QuantType) -> Bytes {
    let blocks = k.div_ceil(block);
    let mut codes = Vec::with_capacity(n * blocks * block);
    for col in 0..n {
        for b in 0..blocks {
            let zp = q.params[col * blocks + b].zero_point;
            for j in 0..block {
                let kk = b * block + j;
                codes.push(if kk < k { q.values[col * k + kk] } else { zp });
            }
        }
    }
    scheme::pack(&codes, t)
}

/// Packed zero points `[N, ceil(blocks·bits/8)]`, each row padded to whole bytes.
fn zero_points(name: &str, q: &Quantized, n: usize, t: QuantType) -> Tensor {
    let blocks = q.params.len() / n.max(1);
    let mut bytes = Vec::new();
    for col in 0..n {
        let row: Vec<i32> = q.params[col * blocks..(col + 1) * blocks]
            .iter()
            .map(|p| p.zero_point)
            .collect();
        bytes.extend_from_slice(&scheme::pack(&row, t));
    }
    let per_row = (blocks * t.bits() as usize).div_ceil(8);
    Tensor::new_raw(
        name,
        DataType::UINT8,
        vec![n as i64, per_row as i64],
        Bytes::from(bytes),
    )
}
