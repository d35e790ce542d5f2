//! Which merged input feeds which member input.
//!
//! Rules: a member input keeps its name unless `--input-map` maps it onto another; member
//! inputs with the same (mapped) name become one merged input, provided their element
//! types are equal and their shapes compatible (same rank; two fixed dims must be equal; a
//! fixed dim wins over a symbolic or unknown one). Inputs that also have an initializer
//! (overridable defaults of old IR versions) are never shared: they stay member-private and
//! are prefixed like every other name. Merged inputs come in order of first appearance.
use super::MergeError;
use super::members::Member;
use super::options::InputMap;
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::tensor_shape_proto::dimension::Value as DimValue;
use whittle_ir::proto::type_proto::Value as TypeValue;
use whittle_ir::proto::{TypeProto, ValueInfoProto};
use whittle_ir::types::type_string;

/// One input of the merged model.
pub(crate) struct SharedInput {
    /// Name and merged type.
    pub info: ValueInfoProto,
    /// The member inputs it feeds: (member, the member's input name).
    pub fed: Vec<(usize, String)>,
}

pub(crate) struct InputPlan {
    pub inputs: Vec<SharedInput>,
    /// Per member: its input name → the merged input's name.
    pub per_member: Vec<HashMap<String, String>>,
}

/// The inputs a caller feeds: graph inputs without an initializer of the same name.
pub(crate) fn feedable(m: &whittle_ir::Model) -> Vec<&ValueInfoProto> {
    let inits: HashSet<&str> = m.graph.initializers.iter().map(|t| t.name()).collect();
    m.graph
        .proto
        .input
        .iter()
        .filter(|v| !inits.contains(v.name()))
        .collect()
}

fn describe(t: Option<&TypeProto>) -> String {
    t.map_or("an untyped value".into(), type_string)
}

/// The type both `a` and `b` accept, or why there is none.
pub(crate) fn merge_type(a: &TypeProto, b: &TypeProto) -> Result<TypeProto, &'static str> {
    let (Some(TypeValue::TensorType(ta)), Some(TypeValue::TensorType(tb))) = (&a.value, &b.value)
    else {
        return if a == b {
            Ok(a.clone())
        } else {
            Err("types differ")
        };
    };
    if ta.elem_type != tb.elem_type {
        return Err("element types differ");
    }
    let shape = match (&ta.shape, &tb.shape) {
        (None, s) | (s, None) => s.clone(),
        (Some(sa), Some(sb)) => {
            if sa.dim.len() != sb.dim.len() {
                return Err("ranks differ");
            }
            let mut merged = sa.clone();
            for (da, db) in merged.dim.iter_mut().zip(&sb.dim) {
                match (&da.value, &db.value) {
                    (Some(DimValue::DimValue(x)), Some(DimValue::DimValue(y))) if x != y => {
                        return Err("static shapes differ");
                    }
                    (Some(DimValue::DimValue(_)), _) => {}
                    (_, Some(DimValue::DimValue(_))) => da.value = db.value.clone(),
                    (None, Some(_)) => da.value = db.value.clone(),
                    _ => {}
                }
            }
            Some(merged)
        }
    };
    let mut out = a.clone();
    if let Some(TypeValue::TensorType(t)) = &mut out.value {
        t.shape = shape;
    }
    Ok(out)
}

fn check_maps(members: &[Member], labels: &[String], maps: &[InputMap]) -> Result<(), MergeError> {
    for m in maps {
        let spelled = match m.member {
            Some(i) => format!("{i}:{}={}", m.name, m.shared),
            None => format!("{}={}", m.name, m.shared),
        };
        let has = |i: usize| {
            feedable(&members[i].model)
                .iter()
                .any(|v| v.name() == m.name)
        };
        match m.member {
            Some(i) if i >= members.len() => {
                return Err(MergeError::Inputs(format!(
                    "--input-map {spelled}: there is no member {i} (members are 0 to {})",
                    members.len() - 1
                )));
            }
            Some(i) if !has(i) => {
                let names: Vec<&str> = feedable(&members[i].model)
                    .iter()
                    .map(|v| v.name())
                    .collect();
                return Err(MergeError::Inputs(format!(
                    "--input-map {spelled}: {} has no input {:?} (its inputs: {})",
                    labels[i],
                    m.name,
                    names.join(", ")
                )));
            }
            None if !(0..members.len()).any(has) => {
                return Err(MergeError::Inputs(format!(
                    "--input-map {spelled}: no member has an input {:?}",
                    m.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn plan(
    members: &[Member],
    labels: &[String],
    maps: &[InputMap],
    prefixes: &[String],
) -> Result<InputPlan, MergeError> {
    check_maps(members, labels, maps)?;
    let mut inputs: Vec<SharedInput> = Vec::new();
    let mut per_member = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let mut mine = HashMap::new();
        for v in feedable(&member.model) {
            let map = maps
                .iter()
                .find(|m| m.member == Some(i) && m.name == v.name())
                .or_else(|| {
                    maps.iter()
                        .find(|m| m.member.is_none() && m.name == v.name())
                });
            let shared = map.map_or(v.name(), |m| m.shared.as_str());
            if let Some(p) = prefixes.iter().find(|p| shared.starts_with(p.as_str())) {
                return Err(MergeError::Inputs(format!(
                    "input {shared:?} starts with the member prefix {p:?}: renamed names could collide with it; choose other prefixes (--prefix)"
                )));
            }
            mine.insert(v.name().to_string(), shared.to_string());
            let Some(k) = inputs.iter().position(|s| s.info.name() == shared) else {
                let mut info = v.clone();
                info.name = Some(shared.to_string());
                inputs.push(SharedInput {
                    info,
                    fed: vec![(i, v.name().to_string())],
                });
                continue;
            };
            let entry = &mut inputs[k];
            for (j, their_name) in &entry.fed {
                let theirs = feedable(&members[*j].model)
                    .into_iter()
                    .find(|t| t.name() == their_name)
                    .and_then(|t| t.r#type.clone());
                let conflict = match (&theirs, &v.r#type) {
                    (Some(a), Some(b)) => merge_type(a, b).err(),
                    _ => None,
                };
                if let Some(why) = conflict {
                    let named = |name: &str| match name == shared {
                        true => String::new(),
                        false => format!(" (its input {name:?})"),
                    };
                    return Err(MergeError::Inputs(format!(
                        "input {shared:?}: {}{} has {} but {}{} has {} ({why}); map one of them to another name with --input-map",
                        labels[*j],
                        named(their_name),
                        describe(theirs.as_ref()),
                        labels[i],
                        named(v.name()),
                        describe(v.r#type.as_ref()),
                    )));
                }
            }
            if let (Some(a), Some(b)) = (&entry.info.r#type, &v.r#type) {
                entry.info.r#type = merge_type(a, b).ok();
            } else if entry.info.r#type.is_none() {
                entry.info.r#type = v.r#type.clone();
            }
            entry.fed.push((i, v.name().to_string()));
        }
        per_member.push(mine);
    }
    Ok(InputPlan { inputs, per_member })
}
