//! Evaluating one default-domain node on constant inputs: the op table of constant
//! folding. Every op reads its attributes and inputs in the form its opset defines (e.g.
//! `Unsqueeze` axes as an attribute before opset 13, as an input from 13).
//!
//! Outputs that can grow past their inputs (broadcasting, `Expand`, `Tile`, `Gather`,
//! `ConstantOfShape`, `Range`) are measured before they are computed, so a fold over the
//! budget never allocates the data.
use super::elementwise as ew;
use super::movement as mv;
use super::value::{
    FoldError, FoldResult, Value, broadcast_dims, elem_size, invalid, numel, unsupported,
};
use whittle_ir::{DataType, Node};

/// Refuses outputs of more than `budget` bytes.
fn guard(dtype: DataType, dims: &[usize], budget: u64) -> FoldResult<()> {
    let bytes = numel(dims)? as u64 * elem_size(dtype)? as u64;
    if bytes > budget {
        return Err(FoldError::TooBig { bytes, budget });
    }
    Ok(())
}

/// The op names [`eval`] knows (default domain).
pub const FOLDABLE_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "Cast",
    "Ceil",
    "Concat",
    "ConstantOfShape",
    "Div",
    "Equal",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Greater",
    "GreaterOrEqual",
    "Identity",
    "Less",
    "LessOrEqual",
    "Max",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Range",
    "Reciprocal",
    "Relu",
    "Reshape",
    "Shape",
    "Size",
    "Slice",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
    "Xor",
];

fn input<'a>(inputs: &[Option<&'a Value>], i: usize, op: &str) -> FoldResult<&'a Value> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| FoldError::Invalid(format!("{op}: input {i} is missing")))
}

fn opt_ints(inputs: &[Option<&Value>], i: usize) -> FoldResult<Option<Vec<i64>>> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .map(Value::to_i64s)
        .transpose()
}

