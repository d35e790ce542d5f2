//! Reductions and the ops whose output drops or replaces axes: Reduce* (axes attribute,
//! or input — from opset 13 for ReduceSum, 18 for the others — with `keepdims` and
//! `noop_with_empty_axes`), ArgMax/ArgMin, TopK, LayerNormalization's statistics,
//! NonZero, and the recurrent ops LSTM/GRU/RNN.
use super::cx::{Cx, Inferred};
use super::dim::{Dim, ValueShape, norm_axis};
use crate::dtype::DataType;

const REDUCE: &[&str] = &[
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
];

/// The rules of this module; `None` for other ops.
pub fn infer(cx: &Cx) -> Option<Inferred> {
    let op = cx.node.op_type();
    if REDUCE.contains(&op) {
        return Some(reduce(cx));
    }
    Some(match op {
        "ArgMax" | "ArgMin" => arg_reduce(cx),
        "TopK" => top_k(cx),
        "NonZero" => {
            let rank = cx.rank_dim(0);
            Inferred::one(ValueShape::new(
                Some(DataType::INT64),
                vec![rank, Dim::Unknown],
            ))
        }
        "LSTM" | "GRU" | "RNN" => recurrent(cx),
        _ => return None,
    })
}

/// Dims after reducing `axes` (already normalized), kept as 1 or dropped.
fn reduced(x: &[Dim], axes: &[usize], keepdims: bool) -> Vec<Dim> {
    x.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d.clone()),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

fn reduce(cx: &Cx) -> Inferred {
    let since = if cx.node.op_type() == "ReduceSum" {
        13
    } else {
        18
    };
    let keepdims = cx.attr_int("keepdims", 1) != 0;
    let noop = cx.attr_int("noop_with_empty_axes", 0) != 0;
    let given = cx.has_attr_or_input("axes", 1, since);
    let axes = cx.ints_attr_or_input("axes", 1, since);
    let dims = cx.dims(0).and_then(|x| match axes {
        Some(a) if !a.is_empty() => {
            let a: Vec<usize> = a
                .iter()
                .map(|&a| norm_axis(a, x.len()))
                .collect::<Option<_>>()?;
            Some(reduced(x, &a, keepdims))
        }
        // Axes given but not constant: with keepdims the rank survives.
        None if given => keepdims.then(|| vec![Dim::Unknown; x.len()]),
        _ if noop && cx.opset >= since => Some(x.to_vec()),
        _ => Some(reduced(x, &(0..x.len()).collect::<Vec<_>>(), keepdims)),
    });
    Inferred::one(cx.like0(dims))
}

fn arg_reduce(cx: &Cx) -> Inferred {
    let keepdims = cx.attr_int("keepdims", 1) != 0;
    let dims = cx.dims(0).and_then(|x| {
        norm_axis(cx.attr_int("axis", 0), x.len()).map(|a| reduced(x, &[a], keepdims))
    });
    Inferred::one(ValueShape {
        dtype: Some(DataType::INT64),
        dims,
    })
}

fn top_k(cx: &Cx) -> Inferred {
    let k = if cx.opset < 10 {
        cx.node.attr_int("k")
    } else {
        cx.ints(1).filter(|v| v.len() == 1).map(|v| v[0])
    };
    let dims = cx.dims(0).and_then(|x| {
        let a = norm_axis(cx.attr_int("axis", -1), x.len())?;
        let mut d = x.to_vec();
        d[a] = k.map_or(Dim::Unknown, Dim::from_i64);
        Some(d)
    });
    Inferred::many(vec![
        cx.like0(dims.clone()),
        ValueShape {
            dtype: Some(DataType::INT64),
            dims,
        },
    ])
}

/// LayerNormalization: Y like X; Mean and InvStdDev have X's dims with the normalized
/// axes (from `axis`, default −1, to the end) set to 1, in the stash type (float).
pub fn layer_norm(cx: &Cx) -> Inferred {
    let x = cx.dims(0).map(<[Dim]>::to_vec);
    let stats = x.as_ref().and_then(|x| {
        let a = norm_axis(cx.attr_int("axis", -1), x.len())?;
        Some(
            x.iter()
                .enumerate()
                .map(|(i, d)| if i >= a { Dim::Known(1) } else { d.clone() })
                .collect(),
        )
    });
    let stash = ValueShape {
        dtype: Some(DataType::FLOAT),
        dims: stats,
    };
    Inferred::many(vec![cx.like0(x), stash.clone(), stash])
}

/// LSTM/GRU/RNN: `Y` is `[seq, dirs, batch, hidden]` (`layout` 0) or
/// `[batch, seq, dirs, hidden]` (`layout` 1); `Y_h` (and LSTM's `Y_c`) `[dirs, batch, hidden]`
/// or `[batch, dirs, hidden]`.
fn recurrent(cx: &Cx) -> Inferred {
    let dirs = if cx.attr_str("direction").as_deref() == Some("bidirectional") {
        2
    } else {
        1
    };
    let hidden = cx
        .node
        .attr_int("hidden_size")
        .map_or(Dim::Unknown, Dim::from_i64);
    let layout = cx.attr_int("layout", 0);
    let Some(x) = cx.dims(0).filter(|x| x.len() == 3) else {
        return Inferred::many(vec![cx.like0(None); 3]);
    };
    let (seq, batch) = if layout == 0 {
        (&x[0], &x[1])
    } else {
        (&x[1], &x[0])
    };
    let d = Dim::Known(dirs);
    let (y, state) = if layout == 0 {
        (
            vec![seq.clone(), d.clone(), batch.clone(), hidden.clone()],
            vec![d, batch.clone(), hidden],
        )
    } else {
        (
            vec![batch.clone(), seq.clone(), d.clone(), hidden.clone()],
            vec![batch.clone(), d, hidden],
        )
    };
    Inferred::many(vec![
        cx.like0(Some(y)),
        cx.like0(Some(state.clone())),
        cx.like0(Some(state)),
    ])
}
