//! Initializers stored once across members.
//!
//! A main-graph initializer of a later member whose content equals one an earlier member
//! keeps (same dtype, dims and bytes: found by [`whittle_ir::Tensor::content_hash`], then
//! confirmed byte for byte) is dropped, and every reference to it — subgraphs included —
//! is renamed to the kept one. Within one member nothing is merged (that is clean-up's
//! `dedup`, and the merge leaves each member as it was). Initializers that are also graph
//! inputs (overridable defaults) are never shared: feeding one must not change another
//! member.
use std::collections::{HashMap, HashSet};
use whittle_ir::{Model, Tensor};

/// One tensor stored once but used by several members.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SharedTensor {
    /// The member whose copy was dropped, and the tensor's name there.
    pub member: usize,
    pub name: String,
    /// The kept tensor's name in the merged model.
    pub kept: String,
    pub bytes: u64,
}

/// Kept initializers by content hash.
#[derive(Default)]
pub(crate) struct Pool {
    by_hash: HashMap<[u8; 32], Vec<(String, Tensor)>>,
    pub shared: Vec<SharedTensor>,
}

fn same_content(a: &Tensor, b: &Tensor) -> bool {
    if a.dtype() != b.dtype() || a.dims() != b.dims() {
        return false;
    }
    if a.dtype() == whittle_ir::DataType::STRING {
        return a.proto.string_data == b.proto.string_data;
    }
    match (a.le_bytes(), b.le_bytes()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl Pool {
    /// For member `member` (renamed with `prefix`): its initializers that an earlier member
    /// already stores, mapped to the kept names. Then registers the rest as kept.
    pub fn plan(&mut self, member: usize, model: &Model, prefix: &str) -> HashMap<String, String> {
        let inputs: HashSet<&str> = model.graph.input_names().collect();
        let mut found = HashMap::new();
        let mut kept = Vec::new();
        for t in &model.graph.initializers {
            if inputs.contains(t.name()) {
                continue; // an overridable default: private to its member
            }
            let hash = t.content_hash();
            let earlier = self
                .by_hash
                .get(&hash)
                .and_then(|list| list.iter().find(|(_, k)| same_content(k, t)));
            match earlier {
                Some((name, _)) => {
                    self.shared.push(SharedTensor {
                        member,
                        name: t.name().to_string(),
                        kept: name.clone(),
                        bytes: t.data_byte_len(),
                    });
                    found.insert(t.name().to_string(), name.clone());
                }
                None => kept.push((hash, format!("{prefix}{}", t.name()), t.clone())),
            }
        }
        for (hash, name, t) in kept {
            self.by_hash.entry(hash).or_default().push((name, t));
        }
        found
    }
}
