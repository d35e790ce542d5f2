//! Replaces an `If` whose condition is a constant by the nodes of the branch it takes.
//!
//! Invariants: the taken branch's nodes are spliced in at the If's place, its initializers
//! join the parent's, its outputs become the If's outputs (an output the branch merely
//! passes through becomes an `Identity`); a branch value whose name is already used in the
//! parent graph is renamed `<if name>/<value>` everywhere inside the branch, including
//! nested subgraphs that read it.
use crate::PassReport;
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::NodeProto;
use whittle_ir::{Graph, Node};

/// The constant boolean value of `name` in `graph`, if it is a one-element initializer.
fn constant_bool(graph: &Graph, name: &str) -> Option<bool> {
    let t = graph.initializer(name)?;
    if t.num_elements() != Some(1) {
        return None;
    }
    let b = t.le_bytes().ok()?;
    Some(b.iter().any(|&x| x != 0))
}

fn rename_in(g: &mut Graph, map: &HashMap<String, String>) {
    let sub = |s: &mut String| {
        if let Some(n) = map.get(s.as_str()) {
            *s = n.clone();
        }
    };
    for t in &mut g.initializers {
        if let Some(n) = t.proto.name.as_mut() {
            sub(n);
        }
    }
    for v in g
        .proto
        .input
        .iter_mut()
        .chain(g.proto.output.iter_mut())
        .chain(g.proto.value_info.iter_mut())
    {
        if let Some(n) = v.name.as_mut() {
            sub(n);
        }
    }
    for n in g.nodes_mut() {
        n.proto.input.iter_mut().for_each(sub);
        n.proto.output.iter_mut().for_each(sub);
        for s in n.subgraphs_mut() {
            rename_in(s, map);
        }
    }
    g.rebuild_edges();
}

/// Names defined anywhere in `g` (inputs, initializers, node outputs, recursively).
fn defined_names(g: &Graph, out: &mut HashSet<String>) {
    out.extend(g.input_names().map(String::from));
    out.extend(g.initializers.iter().map(|t| t.name().to_string()));
    for (_, n) in g.nodes() {
        out.extend(n.outputs().iter().cloned());
        for s in n.subgraphs() {
            defined_names(s, out);
        }
    }
}

/// Inlines every If of `graph` with a constant condition (not recursing into the result).
pub fn inline_graph(graph: &mut Graph, report: &mut PassReport) {
    let mut parent_names = HashSet::new();
    defined_names(graph, &mut parent_names);
    let targets: Vec<_> = graph
        .nodes()
        .filter(|(_, n)| n.op_type() == "If" && n.domain().is_empty())
        .filter_map(|(ix, n)| {
            let cond = constant_bool(graph, n.inputs().first()?)?;
            Some((ix, cond))
        })
        .collect();
    for (ix, cond) in targets {
        let Some(node) = graph.node(ix).cloned() else {
            continue;
        };
        let branch_name = if cond { "then_branch" } else { "else_branch" };
        let Some(mut branch) = node.attribute(branch_name).and_then(|a| a.g.clone()) else {
            report
                .skipped
                .push(format!("If {}: no {branch_name}", node.label(0)));
            continue;
        };
        if branch.proto.output.len() != node.outputs().len() {
            report
                .skipped
                .push(format!("If {}: branch outputs do not match", node.label(0)));
            continue;
        }
        // Rename branch-local values that collide with parent names.
        let mut local = HashSet::new();
        defined_names(&branch, &mut local);
        let prefix = if node.name().is_empty() {
            "if"
        } else {
            node.name()
        };
        let map: HashMap<String, String> = local
            .into_iter()
            .filter(|n| parent_names.contains(n))
            .map(|n| (n.clone(), format!("{prefix}/{n}")))
            .collect();
        rename_in(&mut branch, &map);
        // Branch outputs become the If outputs.
        let produced: HashSet<String> = branch
            .nodes()
            .flat_map(|(_, n)| n.outputs().to_vec())
            .collect();
        let mut out_map = HashMap::new();
        let mut passthrough = Vec::new();
        for (bo, io) in branch.output_names().zip(node.outputs()) {
            if produced.contains(bo) && !out_map.contains_key(bo) {
                out_map.insert(bo.to_string(), io.clone());
            } else {
                passthrough.push((bo.to_string(), io.clone()));
            }
        }
        let mut new_nodes: Vec<Node> = branch.nodes().map(|(_, n)| n.clone()).collect();
        for n in &mut new_nodes {
            for o in n.proto.output.iter_mut() {
                if let Some(m) = out_map.get(o.as_str()) {
                    *o = m.clone();
                }
            }
            for i in n.proto.input.iter_mut() {
                if let Some(m) = out_map.get(i.as_str()) {
                    *i = m.clone();
                }
            }
        }
        for (from, to) in passthrough {
            let from = out_map.get(&from).cloned().unwrap_or(from);
            new_nodes.push(Node {
                proto: NodeProto {
                    input: vec![from],
                    output: vec![to.clone()],
                    name: Some(format!("{prefix}/passthrough/{to}")),
                    op_type: Some("Identity".into()),
                    ..Default::default()
                },
                attributes: Vec::new(),
            });
        }
        graph.initializers.append(&mut branch.initializers);
        graph.proto.value_info.append(&mut branch.proto.value_info);
        for n in new_nodes {
            parent_names.extend(n.outputs().iter().cloned());
            graph.insert_node_before(ix, n);
        }
        graph.remove_nodes(&[ix]);
        report.changes.push(format!(
            "inlined the {branch_name} of If {} (condition is constant {cond})",
            node.label(0)
        ));
    }
}
