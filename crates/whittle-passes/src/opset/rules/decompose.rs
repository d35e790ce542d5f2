//! Operators that do not exist below their first opset but are functions of older ops:
//! downgrading expands them into their function body.
//!
//! LayerNormalization (17) over axes `[axis, rank)`:
//! `d = X - ReduceMean(X)`, `Y = d / Sqrt(ReduceMean(d * d) + epsilon) * Scale + B`.
//! Rounding differs from a fused kernel (float32, a few ulps). Only float32/double inputs
//! are expanded (for float16 the op computes in float32 with `stash_type`).
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_int, attr_ints, new_node, scalar};
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
