//! Model merging: N member models into one graph, plus a combiner over their outputs
//! (ensembles), or both outputs and their difference (an A/B model).
//!
//! Invariants of [`merge`]:
//! - **Nothing collides.** Every name a member defines, at every nesting level, gets the
//!   member's prefix (`m0/`, `m1/`, … or `--prefix`), except member inputs fed by a shared
//!   merged input and initializers stored once ([`rename`]). Prefixes never overlap.
//! - **Members compute what they computed.** A member's nodes keep their order, ops and
//!   attributes; only names change, plus an opset conversion when the member's ai.onnx
//!   opset differs from the merge's (all or nothing, by [`crate::opset::convert_opset`]).
//! - **Shared inputs agree.** One merged input feeds several members only when their
//!   element types are equal and shapes compatible ([`inputs`]); otherwise the merge is
//!   refused naming both members and the input.
//! - **Equal weights are stored once** across members (content hash, then bytes; see
//!   [`shared`]); external-data tensors are read from their memory maps, never copied
//!   until written.
//! - **Checked before built.** Outputs are matched (by name, then position) and their
//!   types checked before any combiner node exists ([`outputs`], [`combine`]); the result
//!   is verified, and a failure there is a bug reported as such, never a written file.
//! - **Recorded.** The merged model's metadata names every member: file, sha256, producer,
//!   prefix, original opset (`whittle.merge.*`), plus the members' own metadata prefixed.
//!   Not kept: the members' model/graph doc strings and graph-level metadata, and (with a
//!   note in the report) training graphs and multi-device configurations.
//! - **Deterministic.** Same members and options ⇒ same model (member order, then
//!   combiner nodes; no hash-map order reaches the output).
mod build;
mod combine;
mod inputs;
mod members;
mod opsets;
mod options;
mod outputs;
mod rename;
mod report;
mod shared;
#[cfg(test)]
mod tests;
mod vote;

pub use combine::MergedOutput;
pub use members::Member;
pub use options::{Combine, InputMap, MergeOptions};
pub use report::{InputReport, MemberReport, MergeReport};
pub use shared::SharedTensor;

use build::{Emit, Namer};
use outputs::{Group, Port};
use std::collections::HashSet;
use whittle_ir::proto::{GraphProto, ModelProto, ValueInfoProto};
use whittle_ir::{Graph, Model};

/// Why a merge was refused. Messages name the members (`m1 (b.onnx)`) and the input,
/// output or domain involved.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Member(String),
    #[error("{0}")]
    Inputs(String),
    #[error("{0}")]
    Outputs(String),
    #[error("{0}")]
    Opset(String),
    #[error("the merged model is not valid (a bug in whittle merge): {0}")]
    Broke(whittle_ir::verify::VerifyError),
}

/// The merged model and its report.
pub struct Merged {
    pub model: Model,
    pub report: MergeReport,
}

/// The parts of the merged main graph, gathered member by member.
#[derive(Default)]
struct Parts {
    graph: GraphProto,
    inits: Vec<whittle_ir::Tensor>,
    nodes: Vec<whittle_ir::Node>,
    member_outputs: Vec<ValueInfoProto>,
    functions: Vec<whittle_ir::proto::FunctionProto>,
}

fn check(members: &[Member], opts: &MergeOptions, labels: &[String]) -> Result<(), MergeError> {
    let n = members.len();
    if n < 2 {
        return Err(MergeError::Usage(format!(
            "merge needs at least two models, got {n}"
        )));
    }
    match &opts.combine {
        Combine::Diff if n != 2 => {
            return Err(MergeError::Usage(format!(
                "diff compares two models, got {n}"
            )));
        }
        Combine::Weighted(w) if w.len() != n => {
            return Err(MergeError::Usage(format!(
                "weighted has {} weights for {n} models",
                w.len()
            )));
        }
        _ => {}
    }
    for (m, label) in members.iter().zip(labels) {
        whittle_ir::verify::verify(&m.model)
            .map_err(|e| MergeError::Member(format!("{label}: {e}")))?;
    }
    Ok(())
}

