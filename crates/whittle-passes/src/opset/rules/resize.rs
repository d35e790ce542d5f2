//! Upsample and Resize.
//!
//! Upsample (1, 7, 9; deprecated at 10) and Resize-10 compute source coordinates the
//! "asymmetric" way (`x_src = x_dst / scale`), and nearest picks `floor(x_src)` when
//! upsampling (onnxruntime's Resize-10 kernel takes `ceil` when downsampling; Upsample
//! only upsamples). Resize-11 spells this out with `coordinate_transformation_mode =
//! "asymmetric"` and `nearest_mode = "floor"` (or `"ceil"`); it also added the `roi` input
//! (given as an empty tensor here: it is read only by "tf_crop_and_resize").
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_floats, attr_str, floats_tensor, tensor_floats};

/// Up (Upsample-1 → 7): `height_scale`/`width_scale` become `scales = [1, 1, h, w]` (Upsample-1
/// is 4-D only); mode "bilinear" is called "linear".
pub(super) fn upsample_7_up(e: &mut Edit, _: &Step) -> Outcome {
    let h = e
        .take_attr("height_scale")
        .and_then(|a| a.proto.f)
        .ok_or("has no height_scale")?;
    let w = e
        .take_attr("width_scale")
        .and_then(|a| a.proto.f)
        .ok_or("has no width_scale")?;
    e.set_attr(attr_floats("scales", vec![1.0, 1.0, h, w]));
    if e.attr_str("mode").as_deref() == Some("bilinear") {
        e.set_attr(attr_str("mode", "linear"));
    }
    e.note(format!(
        "height_scale/width_scale -> scales [1, 1, {h}, {w}]"
    ));
    Ok(())
}

/// Up (Upsample-7 → 9): the `scales` attribute becomes input 1. Down: a constant `scales`
/// input becomes the attribute.
pub(super) fn upsample_9_up(e: &mut Edit, _: &Step) -> Outcome {
    let scales = e
        .take_attr("scales")
        .map(|a| a.proto.floats.clone())
        .ok_or("has no scales attribute")?;
    let name = e.constant("scales", floats_tensor(&scales))?;
    e.set_input(1, &name);
    e.note(format!("scales {scales:?} attribute -> input {name:?}"));
    Ok(())
}

pub(super) fn upsample_9_down(e: &mut Edit, s: &Step) -> Outcome {
    let scales = const_scales(e, 1)?.ok_or_else(|| {
        format!(
            "{}-{} needs scales as an attribute, but input {:?} is not a constant",
            s.op,
            s.prev,
            e.input(1)
        )
    })?;
    e.drop_input(1);
    e.note(format!("scales input -> attribute {scales:?}"));
    e.set_attr(attr_floats("scales", scales));
    Ok(())
}

/// The constant scales at input `slot`, `None` when they are computed at run time.
fn const_scales(e: &Edit, slot: usize) -> Result<Option<Vec<f32>>, String> {
    e.const_input(slot).map(|t| tensor_floats(&t)).transpose()
}

/// Up (Upsample-9 → Resize-10): the same inputs, attributes and meaning under the new name.
pub(super) fn upsample_to_resize(e: &mut Edit, _: &Step) -> Outcome {
    e.node.proto.op_type = Some("Resize".into());
    e.note("Upsample -> Resize");
    Ok(())
}

/// Down (Resize-10 → Upsample-9): renamed back; Upsample only upsamples.
pub(super) fn resize_to_upsample(e: &mut Edit, _: &Step) -> Outcome {
    if const_scales(e, 1)?.is_some_and(|s| s.iter().any(|&x| x < 1.0)) {
        return Err("downsamples (a scale below 1), which Upsample cannot".into());
    }
    e.node.proto.op_type = Some("Upsample".into());
    e.note("Resize -> Upsample");
    Ok(())
}

/// The nearest mode that matches Resize-10/Upsample for these scales: `floor` when every
/// scale other than 1 upsamples, `ceil` when every one downsamples.
fn legacy_nearest_mode(scales: Option<&[f32]>) -> Result<(&'static str, bool), String> {
    let Some(scales) = scales else {
        return Ok(("floor", false));
    };
    let up = scales.iter().any(|&s| s > 1.0);
    let down = scales.iter().any(|&s| s < 1.0);
    match (up, down) {
        (true, true) => Err("upsamples some axes and downsamples others in nearest mode, which no single nearest_mode reproduces".into()),
        (false, true) => Ok(("ceil", true)),
        _ => Ok(("floor", true)),
    }
}

