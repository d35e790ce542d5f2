//! Prefixing one member's names so that nothing collides with another member.
//!
//! Every name a member defines — graph inputs, initializers (sparse ones too), node
//! outputs, node names, graph names, value_info and quantization annotations, at every
//! nesting level — becomes `PREFIX + name`, except the main-graph names in `overrides`
//! (member inputs fed by a shared merged input, initializers stored once by an earlier
//! member), which take the override. References are resolved by scope, innermost first,
//! as ONNX resolves them: a subgraph's reference to an outer value follows that value's
//! new name, and a subgraph-local name that shadows an outer one stays local.
//!
//! Model-local functions are renamed (`PREFIX + name`, same domain and overload) together
//! with every node that calls them — in the graphs, in other function bodies and in their
//! subgraphs; names inside function bodies are local to the function and stay.
use std::collections::{HashMap, HashSet};
use whittle_ir::proto::{FunctionProto, GraphProto, NodeProto};
use whittle_ir::{Graph, Model};

type FunctionKey = (String, String, String);

fn norm(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

struct Renamer<'a> {
    prefix: &'a str,
    functions: HashSet<FunctionKey>,
    scopes: Vec<HashMap<String, String>>,
}

impl Renamer<'_> {
    fn prefixed(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn resolve(&self, name: &str) -> String {
        if name.is_empty() {
            return String::new(); // an absent optional input
        }
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).cloned())
            .unwrap_or_else(|| self.prefixed(name))
    }

    fn call(&self, n: &mut NodeProto) {
        let key = (
            norm(n.domain()).to_string(),
            n.op_type().to_string(),
            n.overload().to_string(),
        );
        if self.functions.contains(&key) {
            n.op_type = Some(self.prefixed(&key.1));
        }
    }

    /// Function calls inside raw protos (function bodies and their subgraphs).
    fn calls_in(&self, nodes: &mut [NodeProto]) {
        for n in nodes {
            self.call(n);
            for a in &mut n.attribute {
                let graphs = a.g.iter_mut().chain(a.graphs.iter_mut());
                for g in graphs {
                    self.calls_in_graph(g);
                }
            }
        }
    }

    fn calls_in_graph(&self, g: &mut GraphProto) {
        self.calls_in(&mut g.node);
    }

    fn graph(&mut self, g: &mut Graph, mut local: HashMap<String, String>) {
        let mut defined: Vec<String> = g.input_names().map(str::to_string).collect();
        defined.extend(g.initializers.iter().map(|t| t.name().to_string()));
        defined.extend(
            g.proto
                .sparse_initializer
                .iter()
                .filter_map(|s| s.values.as_ref().map(|v| v.name().to_string())),
        );
        for (_, n) in g.nodes() {
            defined.extend(n.outputs().iter().filter(|o| !o.is_empty()).cloned());
        }
        for d in defined {
            let renamed = self.prefixed(&d);
            local.entry(d).or_insert(renamed);
        }
        self.scopes.push(local);
        if let Some(name) = g.proto.name.as_mut().filter(|n| !n.is_empty()) {
            *name = format!("{}{name}", self.prefix);
        }
        let p = &mut g.proto;
        let infos = p
            .input
            .iter_mut()
            .chain(&mut p.output)
            .chain(&mut p.value_info);
        for v in infos {
            v.name = Some(self.resolve(v.name()));
        }
        for s in &mut p.sparse_initializer {
            for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
                if !t.name().is_empty() {
                    t.name = Some(self.resolve(t.name()));
                }
            }
        }
        for a in &mut p.quantization_annotation {
            a.tensor_name = Some(self.resolve(a.tensor_name()));
            for e in &mut a.quant_parameter_tensor_names {
                e.value = Some(self.resolve(e.value()));
            }
        }
        for t in &mut g.initializers {
            t.proto.name = Some(self.resolve(t.name()));
        }
        for n in g.nodes_mut() {
            let p = &mut n.proto;
            for i in &mut p.input {
                *i = self.resolve(i);
            }
            for o in &mut p.output {
                *o = self.resolve(o);
            }
            if !p.name().is_empty() {
                p.name = Some(self.prefixed(p.name()));
            }
            self.call(p);
            for sub in n.subgraphs_mut() {
                self.graph(sub, HashMap::new());
            }
        }
        g.rebuild_edges();
        self.scopes.pop();
    }
}

