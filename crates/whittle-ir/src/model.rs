//! A whole model: the `ModelProto` fields, the main graph as IR, and where it was read from.
use crate::convert::{AsIs, Importer, export_graph};
use crate::error::{IrError, Result};
use crate::external::ExternalLoader;
use crate::graph::Graph;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use whittle_proto::{Message, ModelProto};

/// The newest IR version this build's `onnx.proto` describes (onnx 1.23: IR 14). Newer
/// files may carry fields our schema does not know, which would be lost: they are refused.
pub const MAX_IR_VERSION: i64 = 14;

/// A loaded model.
#[derive(Clone, Debug)]
pub struct Model {
    /// Every `ModelProto` field as read, except `graph` (moved into [`Model::graph`]).
    pub proto: ModelProto,
    pub graph: Graph,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// Size of the bytes it was decoded from (to tell whether re-encoding is the same size).
    pub source_len: Option<u64>,
}

impl Model {
    /// Reads a model file, memory-mapping it and its external data.
    pub fn load(path: &Path) -> Result<Model> {
        let read_err = |source| IrError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if meta.is_dir() {
            return Err(IrError::Invalid {
                path: path.to_path_buf(),
                message: "is a folder, not a model file".into(),
            });
        }
        let bytes = if meta.len() == 0 {
            Bytes::new()
        } else {
            // SAFETY: read-only map of an input; see `external::ExternalLoader::file`.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(read_err)?;
            Bytes::from_owner(map)
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut model = Model::decode(bytes, Some(&dir), path)?;
        model.path = Some(path.to_path_buf());
        Ok(model)
    }

    /// Decodes a model from memory; external data resolves against `dir` when given.
    /// `label` names the source in error messages.
    pub fn decode(bytes: Bytes, dir: Option<&Path>, label: &Path) -> Result<Model> {
        let invalid = |message: String| IrError::Invalid {
            path: label.to_path_buf(),
            message,
        };
        if bytes.is_empty() {
            return Err(invalid("is empty, not an ONNX model".into()));
        }
        let source_len = bytes.len() as u64;
        let mut proto = ModelProto::decode(bytes).map_err(|e| IrError::Decode {
            path: label.to_path_buf(),
            reason: e.to_string(),
        })?;
        match proto.ir_version {
            None | Some(0) => {
                return Err(invalid(
                    "has no ir_version: not an ONNX model (or a truncated one)".into(),
                ));
            }
            Some(v) if !(1..=MAX_IR_VERSION).contains(&v) => {
                return Err(invalid(format!(
                    "unsupported IR version {v} (whittle reads IR versions 1 to {MAX_IR_VERSION})"
                )));
            }
            Some(_) => {}
        }
        let graph = proto
            .graph
            .take()
            .ok_or_else(|| invalid("has no graph".into()))?;
        let mut loader = dir.map(ExternalLoader::new);
        let graph = Importer {
            loader: loader.as_mut(),
        }
        .graph(graph)
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Model {
            proto,
            graph,
            path: None,
            source_len: Some(source_len),
        })
    }

    /// The model as a `ModelProto`, tensors exactly as held (external ones still external).
    pub fn to_proto(&self) -> ModelProto {
        let mut p = self.proto.clone();
        p.graph = Some(export_graph(&self.graph, &mut AsIs));
        p
    }

    /// The opset version imported for `domain` (`""` and `"ai.onnx"` are the same).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let norm = |d: &str| if d == "ai.onnx" { "" } else { d }.to_string();
        let want = norm(domain);
        self.proto
            .opset_import
            .iter()
            .find(|o| norm(o.domain()) == want)
            .and_then(|o| o.version)
    }

    /// The data files this model's external tensors were read from.
    pub fn external_files(&self) -> Vec<PathBuf> {
        let Some(dir) = self.path.as_ref().map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }) else {
            return Vec::new();
        };
        let mut tensors = Vec::new();
        crate::save::tensors_of(&self.graph, &mut tensors);
        let mut files: Vec<PathBuf> = tensors
            .iter()
            .filter(|t| t.is_external())
            .filter_map(|t| crate::external::ExternalRef::parse(&t.proto).ok())
            .map(|r| dir.join(r.location))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// A display name for messages: the file it came from, or `<memory>`.
    pub fn label(&self) -> String {
        self.path
            .as_ref()
            .map_or("<memory>".to_string(), |p| p.display().to_string())
    }
}
