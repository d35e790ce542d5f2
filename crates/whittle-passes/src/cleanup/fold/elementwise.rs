//! Elementwise kernels: arithmetic, comparisons, logic, `Where`, `Min`/`Max` and `Cast`.
//!
//! Exactness: float arithmetic is done in the tensor's own type with IEEE operations
//! (what onnxruntime's CPU kernels compute for one element); integer arithmetic is checked
//! and a node whose result would overflow or divide by zero is left unfolded; casts follow
//! C++ `static_cast` (float → int truncates; NaN or out-of-range values are not folded).
use super::value::{
    Elem, FoldResult, Value, broadcast_dims, broadcast_index, invalid, unsupported,
};
use whittle_ir::DataType;

/// Applies `f` to broadcast pairs of elements of `a` and `b`.
fn zip<A: Elem, R: Elem>(
    a: &Value,
    b: &Value,
    f: impl Fn(A, A) -> FoldResult<R>,
) -> FoldResult<Value> {
    let out = broadcast_dims(&a.dims, &b.dims)?;
    let (xa, xb) = (a.to_vec::<A>()?, b.to_vec::<A>()?);
    let (ia, ib) = (
        broadcast_index(&a.dims, &out),
        broadcast_index(&b.dims, &out),
    );
    let data = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| f(xa[i], xb[j]))
        .collect::<FoldResult<Vec<R>>>()?;
    Ok(Value::from_vec(out, &data))
}

fn map<A: Elem, R: Elem>(a: &Value, f: impl Fn(A) -> FoldResult<R>) -> FoldResult<Value> {
    let data = a
        .to_vec::<A>()?
        .into_iter()
        .map(f)
        .collect::<FoldResult<Vec<R>>>()?;
    Ok(Value::from_vec(a.dims.clone(), &data))
}

fn same_dtype(op: &str, a: &Value, b: &Value) -> FoldResult<()> {
    if a.dtype == b.dtype {
        Ok(())
    } else {
        invalid(format!("{op} of {} and {}", a.dtype, b.dtype))
    }
}

macro_rules! float_arith {
    ($t:ty, $op:expr, $a:expr, $b:expr) => {
        match $op {
            "Add" => zip::<$t, $t>($a, $b, |x, y| Ok(x + y)),
            "Sub" => zip::<$t, $t>($a, $b, |x, y| Ok(x - y)),
            "Mul" => zip::<$t, $t>($a, $b, |x, y| Ok(x * y)),
            "Div" => zip::<$t, $t>($a, $b, |x, y| Ok(x / y)),
            other => unsupported(format!("{other} on {}", $a.dtype)),
        }
    };
}

macro_rules! int_arith {
    ($t:ty, $op:expr, $a:expr, $b:expr) => {{
        let over =
            || super::value::FoldError::Invalid("integer overflow or division by zero".into());
        match $op {
            "Add" => zip::<$t, $t>($a, $b, |x, y| x.checked_add(y).ok_or_else(over)),
            "Sub" => zip::<$t, $t>($a, $b, |x, y| x.checked_sub(y).ok_or_else(over)),
            "Mul" => zip::<$t, $t>($a, $b, |x, y| x.checked_mul(y).ok_or_else(over)),
            "Div" => zip::<$t, $t>($a, $b, |x, y| x.checked_div(y).ok_or_else(over)),
            other => unsupported(format!("{other} on {}", $a.dtype)),
        }
    }};
}

/// `Add`, `Sub`, `Mul`, `Div` with numpy broadcasting.
pub fn arith(op: &str, a: &Value, b: &Value) -> FoldResult<Value> {
    same_dtype(op, a, b)?;
    match a.dtype {
        DataType::FLOAT => float_arith!(f32, op, a, b),
        DataType::DOUBLE => float_arith!(f64, op, a, b),
        DataType::INT64 => int_arith!(i64, op, a, b),
        DataType::INT32 => int_arith!(i32, op, a, b),
        d => unsupported(format!("{op} on {d}")),
    }
}

