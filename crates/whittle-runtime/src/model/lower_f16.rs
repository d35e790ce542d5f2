//! float16 → float32 on the copy handed to tract (tract cannot even type some f16 graphs,
//! e.g. an f16 `Gemm`).
//!
//! What changes, in the main graph and every subgraph: f16 initializers and attribute
//! tensors (`Constant` values, `ConstantOfShape` fills) become f32 holding the same numbers
//! (every f16 is exactly an f32); f16 element types of graph inputs, outputs and value_info
//! become f32; `to`/`dtype` attributes naming f16 (Cast, EyeLike, Random*) name f32.
//! The copy then computes in f32 what the model computes in f16 — exactly what the tract
//! backend's own `f16_to_f32` transform does for the graphs tract can type — so its outputs
//! differ from an f16 runtime by f16 rounding of intermediates only. Callers cast outputs
//! back to the declared f16 ([`super::Runner`] does).

use whittle_ir::proto::{TypeProto, ValueInfoProto, type_proto};
use whittle_ir::{DataType, Graph, Model, Tensor};

const F16: i32 = DataType::FLOAT16.0;
const F32: i32 = DataType::FLOAT.0;

/// Rewrites `model` in place; returns how many tensors, types and attributes changed.
pub(super) fn f16_to_f32(model: &mut Model) -> Result<usize, String> {
    graph(&mut model.graph)
}

fn graph(g: &mut Graph) -> Result<usize, String> {
    let mut changed = 0;
    for t in &mut g.initializers {
        changed += tensor(t)?;
    }
    let infos = g
        .proto
        .input
        .iter_mut()
        .chain(g.proto.output.iter_mut())
        .chain(g.proto.value_info.iter_mut());
    for info in infos {
        changed += value_info(info);
    }
    for n in g.nodes_mut() {
        for a in &mut n.attributes {
            let name = a.proto.name().to_string();
            if (name == "to" || name == "dtype") && a.proto.i == Some(i64::from(F16)) {
                a.proto.i = Some(i64::from(F32));
                changed += 1;
            }
        }
        for t in n.attribute_tensors_mut() {
            changed += tensor(t)?;
        }
        for sub in n.subgraphs_mut() {
            changed += graph(sub)?;
        }
    }
    Ok(changed)
}

fn tensor(t: &mut Tensor) -> Result<usize, String> {
    if t.dtype() != DataType::FLOAT16 {
        return Ok(0);
    }
    let values = t
        .to_f32_vec()
        .map_err(|e| format!("f16 tensor \"{}\": {e}", t.name()))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.set_raw(bytes.into());
    t.proto.data_type = Some(F32);
    Ok(1)
}

fn value_info(info: &mut ValueInfoProto) -> usize {
    match info.r#type.as_mut() {
        Some(ty) => type_proto_f32(ty),
        None => 0,
    }
}

fn type_proto_f32(ty: &mut TypeProto) -> usize {
    match ty.value.as_mut() {
        Some(type_proto::Value::TensorType(t)) if t.elem_type == Some(F16) => {
            t.elem_type = Some(F32);
            1
        }
        _ => 0,
    }
}

/// True when anything in the model is float16 (tensors, declared types, casts).
pub(super) fn uses_f16(model: &Model) -> bool {
    let mut found = false;
    model.graph.walk(&mut |g, _| {
        let declared = g
            .proto
            .input
            .iter()
            .chain(&g.proto.output)
            .chain(&g.proto.value_info)
            .any(|i| {
                matches!(
                    i.r#type.as_ref().and_then(|t| t.value.as_ref()),
                    Some(type_proto::Value::TensorType(t)) if t.elem_type == Some(F16)
                )
            });
        let tensors = g
            .initializers
            .iter()
            .any(|t| t.dtype() == DataType::FLOAT16)
            || g.nodes().any(|(_, n)| {
                n.attribute_tensors()
                    .any(|t| t.dtype() == DataType::FLOAT16)
                    || n.attributes.iter().any(|a| {
                        matches!(a.proto.name(), "to" | "dtype")
                            && a.proto.i == Some(i64::from(F16))
                    })
            });
        found |= declared || tensors;
    });
    found
}
