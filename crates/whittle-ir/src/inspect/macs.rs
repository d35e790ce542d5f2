//! Multiply-accumulate counts of the main graph's Conv, ConvTranspose, Gemm and MatMul
//! nodes, from inferred shapes.
//!
//! Formulas (bias adds are not counted):
//! - Conv: `N·C_out·∏out_spatial · (C_in/group)·∏kernel` = `∏Y · ∏W[1..]`;
//! - ConvTranspose: `N·C_in·∏in_spatial · (C_out/group)·∏kernel` = `∏X · ∏W[1..]`;
//! - Gemm: `M·N·K` (with `transA`/`transB`);
//! - MatMul: `batch·M·N·K` = `∏Y · K` (broadcast batch dims and the 1-D rules are in Y).
//!
//! A node whose needed dims are not all numbers (symbolic or unknown) has unknown MACs:
//! nothing is guessed. Nodes inside subgraphs (If branches, Loop/Scan bodies) are not
//! counted, since how often they run is not static; their number is reported.
use super::{Macs, NodeMacs, OpMacs};
use crate::graph::Graph;
use crate::node::Node;
use crate::shape::{Dim, ShapeMap, product};

/// The ops MACs are computed for.
pub const MAC_OPS: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

fn is_mac_op(n: &Node) -> bool {
    n.domain().is_empty() && MAC_OPS.contains(&n.op_type())
}

fn dims_of<'a>(shapes: &'a ShapeMap, n: &Node, input: bool, i: usize) -> Option<&'a [Dim]> {
    let names = if input { n.inputs() } else { n.outputs() };
    shapes.dims(names.get(i)?)
}

/// The MACs of one node, when every dim it needs is known.
pub fn node_macs(n: &Node, shapes: &ShapeMap) -> Option<u64> {
    let input = |i| dims_of(shapes, n, true, i);
    let output = |i| dims_of(shapes, n, false, i);
    match n.op_type() {
        "Conv" => product(output(0)?)?.checked_mul(product(input(1)?.get(1..)?)?),
        "ConvTranspose" => product(input(0)?)?.checked_mul(product(input(1)?.get(1..)?)?),
        "Gemm" => {
            let (a, b) = (input(0)?, input(1)?);
            if a.len() != 2 || b.len() != 2 {
                return None;
            }
            let (m, k) = if n.attr_int("transA").unwrap_or(0) != 0 {
                (&a[1], &a[0])
            } else {
                (&a[0], &a[1])
            };
            let cols = if n.attr_int("transB").unwrap_or(0) != 0 {
                &b[0]
            } else {
                &b[1]
            };
            product(&[m.clone(), cols.clone(), k.clone()])
        }
        "MatMul" => {
            let k = input(0)?.last()?.known()?;
            product(output(0)?)?.checked_mul(k)
        }
        _ => None,
    }
}

/// MACs of the main graph's nodes.
pub fn macs(g: &Graph, shapes: &ShapeMap) -> Macs {
    let mut m = Macs::default();
    for (i, (_, n)) in g.nodes().enumerate() {
        if !is_mac_op(n) {
            continue;
        }
        let value = node_macs(n, shapes);
        let op = m
            .by_op
            .entry(n.op_type().to_string())
            .or_insert_with(OpMacs::default);
        op.nodes += 1;
        match value {
            Some(v) => {
                op.macs = op.macs.saturating_add(v);
                m.known_total = m.known_total.saturating_add(v);
            }
            None => {
                op.unknown_nodes += 1;
                m.unknown_nodes += 1;
            }
        }
        let name = match n.name() {
            "" => format!("#{i}"),
            s => s.to_string(),
        };
        m.nodes.push(NodeMacs {
            name,
            op: n.op_type().to_string(),
            macs: value,
        });
    }
    m.total = (m.unknown_nodes == 0).then_some(m.known_total);
    g.walk(&mut |sub, depth| {
        if depth > 0 {
            m.subgraph_nodes_not_counted +=
                sub.nodes().filter(|(_, n)| is_mac_op(n)).count() as u64;
        }
    });
    m
}
