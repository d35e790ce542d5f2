//! Fold kernels against hand-computed values.
use super::eval::eval;
use super::value::{FoldError, Value};
use crate::cleanup::attrs::{int_attribute, ints_attribute};
use whittle_ir::proto::NodeProto;
use whittle_ir::{Attribute, DataType, Node};

fn node(op: &str, n_out: usize, attributes: Vec<Attribute>) -> Node {
    Node {
        proto: NodeProto {
            op_type: Some(op.into()),
            output: (0..n_out).map(|i| format!("y{i}")).collect(),
            ..Default::default()
        },
        attributes,
    }
}

fn f32s(dims: &[usize], v: &[f32]) -> Value {
    Value::from_vec(dims.to_vec(), v)
}

fn i64s(dims: &[usize], v: &[i64]) -> Value {
    Value::from_vec(dims.to_vec(), v)
}

fn run(op: &str, inputs: &[&Value], attrs: Vec<Attribute>) -> Value {
    run_opset(op, inputs, attrs, 17)
}

fn run_opset(op: &str, inputs: &[&Value], attrs: Vec<Attribute>, opset: i64) -> Value {
    let n = node(op, 1, attrs);
    let ins: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
    eval(&n, &ins, opset, 1 << 20)
        .unwrap_or_else(|e| panic!("{op}: {e}"))
        .remove(0)
}

#[test]
fn arithmetic_broadcasts() {
    let a = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f32s(&[3], &[10., 20., 30.]);
    let y = run("Add", &[&a, &b], vec![]);
    assert_eq!(y.dims, vec![2, 3]);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![11., 22., 33., 14., 25., 36.]
    );
    let col = f32s(&[2, 1], &[2., 4.]);
    let y = run("Div", &[&a, &col], vec![]);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![0.5, 1., 1.5, 1., 1.25, 1.5]
    );
    let y = run("Sub", &[&i64s(&[], &[7]), &i64s(&[2], &[1, 9])], vec![]);
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![6, -2]);
    // Integer division truncates toward zero, like C++.
    let y = run("Div", &[&i64s(&[2], &[-7, 7]), &i64s(&[], &[2])], vec![]);
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![-3, 3]);
}

#[test]
fn integer_division_by_zero_is_not_folded() {
    let n = node("Div", 1, vec![]);
    let (a, b) = (i64s(&[1], &[1]), i64s(&[1], &[0]));
    assert!(matches!(
        eval(&n, &[Some(&a), Some(&b)], 17, 1024),
        Err(FoldError::Invalid(_))
    ));
}

#[test]
fn unary_and_cast() {
    let a = f32s(&[4], &[4., 0.25, -1.5, 9.]);
    assert_eq!(
        run("Sqrt", &[&f32s(&[2], &[4., 0.25])], vec![])
            .to_vec::<f32>()
            .unwrap(),
        vec![2., 0.5]
    );
    assert_eq!(
        run("Reciprocal", &[&a], vec![]).to_vec::<f32>().unwrap(),
        vec![0.25, 4., -1. / 1.5, 1. / 9.]
    );
    assert_eq!(
        run("Neg", &[&a], vec![]).to_vec::<f32>().unwrap(),
        vec![-4., -0.25, 1.5, -9.]
    );
    let y = run(
        "Cast",
        &[&a],
        vec![int_attribute("to", DataType::INT64.0 as i64)],
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![4, 0, -1, 9]);
    let y = run(
        "Cast",
        &[&i64s(&[2], &[3, -2])],
        vec![int_attribute("to", DataType::FLOAT.0 as i64)],
    );
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![3., -2.]);
    let y = run(
        "Cast",
        &[&i64s(&[3], &[0, 5, -1])],
        vec![int_attribute("to", DataType::BOOL.0 as i64)],
    );
    assert_eq!(y.to_vec::<bool>().unwrap(), vec![false, true, true]);
    // NaN to an integer type is left alone.
    let n = node(
        "Cast",
        1,
        vec![int_attribute("to", DataType::INT32.0 as i64)],
    );
    assert!(eval(&n, &[Some(&f32s(&[1], &[f32::NAN]))], 17, 1024).is_err());
}