/// Up (Resize-10 → 11): inputs `[X, scales]` become `[X, roi = [], scales]`; the legacy
/// coordinate and rounding rules are spelled out (see the module doc). Down: only that
/// same configuration converts back.
pub(super) fn resize_11_up(e: &mut Edit, _: &Step) -> Outcome {
    let scales = e.input(1);
    let roi = e.constant("roi", floats_tensor(&[]))?;
    e.set_input(1, &roi);
    e.set_input(2, &scales);
    e.set_attr(attr_str("coordinate_transformation_mode", "asymmetric"));
    let mut note = "roi input added; coordinate_transformation_mode=asymmetric".to_string();
    if e.attr_str("mode").is_none_or(|m| m == "nearest") {
        let known = const_scales(e, 2)?;
        let (mode, sure) = legacy_nearest_mode(known.as_deref())?;
        e.set_attr(attr_str("nearest_mode", mode));
        note.push_str(&format!(", nearest_mode={mode}"));
        if !sure {
            note.push_str(" (scales computed at run time: assumed to upsample)");
        }
    }
    e.note(note);
    Ok(())
}

pub(super) fn resize_11_down(e: &mut Edit, s: &Step) -> Outcome {
    let refuse = |why: &str| Err(format!("{why}, which {}-{} cannot express", s.op, s.prev));
    let mode = e.attr_str("mode").unwrap_or_else(|| "nearest".into());
    if mode == "cubic" {
        return refuse("uses mode \"cubic\"");
    }
    if e.has_input(3) || !e.has_input(2) {
        return refuse("gives output sizes instead of scales");
    }
    if e.attr_str("coordinate_transformation_mode").as_deref() != Some("asymmetric") {
        return refuse("uses a coordinate_transformation_mode other than \"asymmetric\"");
    }
    if e.node.attr_int("exclude_outside").is_some_and(|v| v != 0) {
        return refuse("sets exclude_outside");
    }
    if mode == "nearest" {
        let known = const_scales(e, 2)?;
        let (wanted, _) = legacy_nearest_mode(known.as_deref())?;
        let given = e
            .attr_str("nearest_mode")
            .unwrap_or_else(|| "round_prefer_floor".into());
        if given != wanted {
            return refuse(&format!(
                "rounds with nearest_mode {given:?} where the older op rounds with {wanted:?}"
            ));
        }
    }
    for a in [
        "coordinate_transformation_mode",
        "nearest_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value",
    ] {
        e.take_attr(a);
    }
    let scales = e.input(2);
    e.drop_input(1);
    e.node.proto.input.truncate(1);
    e.set_input(1, &scales);
    e.note(
        "roi input and Resize-11 attributes removed (asymmetric coordinates are Resize-10's own)",
    );
    Ok(())
}

/// Up (11 → 13): "tf_half_pixel_for_nn" was removed. Down: absent `roi`/`scales` (optional
/// from 13) are given as empty tensors.
pub(super) fn resize_13_up(e: &mut Edit, s: &Step) -> Outcome {
    if e.attr_str("coordinate_transformation_mode").as_deref() == Some("tf_half_pixel_for_nn") {
        return Err(format!(
            "uses coordinate_transformation_mode \"tf_half_pixel_for_nn\", which {}-{} removed",
            s.op, s.since
        ));
    }
    Ok(())
}

pub(super) fn resize_13_down(e: &mut Edit, s: &Step) -> Outcome {
    for (slot, hint) in [(1, "roi"), (2, "scales")] {
        if !e.has_input(slot) {
            let name = e.constant(hint, floats_tensor(&[]))?;
            e.set_input(slot, &name);
            e.note(format!("empty {hint} input {name:?} added"));
        }
    }
    e.generic_down(s)
}

/// Down (19 → 18): "half_pixel_symmetric" is new in Resize-19.
pub(super) fn resize_19_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.attr_str("coordinate_transformation_mode").as_deref() == Some("half_pixel_symmetric") {
        return Err(format!(
            "uses coordinate_transformation_mode \"half_pixel_symmetric\", which {}-{} does not have",
            s.op, s.prev
        ));
    }
    e.generic_down(s)
}
