//! Folding selections from partly known shapes: `Gather` or `Slice` over the output of a
//! `Shape` node picks only some dims; when those dims are known numbers (e.g. the channel
//! count of an `[N, 64, H, W]` value) the selection folds even though `N`, `H`, `W` do not.
//!
//! The selection is computed by running the node's own kernel over the dim *positions*
//! `[0, 1, …]`, so every Gather/Slice rule (negative indices, steps, clamping) applies
//! unchanged; the picked positions are then mapped to their dims.
use super::eval::{eval, shape_of};
use super::value::Value;
use whittle_ir::Node;
use whittle_ir::shape::{Dim, ShapeMap};

/// The dims a `Shape` node outputs (after its `start`/`end`), `None` where not a number;
/// `None` altogether when the input's rank is unknown.
pub fn partial_shape(n: &Node, shapes: &ShapeMap) -> Option<Vec<Option<i64>>> {
    let dims = shapes.dims(n.inputs().first()?)?;
    let positions: Vec<usize> = (0..dims.len()).collect();
    let picked = shape_of(&positions, n).ok()?.to_i64s().ok()?;
    Some(
        picked
            .iter()
            .map(|&p| dims.get(p as usize).and_then(Dim::known).map(|d| d as i64))
            .collect(),
    )
}

/// `Gather`/`Slice` (`n`) of a partly known shape vector, with its other inputs constant:
/// the selected dims, when every one of them is known.
pub fn select_known(
    n: &Node,
    shape: &[Option<i64>],
    rest: &[Option<&Value>],
    opset: i64,
) -> Option<Value> {
    let positions: Vec<i64> = (0..shape.len() as i64).collect();
    let positions = Value::from_vec(vec![shape.len()], &positions);
    let mut inputs: Vec<Option<&Value>> = vec![Some(&positions)];
    inputs.extend(rest.iter().skip(1).copied());
    let picked = eval(n, &inputs, opset, 1 << 16).ok()?.into_iter().next()?;
    let values = picked
        .to_i64s()
        .ok()?
        .iter()
        .map(|&p| shape.get(usize::try_from(p).ok()?).copied().flatten())
        .collect::<Option<Vec<i64>>>()?;
    Some(Value::from_vec(picked.dims.clone(), &values))
}
