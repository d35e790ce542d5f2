//! `Constant` nodes to initializers (Paddle and spox exports keep every weight in one).
//!
//! Invariants:
//! - `value`, `value_float(s)`, `value_int(s)` and `value_string(s)` convert, the
//!   initializer taking the node's output name; `sparse_value` and attribute references
//!   are skipped with a reason;
//! - a `Constant` whose output is a graph output stays (the graph interface keeps a node
//!   producing it);
//! - inside a subgraph the constant becomes an initializer of that subgraph (not in
//!   pre-IR-4 models, where it would have to become a body input too).
use super::scope::{self, GraphCx};
use crate::{Pass, PassContext, PassError, PassReport};
use bytes::Bytes;
use whittle_ir::proto::TensorProto;
use whittle_ir::{DataType, Graph, Model, Node, Tensor};

/// The Constant-to-initializer pass.
#[derive(Default)]
pub struct ConstantsToInitializers;

impl Pass for ConstantsToInitializers {
    fn name(&self) -> &'static str {
        "constants"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        scope::bottom_up(&mut model.graph, cx, "", &mut report, convert);
        Ok(report)
    }
}

/// Rewrites one graph (its subgraphs are done first by [`scope::bottom_up`]).
fn convert(g: &mut Graph, cx: GraphCx, path: &str, report: &mut PassReport) {
    let mut doomed = Vec::new();
    let mut tensors = Vec::new();
    for (pos, (ix, n)) in g.nodes().enumerate() {
        if n.op_type() != "Constant" || n.domain() != "" {
            continue;
        }
        let Some(out) = n.outputs().first().filter(|o| !o.is_empty()) else {
            continue;
        };
        let why_not = if !cx.can_add_initializers() {
            Some("a pre-IR-4 subgraph cannot take initializers without new inputs".to_string())
        } else if g.output_names().any(|o| o == out) {
            Some("its output is a graph output".to_string())
        } else {
            None
        };
        if let Some(why) = why_not {
            report
                .skipped
                .push(format!("{path}{}: {why}", n.label(pos)));
            continue;
        }
        match constant_tensor(n, out) {
            Ok(t) => {
                report.changes.push(format!(
                    "{path}{} -> initializer {out:?} {}",
                    n.label(pos),
                    whittle_ir::text::tensor_summary(&t)
                ));
                tensors.push(t);
                doomed.push(ix);
            }
            Err(why) => report
                .skipped
                .push(format!("{path}{}: {why}", n.label(pos))),
        }
    }
    g.remove_nodes(&doomed);
    for t in tensors {
        scope::add_initializer(g, t, &cx);
    }
}

/// The value a `Constant` node produces, named `name`.
pub fn constant_tensor(n: &Node, name: &str) -> Result<Tensor, String> {
    let [a] = n.attributes.as_slice() else {
        return Err(format!(
            "has {} attributes, expected exactly one",
            n.attributes.len()
        ));
    };
    if a.proto.ref_attr_name.is_some() {
        return Err("its value refers to a function attribute".into());
    }
    let p = &a.proto;
    let raw = |dtype: DataType, dims: Vec<i64>, data: Vec<u8>| {
        Tensor::new_raw(name, dtype, dims, Bytes::from(data))
    };
    let t = match p.name() {
        "value" => {
            let mut t = a.t.clone().ok_or("`value` holds no tensor")?;
            t.proto.name = Some(name.to_string());
            t
        }
        "value_float" => raw(
            DataType::FLOAT,
            vec![],
            p.f.unwrap_or(0.0).to_le_bytes().to_vec(),
        ),
        "value_floats" => raw(
            DataType::FLOAT,
            vec![p.floats.len() as i64],
            p.floats.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        "value_int" => raw(
            DataType::INT64,
            vec![],
            p.i.unwrap_or(0).to_le_bytes().to_vec(),
        ),
        "value_ints" => raw(
            DataType::INT64,
            vec![p.ints.len() as i64],
            p.ints.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        "value_string" | "value_strings" => {
            let strings = if p.name() == "value_string" {
                vec![p.s.clone().unwrap_or_default()]
            } else {
                p.strings.clone()
            };
            let dims = if p.name() == "value_string" {
                vec![]
            } else {
                vec![strings.len() as i64]
            };
            Tensor::from_proto(TensorProto {
                name: Some(name.to_string()),
                data_type: Some(DataType::STRING.0),
                dims,
                string_data: strings,
                ..Default::default()
            })
        }
        "sparse_value" => return Err("sparse constants are kept as they are".into()),
        other => return Err(format!("unknown attribute {other:?}")),
    };
    Ok(t)
}
