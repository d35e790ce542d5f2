//! Options of `whittle quantize`, shared by the CLI and library callers.
use super::scheme::QuantType;

/// What gets quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Weights stored as integers with `DequantizeLinear` in front of their consumer.
    Weight,
    /// Activations quantized at run time (`DynamicQuantizeLinear`) and integer kernels.
    Dynamic,
    /// Activations and weights in QDQ form, activation ranges from calibration data.
    Static,
    /// float16 weights and compute.
    Fp16,
}

/// How many scales a weight gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    PerTensor,
    /// One scale per output channel.
    PerChannel,
    /// One scale per block of this many elements along the reduction axis (opset 21).
    Block(usize),
}

/// How quantized weights are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Standard ONNX `QuantizeLinear`/`DequantizeLinear`.
    Qdq,
    /// com.microsoft `MatMulNBits` for MatMul weights (onnxruntime only).
    OrtNbits,
    /// Static mode: `QLinearConv` / `QLinearMatMul` where onnxruntime has CPU kernels,
    /// QDQ elsewhere.
    #[serde(rename = "qoperator")]
    QOperator,
}

/// How an activation range is chosen from its calibration statistics.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum CalibMethod {
    /// Observed min and max.
    MinMax,
    /// Cut the tails: keep `percentile`% of the values (split between both tails).
    Percentile { percentile: f64 },
    /// Minimise the KL divergence between the float and the quantized distribution.
    Entropy,
    /// Minimise the expected squared quantization error over the histogram.
    Mse,
}

/// Everything the quantizer can be told.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuantizeOptions {
    pub mode: Mode,
    /// Type of quantized weights.
    pub weight_type: QuantType,
    /// Type of quantized activations (dynamic: always uint8, what DynamicQuantizeLinear makes).
    pub activation_type: QuantType,
    pub granularity: Granularity,
    /// Symmetric weights (zero point 0, or the middle of an unsigned type).
    pub symmetric: bool,
    /// Symmetric activations (static mode).
    pub symmetric_activations: bool,
    pub format: Format,
    /// Op types never quantized.
    pub exclude_ops: Vec<String>,
    /// Node names never quantized (kept in float32 by `fp16`).
    pub exclude_nodes: Vec<String>,
    /// Weights with fewer elements are left alone.
    pub min_elements: u64,
    /// Dynamic mode: also rewrite Conv as ConvInteger (slow in onnxruntime).
    pub conv_integer: bool,
    pub calib_method: CalibMethod,
    /// fp16: keep float32 graph inputs and outputs (Casts inside).
    pub keep_io_types: bool,
    /// weight/static: shift each quantized layer's bias by the mean error its weight
    /// quantization introduces on the calibration data (needs `CalibrationData::means`).
    pub bias_correction: bool,
    /// weight mode: round weights with GPTQ against the calibration inputs' moments (needs
    /// `CalibrationData::hessians`; layers without them are rounded to nearest).
    pub gptq: bool,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            mode: Mode::Weight,
            weight_type: QuantType::Int8,
            activation_type: QuantType::Uint8,
            granularity: Granularity::PerChannel,
            symmetric: true,
            symmetric_activations: false,
            format: Format::Qdq,
            exclude_ops: Vec::new(),
            exclude_nodes: Vec::new(),
            min_elements: 0,
            conv_integer: false,
            calib_method: CalibMethod::MinMax,
            keep_io_types: false,
            bias_correction: false,
            gptq: false,
        }
    }
}

impl QuantizeOptions {
    /// One line saying what the options ask for, for reports.
    pub fn describe(&self) -> String {
        let gran = match self.granularity {
            Granularity::PerTensor => "per-tensor".to_string(),
            Granularity::PerChannel => "per-channel".to_string(),
            Granularity::Block(b) => format!("block {b}"),
        };
        let sym = if self.symmetric {
            "symmetric"
        } else {
            "asymmetric"
        };
        match self.mode {
            Mode::Fp16 => "fp16".to_string(),
            Mode::Weight => format!(
                "weight-only {} {gran} {sym}{}",
                self.weight_type.name(),
                if self.format == Format::OrtNbits {
                    " (MatMulNBits)"
                } else {
                    ""
                }
            ),
            Mode::Dynamic => format!(
                "dynamic: uint8 activations, {} {gran} {sym} weights",
                self.weight_type.name()
            ),
            Mode::Static => format!(
                "static {}: {} activations, {} {gran} {sym} weights",
                if self.format == Format::QOperator {
                    "QOperator"
                } else {
                    "QDQ"
                },
                self.activation_type.name(),
                self.weight_type.name()
            ),
        }
    }
}