macro_rules! compare_as {
    ($t:ty, $op:expr, $a:expr, $b:expr) => {
        match $op {
            "Equal" => zip::<$t, bool>($a, $b, |x, y| Ok(x == y)),
            "Less" => zip::<$t, bool>($a, $b, |x, y| Ok(x < y)),
            "Greater" => zip::<$t, bool>($a, $b, |x, y| Ok(x > y)),
            "LessOrEqual" => zip::<$t, bool>($a, $b, |x, y| Ok(x <= y)),
            "GreaterOrEqual" => zip::<$t, bool>($a, $b, |x, y| Ok(x >= y)),
            other => unsupported(other.to_string()),
        }
    };
}

/// `Equal`, `Less`, `Greater`, `LessOrEqual`, `GreaterOrEqual` → bool.
pub fn compare(op: &str, a: &Value, b: &Value) -> FoldResult<Value> {
    same_dtype(op, a, b)?;
    match a.dtype {
        DataType::FLOAT => compare_as!(f32, op, a, b),
        DataType::DOUBLE => compare_as!(f64, op, a, b),
        DataType::INT64 => compare_as!(i64, op, a, b),
        DataType::INT32 => compare_as!(i32, op, a, b),
        DataType::INT8 => compare_as!(i8, op, a, b),
        DataType::UINT8 => compare_as!(u8, op, a, b),
        DataType::BOOL if op == "Equal" => zip::<bool, bool>(a, b, |x, y| Ok(x == y)),
        d => unsupported(format!("{op} on {d}")),
    }
}

/// `And`, `Or`, `Xor` on bool, `Not` (with `b` absent).
pub fn logic(op: &str, a: &Value, b: Option<&Value>) -> FoldResult<Value> {
    match (op, b) {
        ("Not", None) => map::<bool, bool>(a, |x| Ok(!x)),
        ("And", Some(b)) => zip::<bool, bool>(a, b, |x, y| Ok(x && y)),
        ("Or", Some(b)) => zip::<bool, bool>(a, b, |x, y| Ok(x || y)),
        ("Xor", Some(b)) => zip::<bool, bool>(a, b, |x, y| Ok(x ^ y)),
        _ => invalid(format!("{op}: wrong number of inputs")),
    }
}

/// Unary math: `Neg`, `Abs`, `Relu` (float and int); `Sqrt`, `Reciprocal`, `Floor`,
/// `Ceil` (float).
pub fn unary(op: &str, a: &Value) -> FoldResult<Value> {
    let over = || super::value::FoldError::Invalid("integer overflow".into());
    match (a.dtype, op) {
        (DataType::FLOAT, _) => {
            unary_float::<f32>(op, a, |x| x.sqrt(), |x| x.floor(), |x| x.ceil())
        }
        (DataType::DOUBLE, _) => {
            unary_float::<f64>(op, a, |x| x.sqrt(), |x| x.floor(), |x| x.ceil())
        }
        (DataType::INT64, "Neg") => map::<i64, i64>(a, |x| x.checked_neg().ok_or_else(over)),
        (DataType::INT64, "Abs") => map::<i64, i64>(a, |x| x.checked_abs().ok_or_else(over)),
        (DataType::INT64, "Relu") => map::<i64, i64>(a, |x| Ok(x.max(0))),
        (DataType::INT32, "Neg") => map::<i32, i32>(a, |x| x.checked_neg().ok_or_else(over)),
        (DataType::INT32, "Abs") => map::<i32, i32>(a, |x| x.checked_abs().ok_or_else(over)),
        (DataType::INT32, "Relu") => map::<i32, i32>(a, |x| Ok(x.max(0))),
        (d, op) => unsupported(format!("{op} on {d}")),
    }
}

