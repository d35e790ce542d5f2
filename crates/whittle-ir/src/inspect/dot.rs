//! Graphviz (DOT) of a model: nodes as boxes labelled `Op` and name; graph inputs
//! (green ellipses), outputs (red ellipses) and initializers (grey notes) as their own
//! vertices; edges labelled with the value they carry. Subgraphs are dashed clusters
//! named after the node and attribute holding them; values they read from an enclosing
//! graph come in as edges from outside, and their outputs feed the holding node through
//! dashed edges. Deterministic: ids come from positions, not from hashing.
use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::model::Model;
use crate::text::tensor_summary;
use crate::types::type_string;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

/// A DOT string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Dot {
    out: String,
    graphs: usize,
}

/// Visible producers by value name, innermost scope last.
type Scopes = Vec<HashMap<String, String>>;

fn lookup<'a>(scopes: &'a Scopes, name: &str) -> Option<&'a str> {
    scopes
        .iter()
        .rev()
        .find_map(|s| s.get(name))
        .map(String::as_str)
}

/// Makes `name` resolve to vertex `id` in the innermost scope (`replace`: even if set).
fn define(scopes: &mut Scopes, name: &str, id: String, replace: bool) {
    if let Some(scope) = scopes.last_mut()
        && (replace || !scope.contains_key(name))
    {
        scope.insert(name.to_string(), id);
    }
}

impl Dot {
    fn line(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.out, "{}{text}", "  ".repeat(depth));
    }

    fn vertex(&mut self, depth: usize, id: &str, label: &str, style: &str) {
        self.line(
            depth,
            &format!("{} [label={}, {style}];", quote(id), quote(label)),
        );
    }

    fn edge(&mut self, depth: usize, from: &str, to: &str, label: &str, extra: &str) {
        self.line(
            depth,
            &format!(
                "{} -> {} [label={}{extra}];",
                quote(from),
                quote(to),
                quote(label)
            ),
        );
    }

    /// Writes one graph's vertices and edges; returns the ids of its output vertices.
    fn graph(&mut self, g: &Graph, scopes: &mut Scopes, depth: usize) -> Vec<String> {
        let k = self.graphs;
        self.graphs += 1;
        scopes.push(HashMap::new());
        for (i, v) in g.proto.input.iter().enumerate() {
            let id = format!("g{k}_in{i}");
            let ty = v.r#type.as_ref().map_or("?".into(), type_string);
            self.vertex(
                depth,
                &id,
                &format!("{}\n{ty}", v.name()),
                "shape=ellipse, style=filled, fillcolor=\"#d5e8d4\"",
            );
            define(scopes, v.name(), id, true);
        }
        for (i, t) in g.initializers.iter().enumerate() {
            let id = format!("g{k}_init{i}");
            self.vertex(
                depth,
                &id,
                &format!("{}\n{}", t.name(), tensor_summary(t)),
                "shape=note, style=filled, fillcolor=\"#eeeeee\"",
            );
            define(scopes, t.name(), id, false);
        }
        for (i, (_, n)) in g.nodes().enumerate() {
            let id = format!("g{k}_n{i}");
            let op = match n.domain() {
                "" => n.op_type().to_string(),
                d => format!("{d}::{}", n.op_type()),
            };
            let label = if n.name().is_empty() {
                op
            } else {
                format!("{op}\n{}", n.name())
            };
            self.vertex(
                depth,
                &id,
                &label,
                "shape=box, style=\"rounded,filled\", fillcolor=\"#dae8fc\"",
            );
            for input in n.inputs() {
                if let Some(from) = lookup(scopes, input).map(str::to_string) {
                    self.edge(depth, &from, &id, input, "");
                }
            }
            self.subgraphs(n, &id, scopes, depth);
            for out in n.outputs().iter().filter(|o| !o.is_empty()) {
                define(scopes, out, id.clone(), true);
            }
        }
        let mut outputs = Vec::new();
        for (i, v) in g.proto.output.iter().enumerate() {
            let id = format!("g{k}_out{i}");
            let ty = v.r#type.as_ref().map_or("?".into(), type_string);
            self.vertex(
                depth,
                &id,
                &format!("{}\n{ty}", v.name()),
                "shape=ellipse, style=filled, fillcolor=\"#f8cecc\"",
            );
            if let Some(from) = lookup(scopes, v.name()).map(str::to_string) {
                self.edge(depth, &from, &id, v.name(), "");
            }
            outputs.push(id);
        }
        scopes.pop();
        outputs
    }

    /// The subgraphs of node `owner` (vertex `owner_id`), each as a dashed cluster.
    fn subgraphs(
        &mut self,
        owner: &crate::node::Node,
        owner_id: &str,
        scopes: &mut Scopes,
        depth: usize,
    ) {
        for a in &owner.attributes {
            for (j, sub) in a.g.iter().chain(&a.graphs).enumerate() {
                let attr = if a.graphs.is_empty() {
                    a.proto.name().to_string()
                } else {
                    format!("{}[{j}]", a.proto.name())
                };
                let title = format!("{} {}.{attr}", owner.op_type(), owner.name());
                self.line(
                    depth,
                    &format!(
                        "subgraph {} {{",
                        quote(&format!("cluster_{owner_id}_{attr}"))
                    ),
                );
                self.line(
                    depth + 1,
                    &format!("label={}; style=dashed;", quote(&title)),
                );
                let outs = self.graph(sub, scopes, depth + 1);
                self.line(depth, "}");
                for o in outs {
                    self.edge(depth, &o, owner_id, &attr, ", style=dashed");
                }
            }
        }
    }
}

/// The model as a Graphviz `digraph`.
pub fn model_to_dot(m: &Model) -> String {
    let mut d = Dot {
        out: String::new(),
        graphs: 0,
    };
    let name = match m.graph.name() {
        "" => "model",
        n => n,
    };
    d.line(0, &format!("digraph {} {{", quote(name)));
    d.line(1, "rankdir=TB;");
    d.line(1, "node [fontname=\"Helvetica\", fontsize=10];");
    d.line(1, "edge [fontname=\"Helvetica\", fontsize=9];");
    d.graph(&m.graph, &mut Vec::new(), 1);
    d.line(0, "}");
    d.out
}

/// Writes [`model_to_dot`] to `path` atomically: a temporary file in the same folder,
/// renamed into place when complete (an error leaves any previous file untouched).
pub fn write_dot(m: &Model, path: &Path) -> Result<()> {
    use std::io::Write as _;
    let err = |source| IrError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".whittle-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o644);
        tmp.as_file().set_permissions(mode).map_err(err)?;
    }
    tmp.write_all(model_to_dot(m).as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
