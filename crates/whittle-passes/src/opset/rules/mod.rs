//! The hand-written conversion rules, one small named value per (operator, schema version).
//!
//! A rule converts a node between the schema at `since` and the one before it: `up` from
//! the older form to the newer, `down` back. Steps the generated table marks additive need
//! no rule (upgrading changes nothing; downgrading runs [`Edit::generic_down`]); every step
//! it marks changed needs one here or the node is refused. Rules here also cover changes
//! the signature does not show (a renamed mode, a deprecated op, a reinterpreted default).
//! Each rule's doc line says what it does, both ways.
mod axes;
mod decompose;
mod legacy;
mod norm;
mod resize;
mod softmax;

use super::edit::{Edit, Outcome};
use super::table::Step;

/// How one direction of a step is handled.
#[derive(Clone, Copy)]
pub(crate) enum Way {
    /// As the generated table says: nothing up, [`Edit::generic_down`] down.
    Generic,
    /// This rewrite.
    Apply(fn(&mut Edit, &Step) -> Outcome),
    /// Never converted, for this reason.
    Refuse(&'static str),
}

pub(crate) struct Rule {
    pub op: &'static str,
    pub since: i64,
    pub up: Way,
    pub down: Way,
}

use Way::{Apply, Generic, Refuse};

const fn r(op: &'static str, since: i64, up: Way, down: Way) -> Rule {
    Rule {
        op,
        since,
        up,
        down,
    }
}

/// Below opset 7 is never a target, so steps at 7 are only ever taken upwards.
const NOT_A_TARGET: Way = Refuse("opsets below 7 are not a conversion target");

/// Nothing to do upwards: the newer schema only widened types.
fn keep(_: &mut Edit, _: &Step) -> Outcome {
    Ok(())
}

/// Downwards across a widening: the node's known element types must be old ones.
fn types_only(e: &mut Edit, s: &Step) -> Outcome {
    e.check_types(s)
}

#[rustfmt::skip]
pub(crate) const RULES: &[Rule] = &[
    r("Add", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Sub", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Mul", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Div", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Pow", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("And", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Or", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Xor", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Equal", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Greater", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Less", 7, Apply(legacy::broadcast_up), NOT_A_TARGET),
    r("Gemm", 7, Apply(legacy::gemm_7_up), NOT_A_TARGET),
    r("PRelu", 7, Apply(legacy::prelu_7_up), NOT_A_TARGET),
    r("BatchNormalization", 7, Apply(norm::batchnorm_7_up), NOT_A_TARGET),
    r("Dropout", 7, Apply(norm::dropout_7_up), NOT_A_TARGET),
    r("GRU", 7, Apply(legacy::rnn_7_up), NOT_A_TARGET),
    r("LSTM", 7, Apply(legacy::rnn_7_up), NOT_A_TARGET),
    r("RNN", 7, Apply(legacy::rnn_7_up), NOT_A_TARGET),
    r("Upsample", 7, Apply(resize::upsample_7_up), NOT_A_TARGET),
    r("BatchNormalization", 9, Apply(norm::batchnorm_9_up), Apply(keep)),
    r("Upsample", 9, Apply(resize::upsample_9_up), Apply(resize::upsample_9_down)),
    r("Scan", 9, Refuse("Scan-9 replaced sequence_lens and batching with scan axes; whittle has no rule for it"), Refuse("Scan-9 cannot be expressed as Scan-8 by whittle")),
    r("Dropout", 10, Apply(norm::dropout_mask), Apply(norm::dropout_mask)),
    r("Slice", 10, Apply(axes::slice_10_up), Apply(axes::slice_10_down)),
    r("TopK", 10, Apply(axes::topk_10_up), Apply(axes::topk_10_down)),
    r("Upsample", 10, Apply(resize::upsample_to_resize), Refuse("Upsample is deprecated from opset 10")),
    r("Resize", 10, Generic, Apply(resize::resize_to_upsample)),
    r("Clip", 11, Apply(axes::clip_11_up), Apply(axes::clip_11_down)),
    r("Pad", 11, Apply(axes::pad_11_up), Apply(axes::pad_11_down)),
    r("Resize", 11, Apply(resize::resize_11_up), Apply(resize::resize_11_down)),
    r("Scatter", 11, Apply(legacy::scatter_to_elements), Refuse("Scatter is deprecated from opset 11")),
    r("ScatterElements", 11, Generic, Apply(legacy::elements_to_scatter)),
    r("Dropout", 12, Apply(norm::dropout_12_up), Apply(norm::dropout_12_down)),
    r("Pow", 12, Apply(keep), Apply(types_only)),
    r("ReduceSum", 13, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("Squeeze", 13, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("Unsqueeze", 13, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("Split", 13, Apply(axes::split_13_up), Apply(axes::split_13_down)),
    r("Softmax", 13, Apply(softmax::up), Apply(softmax::down)),
    r("LogSoftmax", 13, Apply(softmax::up), Apply(softmax::down)),
    r("Hardmax", 13, Apply(softmax::up), Apply(softmax::down)),
    r("Resize", 13, Apply(resize::resize_13_up), Apply(resize::resize_13_down)),
    r("Erf", 13, Apply(legacy::erf_13_up), Apply(types_only)),
    r("Identity", 14, Apply(keep), Apply(types_only)),
    r("Reshape", 14, Generic, Apply(axes::reshape_14_down)),
    r("BatchNormalization", 14, Apply(norm::batchnorm_14_up), Apply(norm::batchnorm_14_down)),
    r("BatchNormalization", 15, Apply(keep), Apply(norm::batchnorm_15_down)),
    r("Shape", 15, Generic, Apply(decompose::shape_15_down)),
    r("RoiAlign", 16, Apply(legacy::roialign_16_up), Apply(legacy::roialign_16_down)),
    r("LayerNormalization", 17, Generic, Apply(decompose::layer_norm_down)),
    r("ReduceL1", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceL2", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceLogSum", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceLogSumExp", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceMax", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceMean", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceMin", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceProd", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("ReduceSumSquare", 18, Apply(axes::axes_up), Apply(axes::axes_down)),
    r("Split", 18, Apply(axes::split_18_up), Apply(axes::split_18_down)),
    r("ScatterElements", 18, Generic, Apply(legacy::scatter_18_down)),
    r("ScatterND", 18, Generic, Apply(legacy::scatter_18_down)),
    r("Pad", 19, Generic, Apply(axes::pad_19_down)),
    r("Resize", 19, Generic, Apply(resize::resize_19_down)),
    r("DequantizeLinear", 19, Apply(keep), Apply(legacy::float_scales_down)),
    r("QuantizeLinear", 19, Apply(keep), Apply(legacy::float_scales_down)),
    r("GridSample", 20, Apply(legacy::gridsample_20_up), Apply(legacy::gridsample_20_down)),
    r("DFT", 20, Refuse("DFT-20 moved axis to an input with a new default; whittle has no rule for it"), Refuse("DFT-20 cannot be expressed as DFT-17 by whittle")),
    r("GroupNormalization", 21, Refuse("GroupNormalization-21 takes per-channel scale and bias where 18 took per-group ones; whittle has no rule for it"), Refuse("GroupNormalization-21 takes per-channel scale and bias; whittle cannot express it as 18")),
    r("QLinearMatMul", 21, Apply(keep), Apply(legacy::float_scales_down)),
];

/// The rule for `op` at `since`, if any.
pub(crate) fn rule(op: &str, since: i64) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.op == op && r.since == since)
}
