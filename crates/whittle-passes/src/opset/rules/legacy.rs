//! Smaller rules: legacy broadcasting and PRelu slopes (7), Gemm and RNN attributes (7),
//! Scatter (11), Erf (13), RoiAlign (16), ScatterElements/ScatterND reductions (18),
//! quantization scale types (19, 21), GridSample mode names (20).
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_ints, attr_str, ints_tensor, new_node};
use whittle_ir::DataType;

/// Up (→ 7): `broadcast`/`axis` are removed; numpy broadcasting matches the old rule when
/// B's shape is a suffix of A's. With an `axis` that does not align B with A's trailing
/// dims, B gets trailing 1-dims (a reshaped copy of a constant B, else an Unsqueeze);
/// that needs the ranks of A and B.
pub(super) fn broadcast_up(e: &mut Edit, _: &Step) -> Outcome {
    let broadcast = e
        .take_attr("broadcast")
        .and_then(|a| a.proto.i)
        .unwrap_or(0);
    let axis = e.take_attr("axis").and_then(|a| a.proto.i);
    let (1, Some(axis)) = (broadcast, axis) else {
        if broadcast == 1 {
            e.note("broadcast attribute removed (numpy broadcasting)");
        }
        return Ok(());
    };
    let (Some(ra), Some(rb)) = (e.input_rank(0), e.input_rank(1)) else {
        return Err("broadcasts along axis with an unknown rank of A or B, so whittle cannot align B for numpy broadcasting".into());
    };
    let (ra, rb) = (ra as i64, rb as i64);
    let axis = if axis < 0 { axis + ra } else { axis };
    let trailing = ra - axis - rb;
    if trailing < 0 || axis < 0 {
        return Err(format!(
            "broadcast axis {axis} does not fit ranks {ra} and {rb}"
        ));
    }
    if trailing == 0 {
        e.note("broadcast/axis attributes removed (B already aligned with A's trailing axes)");
        return Ok(());
    }
    append_ones(e, 1, rb, trailing)?;
    e.note(format!(
        "B given {trailing} trailing 1-dims for numpy broadcasting (axis {axis})"
    ));
    Ok(())
}

/// Gives input `slot` (of rank `rank`) `count` trailing 1-dims: a reshaped copy of a
/// constant, else an Unsqueeze in the target opset's form.
fn append_ones(e: &mut Edit, slot: usize, rank: i64, count: i64) -> Outcome {
    if let Some(mut t) = e.const_input(slot) {
        t.proto.dims.extend(std::iter::repeat_n(1, count as usize));
        let name = e.constant("aligned", t)?;
        e.released.push(e.input(slot));
        e.set_input(slot, &name);
        return Ok(());
    }
    let axes: Vec<i64> = (rank..rank + count).collect();
    let input = e.input(slot);
    let out = e.fresh_value("aligned");
    let unsqueeze = if e.target >= 13 {
        let axes_name = e.constant("aligned_axes", ints_tensor(&axes))?;
        new_node(
            "Unsqueeze",
            &out,
            &[input, axes_name],
            std::slice::from_ref(&out),
            vec![],
        )
    } else {
        new_node(
            "Unsqueeze",
            &out,
            &[input],
            std::slice::from_ref(&out),
            vec![attr_ints("axes", axes)],
        )
    };
    e.before.push(unsqueeze);
    e.set_input(slot, &out);
    Ok(())
}