/// Evaluates `node` (default domain) whose inputs are all constant. `inputs[i]` is `None`
/// for an absent optional input. Returns one value per output.
pub fn eval(
    node: &Node,
    inputs: &[Option<&Value>],
    opset: i64,
    budget: u64,
) -> FoldResult<Vec<Value>> {
    let op = node.op_type();
    let a = || input(inputs, 0, op);
    let b = || input(inputs, 1, op);
    let one = |v: Value| -> FoldResult<Vec<Value>> {
        guard(v.dtype, &v.dims, budget)?;
        Ok(vec![v])
    };
    match op {
        "Identity" => one(a()?.clone()),
        "Add" | "Sub" | "Mul" | "Div" => {
            guard(a()?.dtype, &broadcast_dims(&a()?.dims, &b()?.dims)?, budget)?;
            one(ew::arith(op, a()?, b()?)?)
        }
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            guard(
                DataType::BOOL,
                &broadcast_dims(&a()?.dims, &b()?.dims)?,
                budget,
            )?;
            one(ew::compare(op, a()?, b()?)?)
        }
        "And" | "Or" | "Xor" => {
            guard(
                DataType::BOOL,
                &broadcast_dims(&a()?.dims, &b()?.dims)?,
                budget,
            )?;
            one(ew::logic(op, a()?, Some(b()?))?)
        }
        "Not" => one(ew::logic(op, a()?, None)?),
        "Neg" | "Abs" | "Sqrt" | "Reciprocal" | "Floor" | "Ceil" | "Relu" => {
            one(ew::unary(op, a()?)?)
        }
        "Min" | "Max" => {
            let all: Vec<&Value> = inputs.iter().flatten().copied().collect();
            let mut dims: Vec<usize> = Vec::new();
            for v in &all {
                dims = broadcast_dims(&dims, &v.dims)?;
            }
            guard(a()?.dtype, &dims, budget)?;
            one(ew::min_max(op, &all)?)
        }
        "Where" => {
            let (c, x, y) = (a()?, b()?, input(inputs, 2, op)?);
            guard(
                x.dtype,
                &broadcast_dims(&broadcast_dims(&c.dims, &x.dims)?, &y.dims)?,
                budget,
            )?;
            one(ew::where_(c, x, y)?)
        }
        "Cast" => {
            let to = node
                .attr_int("to")
                .ok_or_else(|| FoldError::Invalid("Cast without `to`".into()))?;
            if node.attribute("saturate").is_some() && !DataType(to as i32).is_float() {
                return unsupported("Cast with `saturate`");
            }
            guard(DataType(to as i32), &a()?.dims, budget)?;
            one(ew::cast(a()?, DataType(to as i32))?)
        }
        "Reshape" => {
            let shape = if opset < 5 {
                node.attr_ints("shape")
                    .map(<[i64]>::to_vec)
                    .ok_or_else(|| FoldError::Invalid("no shape".into()))?
            } else {
                b()?.to_i64s()?
            };
            one(mv::reshape(
                a()?,
                &shape,
                node.attr_int("allowzero").unwrap_or(0) != 0,
            )?)
        }
        "Flatten" => one(mv::flatten(a()?, node.attr_int("axis").unwrap_or(1))?),
        "Transpose" => one(mv::transpose(a()?, node.attr_ints("perm"))?),
        "Concat" => {
            let all: Vec<&Value> = inputs.iter().flatten().copied().collect();
            let axis = node
                .attr_int("axis")
                .ok_or_else(|| FoldError::Invalid("Concat without axis".into()))?;
            one(mv::concat(&all, axis)?)
        }
        "Unsqueeze" => {
            let axes = if opset < 13 {
                node.attr_ints("axes").map(<[i64]>::to_vec)
            } else {
                opt_ints(inputs, 1)?
            };
            one(mv::unsqueeze(
                a()?,
                &axes.ok_or_else(|| FoldError::Invalid("Unsqueeze without axes".into()))?,
            )?)
        }
        "Squeeze" => {
            let axes = if opset < 13 {
                node.attr_ints("axes").map(<[i64]>::to_vec)
            } else {
                opt_ints(inputs, 1)?
            };
            one(mv::squeeze(a()?, axes.as_deref())?)
        }
        "Gather" => {
            let (data, idx) = (a()?, b()?);
            let axis = super::value::norm_axis(node.attr_int("axis").unwrap_or(0), data.rank())?;
            let mut dims = data.dims[..axis].to_vec();
            dims.extend_from_slice(&idx.dims);
            dims.extend_from_slice(&data.dims[axis + 1..]);
            guard(data.dtype, &dims, budget)?;
            one(mv::gather(data, idx, axis as i64)?)
        }
        "Slice" => {
            let (starts, ends, axes, steps) = if opset < 10 {
                let attr = |n: &str| node.attr_ints(n).map(<[i64]>::to_vec);
                (attr("starts"), attr("ends"), attr("axes"), None)
            } else {
                (
                    opt_ints(inputs, 1)?,
                    opt_ints(inputs, 2)?,
                    opt_ints(inputs, 3)?,
                    opt_ints(inputs, 4)?,
                )
            };
            let (Some(starts), Some(ends)) = (starts, ends) else {
                return invalid("Slice without starts/ends");
            };
            one(mv::slice(
                a()?,
                &starts,
                &ends,
                axes.as_deref(),
                steps.as_deref(),
            )?)
        }
        "Expand" => {
            let shape = b()?.to_usizes()?;
            let dims = broadcast_dims(&a()?.dims, &shape)?;
            guard(a()?.dtype, &dims, budget)?;
            one(mv::expand(a()?, &shape)?)
        }
        "Tile" if opset >= 6 => {
            let reps = b()?.to_usizes()?;
            let dims: Vec<usize> = a()?.dims.iter().zip(&reps).map(|(d, r)| d * r).collect();
            guard(a()?.dtype, &dims, budget)?;
            one(mv::tile(a()?, &reps)?)
        }
        "Split" => split(node, inputs, opset),
        "Shape" => one(shape_of(&a()?.dims, node)?),
        "Size" => one(Value::from_vec(vec![], &[a()?.numel() as i64])),
        "ConstantOfShape" => constant_of_shape(node, a()?, budget).map(|v| vec![v]),
        "Range" => range(a()?, b()?, input(inputs, 2, op)?, budget).map(|v| vec![v]),
        other => unsupported(format!("no folding kernel for {other}")),
    }
}

/// `Shape` of a tensor with these dims (with the `start`/`end` attributes of opset 15).
pub fn shape_of(dims: &[usize], node: &Node) -> FoldResult<Value> {
    let r = dims.len() as i64;
    let fix = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = fix(node.attr_int("start").unwrap_or(0));
    let end = fix(node.attr_int("end").unwrap_or(r));
    let picked: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    let picked = if start < end {
        picked[start..end].to_vec()
    } else {
        Vec::new()
    };
    Ok(Value::from_vec(vec![picked.len()], &picked))
}

