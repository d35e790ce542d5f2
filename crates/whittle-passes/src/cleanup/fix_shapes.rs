//! Fixing input shapes (`--shape NAME=1x3x224x224`, `--batch N`): the main graph's input
//! dims become numbers, and every symbol the overrides bind (`N` → 1) is replaced by its
//! number wherever a type declares it (inputs, outputs, `value_info`, in every graph).
//! Shape inference then sees static shapes, so constant folding can remove the shape
//! arithmetic that depended on them.
//!
//! Invariants:
//! - overrides are checked by `whittle_ir::shape` (unknown input, wrong rank, a number
//!   that contradicts a fixed dim, one symbol given two values): a mismatch is an error,
//!   nothing is changed;
//! - a negative `dim_value` (some exporters write -1 for "unknown") counts as unknown.
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::BTreeMap;
use whittle_ir::proto::tensor_shape_proto::dimension::Value as DimValue;
use whittle_ir::proto::{ValueInfoProto, type_proto};
use whittle_ir::shape::{Dim, ShapeOverrides};
use whittle_ir::{Graph, Model};

/// The input-shape-fixing pass.
#[derive(Default)]
pub struct FixInputShapes {
    pub overrides: ShapeOverrides,
}

impl Pass for FixInputShapes {
    fn name(&self) -> &'static str {
        "fix-shapes"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        if self.overrides.is_empty() {
            return Ok(report);
        }
        let fail = |message: String| PassError::Failed {
            pass: "fix-shapes".into(),
            message,
        };
        // -1 means "unknown" to the exporters that write it; make it so before checking.
        for v in model.graph.proto.input.iter_mut() {
            for d in dims_mut(v) {
                if matches!(d.value, Some(DimValue::DimValue(x)) if x < 0) {
                    d.value = None;
                }
            }
        }
        let shapes = whittle_ir::shape::infer_shapes(model, &self.overrides)
            .map_err(|e| fail(e.to_string()))?;
        let bindings = shapes.bindings().clone();
        let inits: std::collections::HashSet<String> = model
            .graph
            .initializers
            .iter()
            .map(|t| t.name().to_string())
            .collect();
        for v in model
            .graph
            .proto
            .input
            .iter_mut()
            .filter(|v| !inits.contains(v.name()))
        {
            let Some(dims) = shapes.dims(v.name()).map(<[Dim]>::to_vec) else {
                continue;
            };
            let before = dims_text(v);
            let declared = dims_mut(v);
            if declared.len() != dims.len() {
                continue;
            }
            for (d, inferred) in declared.into_iter().zip(&dims) {
                if let (Dim::Known(n), false) =
                    (inferred, matches!(d.value, Some(DimValue::DimValue(_))))
                {
                    d.value = Some(DimValue::DimValue(*n as i64));
                }
            }
            let after = dims_text(v);
            if before != after {
                report
                    .changes
                    .push(format!("input {:?}: {before} -> {after}", v.name()));
            }
        }
        let mut count = 0;
        bind_symbols(&mut model.graph, &bindings, &mut count);
        for (sym, n) in &bindings {
            report.changes.push(format!("symbol {sym:?} = {n}"));
        }
        if count > 0 {
            report.changes.push(format!(
                "replaced bound symbols in {count} dims of declared types"
            ));
        }
        Ok(report)
    }
}

fn dims_mut(v: &mut ValueInfoProto) -> Vec<&mut whittle_ir::proto::tensor_shape_proto::Dimension> {
    match v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        Some(type_proto::Value::TensorType(t)) => t
            .shape
            .as_mut()
            .map(|s| s.dim.iter_mut().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn dims_text(v: &ValueInfoProto) -> String {
    v.r#type
        .as_ref()
        .map_or("?".into(), whittle_ir::types::type_string)
}

/// Replaces bound `dim_param`s in every declared type of `g` and its subgraphs.
fn bind_symbols(g: &mut Graph, bindings: &BTreeMap<String, u64>, count: &mut usize) {
    if bindings.is_empty() {
        return;
    }
    let p = &mut g.proto;
    for v in p
        .input
        .iter_mut()
        .chain(p.output.iter_mut())
        .chain(p.value_info.iter_mut())
    {
        for d in dims_mut(v) {
            if let Some(DimValue::DimParam(s)) = &d.value
                && let Some(&n) = bindings.get(s)
            {
                d.value = Some(DimValue::DimValue(n as i64));
                *count += 1;
            }
        }
    }
    for n in g.nodes_mut() {
        for sub in n.subgraphs_mut() {
            bind_symbols(sub, bindings, count);
        }
    }
}
