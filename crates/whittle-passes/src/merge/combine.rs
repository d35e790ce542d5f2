//! The combiner: nodes after the members that turn their matched outputs into the merged
//! model's outputs (see [`super::Combine`] for what each one computes).
//!
//! Before any node is added, every group is checked: equal element types, equal ranks,
//! equal fixed dims (except concat's axis), a float type where the op needs one, a known
//! rank where an axis is used. Ops follow the merged opset: `Unsqueeze`/`ReduceMax` axes
//! move from attribute to input at 13/18, `Softmax` before 13 only on the last axis, `Max`
//! on integers from 12, `vote` from 9 (`OneHot`, `Where`). Axes are written non-negative.
use super::MergeError;
use super::build::{Emit, attr_int, shape_text, value_info};
use super::options::Combine;
use super::outputs::{Group, Port, agree};
use whittle_ir::DataType;
use whittle_ir::proto::ValueInfoProto;
use whittle_ir::shape::{Dim, ValueShape};

/// One output of the merged model and how it is computed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MergedOutput {
    pub name: String,
    #[serde(rename = "type")]
    pub type_text: String,
    /// E.g. `Mean(m0/scores, m1/scores)`.
    pub expr: String,
    #[serde(skip)]
    pub(crate) info: ValueInfoProto,
}

pub(crate) fn out(info: ValueInfoProto, shape: &ValueShape, expr: String) -> MergedOutput {
    MergedOutput {
        name: info.name().to_string(),
        type_text: shape_text(shape),
        expr,
        info,
    }
}

fn outputs_err(g: &Group, message: String) -> MergeError {
    MergeError::Outputs(format!("output {:?}: {message}", g.name))
}

/// The element type, which must be a float type for `op`.
pub(crate) fn float_type(g: &Group, s: &ValueShape, op: &str) -> Result<DataType, MergeError> {
    match s.dtype {
        Some(d @ (DataType::FLOAT | DataType::DOUBLE | DataType::FLOAT16 | DataType::BFLOAT16)) => {
            Ok(d)
        }
        Some(d) => Err(outputs_err(g, format!("{op} needs a float type, not {d}"))),
        None => Err(outputs_err(g, "its element type is not known".into())),
    }
}

/// `axis` made non-negative against the known rank.
pub(crate) fn axis_of(g: &Group, s: &ValueShape, axis: i64) -> Result<usize, MergeError> {
    let rank = s.rank().ok_or_else(|| {
        outputs_err(
            g,
            "its rank is not known, and the combiner needs an axis".into(),
        )
    })? as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&a) {
        return Err(outputs_err(
            g,
            format!("axis {axis} is out of range for rank {rank}"),
        ));
    }
    Ok(a as usize)
}

fn known_type(g: &Group, s: &ValueShape) -> Result<DataType, MergeError> {
    s.dtype
        .ok_or_else(|| outputs_err(g, "its element type is not known".into()))
}

fn is_numeric(d: DataType) -> bool {
    d != DataType::BOOL && d != DataType::STRING && d.bits().is_some()
}

fn call(op: &str, args: &[String]) -> String {
    format!("{op}({})", args.join(", "))
}

/// Adds the combiner for every group; returns the merged outputs in order.
pub(crate) fn emit(
    e: &mut Emit,
    combine: &Combine,
    axis: i64,
    ports: &[Vec<Port>],
    groups: &[Group],
    labels: &[String],
) -> Result<Vec<MergedOutput>, MergeError> {
    let mut outs = Vec::new();
    if *combine == Combine::All {
        for p in ports.iter().flatten() {
            outs.push(direct(e, &outs, p));
        }
        return Ok(outs);
    }
    for g in groups {
        let except = match combine {
            Combine::Concat => Some(axis_of(g, &g.ports[0].shape, axis)?),
            _ => None,
        };
        let shape = agree(g, labels, except)?;
        outs.extend(one(e, combine, axis, g, &shape, &outs)?);
    }
    Ok(outs)
}

/// A member output as a merged output (an `Identity` when the value is already one).
fn direct(e: &mut Emit, outs: &[MergedOutput], p: &Port) -> MergedOutput {
    let mut info = p.info.clone();
    info.name = Some(p.value.clone());
    if outs.iter().any(|o| o.name == p.value) {
        let name = e.names.fresh(&format!("{}/out", p.value));
        e.op(
            "Identity",
            &p.value,
            &[&p.value],
            Vec::new(),
            Some(name.clone()),
        );
        info.name = Some(name);
    }
    out(info, &p.shape, p.value.clone())
}