fn unary_float<T>(
    op: &str,
    a: &Value,
    sqrt: fn(T) -> T,
    floor: fn(T) -> T,
    ceil: fn(T) -> T,
) -> FoldResult<Value>
where
    T: Elem + std::ops::Neg<Output = T> + std::ops::Div<Output = T> + From<f32>,
{
    let zero = T::from(0.0);
    let one = T::from(1.0);
    match op {
        "Neg" => map::<T, T>(a, |x| Ok(-x)),
        // Abs and Relu keep NaN as NaN and only touch the sign, as the C++ kernels do.
        "Abs" => map::<T, T>(a, |x| {
            Ok(if x < zero {
                -x
            } else if x == zero {
                zero
            } else {
                x
            })
        }),
        "Relu" => map::<T, T>(a, |x| Ok(if x < zero { zero } else { x })),
        "Sqrt" => map::<T, T>(a, |x| Ok(sqrt(x))),
        "Reciprocal" => map::<T, T>(a, |x| Ok(one / x)),
        "Floor" => map::<T, T>(a, |x| Ok(floor(x))),
        "Ceil" => map::<T, T>(a, |x| Ok(ceil(x))),
        other => unsupported(format!("{other} on {}", a.dtype)),
    }
}

/// `Min` / `Max` over any number of inputs (NaN inputs are not folded: runtimes disagree).
pub fn min_max(op: &str, inputs: &[&Value]) -> FoldResult<Value> {
    let Some((first, rest)) = inputs.split_first() else {
        return invalid(format!("{op} without inputs"));
    };
    let mut acc = (*first).clone();
    for b in rest {
        same_dtype(op, &acc, b)?;
        acc = match acc.dtype {
            DataType::FLOAT => pick::<f32>(op, &acc, b)?,
            DataType::DOUBLE => pick::<f64>(op, &acc, b)?,
            DataType::INT64 => pick::<i64>(op, &acc, b)?,
            DataType::INT32 => pick::<i32>(op, &acc, b)?,
            d => return unsupported(format!("{op} on {d}")),
        };
    }
    Ok(acc)
}

fn pick<T: Elem>(op: &str, a: &Value, b: &Value) -> FoldResult<Value> {
    let max = op == "Max";
    zip::<T, T>(a, b, |x, y| {
        // A NaN compares false both ways.
        if x.partial_cmp(&y).is_none() {
            return unsupported("NaN input");
        }
        Ok(if (x < y) == max { y } else { x })
    })
}

/// `Where(cond, x, y)` with three-way broadcasting, on any element type.
pub fn where_(cond: &Value, x: &Value, y: &Value) -> FoldResult<Value> {
    if cond.dtype != DataType::BOOL {
        return invalid(format!("Where condition is {}", cond.dtype));
    }
    same_dtype("Where", x, y)?;
    let out = broadcast_dims(&broadcast_dims(&cond.dims, &x.dims)?, &y.dims)?;
    let size = super::value::elem_size(x.dtype)?;
    let (ic, ix, iy) = (
        broadcast_index(&cond.dims, &out),
        broadcast_index(&x.dims, &out),
        broadcast_index(&y.dims, &out),
    );
    let mut bytes = Vec::with_capacity(ic.len() * size);
    for k in 0..ic.len() {
        let (src, i) = if cond.bytes[ic[k]] != 0 {
            (x, ix[k])
        } else {
            (y, iy[k])
        };
        bytes.extend_from_slice(&src.bytes[i * size..(i + 1) * size]);
    }
    Ok(Value {
        dtype: x.dtype,
        dims: out,
        bytes,
    })
}

/// `Cast` to `to` between float, double, float16, bfloat16, the integer types and bool.
pub fn cast(a: &Value, to: DataType) -> FoldResult<Value> {
    if a.dtype == to {
        return Ok(a.clone());
    }
    let src = read_f64_or_i64(a)?;
    let n = a.numel();
    let mut bytes = Vec::with_capacity(n * super::value::elem_size(to)?);
    for v in src {
        write_as(v, to, &mut bytes)?;
    }
    Ok(Value {
        dtype: to,
        dims: a.dims.clone(),
        bytes,
    })
}

