//! The graph: nodes in a petgraph `StableDiGraph`, plus the graph's own tables.
//!
//! Invariants:
//! - `order` lists every live node exactly once, in the order export writes them (the order
//!   read, with added nodes appended where the pass put them);
//! - edges run producer → consumer, one per consumed input slot whose value is produced by
//!   a node of this same graph (graph inputs, initializers and outer-scope values have no
//!   edge); they are derived from the names, and [`Graph::rebuild_edges`] re-derives them
//!   after a batch of edits;
//! - `proto` holds every other field of the `GraphProto` as read (inputs, outputs,
//!   value_info, sparse initializers, annotations, metadata) with `node` and `initializer`
//!   moved out.
use crate::node::Node;
use crate::tensor::Tensor;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use std::collections::HashMap;
use whittle_proto::GraphProto;

/// A producer → consumer link through one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub value: String,
    /// Output slot of the producer.
    pub output: usize,
    /// Input slot of the consumer.
    pub input: usize,
}

/// A graph (the model's main graph or a subgraph of `If`/`Loop`/`Scan`).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub proto: GraphProto,
    pub initializers: Vec<Tensor>,
    nodes: StableDiGraph<Node, Edge>,
    order: Vec<NodeIndex>,
}

impl Graph {
    /// Builds a graph from its parts; nodes keep the given order.
    pub fn new(proto: GraphProto, initializers: Vec<Tensor>, nodes: Vec<Node>) -> Graph {
        let mut g = Graph {
            proto,
            initializers,
            ..Default::default()
        };
        for n in nodes {
            let ix = g.nodes.add_node(n);
            g.order.push(ix);
        }
        g.rebuild_edges();
        g
    }

    pub fn name(&self) -> &str {
        self.proto.name()
    }

