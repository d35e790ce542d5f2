//! Attributes that became inputs: Squeeze/Unsqueeze/ReduceSum `axes` (13), the other
//! Reduce ops' `axes` (18), Split `split` (13) and `num_outputs` (18), Slice (10), TopK `k`
//! (10), Clip `min`/`max` (11), Pad `pads`/`value` (11).
//!
//! Upwards the attribute becomes a new constant input; downwards the input must be a
//! constant (an initializer or a `Constant` output) or the node is refused.
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{
    attr_float, attr_int, attr_ints, ints_tensor, scalar, tensor_floats, tensor_ints,
};

/// The integers of constant input `slot`, or why not.
fn const_ints(e: &Edit, slot: usize, what: &str, s: &Step) -> Result<Vec<i64>, String> {
    let t = e.const_input(slot).ok_or_else(|| {
        format!(
            "{}-{} needs {what} as an attribute, but input {:?} is not a constant",
            s.op,
            s.prev,
            e.input(slot)
        )
    })?;
    tensor_ints(&t)
}

/// Up: the `axes` attribute becomes input 1 (absent stays absent). Down: a constant
/// `axes` input becomes the attribute; `noop_with_empty_axes` (Reduce ops) is dropped when
/// it does not change the result.
pub(super) fn axes_up(e: &mut Edit, _: &Step) -> Outcome {
    if let Some(a) = e.take_attr("axes") {
        let axes = a.proto.ints.clone();
        let name = e.constant("axes", ints_tensor(&axes))?;
        e.set_input(1, &name);
        e.note(format!("axes {axes:?} attribute -> input {name:?}"));
    }
    Ok(())
}

pub(super) fn axes_down(e: &mut Edit, s: &Step) -> Outcome {
    let noop = e
        .take_attr("noop_with_empty_axes")
        .and_then(|a| a.proto.i)
        .unwrap_or(0);
    let axes = if e.has_input(1) {
        const_ints(e, 1, "axes", s)?
    } else {
        Vec::new()
    };
    if axes.is_empty() && noop == 1 {
        return Err(format!(
            "noop_with_empty_axes=1 with no axes makes the node an identity, which {}-{} cannot express",
            s.op, s.prev
        ));
    }
    e.drop_input(1);
    if !axes.is_empty() {
        e.note(format!("axes input -> attribute {axes:?}"));
        e.set_attr(attr_ints("axes", axes));
    } else {
        e.note("empty axes input removed (reduces over all axes)");
    }
    e.check_types(s)
}

/// Up: the `split` attribute becomes input 1. Down: a constant `split` input becomes the
/// attribute.
pub(super) fn split_13_up(e: &mut Edit, _: &Step) -> Outcome {
    if let Some(a) = e.take_attr("split") {
        let split = a.proto.ints.clone();
        let name = e.constant("split", ints_tensor(&split))?;
        e.set_input(1, &name);
        e.note(format!("split {split:?} attribute -> input {name:?}"));
    }
    Ok(())
}

pub(super) fn split_13_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.has_input(1) {
        let split = const_ints(e, 1, "split", s)?;
        e.drop_input(1);
        e.note(format!("split input -> attribute {split:?}"));
        e.set_attr(attr_ints("split", split));
    }
    e.check_types(s)
}

/// Up: an even split (no `split` input) states `num_outputs`, which Split-18 requires.
/// Down: `num_outputs` is dropped; Split-13 then splits evenly into as many parts as the
/// node has outputs (Split-18 allowed a shorter last part: such a model now fails at run
/// time instead of giving other numbers).
pub(super) fn split_18_up(e: &mut Edit, _: &Step) -> Outcome {
    if !e.has_input(1) {
        let n = e.node.outputs().len() as i64;
        e.set_attr(attr_int("num_outputs", n));
        e.note(format!("num_outputs={n} added (even split)"));
    }
    Ok(())
}

