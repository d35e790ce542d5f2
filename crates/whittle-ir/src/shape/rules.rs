//! The op table: which rule infers which default-domain op, and the elementwise rules
//! (unary, broadcasting binary/variadic, comparisons, casts, normalizations, constants).
//!
//! A rule returns `None` for an op it does not know; the caller then leaves the outputs
//! unknown (or takes the file's `value_info`). Ops of other domains are never inferred.
use super::cx::{Cx, Inferred, Sv, tensor_floats, tensor_ints};
use super::dim::{Dim, ValueShape, broadcast};
use super::{conv, layout, reduce, slicing};
use crate::dtype::DataType;

/// Ops whose output 0 has input 0's shape and dtype.
const SAME_AS_INPUT: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "BatchNormalization",
    "Ceil",
    "Celu",
    "Clip",
    "Cos",
    "Cosh",
    "CumSum",
    "Elu",
    "Erf",
    "Exp",
    "Floor",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "InstanceNormalization",
    "LRN",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MeanVarianceNormalization",
    "Mish",
    "Neg",
    "PRelu",
    "Reciprocal",
    "Relu",
    "Round",
    "Selu",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Softmax",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Trilu",
];

/// Broadcasting ops whose result has the inputs' dtype.
const BROADCAST: &[&str] = &[
    "Add",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "Div",
    "Max",
    "Mean",
    "Min",
    "Mod",
    "Mul",
    "Pow",
    "Sub",
    "Sum",
];

/// Broadcasting ops whose result is bool.
const COMPARE: &[&str] = &[
    "And",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Or",
    "Xor",
];