    /// Number of live nodes in this graph (not counting subgraphs).
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// Nodes in export order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIndex, &Node)> {
        self.order.iter().map(|&ix| (ix, &self.nodes[ix]))
    }

    pub fn node(&self, ix: NodeIndex) -> Option<&Node> {
        self.nodes.node_weight(ix)
    }

    /// Mutable access to one node. Call [`Graph::rebuild_edges`] after changing its inputs
    /// or outputs.
    pub fn node_mut(&mut self, ix: NodeIndex) -> Option<&mut Node> {
        self.nodes.node_weight_mut(ix)
    }

    /// Mutable access to every node, in order (e.g. to rewrite subgraphs).
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        let order = &self.order;
        let mut by_ix: HashMap<NodeIndex, &mut Node> = self
            .nodes
            .node_indices()
            .collect::<Vec<_>>()
            .into_iter()
            .zip(self.nodes.node_weights_mut())
            .collect();
        order.iter().filter_map(move |ix| by_ix.remove(ix))
    }

    /// Appends a node at the end of the order.
    pub fn push_node(&mut self, node: Node) -> NodeIndex {
        let ix = self.nodes.add_node(node);
        self.order.push(ix);
        self.rebuild_edges();
        ix
    }

    /// Inserts a node right before `before` in the order.
    pub fn insert_node_before(&mut self, before: NodeIndex, node: Node) -> NodeIndex {
        let ix = self.nodes.add_node(node);
        let at = self
            .order
            .iter()
            .position(|&i| i == before)
            .unwrap_or(self.order.len());
        self.order.insert(at, ix);
        self.rebuild_edges();
        ix
    }

    /// Appends nodes at the end of the order, in the order given; the edges are rebuilt
    /// once (a loop of [`Graph::push_node`] rebuilds them per node: quadratic).
    pub fn push_nodes(&mut self, nodes: impl IntoIterator<Item = Node>) -> Vec<NodeIndex> {
        let added: Vec<NodeIndex> = nodes
            .into_iter()
            .map(|n| {
                let ix = self.nodes.add_node(n);
                self.order.push(ix);
                ix
            })
            .collect();
        self.rebuild_edges();
        added
    }

    /// Inserts each node right before its anchor, as repeated [`Graph::insert_node_before`]
    /// calls in the same order would (nodes sharing an anchor keep their relative order),
    /// rebuilding the edges once. Anchors are nodes of the graph before this call; any other
    /// anchor appends its node at the end.
    pub fn insert_nodes_before(
        &mut self,
        nodes: impl IntoIterator<Item = (NodeIndex, Node)>,
    ) -> Vec<NodeIndex> {
        let present: std::collections::HashSet<NodeIndex> = self.order.iter().copied().collect();
        let mut before: HashMap<NodeIndex, Vec<NodeIndex>> = HashMap::new();
        let mut tail = Vec::new();
        let mut added = Vec::new();
        for (anchor, n) in nodes {
            let ix = self.nodes.add_node(n);
            added.push(ix);
            if present.contains(&anchor) {
                before.entry(anchor).or_default().push(ix);
            } else {
                tail.push(ix);
            }
        }
        let mut order = Vec::with_capacity(self.order.len() + added.len());
        for &ix in &self.order {
            if let Some(new) = before.remove(&ix) {
                order.extend(new);
            }
            order.push(ix);
        }
        order.extend(tail);
        self.order = order;
        self.rebuild_edges();
        added
    }

    /// Removes a batch of nodes (collected first, so no index outlives the mutation).
    pub fn remove_nodes(&mut self, doomed: &[NodeIndex]) -> Vec<Node> {
        let removed = doomed
            .iter()
            .filter_map(|&ix| self.nodes.remove_node(ix))
            .collect();
        self.order.retain(|ix| self.nodes.contains_node(*ix));
        self.rebuild_edges();
        removed
    }

    /// Re-derives the edges from the node input and output names.
    pub fn rebuild_edges(&mut self) {
        self.nodes.clear_edges();
        let mut producer: HashMap<&str, (NodeIndex, usize)> = HashMap::new();
        for &ix in &self.order {
            for (slot, out) in self.nodes[ix].outputs().iter().enumerate() {
                if !out.is_empty() {
                    producer.entry(out.as_str()).or_insert((ix, slot));
                }
            }
        }
        let mut edges = Vec::new();
        for &ix in &self.order {
            for (slot, input) in self.nodes[ix].inputs().iter().enumerate() {
                if let Some(&(from, output)) = producer.get(input.as_str()) {
                    edges.push((
                        from,
                        ix,
                        Edge {
                            value: input.clone(),
                            output,
                            input: slot,
                        },
                    ));
                }
            }
        }
        for (a, b, e) in edges {
            self.nodes.add_edge(a, b, e);
        }
    }

    /// The petgraph view, for analyses (cycle checks, reachability).
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge> {
        &self.nodes
    }

    /// Graph input names, in order.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.proto.input.iter().map(|v| v.name())
    }

    /// Graph output names, in order.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.proto.output.iter().map(|v| v.name())
    }

    pub fn initializer(&self, name: &str) -> Option<&Tensor> {
        self.initializers.iter().find(|t| t.name() == name)
    }

    /// Visits this graph and every nested subgraph, depth first, with the nesting depth.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Graph, usize)) {
        fn go<'a>(g: &'a Graph, depth: usize, f: &mut dyn FnMut(&'a Graph, usize)) {
            f(g, depth);
            for (_, n) in g.nodes() {
                for sub in n.subgraphs() {
                    go(sub, depth + 1, f);
                }
            }
        }
        go(self, 0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whittle_proto::NodeProto;

    fn node(name: &str, input: &str, output: &str) -> Node {
        Node {
            proto: NodeProto {
                name: Some(name.into()),
                op_type: Some("Relu".into()),
                input: vec![input.into()],
                output: vec![output.into()],
                ..Default::default()
            },
            attributes: Vec::new(),
        }
    }

    fn names(g: &Graph) -> Vec<String> {
        g.nodes().map(|(_, n)| n.name().to_string()).collect()
    }

    fn chain() -> (Graph, Vec<NodeIndex>) {
        let g = Graph::new(
            GraphProto::default(),
            Vec::new(),
            vec![
                node("a", "x", "a"),
                node("b", "a", "b"),
                node("c", "b", "c"),
            ],
        );
        let ixs = g.nodes().map(|(ix, _)| ix).collect();
        (g, ixs)
    }

    /// The batch forms put nodes where the one-at-a-time calls would, with the same edges.
    #[test]
    fn batch_insertion_matches_one_at_a_time() {
        let new = || {
            vec![
                (1, node("p", "a", "p")),
                (2, node("q", "b", "q")),
                (1, node("r", "p", "r")),
                (9, node("s", "c", "s")),
            ]
        };
        let (mut one, ixs) = chain();
        for (k, n) in new() {
            match ixs.get(k) {
                Some(&at) => one.insert_node_before(at, n),
                None => one.push_node(n),
            };
        }
        let (mut batch, ixs) = chain();
        batch.insert_nodes_before(
            new()
                .into_iter()
                .map(|(k, n)| (ixs.get(k).copied().unwrap_or_else(NodeIndex::end), n)),
        );
        assert_eq!(names(&batch), ["a", "p", "r", "b", "q", "c", "s"]);
        assert_eq!(names(&one), names(&batch));
        assert_eq!(one.petgraph().edge_count(), batch.petgraph().edge_count());
        let (mut pushed, _) = chain();
        pushed.push_nodes([node("t", "c", "t"), node("u", "t", "u")]);
        assert_eq!(names(&pushed), ["a", "b", "c", "t", "u"]);
        assert_eq!(pushed.petgraph().edge_count(), 4);
    }
}