pub(super) fn split_18_down(e: &mut Edit, s: &Step) -> Outcome {
    if let Some(n) = e.take_attr("num_outputs").and_then(|a| a.proto.i) {
        if n != e.node.outputs().len() as i64 {
            return Err(format!(
                "num_outputs={n} differs from the node's {} outputs",
                e.node.outputs().len()
            ));
        }
        e.note(format!(
            "num_outputs={n} removed (Split-{} splits evenly into its outputs)",
            s.prev
        ));
    }
    Ok(())
}

/// Up: `starts`/`ends`/`axes` attributes become inputs 1–3. Down: constant inputs become
/// attributes; `steps` must be absent or all 1.
pub(super) fn slice_10_up(e: &mut Edit, _: &Step) -> Outcome {
    for (slot, name) in [(1, "starts"), (2, "ends"), (3, "axes")] {
        if let Some(a) = e.take_attr(name) {
            let v = a.proto.ints.clone();
            let input = e.constant(name, ints_tensor(&v))?;
            e.set_input(slot, &input);
        }
    }
    e.note("starts/ends/axes attributes -> inputs");
    Ok(())
}

pub(super) fn slice_10_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.has_input(4) && const_ints(e, 4, "steps", s)?.iter().any(|&x| x != 1) {
        return Err(format!(
            "uses steps other than 1, which {}-{} does not have",
            s.op, s.prev
        ));
    }
    let mut attrs = Vec::new();
    for (slot, name) in [(1, "starts"), (2, "ends"), (3, "axes")] {
        if e.has_input(slot) {
            attrs.push(attr_ints(name, const_ints(e, slot, name, s)?));
        }
    }
    for slot in (1..=4).rev() {
        e.drop_input(slot);
    }
    for a in attrs {
        e.set_attr(a);
    }
    e.note("starts/ends/axes inputs -> attributes");
    Ok(())
}

/// Up: the `k` attribute becomes the one-element input `K`. Down: a constant `K` becomes `k`.
pub(super) fn topk_10_up(e: &mut Edit, _: &Step) -> Outcome {
    let k = e
        .take_attr("k")
        .and_then(|a| a.proto.i)
        .ok_or("has no k attribute")?;
    let name = e.constant("k", ints_tensor(&[k]))?;
    e.set_input(1, &name);
    e.note(format!("k={k} attribute -> input {name:?}"));
    Ok(())
}

pub(super) fn topk_10_down(e: &mut Edit, s: &Step) -> Outcome {
    let k = const_ints(e, 1, "k", s)?;
    let [k] = k[..] else {
        return Err(format!("K holds {} values, not one", k.len()));
    };
    e.drop_input(1);
    e.set_attr(attr_int("k", k));
    e.note(format!("K input -> attribute k={k}"));
    Ok(())
}

/// Up: `min`/`max` attributes become scalar inputs of the input's element type (which
/// must be known). Down: constant scalar inputs become the attributes.
pub(super) fn clip_11_up(e: &mut Edit, s: &Step) -> Outcome {
    let min = e.take_attr("min").and_then(|a| a.proto.f);
    let max = e.take_attr("max").and_then(|a| a.proto.f);
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let dtype = e.input_dtype(0).ok_or_else(|| {
        format!(
            "the element type of {:?} is unknown, and {}-{} needs min/max inputs of that type",
            e.input(0),
            s.op,
            s.since
        )
    })?;
    for (slot, bound, hint) in [(1, min, "min"), (2, max, "max")] {
        if let Some(v) = bound {
            let name = e.constant(hint, scalar(dtype, f64::from(v))?)?;
            e.set_input(slot, &name);
            e.note(format!("{hint}={v} attribute -> input {name:?}"));
        }
    }
    Ok(())
}

