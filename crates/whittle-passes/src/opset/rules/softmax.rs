//! Softmax, LogSoftmax and Hardmax at 13.
//!
//! Up to 11 these coerce the input to 2-D at `axis` (default 1) and normalise over the
//! flattened trailing dims; from 13 they normalise along the single `axis` (default -1).
//! The two agree exactly when `axis` is the last axis. Otherwise upgrading rewrites
//! `op(x, axis=a)` as `Reshape(op13(Flatten(x, axis=a), axis=-1), Shape(x))`, which needs
//! no shape knowledge; downgrading a non-last axis moves it last with Transposes, which
//! needs the rank.
use crate::opset::edit::{Edit, Outcome};
use crate::opset::table::Step;
use crate::opset::values::{attr_int, attr_ints, new_node};

/// The rank of the node's input (or of its output, which has the same rank).
fn rank(e: &Edit) -> Option<i64> {
    let out_rank = e.node.outputs().first().and_then(|o| e.scope.rank(o));
    e.input_rank(0).or(out_rank).map(|r| r as i64)
}

fn normalized(axis: i64, rank: Option<i64>) -> Option<i64> {
    match (axis, rank) {
        (a, _) if a >= 0 => Some(a),
        (a, Some(r)) => Some(a + r),
        _ => None,
    }
}

pub(super) fn up(e: &mut Edit, _: &Step) -> Outcome {
    let axis = e.node.attr_int("axis").unwrap_or(1);
    let rank = rank(e);
    let last =
        matches!((normalized(axis, rank), rank), (Some(a), Some(r)) if a == r - 1) || axis == -1;
    if last {
        e.set_attr(attr_int("axis", axis));
        e.note(format!(
            "axis={axis} is the last axis: kept, stated explicitly"
        ));
        return Ok(());
    }
    // Flatten at `axis`, normalise the last axis of the 2-D result, reshape back.
    let x = e.input(0);
    let y = e.node.outputs().first().cloned().ok_or("has no output")?;
    let flat = e.fresh_value("flat");
    let flat_out = e.fresh_value("flat_out");
    let shape = e.fresh_value("shape");
    e.before.push(new_node(
        "Flatten",
        &flat,
        std::slice::from_ref(&x),
        std::slice::from_ref(&flat),
        vec![attr_int("axis", axis)],
    ));
    e.before.push(new_node(
        "Shape",
        &shape,
        &[x],
        std::slice::from_ref(&shape),
        vec![],
    ));
    e.set_input(0, &flat);
    e.node.proto.output[0] = flat_out.clone();
    e.set_attr(attr_int("axis", -1));
    let reshape = e.fresh_value("reshape");
    e.after.push(new_node(
        "Reshape",
        &reshape,
        &[flat_out, shape],
        &[y],
        vec![],
    ));
    e.note(format!(
        "axis={axis} coerced to 2-D: rewritten as Flatten -> {} (axis=-1) -> Reshape",
        e.op()
    ));
    Ok(())
}

pub(super) fn down(e: &mut Edit, s: &Step) -> Outcome {
    let axis = e.node.attr_int("axis").unwrap_or(-1);
    let rank = rank(e);
    let is_last =
        axis == -1 || matches!((normalized(axis, rank), rank), (Some(a), Some(r)) if a == r - 1);
    if is_last {
        e.set_attr(attr_int("axis", axis));
        e.note(format!(
            "axis={axis} is the last axis: kept, stated explicitly"
        ));
        return e.check_types(s);
    }
    let (Some(r), Some(a)) = (rank, normalized(axis, rank)) else {
        return Err(format!(
            "normalises along axis {axis} of an input of unknown rank, which {}-{} cannot express",
            s.op, s.prev
        ));
    };
    if !(0..r).contains(&a) {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    // Swap `a` with the last axis, normalise the last axis, swap back (a swap is its own inverse).
    let mut perm: Vec<i64> = (0..r).collect();
    perm.swap(a as usize, (r - 1) as usize);
    let x = e.input(0);
    let y = e.node.outputs().first().cloned().ok_or("has no output")?;
    let moved = e.fresh_value("moved");
    let moved_out = e.fresh_value("moved_out");
    e.before.push(new_node(
        "Transpose",
        &moved,
        &[x],
        std::slice::from_ref(&moved),
        vec![attr_ints("perm", perm.clone())],
    ));
    e.set_input(0, &moved);
    e.node.proto.output[0] = moved_out.clone();
    e.set_attr(attr_int("axis", -1));
    let back = e.fresh_value("moved_back");
    e.after.push(new_node(
        "Transpose",
        &back,
        &[moved_out],
        &[y],
        vec![attr_ints("perm", perm)],
    ));
    e.note(format!("axis={axis} moved last with Transposes"));
    e.check_types(s)
}