/// Up (PRelu-6 → 7): a 1-D slope of C > 1 values applied per channel (axis 1); PRelu-7
/// broadcasts numpy-style, so the slope gets trailing 1-dims to stay on axis 1.
pub(super) fn prelu_7_up(e: &mut Edit, _: &Step) -> Outcome {
    let (Some(rx), Some(slope)) = (e.input_rank(0), e.input_dims(1)) else {
        return Err("the ranks of X and slope are unknown, so whittle cannot tell whether the slope is per channel".into());
    };
    match slope[..] {
        [Some(c)] if c != 1 && rx > 2 => {
            append_ones(e, 1, 1, rx as i64 - 2)?;
            e.note(format!(
                "per-channel slope given {} trailing 1-dims",
                rx - 2
            ));
            Ok(())
        }
        [None] if rx > 2 => Err(
            "has a 1-D slope of unknown length, so whittle cannot tell whether it is per channel"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Up (Gemm-6 → 7): `broadcast` is removed; Gemm-7 always broadcasts C one way.
pub(super) fn gemm_7_up(e: &mut Edit, _: &Step) -> Outcome {
    if e.take_attr("broadcast").is_some() {
        e.note("broadcast attribute removed");
    }
    Ok(())
}

/// Up (GRU/LSTM/RNN → 7): `output_sequence` is removed; from 7 the sequence output Y is
/// produced whenever it is named, as before when it was requested.
pub(super) fn rnn_7_up(e: &mut Edit, _: &Step) -> Outcome {
    if e.take_attr("output_sequence").is_some() {
        e.note("output_sequence attribute removed");
    }
    Ok(())
}

/// Up (→ 11): Scatter is deprecated; ScatterElements-11 is the same operator.
pub(super) fn scatter_to_elements(e: &mut Edit, _: &Step) -> Outcome {
    e.node.proto.op_type = Some("ScatterElements".into());
    e.note("Scatter -> ScatterElements");
    Ok(())
}

/// Down (ScatterElements-11 → Scatter-9): renamed back; Scatter-9 takes no negative axis.
pub(super) fn elements_to_scatter(e: &mut Edit, _: &Step) -> Outcome {
    if e.node.attr_int("axis").is_some_and(|a| a < 0) {
        return Err("uses a negative axis, which Scatter-9 does not accept".into());
    }
    e.node.proto.op_type = Some("Scatter".into());
    e.note("ScatterElements -> Scatter");
    Ok(())
}

/// Up (Erf-9 → 13): integer inputs are no longer accepted.
pub(super) fn erf_13_up(e: &mut Edit, s: &Step) -> Outcome {
    match e.input_dtype(0) {
        Some(t) if ![DataType::FLOAT, DataType::DOUBLE, DataType::FLOAT16].contains(&t) => Err(
            format!("takes {t}, which {}-{} does not accept", s.op, s.since),
        ),
        _ => Ok(()),
    }
}

/// Up (RoiAlign-10 → 16): the old behaviour is "output_half_pixel", no longer the default.
/// Down: only that mode converts back.
pub(super) fn roialign_16_up(e: &mut Edit, _: &Step) -> Outcome {
    e.set_attr(attr_str(
        "coordinate_transformation_mode",
        "output_half_pixel",
    ));
    e.note("coordinate_transformation_mode=output_half_pixel (RoiAlign-10's behaviour)");
    Ok(())
}

pub(super) fn roialign_16_down(e: &mut Edit, s: &Step) -> Outcome {
    match e.take_attr("coordinate_transformation_mode") {
        Some(a) if a.proto.s.as_deref() == Some(b"output_half_pixel".as_slice()) => {
            e.check_types(s)
        }
        _ => Err(format!(
            "uses half_pixel coordinates, which {}-{} does not have",
            s.op, s.prev
        )),
    }
}

/// Down (ScatterElements/ScatterND-18 → 16): reductions "max"/"min" are new in 18.
pub(super) fn scatter_18_down(e: &mut Edit, s: &Step) -> Outcome {
    if matches!(e.attr_str("reduction").as_deref(), Some("max" | "min")) {
        return Err(format!(
            "uses reduction max/min, which {}-{} does not have",
            s.op, s.prev
        ));
    }
    e.generic_down(s)
}

/// Down across a widening of the scale type (QuantizeLinear/DequantizeLinear-19,
/// QLinearMatMul-21): known scales must be float32.
pub(super) fn float_scales_down(e: &mut Edit, s: &Step) -> Outcome {
    let slots: &[usize] = if e.op() == "QLinearMatMul" {
        &[1, 4, 6]
    } else {
        &[1]
    };
    for &slot in slots {
        if let Some(t) = e.input_dtype(slot).filter(|&t| t != DataType::FLOAT) {
            return Err(format!(
                "has a {t} scale, which {}-{} does not accept",
                s.op, s.prev
            ));
        }
    }
    let output = e.node.outputs().first().and_then(|o| e.scope.dtype(o));
    if let Some(t) = output.filter(|&t| e.op() == "DequantizeLinear" && t != DataType::FLOAT) {
        return Err(format!("produces {t}, which {}-{} does not", s.op, s.prev));
    }
    e.check_types(s)
}

/// Up (GridSample-16 → 20): modes "bilinear"/"bicubic" are called "linear"/"cubic" (the
/// new default "linear" is the old default "bilinear"). Down: renamed back; 4-D only.
pub(super) fn gridsample_20_up(e: &mut Edit, _: &Step) -> Outcome {
    rename_mode(e, &[("bilinear", "linear"), ("bicubic", "cubic")]);
    Ok(())
}

pub(super) fn gridsample_20_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.input_rank(0).is_some_and(|r| r != 4) {
        return Err(format!(
            "samples a non-4-D input, which {}-{} cannot",
            s.op, s.prev
        ));
    }
    rename_mode(e, &[("linear", "bilinear"), ("cubic", "bicubic")]);
    e.check_types(s)
}

fn rename_mode(e: &mut Edit, map: &[(&str, &str)]) {
    let Some(mode) = e.attr_str("mode") else {
        return;
    };
    if let Some((_, to)) = map.iter().find(|(from, _)| *from == mode) {
        e.set_attr(attr_str("mode", to));
        e.note(format!("mode {mode:?} -> {to:?}"));
    }
}
