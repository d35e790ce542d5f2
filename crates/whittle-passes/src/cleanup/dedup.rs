//! Duplicate initializers merged by content: tensors of one graph with the same dtype,
//! dims and bytes (grouped by dtype and dims, then compared byte for byte) become one; readers of the
//! others read the first.
//!
//! Invariants:
//! - an initializer that a graph input overrides (IR ≥ 4) or that is a graph output keeps
//!   its name and is never merged away;
//! - uses inside subgraphs are renamed too (unless the subgraph defines the name itself);
//! - only initializers of the same graph are merged.
use super::scope::{self, GraphCx};
use crate::{Pass, PassContext, PassError, PassReport};
use std::collections::{BTreeMap, HashMap, HashSet};
use whittle_ir::{Graph, Model};

/// The duplicate-initializer pass.
#[derive(Default)]
pub struct DedupInitializers;

impl Pass for DedupInitializers {
    fn name(&self) -> &'static str {
        "dedup"
    }

    fn run(&self, model: &mut Model, _: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        let cx = GraphCx::main(model);
        scope::bottom_up(&mut model.graph, cx, "", &mut report, dedup);
        Ok(report)
    }
}

/// Rewrites one graph (its subgraphs are done first by [`scope::bottom_up`]).
fn dedup(g: &mut Graph, cx: GraphCx, path: &str, report: &mut PassReport) {
    if !cx.can_add_initializers() {
        // A pre-IR-4 body lists its initializers as inputs: leave its signature alone.
        return;
    }
    let outputs: HashSet<&str> = g.output_names().collect();
    let candidates: Vec<usize> = (0..g.initializers.len())
        .filter(|&i| {
            let t = &g.initializers[i];
            let fixed = !scope::is_constant_init(g, t.name(), &cx) || outputs.contains(t.name());
            !fixed && t.le_bytes().is_ok()
        })
        .collect();
    // Candidates grouped by dtype and dims (only those can be equal), groups in the order of
    // their first member; members are then compared byte for byte with the kept ones — a
    // comparison of different tensors stops at the first differing byte, far cheaper than
    // hashing every weight (and it runs in every clean-up round).
    let mut first_of: HashMap<(whittle_ir::DataType, &[i64]), usize> = HashMap::new();
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &candidates {
        let t = &g.initializers[i];
        let first = *first_of.entry((t.dtype(), t.dims())).or_insert(i);
        groups.entry(first).or_default().push(i);
    }
    let mut map: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::new();
    for members in groups.values().filter(|m| m.len() > 1) {
        let mut kept: Vec<usize> = Vec::new();
        for &i in members {
            let t = &g.initializers[i];
            let same = kept
                .iter()
                .copied()
                .find(|&k| g.initializers[k].le_bytes().ok() == t.le_bytes().ok());
            match same {
                Some(k) => {
                    let (from, to) = (t.name().to_string(), g.initializers[k].name().to_string());
                    if scope::rename_is_safe(g, &from, &to) {
                        lines.push(format!(
                            "{path}merged initializer {from:?} into {to:?} ({})",
                            whittle_ir::text::tensor_summary(t)
                        ));
                        map.insert(from, to);
                    } else {
                        report.skipped.push(format!(
                            "{path}initializer {from:?}: a subgraph defines {to:?} itself"
                        ));
                    }
                }
                None => kept.push(i),
            }
        }
    }
    if map.is_empty() {
        return;
    }
    scope::rename_uses(g, &map, false);
    let gone: HashSet<String> = map.keys().cloned().collect();
    scope::remove_initializers(g, &gone, &cx);
    scope::fix_value_info(g, &gone, &HashMap::new());
    report.changes.extend(lines);
}