pub(super) fn clip_11_down(e: &mut Edit, s: &Step) -> Outcome {
    let mut attrs = Vec::new();
    for (slot, hint) in [(1, "min"), (2, "max")] {
        if !e.has_input(slot) {
            continue;
        }
        let t = e.const_input(slot).ok_or_else(|| {
            format!(
                "{}-{} needs {hint} as an attribute, but input {:?} is not a constant",
                s.op,
                s.prev,
                e.input(slot)
            )
        })?;
        let v = tensor_floats(&t)?;
        let [v] = v[..] else {
            return Err(format!("{hint} holds {} values, not one", v.len()));
        };
        attrs.push(attr_float(hint, v));
    }
    e.drop_input(2);
    e.drop_input(1);
    for a in attrs {
        e.note(format!("{} input -> attribute", a.proto.name()));
        e.set_attr(a);
    }
    Ok(())
}

/// Up: `pads` becomes input 1 and a non-zero `value` becomes the scalar `constant_value`
/// input of the data's element type; `mode` stays. Down: constant inputs become attributes.
pub(super) fn pad_11_up(e: &mut Edit, s: &Step) -> Outcome {
    let pads = e
        .take_attr("pads")
        .map(|a| a.proto.ints.clone())
        .ok_or("has no pads attribute")?;
    let value = e.take_attr("value").and_then(|a| a.proto.f).unwrap_or(0.0);
    let name = e.constant("pads", ints_tensor(&pads))?;
    e.set_input(1, &name);
    e.note(format!("pads attribute -> input {name:?}"));
    let constant_mode = e.attr_str("mode").is_none_or(|m| m == "constant");
    if constant_mode && value != 0.0 {
        let dtype = e.input_dtype(0).ok_or_else(|| {
            format!("the element type of {:?} is unknown, and {}-{} needs the pad value as an input of that type", e.input(0), s.op, s.since)
        })?;
        let v = e.constant("value", scalar(dtype, f64::from(value))?)?;
        e.set_input(2, &v);
        e.note(format!("value={value} attribute -> input {v:?}"));
    }
    Ok(())
}

pub(super) fn pad_11_down(e: &mut Edit, s: &Step) -> Outcome {
    let pads = const_ints(e, 1, "pads", s)?;
    let value = match e.has_input(2) {
        false => None,
        true => {
            let t = e.const_input(2).ok_or_else(|| {
                format!(
                    "{}-{} needs the pad value as an attribute, but input {:?} is not a constant",
                    s.op,
                    s.prev,
                    e.input(2)
                )
            })?;
            let v = tensor_floats(&t)?;
            let [v] = v[..] else {
                return Err(format!("constant_value holds {} values, not one", v.len()));
            };
            Some(v)
        }
    };
    e.drop_input(2);
    e.drop_input(1);
    e.set_attr(attr_ints("pads", pads));
    if let Some(v) = value.filter(|&v| v != 0.0) {
        e.set_attr(attr_float("value", v));
    }
    e.note("pads/constant_value inputs -> attributes");
    Ok(())
}

/// Down: the `wrap` mode is new in Pad-19.
pub(super) fn pad_19_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.attr_str("mode").as_deref() == Some("wrap") {
        return Err(format!(
            "uses mode \"wrap\", which {}-{} does not have",
            s.op, s.prev
        ));
    }
    e.generic_down(s)
}

/// Down (Reshape-14 → 13): `allowzero=1` only matters when the shape holds a 0; with a
/// constant shape free of zeros it is dropped.
pub(super) fn reshape_14_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.node.attr_int("allowzero") == Some(1) {
        let shape = match e.const_input(1) {
            Some(t) => tensor_ints(&t)?,
            None => {
                return Err(format!(
                    "sets allowzero=1 with a shape computed at run time ({:?}), whose zeros {}-{} would read differently",
                    e.input(1),
                    s.op,
                    s.prev
                ));
            }
        };
        if shape.contains(&0) {
            return Err(format!(
                "copies no dims for 0 in its shape (allowzero=1), which {}-{} cannot express",
                s.op, s.prev
            ));
        }
        e.take_attr("allowzero");
        e.note("allowzero=1 removed (the constant shape has no 0)");
    }
    e.generic_down(s)
}
