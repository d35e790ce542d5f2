//! What `quantize` did, as data: one entry per candidate node, bytes and MAC coverage.
//!
//! Invariants: every node of a candidate op type appears exactly once in `nodes` (quantized
//! or not, with the reason), in graph order, subgraph nodes after a `path/` prefix; byte
//! counts are tensor data bytes (initializers and attribute tensors of every graph);
//! `coverage` counts only main-graph MACs whose dims shape inference could establish.
use serde::Serialize;

/// What happened to one candidate node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Rewritten to the mode's quantized form.
    Quantized,
    /// Left as it was; `reason` says why.
    Skipped,
    /// fp16: runs in float16.
    Float16,
    /// fp16: kept in float32; `reason` says why.
    KeptFloat32,
}

/// One candidate node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeEntry {
    /// Node label with its subgraph path (`name (Op)` or `#i Op`).
    pub node: String,
    pub op: String,
    /// The node's first output (the layer's value, for per-layer error measurements).
    pub output: Option<String>,
    pub status: Status,
    /// The form it was rewritten to (e.g. `DequantizeLinear int8 per-channel (axis 0)`).
    pub form: Option<String>,
    pub reason: Option<String>,
    /// The weight initializer, when the node has one.
    pub weight: Option<String>,
    /// SQNR of the weight after quantize→dequantize, dB; `None` when not quantized or exact.
    pub weight_sqnr_db: Option<f64>,
    pub weight_bytes_before: Option<u64>,
    pub weight_bytes_after: Option<u64>,
    /// MACs of the node (main graph, known dims only).
    pub macs: Option<u64>,
    /// The quantized form computes in integer arithmetic (MatMulInteger, QDQ groups
    /// runtimes fuse into integer kernels); false for weight-only forms.
    pub integer: bool,
}

impl NodeEntry {
    pub fn new(node: String, op: &str) -> NodeEntry {
        NodeEntry {
            node,
            op: op.to_string(),
            output: None,
            status: Status::Skipped,
            form: None,
            reason: None,
            weight: None,
            weight_sqnr_db: None,
            weight_bytes_before: None,
            weight_bytes_after: None,
            macs: None,
            integer: false,
        }
    }

    pub fn skipped(mut self, reason: impl Into<String>) -> NodeEntry {
        self.status = Status::Skipped;
        self.reason = Some(reason.into());
        self
    }
}

/// Tensor data bytes before and after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bytes {
    /// All tensor data (initializers and attribute tensors, every graph).
    pub tensors_before: u64,
    pub tensors_after: u64,
    /// Of those, the float weights of quantized nodes, and what replaced them (quantized
    /// values, scales, zero points).
    pub weights_before: u64,
    pub weights_after: u64,
}

/// Share of the main graph's MACs that the quantization reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// MACs of Conv/ConvTranspose/Gemm/MatMul nodes with known dims.
    pub macs_total: u64,
    /// Of those, in nodes whose weights are quantized.
    pub macs_quantized_weights: u64,
    /// Of those, in nodes that run integer arithmetic (dynamic/static; for weight-only,
    /// MatMulNBits and DequantizeLinear forms compute in float).
    pub macs_integer: u64,
    /// Candidate nodes whose MACs are unknown (symbolic dims, subgraphs).
    pub nodes_unknown_macs: usize,
    /// `macs_quantized_weights / macs_total` (0 when there are no MACs).
    pub weight_coverage: f64,
    /// `macs_integer / macs_total`.
    pub integer_coverage: f64,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QuantizeReport {
    /// What was asked for, in words.
    pub scheme: String,
    /// ai.onnx opset before and after (equal when unchanged).
    pub opset_before: Option<i64>,
    pub opset_after: Option<i64>,
    /// Preparation steps, opset raises, fallbacks, values kept in float32 and why.
    pub notes: Vec<String>,
    pub nodes: Vec<NodeEntry>,
    pub bytes: Bytes,
    pub coverage: Coverage,
    /// `--bias-correction`: one entry per layer the mode quantizes (main graph).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bias_correction: Vec<BiasCorrection>,
}

/// What `--bias-correction` did to one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BiasCorrection {
    pub node: String,
    pub corrected: bool,
    /// The new bias initializer.
    pub bias: Option<String>,
    /// Largest and mean |δ| subtracted from the bias.
    pub max_abs_shift: Option<f64>,
    pub mean_abs_shift: Option<f64>,
    pub reason: Option<String>,
}

impl BiasCorrection {
    pub fn done(node: String, bias: &str, shift: &[f64]) -> BiasCorrection {
        let abs = shift.iter().map(|d| d.abs());
        BiasCorrection {
            node,
            corrected: true,
            bias: Some(bias.to_string()),
            max_abs_shift: Some(abs.clone().fold(0.0, f64::max)),
            mean_abs_shift: Some(abs.sum::<f64>() / shift.len().max(1) as f64),
            reason: None,
        }
    }

    pub fn skipped(node: String, reason: impl Into<String>) -> BiasCorrection {
        BiasCorrection {
            node,
            corrected: false,
            bias: None,
            max_abs_shift: None,
            mean_abs_shift: None,
            reason: Some(reason.into()),
        }
    }
}

impl QuantizeReport {
    pub fn quantized(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.status, Status::Quantized | Status::Float16))
            .count()
    }

    /// Fills `coverage` from the node entries.
    pub fn finish_coverage(&mut self) {
        let mut c = Coverage::default();
        for n in &self.nodes {
            let Some(m) = n.macs else {
                if is_mac_op(&n.op) {
                    c.nodes_unknown_macs += 1;
                }
                continue;
            };
            c.macs_total += m;
            if matches!(n.status, Status::Quantized | Status::Float16) {
                c.macs_quantized_weights += m;
                if n.integer {
                    c.macs_integer += m;
                }
            }
        }
        let share = |x: u64| {
            if c.macs_total == 0 {
                0.0
            } else {
                x as f64 / c.macs_total as f64
            }
        };
        c.weight_coverage = share(c.macs_quantized_weights);
        c.integer_coverage = share(c.macs_integer);
        self.coverage = c;
    }
}

fn is_mac_op(op: &str) -> bool {
    whittle_ir::inspect::MAC_OPS.contains(&op)
}