#[test]
fn shape_movement_ops() {
    let a = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let y = run("Transpose", &[&a], vec![]);
    assert_eq!(
        (y.dims.clone(), y.to_vec::<f32>().unwrap()),
        (vec![3, 2], vec![1., 4., 2., 5., 3., 6.])
    );
    let y = run("Reshape", &[&a, &i64s(&[2], &[-1, 2])], vec![]);
    assert_eq!(y.dims, vec![3, 2]);
    let y = run("Reshape", &[&a, &i64s(&[3], &[0, 1, -1])], vec![]);
    assert_eq!(y.dims, vec![2, 1, 3]);
    let y = run(
        "Concat",
        &[&a, &f32s(&[1, 3], &[7., 8., 9.])],
        vec![int_attribute("axis", 0)],
    );
    assert_eq!(y.dims, vec![3, 3]);
    assert_eq!(y.to_vec::<f32>().unwrap()[6..], [7., 8., 9.]);
    let y = run(
        "Concat",
        &[&a, &f32s(&[2, 1], &[7., 8.])],
        vec![int_attribute("axis", -1)],
    );
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![1., 2., 3., 7., 4., 5., 6., 8.]
    );
    let y = run("Unsqueeze", &[&a, &i64s(&[2], &[0, -1])], vec![]);
    assert_eq!(y.dims, vec![1, 2, 3, 1]);
    let y = run_opset("Unsqueeze", &[&a], vec![ints_attribute("axes", &[1])], 11);
    assert_eq!(y.dims, vec![2, 1, 3]);
    let y = run("Squeeze", &[&f32s(&[1, 3, 1], &[1., 2., 3.])], vec![]);
    assert_eq!(y.dims, vec![3]);
    let y = run(
        "Flatten",
        &[&f32s(&[2, 3, 4], &[0.; 24])],
        vec![int_attribute("axis", 2)],
    );
    assert_eq!(y.dims, vec![6, 4]);
}

#[test]
fn gather_slice_expand_tile_split() {
    let a = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let y = run(
        "Gather",
        &[&a, &i64s(&[2], &[2, -3])],
        vec![int_attribute("axis", 1)],
    );
    assert_eq!(
        (y.dims.clone(), y.to_vec::<f32>().unwrap()),
        (vec![2, 2], vec![3., 1., 6., 4.])
    );
    let y = run(
        "Gather",
        &[&i64s(&[4], &[1, 3, 224, 224]), &i64s(&[], &[0])],
        vec![],
    );
    assert_eq!(
        (y.dims.clone(), y.to_vec::<i64>().unwrap()),
        (vec![], vec![1])
    );
    // Slice [:, 1:] and a reversed slice with a step.
    let y = run(
        "Slice",
        &[
            &a,
            &i64s(&[1], &[1]),
            &i64s(&[1], &[i64::MAX]),
            &i64s(&[1], &[1]),
        ],
        vec![],
    );
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2., 3., 5., 6.]);
    let y = run(
        "Slice",
        &[
            &a,
            &i64s(&[1], &[-1]),
            &i64s(&[1], &[i64::MIN]),
            &i64s(&[1], &[1]),
            &i64s(&[1], &[-2]),
        ],
        vec![],
    );
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![3., 1., 6., 4.]);
    let y = run_opset(
        "Slice",
        &[&a],
        vec![
            ints_attribute("starts", &[0]),
            ints_attribute("ends", &[1]),
            ints_attribute("axes", &[0]),
        ],
        9,
    );
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 3.]);
    let y = run(
        "Expand",
        &[&f32s(&[3, 1], &[1., 2., 3.]), &i64s(&[2], &[1, 2])],
        vec![],
    );
    assert_eq!(
        (y.dims.clone(), y.to_vec::<f32>().unwrap()),
        (vec![3, 2], vec![1., 1., 2., 2., 3., 3.])
    );
    let y = run("Tile", &[&f32s(&[2], &[1., 2.]), &i64s(&[1], &[3])], vec![]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1., 2., 1., 2., 1., 2.]);
    let n = node("Split", 2, vec![int_attribute("axis", 1)]);
    let outs = eval(&n, &[Some(&a), Some(&i64s(&[2], &[1, 2]))], 17, 1024).unwrap();
    assert_eq!(outs[0].to_vec::<f32>().unwrap(), vec![1., 4.]);
    assert_eq!(outs[1].to_vec::<f32>().unwrap(), vec![2., 3., 5., 6.]);
}

#[test]
fn extreme_slice_steps_do_not_overflow() {
    use super::movement::slice_range;
    assert_eq!(
        slice_range(5, 0, i64::MAX, i64::MAX).unwrap(),
        (0, i64::MAX, 1)
    );
    assert_eq!(
        slice_range(5, -1, i64::MIN, i64::MIN).unwrap(),
        (4, i64::MIN, 1)
    );
    assert_eq!(slice_range(5, i64::MIN, i64::MAX, 2).unwrap(), (0, 2, 3));
    assert_eq!(slice_range(0, 0, 1, 1).unwrap().2, 0);
}

