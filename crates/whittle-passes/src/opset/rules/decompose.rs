//! Operators that do not exist below their first opset but are functions of older ops:
//! downgrading expands them into their function body.
//!
//! LayerNormalization (17) over axes `[axis, rank)`:
//! `d = X - ReduceMean(X)`, `Y = d / Sqrt(ReduceMean(d * d) + epsilon) * Scale + B`.
//! Rounding differs from a fused kernel (float32, a few ulps). Only float32/double inputs
//! are expanded (for float16 the op computes in float32 with `stash_type`).
//!
//! Shape-15's `start`/`end` are a Slice of the full shape (same clamping rules).
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_int, attr_ints, ints_tensor, new_node, scalar};
use whittle_ir::DataType;

pub(super) fn layer_norm_down(e: &mut Edit, _: &Step) -> Outcome {
    let dtype = e
        .input_dtype(0)
        .ok_or("the element type of its input is unknown, so whittle cannot expand it")?;
    if ![DataType::FLOAT, DataType::DOUBLE].contains(&dtype) {
        return Err(format!(
            "normalises {dtype} data, which whittle expands only for f32 and f64"
        ));
    }
    for slot in [2, 1] {
        e.drop_output_if_unused(slot)?;
    }
    let axis = e.node.attr_int("axis").unwrap_or(-1);
    let epsilon = e
        .node
        .attribute("epsilon")
        .and_then(|a| a.proto.f)
        .unwrap_or(1e-5);
    let rank = e.input_rank(0).map(|r| r as i64);
    let axes: Vec<i64> = match (axis, rank) {
        (a, Some(r)) if e.target < 11 => ((if a < 0 { a + r } else { a })..r).collect(),
        (a, _) if a < 0 && e.target >= 11 => (a..0).collect(),
        (a, Some(r)) => (a..r).collect(),
        _ => return Err("normalises from a positive axis of an input of unknown rank, which whittle cannot expand".into()),
    };
    let x = e.input(0);
    let scale = e.input(1);
    let bias = e.has_input(2).then(|| e.input(2));
    let y = e.node.outputs().first().cloned().ok_or("has no output")?;
    let eps = e.constant("epsilon", scalar(dtype, f64::from(epsilon))?)?;
    let v = |e: &mut Edit, hint: &str| e.fresh_value(hint);
    let (mean, d, dd, var, ve, sd, nrm) = (
        v(e, "mean"),
        v(e, "centered"),
        v(e, "squared"),
        v(e, "var"),
        v(e, "var_eps"),
        v(e, "stddev"),
        v(e, "normalized"),
    );
    let reduce = |name: &str, input: &str, out: &str| {
        new_node(
            "ReduceMean",
            out,
            &[input.to_string()],
            &[name.to_string()],
            vec![attr_ints("axes", axes.clone()), attr_int("keepdims", 1)],
        )
    };
    let bin = |op: &str, a: &str, b: &str, out: &str| {
        new_node(
            op,
            out,
            &[a.to_string(), b.to_string()],
            &[out.to_string()],
            vec![],
        )
    };
    e.before.push(reduce(&mean, &x, &mean));
    e.before.push(bin("Sub", &x, &mean, &d));
    e.before.push(bin("Mul", &d, &d, &dd));
    e.before.push(reduce(&var, &dd, &var));
    e.before.push(bin("Add", &var, &eps, &ve));
    e.before.push(new_node(
        "Sqrt",
        &sd,
        std::slice::from_ref(&ve),
        std::slice::from_ref(&sd),
        vec![],
    ));
    e.before.push(bin("Div", &d, &sd, &nrm));
    let last = match bias {
        Some(b) => {
            let scaled = v(e, "scaled");
            e.before.push(bin("Mul", &nrm, &scale, &scaled));
            bin("Add", &scaled, &b, &y)
        }
        None => bin("Mul", &nrm, &scale, &y),
    };
    let name = e.node.name().to_string();
    e.node = last;
    e.node.proto.name = Some(name);
    e.note(format!(
        "expanded into ReduceMean/Sub/Mul/Add/Sqrt/Div over axes {axes:?}"
    ));
    Ok(())
}

/// Down (Shape-15 → 13): `start`/`end` become a Slice of the whole shape.
pub(super) fn shape_15_down(e: &mut Edit, s: &Step) -> Outcome {
    let start = e.take_attr("start").and_then(|a| a.proto.i).unwrap_or(0);
    let end = e.take_attr("end").and_then(|a| a.proto.i);
    if start == 0 && end.is_none() {
        return e.check_types(s);
    }
    let y = e.node.outputs().first().cloned().ok_or("has no output")?;
    let full = e.fresh_value("full");
    e.node.proto.output[0] = full.clone();
    let (starts, ends) = (vec![start], vec![end.unwrap_or(i64::MAX)]);
    let name = e.fresh_value("slice");
    let slice = if e.target >= 10 {
        let inputs = [
            full,
            e.constant("starts", ints_tensor(&starts))?,
            e.constant("ends", ints_tensor(&ends))?,
            e.constant("axes", ints_tensor(&[0]))?,
        ];
        new_node("Slice", &name, &inputs, &[y], vec![])
    } else {
        let attrs = vec![
            attr_ints("starts", starts),
            attr_ints("ends", ends),
            attr_ints("axes", vec![0]),
        ];
        new_node("Slice", &name, &[full], &[y], attrs)
    };
    e.after.push(slice);
    e.note(format!(
        "start={start}/end={end:?} -> Slice of the whole shape"
    ));
    e.check_types(s)
}
