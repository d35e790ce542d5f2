//! One set of opset imports for the merged model.
//!
//! - ai.onnx: every member is brought to one version (the `--opset` target, else the
//!   highest among the members) with [`crate::opset::convert_opset`], which is all or
//!   nothing and names the node that blocks it;
//! - other domains are unioned; one domain imported at two versions is refused (whittle
//!   has no converter for them);
//! - the IR version is the highest of the members (after conversion, which may raise it).
use super::MergeError;
use super::members::Member;
use crate::opset::{convert_opset, min_ir_version};
use whittle_ir::proto::OperatorSetIdProto;

/// The merged model's imports and IR version.
pub(crate) struct Opsets {
    /// The ai.onnx version of the result (`None`: no member uses ai.onnx).
    pub default: Option<i64>,
    /// Each member's ai.onnx version as read.
    pub before: Vec<Option<i64>>,
    pub imports: Vec<OperatorSetIdProto>,
    pub ir_version: i64,
    pub notes: Vec<String>,
}

fn norm(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

fn has_default_nodes(m: &whittle_ir::Model) -> bool {
    let mut any = false;
    m.graph
        .walk(&mut |g, _| any |= g.nodes().any(|(_, n)| n.domain().is_empty()));
    any
}

/// Converts members in place where needed; returns the merged imports.
pub(crate) fn unify(
    members: &mut [Member],
    labels: &[String],
    target: Option<i64>,
) -> Result<Opsets, MergeError> {
    let before: Vec<Option<i64>> = members
        .iter()
        .map(|m| {
            m.model
                .opset("")
                .or_else(|| has_default_nodes(&m.model).then_some(1))
        })
        .collect();
    let default = target.or_else(|| before.iter().flatten().copied().max());
    let mut notes = Vec::new();
    if let Some(target) = default {
        for (i, m) in members.iter_mut().enumerate() {
            match before[i] {
                Some(v) if v != target => {
                    convert_opset(&mut m.model, target).map_err(|e| {
                        MergeError::Opset(format!(
                            "{}: cannot bring ai.onnx opset {v} to {target}: {}",
                            labels[i],
                            e.to_string().trim_start_matches("pass convert-opset: ")
                        ))
                    })?;
                    notes.push(format!("{}: ai.onnx opset {v} -> {target}", labels[i]));
                }
                _ => {}
            }
        }
    }
    // Other domains: first import wins the position; a second version is a conflict.
    let mut imports: Vec<(String, i64, usize)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for o in &m.model.proto.opset_import {
            let domain = norm(o.domain());
            if domain.is_empty() {
                continue;
            }
            let version = o.version.unwrap_or(1);
            match imports.iter().find(|(d, _, _)| d == domain) {
                Some((_, v, j)) if *v != version => {
                    return Err(MergeError::Opset(format!(
                        "domain {domain:?} is imported at version {v} by {} and at version {version} by {}; whittle cannot convert between them",
                        labels[*j], labels[i]
                    )));
                }
                Some(_) => {}
                None => imports.push((domain.to_string(), version, i)),
            }
        }
    }
    let mut ir_version = members
        .iter()
        .map(|m| m.model.proto.ir_version.unwrap_or(1))
        .max()
        .unwrap_or(1);
    let mut list = Vec::new();
    if let Some(v) = default {
        list.push(OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(v),
        });
        ir_version = ir_version.max(min_ir_version(v));
    }
    list.extend(imports.into_iter().map(|(d, v, _)| OperatorSetIdProto {
        domain: Some(d),
        version: Some(v),
    }));
    Ok(Opsets {
        default,
        before,
        imports: list,
        ir_version,
        notes,
    })
}

/// Adds an ai.onnx import for the combiner when no member had one (e.g. all custom ops).
pub(crate) fn ensure_default(opsets: &mut Opsets, version: i64) {
    if opsets.default.is_none() {
        opsets.default = Some(version);
        opsets.imports.insert(
            0,
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(version),
            },
        );
        opsets.ir_version = opsets.ir_version.max(min_ir_version(version));
    }
}