/// Renames `model` in place (graph and functions) with `prefix`; `overrides` maps
/// main-graph names to names that are not prefixed (shared inputs, shared initializers).
pub(crate) fn rename_member(model: &mut Model, prefix: &str, overrides: HashMap<String, String>) {
    let functions = model
        .proto
        .functions
        .iter()
        .map(|f| {
            (
                norm(f.domain()).to_string(),
                f.name().to_string(),
                f.overload().to_string(),
            )
        })
        .collect();
    let mut r = Renamer {
        prefix,
        functions,
        scopes: Vec::new(),
    };
    r.graph(&mut model.graph, overrides);
    for f in &mut model.proto.functions {
        rename_function(&r, f);
    }
}

fn rename_function(r: &Renamer, f: &mut FunctionProto) {
    f.name = Some(r.prefixed(f.name()));
    r.calls_in(&mut f.node);
}

#[cfg(test)]
mod tests {
    use super::*;
    use whittle_ir::Node;
    use whittle_ir::proto::{NodeProto, ValueInfoProto};

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            proto: NodeProto {
                op_type: Some(op.into()),
                name: Some(op.to_lowercase()),
                input: inputs.iter().map(|s| s.to_string()).collect(),
                output: outputs.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            attributes: Vec::new(),
        }
    }

    fn vi(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn outer_references_follow_and_shadowing_stays_local() {
        // A Loop-style body whose own input `x` shadows the shared outer `x`; it also
        // reads the outer `h`.
        let sub = Graph::new(
            GraphProto {
                name: Some("body".into()),
                input: vec![vi("x")],
                output: vec![vi("y")],
                ..Default::default()
            },
            Vec::new(),
            vec![node("Add", &["h", "x"], &["y"])],
        );
        let mut holder = node("If", &["c"], &["out"]);
        holder.attributes.push(whittle_ir::Attribute {
            proto: Default::default(),
            t: None,
            tensors: Vec::new(),
            g: Some(sub),
            graphs: Vec::new(),
        });
        let mut g = Graph::new(
            GraphProto {
                input: vec![vi("x"), vi("c")],
                output: vec![vi("out")],
                ..Default::default()
            },
            Vec::new(),
            vec![node("Relu", &["x", ""], &["h"]), holder],
        );
        let mut r = Renamer {
            prefix: "m1/",
            functions: HashSet::new(),
            scopes: Vec::new(),
        };
        let overrides = HashMap::from([("x".to_string(), "x".to_string())]);
        r.graph(&mut g, overrides);
        let nodes: Vec<&Node> = g.nodes().map(|(_, n)| n).collect();
        assert_eq!(nodes[0].inputs(), ["x", ""]);
        assert_eq!(nodes[0].outputs(), ["m1/h"]);
        assert_eq!(nodes[0].name(), "m1/relu");
        assert_eq!(nodes[1].inputs(), ["m1/c"]);
        let sub = nodes[1].subgraphs().next().unwrap();
        let inner: Vec<&Node> = sub.nodes().map(|(_, n)| n).collect();
        // outer h follows the outer renaming; the body's own x shadows the shared x
        assert_eq!(inner[0].inputs(), ["m1/h", "m1/x"]);
        assert_eq!(inner[0].outputs(), ["m1/y"]);
        assert_eq!(sub.input_names().collect::<Vec<_>>(), ["m1/x"]);
        assert_eq!(sub.name(), "m1/body");
        assert_eq!(g.output_names().collect::<Vec<_>>(), ["m1/out"]);
    }
}
