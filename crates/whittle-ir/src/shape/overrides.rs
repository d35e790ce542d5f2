//! User-given input shapes (`--shape NAME=1x3x224x224`, `--batch N`) turned into fixed
//! input dims and symbol bindings.
//!
//! A number given for a dim the model names (`N`) binds that symbol everywhere it is
//! declared (other inputs, `value_info`), so one `--batch 1` fixes `N` in every input
//! that uses it. A number given for a dim the model fixes must equal it.
use super::dim::Dim;
use super::{ShapeError, ShapeOverrides};
use crate::graph::Graph;
use crate::model::Model;
use crate::types::{self, tensor_type};
use std::collections::{BTreeMap, HashSet};

/// Overrides checked against the model.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// Full replacement shapes of main-graph inputs.
    pub inputs: BTreeMap<String, Vec<Dim>>,
    /// Symbol → number.
    pub bindings: BTreeMap<String, u64>,
}

/// A declared dim as overrides see it: a negative `dim_value` (some exporters write −1)
/// is no number, and a `dim_param` of `"?"` (written for every unknown dim by some
/// exporters) is no shared symbol: both are unknown.
fn normalized(d: &types::Dim) -> types::Dim {
    match d {
        types::Dim::Fixed(v) if *v < 0 => types::Dim::Unknown,
        types::Dim::Symbolic(s) if s == "?" => types::Dim::Unknown,
        d => d.clone(),
    }
}

/// The main graph's real inputs (not initializers listed as inputs), with declared dims.
fn real_inputs(g: &Graph) -> Vec<(&str, Option<Vec<types::Dim>>)> {
    let inits: HashSet<&str> = g.initializers.iter().map(|t| t.name()).collect();
    g.proto
        .input
        .iter()
        .filter(|v| !inits.contains(v.name()))
        .map(|v| {
            let dims = v.r#type.as_ref().and_then(tensor_type).and_then(|(_, d)| d);
            (v.name(), dims.map(|d| d.iter().map(normalized).collect()))
        })
        .collect()
}

fn bind(bindings: &mut BTreeMap<String, u64>, symbol: &str, value: u64) -> Result<(), ShapeError> {
    match bindings.get(symbol) {
        Some(&old) if old != value => Err(ShapeError::Conflict {
            symbol: symbol.to_string(),
            first: old,
            second: value,
        }),
        _ => {
            bindings.insert(symbol.to_string(), value);
            Ok(())
        }
    }
}

pub(super) fn resolve(model: &Model, o: &ShapeOverrides) -> Result<Resolved, ShapeError> {
    let inputs = real_inputs(&model.graph);
    let mut r = Resolved::default();
    for (name, dims) in &o.inputs {
        let Some((_, declared)) = inputs.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
            return Err(ShapeError::UnknownInput {
                name: name.clone(),
                inputs: names.join(", "),
            });
        };
        if let Some(declared) = declared {
            check_against(name, declared, dims, &mut r.bindings)?;
        }
        r.inputs
            .insert(name.clone(), dims.iter().map(|&d| Dim::Known(d)).collect());
    }
    let Some(batch) = o.batch else { return Ok(r) };
    let mut unnamed = Vec::new();
    for (name, declared) in &inputs {
        if r.inputs.contains_key(*name) {
            continue;
        }
        match declared.as_deref().and_then(<[types::Dim]>::first) {
            Some(types::Dim::Symbolic(s)) => bind(&mut r.bindings, s, batch)?,
            Some(types::Dim::Unknown) => {
                unnamed.push((*name, declared.clone().unwrap_or_default()))
            }
            _ => {}
        }
    }
    // An unnamed leading dim is fixed in that input only (there is no name to bind).
    for (name, declared) in unnamed {
        let mut dims: Vec<Dim> = declared.iter().map(|d| bound(d, &r.bindings)).collect();
        dims[0] = Dim::Known(batch);
        r.inputs.insert(name.to_string(), dims);
    }
    Ok(r)
}

fn bound(d: &types::Dim, bindings: &BTreeMap<String, u64>) -> Dim {
    match d {
        types::Dim::Fixed(v) => Dim::from_i64(*v),
        types::Dim::Symbolic(s) => bindings
            .get(s)
            .map_or_else(|| Dim::Symbolic(s.clone()), |&n| Dim::Known(n)),
        types::Dim::Unknown => Dim::Unknown,
    }
}

fn check_against(
    name: &str,
    declared: &[types::Dim],
    given: &[u64],
    bindings: &mut BTreeMap<String, u64>,
) -> Result<(), ShapeError> {
    if declared.len() != given.len() {
        return Err(ShapeError::Rank {
            name: name.to_string(),
            given: given.len(),
            rank: declared.len(),
        });
    }
    for (index, (d, &g)) in declared.iter().zip(given).enumerate() {
        match d {
            // A negative dim_value (PP-OCR writes -1) is unknown, not fixed: any value fits.
            types::Dim::Fixed(f) if *f >= 0 && u64::try_from(*f).ok() != Some(g) => {
                return Err(ShapeError::Fixed {
                    name: name.to_string(),
                    index,
                    fixed: *f,
                    given: g,
                });
            }
            types::Dim::Symbolic(s) => bind(bindings, s, g)?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod negative_dim_tests {
    use super::*;

    #[test]
    fn a_negative_declared_dim_accepts_any_value() {
        let declared = [types::Dim::Fixed(-1), types::Dim::Fixed(3)];
        let mut b = BTreeMap::new();
        assert!(check_against("x", &declared, &[7, 3], &mut b).is_ok());
        assert!(check_against("x", &declared, &[7, 4], &mut b).is_err());
    }
}
