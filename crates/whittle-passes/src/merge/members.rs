//! The members of a merge: each model with the file it came from and that file's sha256,
//! and the metadata entries that record them in the merged model.
use sha2::{Digest, Sha256};
use std::path::Path;
use whittle_ir::Model;
use whittle_ir::proto::StringStringEntryProto;

/// One model to merge.
#[derive(Clone, Debug)]
pub struct Member {
    pub model: Model,
    /// The file name (no folder), as recorded in the merged model's metadata.
    pub file: String,
    /// Hex sha256 of the model file (`None` for a model built in memory).
    pub sha256: Option<String>,
}

impl Member {
    /// Loads a model file (external data memory-mapped) and hashes it.
    pub fn load(path: &Path) -> Result<Member, whittle_ir::IrError> {
        let model = Model::load(path)?;
        let sha256 = Some(
            file_sha256(path).map_err(|source| whittle_ir::IrError::Read {
                path: path.to_path_buf(),
                source,
            })?,
        );
        Ok(Member {
            model,
            file: file_name(path),
            sha256,
        })
    }

    /// A model that was not read from a file (tests, library callers).
    pub fn in_memory(model: Model, file: &str) -> Member {
        Member {
            model,
            file: file.to_string(),
            sha256: None,
        }
    }

    /// `producer_name producer_version` as the file has them (trimmed; may be empty).
    pub fn producer(&self) -> String {
        let p = &self.model.proto;
        format!("{} {}", p.producer_name(), p.producer_version())
            .trim()
            .to_string()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Streams the file through sha256 (models can be large; nothing is held in memory).
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h)?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn entry(key: String, value: String) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key),
        value: Some(value),
    }
}

/// `whittle.merge.*` entries: the combiner, and per member its file, sha256, producer,
/// prefix and original ai.onnx opset. Then each member's own metadata, keys prefixed.
pub(crate) fn metadata(
    members: &[Member],
    prefixes: &[String],
    opsets: &[Option<i64>],
    combine: &str,
) -> Vec<StringStringEntryProto> {
    let mut out = vec![
        entry("whittle.merge.combine".into(), combine.into()),
        entry("whittle.merge.members".into(), members.len().to_string()),
    ];
    for (i, m) in members.iter().enumerate() {
        let key = |k: &str| format!("whittle.merge.member.{i}.{k}");
        out.push(entry(key("file"), m.file.clone()));
        if let Some(h) = &m.sha256 {
            out.push(entry(key("sha256"), h.clone()));
        }
        out.push(entry(key("producer"), m.producer()));
        out.push(entry(key("prefix"), prefixes[i].clone()));
        if let Some(Some(v)) = opsets.get(i) {
            out.push(entry(key("opset"), v.to_string()));
        }
    }
    for (m, prefix) in members.iter().zip(prefixes) {
        for e in &m.model.proto.metadata_props {
            out.push(entry(format!("{prefix}{}", e.key()), e.value().to_string()));
        }
    }
    out
}