/// Infers one default-domain node; `None` when the op has no rule here.
pub fn infer_node(cx: &Cx) -> Option<Inferred> {
    if !cx.node.domain().is_empty() {
        return None;
    }
    let op = cx.node.op_type();
    if SAME_AS_INPUT.contains(&op) {
        return Some(same_as_input(cx));
    }
    if BROADCAST.contains(&op) {
        return Some(broadcasting(cx, cx.dtype(0)));
    }
    if COMPARE.contains(&op) {
        return Some(broadcasting(cx, Some(DataType::BOOL)));
    }
    let inferred = match op {
        "Not" | "IsNaN" | "IsInf" => Inferred::one(ValueShape {
            dtype: Some(DataType::BOOL),
            dims: cx.dims(0).map(<[Dim]>::to_vec),
        })
        .with_value(if op == "Not" { not_values(cx) } else { None }),
        "Where" => where_(cx),
        "Cast" => cast(cx),
        "CastLike" => Inferred::one(ValueShape {
            dtype: cx.dtype(1),
            dims: cx.dims(0).map(<[Dim]>::to_vec),
        }),
        "Dropout" => dropout(cx),
        "LayerNormalization" => reduce::layer_norm(cx),
        "QuantizeLinear" | "DequantizeLinear" | "DynamicQuantizeLinear" => quantize(cx),
        "Constant" => constant(cx),
        "Conv" | "ConvInteger" | "QLinearConv" => conv::conv(cx),
        "ConvTranspose" => conv::conv_transpose(cx),
        "MaxPool" | "AveragePool" | "LpPool" => conv::pool(cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => conv::global_pool(cx),
        "MatMul" | "MatMulInteger" | "QLinearMatMul" => conv::matmul(cx),
        "Gemm" => conv::gemm(cx),
        _ => {
            return layout::infer(cx)
                .or_else(|| slicing::infer(cx))
                .or_else(|| reduce::infer(cx));
        }
    };
    Some(inferred)
}

fn same_as_input(cx: &Cx) -> Inferred {
    let op = cx.node.op_type();
    let value = match op {
        "Identity" => cx.values(0).map(<[Sv]>::to_vec),
        _ => None,
    };
    Inferred::one(cx.like0(cx.dims(0).map(<[Dim]>::to_vec))).with_value(value)
}

/// Numpy broadcasting over every input; before opset 7 the legacy `broadcast`/`axis`
/// form, where the result always has input 0's shape.
fn broadcasting(cx: &Cx, dtype: Option<DataType>) -> Inferred {
    let dims = if cx.opset < 7 && cx.node.op_type() != "Pow" {
        cx.dims(0).map(<[Dim]>::to_vec)
    } else {
        broadcast_inputs(cx, 0..cx.node.inputs().len())
    };
    let value = int_arithmetic(cx);
    Inferred::one(ValueShape { dtype, dims }).with_value(value)
}

/// The broadcast of the given inputs' shapes; `None` if any rank is unknown.
pub fn broadcast_inputs(cx: &Cx, inputs: impl Iterator<Item = usize>) -> Option<Vec<Dim>> {
    let mut acc: Option<Vec<Dim>> = None;
    for i in inputs {
        let d = cx.dims(i)?;
        acc = Some(match acc {
            None => d.to_vec(),
            Some(a) => broadcast(&a, d),
        });
    }
    acc
}

/// Contents of Add/Sub/Mul/Div and of comparisons (as 0/1) of two tracked integer
/// tensors: shape arithmetic such as `Div(Gather(Shape(x), 2), heads)`, or the
/// `Equal(Gather(Shape(x), -1), 1)` that decides an exported `If`. A scalar broadcasts;
/// anything else must match.
fn int_arithmetic(cx: &Cx) -> Option<Vec<Sv>> {
    let op = cx.node.op_type();
    let known = matches!(
        op,
        "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Equal"
            | "Less"
            | "Greater"
            | "LessOrEqual"
            | "GreaterOrEqual"
    );
    if !known || !cx.dtype(0).is_some_and(is_int) {
        return None;
    }
    let (a, b) = (cx.values(0)?, cx.values(1)?);
    let n = a.len().max(b.len());
    if !(a.len() == n || a.len() == 1) || !(b.len() == n || b.len() == 1) {
        return None;
    }
    let at = |v: &[Sv], i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
    (0..n)
        .map(|i| Some(int_op(op, at(a, i)?, at(b, i)?)))
        .collect()
}

fn int_op(op: &str, a: Sv, b: Sv) -> Sv {
    match (op, &a, &b) {
        ("Mul", s @ Sv::Sym(_), Sv::Int(1)) | ("Mul", Sv::Int(1), s @ Sv::Sym(_)) => s.clone(),
        ("Div", s @ Sv::Sym(_), Sv::Int(1)) => s.clone(),
        ("Add" | "Sub", s @ Sv::Sym(_), Sv::Int(0)) | ("Add", Sv::Int(0), s @ Sv::Sym(_)) => {
            s.clone()
        }
        ("Equal" | "LessOrEqual" | "GreaterOrEqual", Sv::Sym(x), Sv::Sym(y)) if x == y => {
            Sv::Int(1)
        }
        ("Less" | "Greater", Sv::Sym(x), Sv::Sym(y)) if x == y => Sv::Int(0),
        (_, Sv::Int(x), Sv::Int(y)) => {
            let r = match op {
                "Equal" => Some(i64::from(x == y)),
                "Less" => Some(i64::from(x < y)),
                "Greater" => Some(i64::from(x > y)),
                "LessOrEqual" => Some(i64::from(x <= y)),
                "GreaterOrEqual" => Some(i64::from(x >= y)),
                "Add" => x.checked_add(*y),
                "Sub" => x.checked_sub(*y),
                "Mul" => x.checked_mul(*y),
                // Integer Div truncates; only the unambiguous non-negative case is taken.
                _ if *x >= 0 && *y > 0 => Some(x / y),
                _ => None,
            };
            r.map_or(Sv::Unknown, Sv::Int)
        }
        _ => Sv::Unknown,
    }
}

/// Contents of `Not` of a tracked bool tensor.
fn not_values(cx: &Cx) -> Option<Vec<Sv>> {
    let v = cx.values(0)?;
    Some(
        v.iter()
            .map(|x| x.int().map_or(Sv::Unknown, |b| Sv::Int(i64::from(b == 0))))
            .collect(),
    )
}

pub fn is_int(d: DataType) -> bool {
    matches!(
        d,
        DataType::INT64 | DataType::INT32 | DataType::INT8 | DataType::UINT8
    ) || matches!(d.0, 4 | 5 | 12 | 13)
}

fn where_(cx: &Cx) -> Inferred {
    Inferred::one(ValueShape {
        dtype: cx.dtype(1).or(cx.dtype(2)),
        dims: broadcast_inputs(cx, 0..3),
    })
}

fn cast(cx: &Cx) -> Inferred {
    let to = cx
        .node
        .attr_int("to")
        .and_then(|t| i32::try_from(t).ok())
        .map(DataType);
    let from_int = cx
        .dtype(0)
        .is_some_and(|d| is_int(d) || d == DataType::BOOL);
    let value = match to {
        Some(t) if is_int(t) && from_int => cx.values(0).map(<[Sv]>::to_vec),
        Some(DataType::BOOL) if from_int => cx.values(0).map(|v| {
            v.iter()
                .map(|x| x.int().map_or(Sv::Unknown, |i| Sv::Int(i64::from(i != 0))))
                .collect()
        }),
        _ => None,
    };
    Inferred::one(ValueShape {
        dtype: to,
        dims: cx.dims(0).map(<[Dim]>::to_vec),
    })
    .with_value(value)
}

fn dropout(cx: &Cx) -> Inferred {
    let dims = cx.dims(0).map(<[Dim]>::to_vec);
    Inferred::many(vec![
        cx.like0(dims.clone()),
        ValueShape {
            dtype: Some(DataType::BOOL),
            dims,
        },
    ])
}

fn quantize(cx: &Cx) -> Inferred {
    let dims = cx.dims(0).map(<[Dim]>::to_vec);
    match cx.node.op_type() {
        "QuantizeLinear" => Inferred::one(ValueShape {
            dtype: if cx.has_input(2) {
                cx.dtype(2)
            } else {
                Some(DataType::UINT8)
            },
            dims,
        }),
        "DequantizeLinear" => Inferred::one(ValueShape {
            dtype: cx.dtype(1),
            dims,
        }),
        _ => Inferred::many(vec![
            ValueShape {
                dtype: Some(DataType::UINT8),
                dims,
            },
            ValueShape::new(Some(DataType::FLOAT), vec![]),
            ValueShape::new(Some(DataType::UINT8), vec![]),
        ]),
    }
}

/// `Constant`: the shape of whichever `value*` attribute it holds.
fn constant(cx: &Cx) -> Inferred {
    let Some(attr) = cx.node.attributes.first() else {
        return Inferred::one(ValueShape::unknown());
    };
    let p = &attr.proto;
    let list = |n: usize, dtype| ValueShape::new(Some(dtype), vec![Dim::Known(n as u64)]);
    let scalar = |dtype| ValueShape::new(Some(dtype), vec![]);
    let mut out = Inferred::default();
    let shape = match p.name() {
        "value" => match &attr.t {
            Some(t) => {
                out.value = tensor_ints(t).map(|v| v.into_iter().map(Sv::Int).collect());
                out.floats = tensor_floats(t);
                ValueShape::new(
                    Some(t.dtype()),
                    t.dims().iter().map(|&d| Dim::from_i64(d)).collect(),
                )
            }
            None => ValueShape::unknown(),
        },
        "value_int" => {
            out.value = p.i.map(|i| vec![Sv::Int(i)]);
            scalar(DataType::INT64)
        }
        "value_ints" => {
            out.value = Some(p.ints.iter().map(|&i| Sv::Int(i)).collect());
            list(p.ints.len(), DataType::INT64)
        }
        "value_float" => {
            out.floats = p.f.map(|f| vec![f]);
            scalar(DataType::FLOAT)
        }
        "value_floats" => {
            out.floats = Some(p.floats.clone());
            list(p.floats.len(), DataType::FLOAT)
        }
        "value_string" => scalar(DataType::STRING),
        "value_strings" => list(p.strings.len(), DataType::STRING),
        "sparse_value" => match &p.sparse_tensor {
            Some(s) => ValueShape::new(
                s.values.as_ref().map(|v| DataType(v.data_type())),
                s.dims.iter().map(|&d| Dim::from_i64(d)).collect(),
            ),
            None => ValueShape::unknown(),
        },
        _ => ValueShape::unknown(),
    };
    out.outputs = vec![shape];
    out
}