#[test]
fn generators_and_logic() {
    let y = run(
        "Shape",
        &[&f32s(&[2, 3, 4], &[0.; 24])],
        vec![int_attribute("start", 1)],
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![3, 4]);
    let y = run("Size", &[&f32s(&[2, 3], &[0.; 6])], vec![]);
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![6]);
    let y = run("ConstantOfShape", &[&i64s(&[2], &[2, 2])], vec![]);
    assert_eq!(
        (y.dtype, y.to_vec::<f32>().unwrap()),
        (DataType::FLOAT, vec![0.; 4])
    );
    let y = run(
        "Range",
        &[&i64s(&[], &[10]), &i64s(&[], &[1]), &i64s(&[], &[-3])],
        vec![],
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![10, 7, 4]);
    let y = run(
        "Range",
        &[&i64s(&[], &[0]), &i64s(&[], &[5]), &i64s(&[], &[2])],
        vec![],
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![0, 2, 4]);
    // Float ranges accumulate in f32, as onnxruntime does: 0.1 added three times.
    let f = |x: f32| Value::from_vec(vec![], &[x]);
    let y = run("Range", &[&f(0.0), &f(0.35), &f(0.1)], vec![]);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        vec![0.0, 0.1, 0.1 + 0.1, 0.1 + 0.1 + 0.1]
    );
    let eq = run(
        "Equal",
        &[&i64s(&[3], &[1, 2, 3]), &i64s(&[], &[2])],
        vec![],
    );
    assert_eq!(eq.to_vec::<bool>().unwrap(), vec![false, true, false]);
    let y = run(
        "Where",
        &[&eq, &i64s(&[], &[-1]), &i64s(&[3], &[7, 8, 9])],
        vec![],
    );
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![7, -1, 9]);
    let y = run("Not", &[&eq], vec![]);
    assert_eq!(y.to_vec::<bool>().unwrap(), vec![true, false, true]);
    let y = run("Max", &[&i64s(&[2], &[1, 5]), &i64s(&[], &[3])], vec![]);
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![3, 5]);
}

#[test]
fn outputs_over_the_budget_are_refused_before_computing() {
    let n = node("ConstantOfShape", 1, vec![]);
    let shape = i64s(&[2], &[1 << 20, 1 << 20]);
    match eval(&n, &[Some(&shape)], 17, 1 << 20) {
        Err(FoldError::TooBig { bytes, .. }) => assert_eq!(bytes, 4 << 40),
        other => panic!("{other:?}"),
    }
    let n = node("Expand", 1, vec![]);
    let big = i64s(&[2], &[4096, 4096]);
    assert!(matches!(
        eval(&n, &[Some(&f32s(&[1], &[1.])), Some(&big)], 17, 1024),
        Err(FoldError::TooBig { .. })
    ));
}

#[test]
fn unknown_ops_are_reported_not_folded() {
    let n = node("Pow", 1, vec![]);
    let a = f32s(&[1], &[2.]);
    assert!(matches!(
        eval(&n, &[Some(&a), Some(&a)], 17, 1024),
        Err(FoldError::Unsupported(_))
    ));
}

#[test]
fn selections_of_partly_known_shapes_fold_when_the_picked_dims_are_known() {
    use super::partial::select_known;
    // Shape of an [N, 64, H, W] value.
    let shape = [None, Some(64), None, None];
    let gather = node("Gather", 1, vec![int_attribute("axis", 0)]);
    let one = i64s(&[], &[1]);
    let picked = select_known(&gather, &shape, &[None, Some(&one)], 17).unwrap();
    assert_eq!(
        (picked.dims.clone(), picked.to_vec::<i64>().unwrap()),
        (vec![], vec![64])
    );
    let minus3 = i64s(&[1], &[-3]);
    assert_eq!(
        select_known(&gather, &shape, &[None, Some(&minus3)], 17)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![64]
    );
    let zero = i64s(&[], &[0]);
    assert!(select_known(&gather, &shape, &[None, Some(&zero)], 17).is_none());
    let slice = node("Slice", 1, vec![]);
    let (s, e) = (i64s(&[1], &[1]), i64s(&[1], &[2]));
    let picked = select_known(&slice, &shape, &[None, Some(&s), Some(&e)], 17).unwrap();
    assert_eq!(picked.to_vec::<i64>().unwrap(), vec![64]);
    let e3 = i64s(&[1], &[3]);
    assert!(select_known(&slice, &shape, &[None, Some(&s), Some(&e3)], 17).is_none());
}
