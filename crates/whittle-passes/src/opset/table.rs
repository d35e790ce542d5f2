//! Lookups over the generated operator history ([`super::history`]) and the opset → IR
//! version table.
use super::history::{DEPRECATED, HISTORY, STEPS};

/// An attribute's default value as the schema states it (for "is this the default?").
#[derive(Clone, Copy, Debug)]
pub(crate) enum D {
    None,
    I(i64),
    F(f32),
    S(&'static str),
}

/// How an operator's schema at `since` differs from the one at `prev`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub op: &'static str,
    pub since: i64,
    pub prev: i64,
    /// Every node valid for `prev` is valid for `since` with the same meaning, as far as the
    /// signature tells.
    pub additive: bool,
    /// Attributes `since` added, with their defaults.
    pub new_attrs: &'static [(&'static str, D)],
    /// How many inputs / outputs `prev` accepts (255: variadic).
    pub old_max_inputs: usize,
    pub old_max_outputs: usize,
    /// Inputs that were required in `prev` and are optional in `since`.
    pub now_optional: &'static [usize],
    /// Element types (`TensorProto.DataType` codes) `since` accepts and `prev` did not.
    pub new_types: &'static [i32],
    /// For steps that are not additive: what changed.
    pub what: &'static str,
}

impl Step {
    /// The step into the first version of `op` (there is no older schema to compare with).
    pub fn first(op: &'static str, since: i64) -> Step {
        Step {
            op,
            since,
            prev: 0,
            additive: false,
            new_attrs: &[],
            old_max_inputs: 0,
            old_max_outputs: 0,
            now_optional: &[],
            new_types: &[],
            what: "the operator does not exist before",
        }
    }
}

/// `op`'s name as the table spells it (a `'static` copy), if the op is known.
pub(crate) fn known(op: &str) -> Option<&'static str> {
    HISTORY
        .binary_search_by(|(name, _)| (*name).cmp(op))
        .ok()
        .map(|i| HISTORY[i].0)
}

/// The opsets at which `op`'s schema changed, oldest first; `None` for an unknown op.
pub(crate) fn versions(op: &str) -> Option<&'static [i64]> {
    HISTORY
        .binary_search_by(|(name, _)| (*name).cmp(op))
        .ok()
        .map(|i| HISTORY[i].1)
}

/// The schema version (`since_version`) of `op` in opset `opset`; `None` when the op does
/// not exist yet (or is unknown).
pub(crate) fn since(op: &str, opset: i64) -> Option<i64> {
    versions(op)?.iter().rev().find(|&&v| v <= opset).copied()
}

/// The change of `op` at exactly `since`, if the table has one.
pub(crate) fn step(op: &str, since: i64) -> Option<Step> {
    STEPS
        .iter()
        .find(|s| s.op == op && s.since == since)
        .copied()
}

/// Whether the schema `op`-`since` is marked deprecated (Upsample-10, Scatter-11, …).
pub(crate) fn deprecated(op: &str, since: i64) -> bool {
    DEPRECATED.iter().any(|&(o, v)| o == op && v == since)
}

/// The lowest IR version a model importing ai.onnx `opset` must declare (onnx's
/// `helper.VERSION_TABLE`).
pub fn min_ir_version(opset: i64) -> i64 {
    match opset {
        ..=8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        23 => 11,
        24 => 12,
        25..=27 => 13,
        _ => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_sorted_for_binary_search() {
        assert!(HISTORY.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn since_follows_the_history() {
        assert_eq!(since("Squeeze", 12), Some(11));
        assert_eq!(since("Squeeze", 13), Some(13));
        assert_eq!(since("Resize", 9), None);
        assert_eq!(since("NoSuchOp", 13), None);
        assert!(deprecated("Upsample", 10));
        assert!(step("ReduceMean", 18).is_some_and(|s| !s.additive));
    }

    #[test]
    fn ir_versions_match_the_onnx_table() {
        let table = [
            (7, 3),
            (9, 4),
            (11, 6),
            (13, 7),
            (14, 7),
            (15, 8),
            (18, 8),
            (19, 9),
            (20, 9),
            (21, 10),
        ];
        for (opset, ir) in table {
            assert_eq!(min_ir_version(opset), ir, "opset {opset}");
        }
    }
}
