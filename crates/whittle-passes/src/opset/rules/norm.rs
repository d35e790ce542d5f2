//! BatchNormalization (7, 9, 14, 15) and Dropout (7, 10, 12): the inference/training
//! attributes and outputs.
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_float, attr_int, tensor_floats};
use whittle_ir::DataType;

/// Up (BatchNormalization-6 → 7): `is_test` is removed (the number of outputs tells the
/// mode); a stale `consumed_inputs` from opset 1 goes too.
pub(super) fn batchnorm_7_up(e: &mut Edit, _: &Step) -> Outcome {
    let is_test = e.take_attr("is_test").and_then(|a| a.proto.i);
    if is_test == Some(1) && e.node.outputs().iter().skip(1).any(|o| !o.is_empty()) {
        return Err("is_test=1 with training outputs is contradictory".into());
    }
    if e.take_attr("consumed_inputs").is_some() {
        e.note("consumed_inputs attribute removed");
    }
    if is_test.is_some() {
        e.note("is_test attribute removed");
    }
    Ok(())
}

/// Up (Dropout-6 → 7): `is_test` is removed (inference runs Dropout as a copy).
pub(super) fn dropout_7_up(e: &mut Edit, _: &Step) -> Outcome {
    if e.take_attr("is_test").is_some() {
        e.note("is_test attribute removed");
    }
    Ok(())
}

/// Up (BatchNormalization-7 → 9): `spatial` is removed; only spatial=1 (the default) keeps
/// its meaning.
pub(super) fn batchnorm_9_up(e: &mut Edit, _: &Step) -> Outcome {
    match e.take_attr("spatial").and_then(|a| a.proto.i) {
        Some(0) => Err(
            "uses spatial=0 (per-activation statistics), which BatchNormalization-9 dropped".into(),
        ),
        Some(_) => {
            e.note("spatial attribute removed");
            Ok(())
        }
        None => Ok(()),
    }
}

/// Both ways across Dropout-10 (mask type T ↔ bool): an unused mask output is removed; a
/// used one is refused.
pub(super) fn dropout_mask(e: &mut Edit, _: &Step) -> Outcome {
    e.drop_output_if_unused(1)
}

/// Up (Dropout-10 → 12): the `ratio` attribute becomes a float scalar input.
pub(super) fn dropout_12_up(e: &mut Edit, _: &Step) -> Outcome {
    // The default ratio (0.5) needs no input; inference ignores the ratio anyway.
    if let Some(ratio) = e
        .take_attr("ratio")
        .and_then(|a| a.proto.f)
        .filter(|&r| r != 0.5)
    {
        let t = crate::opset::values::scalar(DataType::FLOAT, f64::from(ratio))?;
        let name = e.constant("ratio", t)?;
        e.set_input(1, &name);
        e.note(format!("ratio={ratio} attribute -> input {name:?}"));
    }
    Ok(())
}

/// Down (Dropout-12 → 10): a constant `ratio` becomes the attribute; `training_mode` must be
/// absent or a constant false; `seed` (training only) is dropped.
pub(super) fn dropout_12_down(e: &mut Edit, s: &Step) -> Outcome {
    if e.has_input(2) {
        let training = e.const_input(2).map(|t| tensor_floats(&t));
        match training {
            Some(Ok(v)) if v.iter().all(|&x| x == 0.0) => {}
            _ => {
                return Err(format!(
                    "has a training_mode input that is not a constant false, which {}-{} cannot express",
                    s.op, s.prev
                ));
            }
        }
    }
    let ratio = match e.has_input(1) {
        false => None,
        true => {
            let t = e
                .const_input(1)
                .ok_or_else(|| format!("ratio input {:?} is not a constant", e.input(1)))?;
            Some(
                tensor_floats(&t)?
                    .first()
                    .copied()
                    .ok_or("ratio is empty")?,
            )
        }
    };
    e.drop_input(2);
    e.drop_input(1);
    if let Some(r) = ratio {
        e.set_attr(attr_float("ratio", r));
        e.note(format!("ratio input -> attribute {r}"));
    }
    if e.take_attr("seed").is_some() {
        e.note("seed attribute removed (used only in training)");
    }
    e.check_types(s)
}

/// Up (BatchNormalization-9 → 14): training outputs mean/var become running_mean/var with
/// training_mode=1; saved_mean/saved_var have no counterpart. Down: the reverse.
pub(super) fn batchnorm_14_up(e: &mut Edit, s: &Step) -> Outcome {
    let outs = e.node.outputs().to_vec();
    let named = |i: usize| outs.get(i).is_some_and(|o| !o.is_empty());
    if named(3) || named(4) {
        return Err(format!(
            "uses saved_mean/saved_var outputs, which {}-{} does not have",
            s.op, s.since
        ));
    }
    if named(1) || named(2) {
        e.set_attr(attr_int("training_mode", 1));
        e.note("training outputs mean/var -> running_mean/running_var with training_mode=1");
    }
    Ok(())
}

pub(super) fn batchnorm_14_down(e: &mut Edit, s: &Step) -> Outcome {
    let training = e
        .take_attr("training_mode")
        .and_then(|a| a.proto.i)
        .unwrap_or(0);
    let outs = e.node.outputs().to_vec();
    let named = |i: usize| outs.get(i).is_some_and(|o| !o.is_empty());
    if training != 0 && !(named(1) && named(2)) {
        return Err(format!(
            "runs in training mode without both running outputs, which {}-{} cannot express",
            s.op, s.prev
        ));
    }
    if training != 0 {
        e.note("training_mode=1 -> training outputs mean/var");
    }
    e.check_types(s)
}

/// Down (BatchNormalization-15 → 14): scale and B must have the input's element type.
pub(super) fn batchnorm_15_down(e: &mut Edit, s: &Step) -> Outcome {
    let x = e.input_dtype(0);
    for slot in [1, 2] {
        if let (Some(x), Some(t)) = (x, e.input_dtype(slot))
            && x != t
        {
            return Err(format!(
                "has {t} scale/bias for {x} data, which {}-{} does not accept",
                s.op, s.prev
            ));
        }
    }
    e.check_types(s)
}
