//! The ai.onnx opset a quantized form needs, and raising the model's opset to it.
//!
//! `DequantizeLinear`/`QuantizeLinear`: opset 10 for int8/uint8 per-tensor with float32
//! scales; 13 for per-axis scales; 19 for float16 scales; 21 for int4/uint4 and blocked
//! scales. The model's opset is raised only when a form that will actually be written needs
//! it, through the opset converter (all or nothing), and the report says so.
use super::report::QuantizeReport;
use super::scheme::QuantType;
use super::weights::Layout;
use crate::PassError;
use whittle_ir::{DataType, Model};

/// The opset a `DequantizeLinear` of this kind needs, and why, in words.
pub fn dq_opset(layout: Layout, t: QuantType, float_type: DataType) -> (i64, String) {
    if t.bits() == 4 {
        return (21, format!("{} DequantizeLinear", t.name()));
    }
    if matches!(layout, Layout::Blocked { .. }) {
        return (21, "block-wise DequantizeLinear".into());
    }
    if float_type == DataType::FLOAT16 {
        return (19, "DequantizeLinear with float16 scales".into());
    }
    if matches!(layout, Layout::PerAxis { .. }) {
        return (13, "per-channel DequantizeLinear".into());
    }
    (10, "DequantizeLinear".into())
}

/// The strongest of several requirements.
#[derive(Clone, Debug, Default)]
pub struct Need {
    pub opset: i64,
    pub why: String,
}

impl Need {
    pub fn add(&mut self, (opset, why): (i64, String)) {
        if opset > self.opset {
            *self = Need { opset, why };
        }
    }
}

/// Raises the model's ai.onnx opset to `need.opset` when it is lower; notes it in the report.
pub fn ensure_opset(
    model: &mut Model,
    need: &Need,
    report: &mut QuantizeReport,
) -> Result<(), PassError> {
    let current = model.opset("").unwrap_or(0);
    if need.opset <= current {
        return Ok(());
    }
    match crate::opset::convert_opset(model, need.opset) {
        Ok(_) => {
            report.notes.push(format!(
                "raised the ai.onnx opset from {current} to {}: {} needs opset {}",
                need.opset, need.why, need.opset
            ));
            Ok(())
        }
        Err(e) => Err(PassError::Failed {
            pass: "quantize".into(),
            message: format!(
                "{} needs ai.onnx opset {}, the model has opset {current}, and converting it failed ({e}); \
                 convert it first (`whittle convert --opset {}`), or choose a form the model's opset has \
                 (--per-tensor int8 needs opset 10, per-channel 13, int4 and --block-size 21)",
                need.why, need.opset, need.opset
            ),
        }),
    }
}

/// Adds an opset import for `domain` when the model has none.
pub fn import_domain(model: &mut Model, domain: &str, version: i64) {
    if model.opset(domain).is_none() {
        model
            .proto
            .opset_import
            .push(whittle_ir::proto::OperatorSetIdProto {
                domain: Some(domain.to_string()),
                version: Some(version),
            });
    }
}
