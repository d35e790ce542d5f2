//! `vote`: majority of the members' argmax, ties broken by the mean score.
//!
//! ```text
//! a_k    = ArgMax(y_k, axis, keepdims=0)                 per member, int64
//! votes  = OneHot(a_0, C, [0,1], axis) + OneHot(a_1, …)   int64 counts    → NAME/votes
//! top    = Equal(votes, ReduceMax(votes, axis, keepdims=1))
//! winner = ArgMax(Where(top, Mean(y_0, y_1, …), -inf), axis, keepdims=0) → NAME/winner
//! ```
//! Among the classes with the most votes the one with the highest mean score wins; equal
//! mean scores go to the lowest class index (ArgMax picks the first). `C` is the class
//! dim: a constant when the shape fixes it, else read at run time (`Shape` → `Gather`).
use super::MergeError;
use super::build::{Emit, attr_int, value_info};
use super::combine::{MergedOutput, axis_of, float_type, out};
use super::outputs::Group;
use whittle_ir::DataType;
use whittle_ir::shape::{Dim, ValueShape};

pub(crate) fn vote(
    e: &mut Emit,
    g: &Group,
    shape: &ValueShape,
    axis: i64,
) -> Result<Vec<MergedOutput>, MergeError> {
    let dtype = float_type(g, shape, "vote")?;
    if e.opset < 9 {
        return Err(MergeError::Outputs(format!(
            "output {:?}: vote needs ai.onnx opset 9 or newer (OneHot, Where); the merge is at {}; use --opset",
            g.name, e.opset
        )));
    }
    let a = axis_of(g, shape, axis)?;
    let dims = shape.dims.clone().unwrap_or_default();
    let scope = g.name.as_str();
    let vals: Vec<&str> = g.ports.iter().map(|p| p.value.as_str()).collect();
    let depth = match dims.get(a) {
        Some(Dim::Known(c)) => e.int64s(scope, "classes", Vec::new(), &[*c as i64]),
        _ => {
            let s = e.op("Shape", scope, &[vals[0]], Vec::new(), None);
            let idx = e.int64s(scope, "class_axis", Vec::new(), &[a as i64]);
            e.op(
                "Gather",
                scope,
                &[&s, &idx],
                vec![attr_int("axis", 0)],
                None,
            )
        }
    };
    let off_on = e.int64s(scope, "off_on", vec![2], &[0, 1]);
    let votes_name = e.names.fresh(&format!("{}/votes", g.name));
    let mut votes: Option<String> = None;
    for (k, v) in vals.iter().enumerate() {
        let argmax_attrs = vec![attr_int("axis", a as i64), attr_int("keepdims", 0)];
        let am = e.op("ArgMax", scope, &[v], argmax_attrs, None);
        let oh_attrs = vec![attr_int("axis", a as i64)];
        let oh = e.op("OneHot", scope, &[&am, &depth, &off_on], oh_attrs, None);
        let last = k + 1 == vals.len();
        votes = Some(match votes {
            None => oh,
            Some(prev) => {
                let name = last.then(|| votes_name.clone());
                e.op("Add", scope, &[&prev, &oh], Vec::new(), name)
            }
        });
    }
    let votes = votes.unwrap_or(votes_name);
    let top = e.reduce_max(scope, &votes, a as i64);
    let is_top = e.op("Equal", scope, &[&votes, &top], Vec::new(), None);
    let mean = e.op("Mean", scope, &vals, Vec::new(), None);
    let ninf = e.float_scalar(scope, "minus_inf", dtype, f64::NEG_INFINITY);
    let masked = e.op("Where", scope, &[&is_top, &mean, &ninf], Vec::new(), None);
    let winner_name = e.names.fresh(&format!("{}/winner", g.name));
    let attrs = vec![attr_int("axis", a as i64), attr_int("keepdims", 0)];
    let winner = e.op("ArgMax", scope, &[&masked], attrs, Some(winner_name));

    let mut winner_shape = ValueShape::new(Some(DataType::INT64), dims.clone());
    if let Some(d) = &mut winner_shape.dims {
        d.remove(a);
    }
    let votes_shape = ValueShape::new(Some(DataType::INT64), dims);
    let args: Vec<String> = vals
        .iter()
        .map(|v| format!("OneHot(ArgMax({v}, axis={a}))"))
        .collect();
    let votes_expr = args.join(" + ");
    let winner_expr = format!(
        "ArgMax(Where(votes == max(votes), Mean({}), -inf), axis={a})",
        vals.join(", ")
    );
    Ok(vec![
        out(
            value_info(&winner, DataType::INT64, winner_shape.dims.as_deref()),
            &winner_shape,
            winner_expr,
        ),
        out(
            value_info(&votes, DataType::INT64, votes_shape.dims.as_deref()),
            &votes_shape,
            votes_expr,
        ),
    ])
}