fn split(node: &Node, inputs: &[Option<&Value>], opset: i64) -> FoldResult<Vec<Value>> {
    let a = input(inputs, 0, "Split")?;
    let axis = node.attr_int("axis").unwrap_or(0);
    let ax = super::value::norm_axis(axis, a.rank())?;
    let n = node.outputs().len();
    let given = if opset < 13 {
        node.attr_ints("split").map(<[i64]>::to_vec)
    } else {
        opt_ints(inputs, 1)?
    };
    let sizes: Vec<usize> = match given {
        Some(s) => s
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| FoldError::Invalid(format!("Split size {x}"))))
            .collect::<FoldResult<_>>()?,
        None if n == 0 => return invalid("Split without outputs"),
        None => {
            let d = a.dims[ax];
            let chunk = d.div_ceil(n);
            if opset < 18 && d % n != 0 {
                return invalid("Split into uneven parts");
            }
            (0..n)
                .map(|i| chunk.min(d.saturating_sub(i * chunk)))
                .collect()
        }
    };
    if sizes.len() != n {
        return invalid(format!("Split into {} parts for {n} outputs", sizes.len()));
    }
    mv::split(a, axis, &sizes)
}

fn constant_of_shape(node: &Node, shape: &Value, budget: u64) -> FoldResult<Value> {
    let dims = shape.to_usizes()?;
    let fill = match node.attribute("value").and_then(|a| a.t.as_ref()) {
        Some(t) => Value::from_tensor(t)?,
        None => Value::from_vec(vec![1], &[0f32]),
    };
    let elem = fill.scalar_bytes()?.to_vec();
    guard(fill.dtype, &dims, budget)?;
    let n = numel(&dims)?;
    Ok(Value {
        dtype: fill.dtype,
        dims,
        bytes: elem.repeat(n),
    })
}

fn range(start: &Value, limit: &Value, delta: &Value, budget: u64) -> FoldResult<Value> {
    match start.dtype {
        DataType::INT64 | DataType::INT32 => int_range(start, limit, delta, budget),
        DataType::FLOAT => float_range::<f32>(start, limit, delta, budget, f64::from),
        DataType::DOUBLE => float_range::<f64>(start, limit, delta, budget, |x| x),
        d => unsupported(format!("Range on {d}")),
    }
}

fn scalar<T: super::value::Elem>(v: &Value) -> FoldResult<T> {
    match v.to_vec::<T>()?.as_slice() {
        [x] => Ok(*x),
        _ => invalid("Range inputs must be scalars"),
    }
}

/// Float ranges as onnxruntime computes them: the count from `ceil((limit - start) /
/// delta)` in double, the values by repeated `+= delta` in the tensor's type.
fn float_range<T>(
    start: &Value,
    limit: &Value,
    delta: &Value,
    budget: u64,
    wide: fn(T) -> f64,
) -> FoldResult<Value>
where
    T: super::value::Elem + std::ops::Sub<Output = T> + std::ops::AddAssign,
{
    let (mut s, l, d) = (
        scalar::<T>(start)?,
        scalar::<T>(limit)?,
        scalar::<T>(delta)?,
    );
    if wide(d) == 0.0 {
        return invalid("Range delta 0");
    }
    let count = (wide(l - s) / wide(d)).ceil();
    if !count.is_finite() {
        return invalid("Range with a non-finite count");
    }
    let n = count.max(0.0) as usize;
    guard(start.dtype, &[n], budget)?;
    let mut vals = Vec::with_capacity(n);
    for _ in 0..n {
        vals.push(s);
        s += d;
    }
    Ok(Value::from_vec(vec![n], &vals))
}

fn int_range(start: &Value, limit: &Value, delta: &Value, budget: u64) -> FoldResult<Value> {
    let one = |v: &Value| -> FoldResult<i64> {
        match v.to_i64s()?.as_slice() {
            [x] => Ok(*x),
            _ => invalid("Range inputs must be scalars"),
        }
    };
    let (s, l, d) = (one(start)?, one(limit)?, one(delta)?);
    if d == 0 {
        return invalid("Range delta 0");
    }
    let span = i128::from(l) - i128::from(s);
    let n = usize::try_from(((span + i128::from(d) - d.signum() as i128) / i128::from(d)).max(0))
        .unwrap_or(usize::MAX);
    guard(start.dtype, &[n], budget)?;
    let vals: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
    Ok(match start.dtype {
        DataType::INT32 => {
            Value::from_vec(vec![n], &vals.iter().map(|&v| v as i32).collect::<Vec<_>>())
        }
        _ => Value::from_vec(vec![n], &vals),
    })
}
