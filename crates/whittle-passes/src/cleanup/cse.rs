//! Common-subexpression elimination: a node with the same op, domain, attributes and
//! inputs as an earlier node computes the same values: its readers read the earlier
//! node's outputs instead, and it is removed.
//!
//! Invariants:
//! - only default-domain ops, never the random generators (`RandomNormal`, `Bernoulli`,
//!   `Multinomial`, …), never nodes holding subgraphs; other domains may be stateful;
//! - attributes compare by their encoded proto plus the content of any tensor they hold;
//! - an output that is a graph output keeps its producer (the duplicate is left alone);
//! - renames respect subgraph scopes ([`scope::rename_is_safe`]).
use super::scope::{self, GraphCx, Uses};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::Message;
use whittle_ir::{Graph, Model, Node};

/// The common-subexpression pass.
#[derive(Default)]
pub struct CommonSubexpressions;

impl Pass for CommonSubexpressions {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        scope::bottom_up(&mut model.graph, cx, "", &mut report, eliminate);
        Ok(report)
    }
}

const NONDETERMINISTIC: &[&str] = &[
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
    "Dropout",
];

/// What makes two nodes compute the same thing: op, inputs, attribute bytes.
type Key = (String, Vec<String>, Vec<u8>);

fn key(n: &Node) -> Option<Key> {
    if n.domain() != "" || NONDETERMINISTIC.contains(&n.op_type()) || n.subgraphs().next().is_some()
    {
        return None;
    }
    if n.inputs().iter().all(String::is_empty) {
        return None;
    }
    let mut attrs = Vec::new();
    let mut sorted: Vec<_> = n.attributes.iter().collect();
    sorted.sort_by(|a, b| a.proto.name().cmp(b.proto.name()));
    for a in sorted {
        let mut p = a.proto.clone();
        p.doc_string = None;
        attrs.extend(p.encode_to_vec());
        for t in a.t.iter().chain(&a.tensors) {
            attrs.extend(t.content_hash());
        }
    }
    Some((n.op_type().to_string(), n.inputs().to_vec(), attrs))
}

/// Rewrites one graph (its subgraphs are done first by [`scope::bottom_up`]).
fn eliminate(g: &mut Graph, _cx: GraphCx, path: &str, report: &mut PassReport) {
    let uses = Uses::of(g);
    let mut seen: HashMap<Key, (String, Vec<String>)> = HashMap::new();
    let mut map: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    let mut doomed = Vec::new();
    for (pos, (ix, n)) in g.nodes().enumerate() {
        let Some(mut k) = key(n) else { continue };
        // Inputs already redirected by an earlier merge count as the same value.
        for i in k.1.iter_mut() {
            if let Some(to) = map.get(i.as_str()) {
                *i = to.clone();
            }
        }
        match seen.get(&k) {
            Some((first, outs)) if outs.len() == n.outputs().len() => {
                let pairs: Vec<(String, String)> = n
                    .outputs()
                    .iter()
                    .zip(outs)
                    .filter(|(o, _)| !o.is_empty())
                    .map(|(o, to)| (o.clone(), to.clone()))
                    .collect();
                let ok = pairs.iter().all(|(o, to)| {
                    !to.is_empty() && !uses.is_output(o) && scope::rename_is_safe(g, o, to)
                });
                if ok {
                    lines.push(format!(
                        "{path}{} computes the same as {first}: its readers read {outs:?}",
                        n.label(pos)
                    ));
                    map.extend(pairs);
                    doomed.push(ix);
                }
            }
            Some(_) => {}
            None => {
                seen.insert(k, (n.label(pos), n.outputs().to_vec()));
            }
        }
    }
    if map.is_empty() {
        return;
    }
    scope::rename_uses(g, &map, false);
    g.remove_nodes(&doomed);
    let dropped: HashSet<String> = map.keys().cloned().collect();
    scope::fix_value_info(g, &dropped, &HashMap::new());
    report.changes.extend(lines);
}
