//! Dead-code elimination: removes nodes whose outputs reach no graph output, initializers
//! nothing reads, and `value_info` entries for values that no longer exist.
//!
//! Invariants:
//! - graph inputs and outputs are kept (in a pre-IR-4 main graph, an input that only
//!   mirrors an unused initializer goes with it: it is a weight, not an input);
//! - a value a subgraph reads from an enclosing graph is used (by the node holding the
//!   subgraph); subgraphs are cleaned first, so reads from dead code inside them do not
//!   keep outer values alive;
//! - ONNX nodes have no side effects, so a node of any domain whose outputs are all unused
//!   is dead; sparse initializers are left alone.
use super::scope::{self, GraphCx, implicit_inputs};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::HashSet;
use whittle_ir::{Graph, Model};

/// The dead-code elimination pass.
#[derive(Default)]
pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        scope::bottom_up(&mut model.graph, cx, "", &mut report, clean);
        Ok(report)
    }
}

/// Rewrites one graph (its subgraphs are done first by [`scope::bottom_up`]).
fn clean(g: &mut Graph, cx: GraphCx, path: &str, report: &mut PassReport) {
    // Walk backwards from the graph outputs (the order is topological).
    let mut live: HashSet<String> = g.output_names().map(str::to_string).collect();
    let mut dead = Vec::new();
    let nodes: Vec<_> = g.nodes().map(|(ix, _)| ix).collect();
    for (pos, &ix) in nodes.iter().enumerate().rev() {
        let Some(n) = g.node(ix) else { continue };
        if n.outputs()
            .iter()
            .any(|o| !o.is_empty() && live.contains(o))
        {
            live.extend(n.inputs().iter().filter(|i| !i.is_empty()).cloned());
            live.extend(implicit_inputs(n));
        } else {
            report.changes.push(format!(
                "{path}removed {}: its outputs are unused",
                n.label(pos)
            ));
            dead.push(ix);
        }
    }
    g.remove_nodes(&dead);

    let inputs: HashSet<String> = g.input_names().map(str::to_string).collect();
    let unused: HashSet<String> = g
        .initializers
        .iter()
        .map(|t| t.name().to_string())
        .filter(|name| !live.contains(name))
        .filter(|name| !inputs.contains(name) || (cx.legacy && cx.is_main))
        .collect();
    let mut names: Vec<&String> = unused.iter().collect();
    names.sort();
    for name in names {
        report
            .changes
            .push(format!("{path}removed initializer {name:?}: unused"));
    }
    scope::remove_initializers(g, &unused, &cx);

    let defined = scope::defined_here(g);
    let before = g.proto.value_info.len();
    g.proto.value_info.retain(|v| defined.contains(v.name()));
    let dropped = before - g.proto.value_info.len();
    if dropped > 0 {
        report.changes.push(format!(
            "{path}removed {dropped} value_info entries of values that no longer exist"
        ));
    }
}
