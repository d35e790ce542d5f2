//! Which nodes are no-ops: their first output equals their first input, element for
//! element, dtype and dims included. Used by identity elimination.
//!
//! Each rule is conservative: an input whose constant value or shape is not known makes
//! the node not a no-op (it is left alone).
use std::collections::HashMap;
use whittle_ir::shape::{Dim, ShapeMap};
use whittle_ir::{DataType, Node, Tensor};

/// What a rule may look at.
pub struct NoopCx<'a> {
    pub consts: &'a HashMap<String, &'a Tensor>,
    pub shapes: &'a ShapeMap,
    pub opset: i64,
}

impl NoopCx<'_> {
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        let t = self.consts.get(name)?;
        let v = super::fold::value::Value::from_tensor(t).ok()?;
        v.to_i64s().ok()
    }

    fn input_ints(&self, n: &Node, i: usize) -> Option<Vec<i64>> {
        n.inputs()
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| self.ints(s))
    }

    fn dims(&self, name: &str) -> Option<Vec<Dim>> {
        if let Some(t) = self.consts.get(name) {
            return Some(t.dims().iter().map(|&d| Dim::from_i64(d)).collect());
        }
        self.shapes.dims(name).map(<[Dim]>::to_vec)
    }

    fn dtype(&self, name: &str) -> Option<DataType> {
        if let Some(t) = self.consts.get(name) {
            return Some(t.dtype());
        }
        self.shapes.get(name)?.dtype
    }
}

/// `Some(why)` when `n` (default domain) passes its first input through unchanged.
pub fn is_noop(n: &Node, cx: &NoopCx) -> Option<&'static str> {
    let x = n.inputs().first().filter(|s| !s.is_empty())?;
    match n.op_type() {
        "Identity" => Some("a copy"),
        "Dropout" => match n.inputs().get(2).filter(|s| !s.is_empty()) {
            None => Some("inference mode"),
            Some(mode) => cx
                .consts
                .get(mode.as_str())
                .and_then(|t| t.le_bytes().ok())
                .is_some_and(|b| b.iter().all(|&v| v == 0))
                .then_some("inference mode"),
        },
        "Cast" => n
            .attr_int("to")
            .is_some_and(|to| cx.dtype(x) == Some(DataType(to as i32)))
            .then_some("to its own dtype"),
        "Transpose" => match n.attr_ints("perm") {
            Some(p) => p.iter().enumerate().all(|(i, &v)| v == i as i64),
            None => cx.dims(x).is_some_and(|d| d.len() <= 1),
        }
        .then_some("identity perm"),
        "Pad" => {
            let pads = if cx.opset < 11 {
                n.attr_ints("pads")
                    .or_else(|| n.attr_ints("paddings"))
                    .map(<[i64]>::to_vec)
            } else {
                cx.input_ints(n, 1)
            };
            pads.is_some_and(|p| p.iter().all(|&v| v == 0))
                .then_some("all pads zero")
        }
        "Reshape" => {
            let shape = if cx.opset < 5 {
                n.attr_ints("shape").map(<[i64]>::to_vec)
            } else {
                cx.input_ints(n, 1)
            };
            let keeps = match (shape, cx.dims(x)) {
                (Some(s), Some(d)) => {
                    reshape_keeps(&d, &s, n.attr_int("allowzero").unwrap_or(0) != 0)
                }
                _ => false,
            };
            keeps.then_some("to the same shape")
        }
        "Expand" => match (cx.input_ints(n, 1), cx.dims(x)) {
            (Some(s), Some(d)) => expand_keeps(&d, &s).then_some("to the same shape"),
            _ => None,
        },
        "Slice" => slice_keeps(n, cx, x).then_some("of everything"),
        "Concat" => (n.inputs().len() == 1).then_some("of one input"),
        _ => None,
    }
}

/// Whether `Reshape` to `shape` leaves dims `d` as they are.
pub fn reshape_keeps(d: &[Dim], shape: &[i64], allow_zero: bool) -> bool {
    if d.len() != shape.len() {
        return false;
    }
    let mut inferred = 0;
    for (dim, &s) in d.iter().zip(shape) {
        match (dim, s) {
            (_, 0) if !allow_zero => {}
            (_, -1) => inferred += 1,
            (Dim::Known(k), s) if s >= 0 && *k == s as u64 => {}
            _ => return false,
        }
    }
    // One -1 with every other dim kept resolves to the remaining dim itself.
    inferred <= 1
}

/// Whether `Expand` to `shape` leaves dims `d` as they are.
pub fn expand_keeps(d: &[Dim], shape: &[i64]) -> bool {
    if shape.len() > d.len() {
        return false;
    }
    let off = d.len() - shape.len();
    shape
        .iter()
        .enumerate()
        .all(|(i, &s)| s == 1 || matches!(d[off + i], Dim::Known(k) if k as i64 == s))
}

/// Whether a `Slice` selects every element, in order.
fn slice_keeps(n: &Node, cx: &NoopCx, x: &str) -> bool {
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        let a = |k: &str| n.attr_ints(k).map(<[i64]>::to_vec);
        (a("starts"), a("ends"), a("axes"), None)
    } else {
        let opt = |i: usize| match n.inputs().get(i).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(name) => cx.ints(name).map(Some),
        };
        let (Some(s), Some(e)) = (cx.input_ints(n, 1), cx.input_ints(n, 2)) else {
            return false;
        };
        let (Some(axes), Some(steps)) = (opt(3), opt(4)) else {
            return false;
        };
        (Some(s), Some(e), axes, steps)
    };
    let (Some(starts), Some(ends)) = (starts, ends) else {
        return false;
    };
    let dims = cx.dims(x);
    let rank = dims.as_ref().map(Vec::len);
    for (k, &start) in starts.iter().enumerate() {
        let axis = axes.as_ref().map_or(Some(k as i64), |a| a.get(k).copied());
        let step = steps.as_ref().map_or(Some(1), |s| s.get(k).copied());
        let (Some(axis), Some(1), Some(&end)) = (axis, step, ends.get(k)) else {
            return false;
        };
        let dim = match (axis, rank) {
            (a, _) if a >= 0 => dims.as_ref().and_then(|d| d.get(a as usize)),
            (a, Some(r)) => dims.as_ref().and_then(|d| d.get((a + r as i64) as usize)),
            _ => None,
        };
        let known = dim.and_then(Dim::known);
        let start_ok = start == 0 || known.is_some_and(|d| start <= -(d as i64));
        // An end at or past i32::MAX is the exporters' "to the end".
        let end_ok = end >= i64::from(i32::MAX) || known.is_some_and(|d| end >= d as i64);
        if !(start_ok && end_ok) {
            return false;
        }
    }
    true
}