/// Merges `members` (in order) as `opts` says. See the module doc for the invariants.
pub fn merge(mut members: Vec<Member>, opts: &MergeOptions) -> Result<Merged, MergeError> {
    let n = members.len();
    let prefixes = options::prefixes(&opts.prefixes, n).map_err(MergeError::Usage)?;
    let labels: Vec<String> = prefixes
        .iter()
        .zip(&members)
        .map(|(p, m)| format!("{} ({})", p.trim_end_matches('/'), m.file))
        .collect();
    check(&members, opts, &labels)?;
    let mut opsets = opsets::unify(&mut members, &labels, opts.opset)?;
    if opts.combine != Combine::All {
        opsets::ensure_default(&mut opsets, 13);
    }
    let plan = inputs::plan(&members, &labels, &opts.input_map, &prefixes)?;
    let mut ports: Vec<Vec<Port>> = members.iter().map(|m| outputs::ports(&m.model)).collect();
    let matched = match opts.combine {
        Combine::All => Vec::new(),
        _ => outputs::match_outputs(&ports, &labels)?,
    };
    let metadata = members::metadata(
        &members,
        &prefixes,
        &opsets.before,
        &opts.combine.to_string(),
    );
    let mut pool = shared::Pool::default();
    let mut parts = Parts::default();
    parts.graph.input = plan.inputs.iter().map(|s| s.info.clone()).collect();
    let mut reports = Vec::new();
    let mut notes = opsets.notes.clone();
    for (i, m) in members.iter_mut().enumerate() {
        let shared_names = pool.plan(i, &m.model, &prefixes[i]);
        let mut overrides = plan.per_member[i].clone();
        overrides.extend(shared_names.iter().map(|(k, v)| (k.clone(), v.clone())));
        let g = &m.model.graph;
        let stored = |t: &&whittle_ir::Tensor| shared_names.contains_key(t.name());
        reports.push(MemberReport {
            file: m.file.clone(),
            prefix: prefixes[i].clone(),
            sha256: m.sha256.clone(),
            producer: m.producer(),
            opset: opsets.before[i],
            nodes: crate::count_nodes(&m.model),
            initializers: g.initializers.len(),
            initializer_bytes: g.initializers.iter().map(|t| t.data_byte_len()).sum(),
            shared_initializers: g.initializers.iter().filter(stored).count(),
            shared_bytes: g
                .initializers
                .iter()
                .filter(stored)
                .map(|t| t.data_byte_len())
                .sum(),
        });
        m.model
            .graph
            .initializers
            .retain(|t| !shared_names.contains_key(t.name()));
        rename::rename_member(&mut m.model, &prefixes[i], overrides);
        take_parts(&mut m.model, &mut parts, &mut ports[i]);
        if !m.model.proto.training_info.is_empty() {
            notes.push(format!(
                "{}: training_info dropped (a merged model has no training graphs)",
                labels[i]
            ));
        }
        if !m.model.proto.configuration.is_empty() {
            notes.push(format!(
                "{}: multi-device configuration dropped (it names the member's own nodes)",
                labels[i]
            ));
        }
    }
    let groups: Vec<Group> = matched
        .iter()
        .map(|idx| Group {
            name: ports[0][idx[0]].name.clone(),
            ports: idx
                .iter()
                .enumerate()
                .map(|(i, &k)| ports[i][k].clone())
                .collect(),
        })
        .collect();
    parts.graph.name = Some("merged".into());
    let mut graph = Graph::new(parts.graph, parts.inits, parts.nodes);
    let mut namer = Namer::default();
    namer.take_graph(&graph);
    let mut e = Emit {
        names: &mut namer,
        opset: opsets.default.unwrap_or(13),
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    let outs = combine::emit(&mut e, &opts.combine, opts.axis, &ports, &groups, &labels)?;
    let (new_nodes, new_inits) = (e.nodes, e.inits);
    graph.push_nodes(new_nodes);
    graph.initializers.extend(new_inits);
    graph.proto.output = outs.iter().map(|o| o.info.clone()).collect();
    let finals: HashSet<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    let extra: Vec<ValueInfoProto> = parts
        .member_outputs
        .into_iter()
        .filter(|v| !finals.contains(v.name()))
        .collect();
    graph.proto.value_info.extend(extra);
    dedup_value_info(&mut graph);
    let proto = ModelProto {
        ir_version: Some(opsets.ir_version),
        opset_import: opsets.imports.clone(),
        producer_name: Some("whittle".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "{n} models merged by whittle (combine: {})",
            opts.combine
        )),
        metadata_props: metadata,
        functions: parts.functions,
        ..Default::default()
    };
    let model = Model {
        proto,
        graph,
        path: None,
        source_len: None,
    };
    whittle_ir::verify::verify(&model).map_err(MergeError::Broke)?;
    let report = report::report(
        &model,
        &opts.combine,
        reports,
        &plan,
        &labels,
        outs,
        pool,
        notes,
        &opsets,
    );
    Ok(Merged { model, report })
}

/// Moves a renamed member's nodes, initializers and tables into `parts`; records the
/// renamed output names in `ports`.
fn take_parts(model: &mut Model, parts: &mut Parts, ports: &mut [Port]) {
    let g = &mut model.graph;
    for (port, info) in ports.iter_mut().zip(&g.proto.output) {
        port.value = info.name().to_string();
        port.info = info.clone();
    }
    let inits: HashSet<String> = g
        .initializers
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    // Inputs backed by an initializer stay inputs (private to the member).
    parts.graph.input.extend(
        g.proto
            .input
            .iter()
            .filter(|v| inits.contains(v.name()))
            .cloned(),
    );
    parts.graph.value_info.append(&mut g.proto.value_info);
    parts.member_outputs.extend(g.proto.output.iter().cloned());
    parts
        .graph
        .sparse_initializer
        .append(&mut g.proto.sparse_initializer);
    parts
        .graph
        .quantization_annotation
        .append(&mut g.proto.quantization_annotation);
    parts.inits.append(&mut g.initializers);
    let order: Vec<_> = g.nodes().map(|(ix, _)| ix).collect();
    parts.nodes.extend(g.remove_nodes(&order));
    parts.functions.append(&mut model.proto.functions);
}

/// One value_info per name, none for graph inputs or outputs.
fn dedup_value_info(g: &mut Graph) {
    let mut seen: HashSet<String> = g
        .input_names()
        .chain(g.output_names())
        .map(str::to_string)
        .collect();
    g.proto
        .value_info
        .retain(|v| seen.insert(v.name().to_string()));
}
