//! Import (proto → IR) and export (IR → proto).
//!
//! Invariant: `export(import(p)) == p` for every `GraphProto` whose external tensors were
//! resolved; each piece lifted out on import is put back at the same place on export.
use crate::error::Result;
use crate::external::ExternalLoader;
use crate::graph::Graph;
use crate::node::{Attribute, Node};
use crate::tensor::Tensor;
use whittle_proto::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// Resolves external data for tensors as they are imported; `None` when the model has no
/// folder (read from memory), in which case external tensors are an error.
pub(crate) struct Importer<'a> {
    pub loader: Option<&'a mut ExternalLoader>,
}

impl Importer<'_> {
    /// Imports one tensor, resolving external data, and refuses data that does not match
    /// the declared dtype and dims (checked from lengths alone, before any allocation).
    pub fn tensor(&mut self, proto: TensorProto) -> Result<Tensor> {
        let mut t = Tensor::from_proto(proto);
        if t.is_external() {
            match self.loader.as_deref_mut() {
                Some(loader) => t.external = Some(loader.load(&t.proto)?),
                None => {
                    return Err(crate::error::IrError::External {
                        tensor: t.name().to_string(),
                        message: "cannot be resolved: the model was not read from a file".into(),
                    });
                }
            }
        }
        t.check_size()?;
        Ok(t)
    }

    pub fn graph(&mut self, mut proto: GraphProto) -> Result<Graph> {
        let node_protos = std::mem::take(&mut proto.node);
        let inits = std::mem::take(&mut proto.initializer);
        let initializers = inits
            .into_iter()
            .map(|t| self.tensor(t))
            .collect::<Result<Vec<_>>>()?;
        let nodes = node_protos
            .into_iter()
            .map(|n| self.node(n))
            .collect::<Result<Vec<_>>>()?;
        Ok(Graph::new(proto, initializers, nodes))
    }

    fn node(&mut self, mut proto: NodeProto) -> Result<Node> {
        let attributes = std::mem::take(&mut proto.attribute)
            .into_iter()
            .map(|a| self.attribute(a))
            .collect::<Result<Vec<_>>>()?;
        Ok(Node { proto, attributes })
    }

    fn attribute(&mut self, mut proto: AttributeProto) -> Result<Attribute> {
        let t = proto.t.take().map(|t| self.tensor(t)).transpose()?;
        let tensors = std::mem::take(&mut proto.tensors)
            .into_iter()
            .map(|t| self.tensor(t))
            .collect::<Result<Vec<_>>>()?;
        let g = proto.g.take().map(|g| self.graph(g)).transpose()?;
        let graphs = std::mem::take(&mut proto.graphs)
            .into_iter()
            .map(|g| self.graph(g))
            .collect::<Result<Vec<_>>>()?;
        Ok(Attribute {
            proto,
            t,
            tensors,
            g,
            graphs,
        })
    }
}

/// How tensors are written back.
pub(crate) trait TensorExporter {
    fn tensor(&mut self, t: &Tensor) -> TensorProto;
}

/// Writes tensors exactly as they are held (external ones keep their references).
pub(crate) struct AsIs;

impl TensorExporter for AsIs {
    fn tensor(&mut self, t: &Tensor) -> TensorProto {
        t.proto.clone()
    }
}

pub(crate) fn export_graph(g: &Graph, tx: &mut dyn TensorExporter) -> GraphProto {
    let mut proto = g.proto.clone();
    proto.initializer = g.initializers.iter().map(|t| tx.tensor(t)).collect();
    proto.node = g.nodes().map(|(_, n)| export_node(n, tx)).collect();
    proto
}

fn export_node(n: &Node, tx: &mut dyn TensorExporter) -> NodeProto {
    let mut proto = n.proto.clone();
    proto.attribute = n
        .attributes
        .iter()
        .map(|a| {
            let mut p = a.proto.clone();
            p.t = a.t.as_ref().map(|t| tx.tensor(t));
            p.tensors = a.tensors.iter().map(|t| tx.tensor(t)).collect();
            p.g = a.g.as_ref().map(|g| export_graph(g, tx));
            p.graphs = a.graphs.iter().map(|g| export_graph(g, tx)).collect();
            p
        })
        .collect();
    proto
}