fn one(
    e: &mut Emit,
    combine: &Combine,
    axis: i64,
    g: &Group,
    shape: &ValueShape,
    done: &[MergedOutput],
) -> Result<Vec<MergedOutput>, MergeError> {
    let vals: Vec<&str> = g.ports.iter().map(|p| p.value.as_str()).collect();
    let names: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
    let scope = g.name.clone();
    let typed = |name: String, s: &ValueShape| -> Result<ValueInfoProto, MergeError> {
        Ok(value_info(&name, known_type(g, s)?, s.dims.as_deref()))
    };
    let result = |e: &mut Emit, op: &str, inputs: &[&str], attrs| {
        let name = e.names.fresh(&g.name);
        e.op(op, &scope, inputs, attrs, Some(name))
    };
    Ok(match combine {
        Combine::Mean => {
            float_type(g, shape, "mean")?;
            let v = result(e, "Mean", &vals, Vec::new());
            vec![out(typed(v, shape)?, shape, call("Mean", &names))]
        }
        Combine::Weighted(w) => {
            let dtype = float_type(g, shape, "weighted")?;
            let total: f64 = w.iter().sum();
            let mut terms = Vec::new();
            let mut exprs = Vec::new();
            for (k, v) in vals.iter().enumerate() {
                let c = e.float_scalar(&scope, &format!("weight{k}"), dtype, w[k] / total);
                terms.push(e.op("Mul", &scope, &[v, &c], Vec::new(), None));
                exprs.push(format!("{v}·{}", w[k] / total));
            }
            let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
            let v = result(e, "Sum", &refs, Vec::new());
            vec![out(typed(v, shape)?, shape, call("Sum", &exprs))]
        }
        Combine::Max => {
            let d = known_type(g, shape)?;
            if !d.is_float() && (e.opset < 12 || !is_numeric(d)) {
                return Err(outputs_err(
                    g,
                    format!(
                        "max of {d} needs ai.onnx opset 12 or newer and a numeric type (the merge is at {})",
                        e.opset
                    ),
                ));
            }
            let v = result(e, "Max", &vals, Vec::new());
            vec![out(typed(v, shape)?, shape, call("Max", &names))]
        }
        Combine::SoftmaxMean => {
            float_type(g, shape, "softmax-mean")?;
            let a = axis_of(g, shape, axis)?;
            let rank = shape.rank().unwrap_or(0);
            if e.opset < 13 && a + 1 != rank {
                return Err(outputs_err(
                    g,
                    format!(
                        "Softmax before opset 13 flattens from the axis on, so only the last axis ({}) works; merge with --opset 13 or newer",
                        rank.saturating_sub(1)
                    ),
                ));
            }
            let probs: Vec<String> = vals
                .iter()
                .map(|v| {
                    e.op(
                        "Softmax",
                        &scope,
                        &[v],
                        vec![attr_int("axis", a as i64)],
                        None,
                    )
                })
                .collect();
            let refs: Vec<&str> = probs.iter().map(String::as_str).collect();
            let v = result(e, "Mean", &refs, Vec::new());
            let inner: Vec<String> = names
                .iter()
                .map(|n| format!("Softmax({n}, axis={a})"))
                .collect();
            vec![out(typed(v, shape)?, shape, call("Mean", &inner))]
        }
        Combine::Vote => super::vote::vote(e, g, shape, axis)?,
        Combine::Concat => {
            let a = axis_of(g, shape, axis)?;
            let v = result(e, "Concat", &vals, vec![attr_int("axis", a as i64)]);
            let expr = format!("Concat({}, axis={a})", names.join(", "));
            vec![out(typed(v, shape)?, shape, expr)]
        }
        Combine::Stack => {
            let ups: Vec<String> = vals.iter().map(|v| e.unsqueeze(&scope, v, &[0])).collect();
            let refs: Vec<&str> = ups.iter().map(String::as_str).collect();
            let v = result(e, "Concat", &refs, vec![attr_int("axis", 0)]);
            let mut stacked = shape.clone();
            if let Some(d) = &mut stacked.dims {
                d.insert(0, Dim::Known(vals.len() as u64));
            }
            let inner: Vec<String> = names.iter().map(|n| format!("Unsqueeze({n}, 0)")).collect();
            let expr = format!("Concat({}, axis=0)", inner.join(", "));
            vec![out(typed(v, &stacked)?, &stacked, expr)]
        }
        Combine::Diff => {
            let d = known_type(g, shape)?;
            if !is_numeric(d) {
                return Err(outputs_err(
                    g,
                    format!("diff needs a numeric type, not {d}"),
                ));
            }
            if vals.len() != 2 {
                return Err(MergeError::Usage(format!(
                    "diff compares two members, not {}",
                    vals.len()
                )));
            }
            let mut outs = vec![direct(e, done, &g.ports[0])];
            let all: Vec<MergedOutput> = done.iter().chain(&outs).cloned().collect();
            outs.push(direct(e, &all, &g.ports[1]));
            let sub = e.op("Sub", &scope, &vals, Vec::new(), None);
            let name = e.names.fresh(&format!("{}/absdiff", g.name));
            let v = e.op("Abs", &scope, &[&sub], Vec::new(), Some(name));
            let expr = format!("Abs(Sub({}, {}))", vals[0], vals[1]);
            outs.push(out(typed(v, shape)?, shape, expr));
            outs
        }
        Combine::All => Vec::new(), // handled by the caller: no groups
    })
}
