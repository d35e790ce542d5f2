//! Structural checks every graph must pass before it is written.
//!
//! Checked, recursively through subgraphs (which may use values of enclosing graphs that
//! are defined before the node holding them):
//! - every node input is a graph input, an initializer, an earlier node output, or an
//!   outer-scope value; graph outputs are defined;
//! - every value is defined once per graph (an initializer may share its name with a graph
//!   input, as older IR versions use it for defaults);
//! - the node graph is acyclic;
//! - every node's domain is imported (or is the domain of a model-local function);
//! - every tensor's stored data matches its dtype and dims.
use crate::graph::Graph;
use crate::model::Model;
use crate::tensor::{Storage, Tensor};
use std::collections::{BTreeSet, HashSet};

/// All problems found, one line each, naming graph and node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "model is not valid ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for VerifyError {}

struct Checker {
    domains: BTreeSet<String>,
    problems: Vec<String>,
}

fn norm_domain(d: &str) -> &str {
    if d == "ai.onnx" { "" } else { d }
}

/// Checks the whole model; `Ok` or every problem found.
pub fn verify(model: &Model) -> Result<(), VerifyError> {
    let mut domains: BTreeSet<String> = model
        .proto
        .opset_import
        .iter()
        .map(|o| norm_domain(o.domain()).to_string())
        .collect();
    domains.extend(
        model
            .proto
            .functions
            .iter()
            .map(|f| norm_domain(f.domain()).to_string()),
    );
    let mut c = Checker {
        domains,
        problems: Vec::new(),
    };
    c.graph(&model.graph, "graph", &mut Vec::new());
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(VerifyError {
            problems: c.problems,
        })
    }
}

impl Checker {
    fn tensor(&mut self, where_: &str, t: &Tensor) {
        let problem = match (t.storage(), t.dtype().bits()) {
            (_, None) if t.dtype().0 == crate::DataType::STRING.0 => {
                let n = t.num_elements();
                (n != Some(t.proto.string_data.len() as u64)).then(|| {
                    format!(
                        "tensor {:?} holds {} strings for dims {:?}",
                        t.name(),
                        t.proto.string_data.len(),
                        t.dims()
                    )
                })
            }
            (Storage::Empty, _) if t.num_elements() != Some(0) => Some(format!(
                "tensor {:?} has dims {:?} but no data",
                t.name(),
                t.dims()
            )),
            (Storage::Empty, _) => None,
            _ => t.le_bytes().err().map(|e| e.to_string()),
        };
        if let Some(p) = problem {
            self.problems.push(format!("{where_}: {p}"));
        }
    }

    fn graph<'g>(&mut self, g: &'g Graph, path: &str, outer: &mut Vec<HashSet<&'g str>>) {
        let mut defined: HashSet<&'g str> = HashSet::new();
        let mut seen_inputs = HashSet::new();
        for name in g.input_names() {
            if !seen_inputs.insert(name) {
                self.problems
                    .push(format!("{path}: graph input {name:?} is declared twice"));
            }
            defined.insert(name);
        }
        let mut inits = HashSet::new();
        for t in &g.initializers {
            if !inits.insert(t.name()) {
                self.problems.push(format!(
                    "{path}: initializer {:?} is defined twice",
                    t.name()
                ));
            }
            defined.insert(t.name());
            self.tensor(path, t);
        }
        for s in &g.proto.sparse_initializer {
            if let Some(v) = &s.values {
                defined.insert(v.name());
            }
        }
        let produced_later: HashSet<&str> = g
            .nodes()
            .flat_map(|(_, n)| n.outputs().iter().map(String::as_str))
            .collect();
        for (i, (_, n)) in g.nodes().enumerate() {
            let label = format!("{path}: node {}", n.label(i));
            for input in n.inputs().iter().filter(|s| !s.is_empty()) {
                let known = defined.contains(input.as_str())
                    || outer.iter().any(|s| s.contains(input.as_str()));
                if !known {
                    let why = if produced_later.contains(input.as_str()) {
                        "is produced by a later node (the graph is not topologically sorted or has a cycle)"
                    } else {
                        "is not produced by any node, input or initializer"
                    };
                    self.problems
                        .push(format!("{label}: input {input:?} {why}"));
                }
            }
            if !self.domains.contains(norm_domain(n.domain())) {
                self.problems.push(format!(
                    "{label}: domain {:?} has no opset import",
                    n.domain()
                ));
            }
            for t in n.attribute_tensors() {
                self.tensor(&label, t);
            }
            outer.push(defined.clone());
            for (k, sub) in n.subgraphs().enumerate() {
                let sub_path = format!("{label} subgraph {k} ({:?})", sub.name());
                self.graph(sub, &sub_path, outer);
            }
            outer.pop();
            for out in n.outputs().iter().filter(|s| !s.is_empty()) {
                if !defined.insert(out.as_str()) {
                    self.problems.push(format!(
                        "{label}: output {out:?} is already defined in this graph"
                    ));
                }
            }
        }
        for name in g.output_names() {
            if !defined.contains(name) && !outer.iter().any(|s| s.contains(name)) {
                self.problems
                    .push(format!("{path}: graph output {name:?} is never produced"));
            }
        }
        if petgraph::algo::is_cyclic_directed(g.petgraph()) {
            self.problems
                .push(format!("{path}: the nodes form a cycle"));
        }
    }
}