/// An element read losslessly: floats widen to f64 exactly, integers stay integers.
#[derive(Clone, Copy)]
enum Num {
    F(f64),
    I(i128),
}

fn read_f64_or_i64(a: &Value) -> FoldResult<Vec<Num>> {
    let b = &a.bytes;
    Ok(match a.dtype {
        DataType::FLOAT => a
            .to_vec::<f32>()?
            .into_iter()
            .map(|x| Num::F(f64::from(x)))
            .collect(),
        DataType::DOUBLE => a.to_vec::<f64>()?.into_iter().map(Num::F).collect(),
        DataType::FLOAT16 => b
            .chunks_exact(2)
            .map(|c| Num::F(half::f16::from_le_bytes([c[0], c[1]]).to_f64()))
            .collect(),
        DataType::BFLOAT16 => b
            .chunks_exact(2)
            .map(|c| Num::F(half::bf16::from_le_bytes([c[0], c[1]]).to_f64()))
            .collect(),
        DataType::INT64 => a
            .to_vec::<i64>()?
            .into_iter()
            .map(|x| Num::I(i128::from(x)))
            .collect(),
        DataType::INT32 => a
            .to_vec::<i32>()?
            .into_iter()
            .map(|x| Num::I(i128::from(x)))
            .collect(),
        DataType::INT8 => b.iter().map(|&x| Num::I(i128::from(x as i8))).collect(),
        DataType::UINT8 | DataType::BOOL => b.iter().map(|&x| Num::I(i128::from(x))).collect(),
        d => return unsupported(format!("Cast from {d}")),
    })
}

fn write_as(v: Num, to: DataType, out: &mut Vec<u8>) -> FoldResult<()> {
    let int = |lo: i128, hi: i128| -> FoldResult<i128> {
        let i = match v {
            Num::I(i) => i,
            Num::F(f) if f.is_finite() => f.trunc() as i128,
            Num::F(_) => return unsupported("Cast of NaN or infinity to an integer type"),
        };
        if (lo..=hi).contains(&i) {
            Ok(i)
        } else {
            unsupported(format!("Cast of {i} overflows {to}"))
        }
    };
    let float = || match v {
        Num::F(f) => f,
        Num::I(i) => i as f64,
    };
    match to {
        // Through f64 is exact for every source here except i64 beyond 2^53, which
        // is rounded directly instead (one rounding, as C++ does).
        DataType::FLOAT => match v {
            Num::I(i) => out.extend_from_slice(&(i as f32).to_le_bytes()),
            Num::F(f) => out.extend_from_slice(&(f as f32).to_le_bytes()),
        },
        DataType::DOUBLE => out.extend_from_slice(&float().to_le_bytes()),
        DataType::FLOAT16 => match v {
            Num::F(f) => out.extend_from_slice(&half::f16::from_f64(f).to_le_bytes()),
            Num::I(_) => return unsupported("Cast from an integer type to f16"),
        },
        DataType::INT64 => {
            out.extend_from_slice(&(int(i64::MIN.into(), i64::MAX.into())? as i64).to_le_bytes())
        }
        DataType::INT32 => {
            out.extend_from_slice(&(int(i32::MIN.into(), i32::MAX.into())? as i32).to_le_bytes())
        }
        DataType::INT8 => out.push(int(i8::MIN.into(), i8::MAX.into())? as i8 as u8),
        DataType::UINT8 => out.push(int(0, 255)? as u8),
        DataType::BOOL => out.push(u8::from(match v {
            Num::F(f) => f != 0.0,
            Num::I(i) => i != 0,
        })),
        d => return unsupported(format!("Cast to {d}")),
    }
    Ok(())
}
