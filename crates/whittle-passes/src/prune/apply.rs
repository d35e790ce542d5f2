//! Physically removing channels: every mapped initializer is rebuilt with the kept indices
//! on each mapped axis, depthwise `group` attributes, Slice bounds and Split sizes
//! (attribute or tensor, [`super::split_sizes`]) follow, and `value_info` entries of
//! values whose channels changed are dropped (shape inference recomputes them).
//!
//! Invariant: a tensor is only rewritten when at least one group on one of its axes lost
//! channels; every other byte of the model is left as read.
use super::groups::{Analysis, TensorMap};
use super::slicing::IntFix;
use bytes::Bytes;
use std::collections::BTreeMap;
use whittle_ir::Model;

/// Kept channel indices per group id (groups absent here keep everything).
pub type Keep = BTreeMap<usize, Vec<usize>>;

/// The indices kept along an axis mapped by `map` (None: no group on it lost channels).
pub(crate) fn axis_indices(map: &TensorMap, keep: &Keep) -> Option<Vec<usize>> {
    if !map.segs.iter().any(|(g, _)| keep.contains_key(g)) {
        return None;
    }
    let run = map.run as usize;
    let mut out = Vec::new();
    let mut offset = 0usize;
    for &(g, size) in &map.segs {
        let all: Vec<usize> = (0..size as usize).collect();
        for &c in keep.get(&g).unwrap_or(&all) {
            let base = (offset + c) * run;
            out.extend(base..base + run);
        }
        offset += size as usize;
    }
    Some(out)
}

/// Gathers `indices` along `axis` of packed little-endian data.
fn gather(
    data: &[u8],
    dims: &[i64],
    elem: usize,
    axis: usize,
    indices: &[usize],
) -> Result<Vec<u8>, String> {
    let dims: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    let len = *dims.get(axis).ok_or("axis out of range")?;
    if indices.iter().any(|&i| i >= len) {
        return Err(format!("index out of range for axis {axis} of {len}"));
    }
    let inner = dims[axis + 1..].iter().product::<usize>() * elem;
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let start = (o * len + i) * inner;
            out.extend_from_slice(
                data.get(start..start + inner)
                    .ok_or("tensor data too short")?,
            );
        }
    }
    Ok(out)
}

/// Applies the kept sets to the model.
pub fn apply(model: &mut Model, analysis: &Analysis, keep: &Keep) -> Result<Vec<String>, String> {
    let mut changes = Vec::new();
    for t in model.graph.initializers.iter_mut() {
        let Some(maps) = analysis.tensors.get(t.name()) else {
            continue;
        };
        let before = t.dims().to_vec();
        for map in maps {
            let Some(ix) = axis_indices(map, keep) else {
                continue;
            };
            let elem = t
                .dtype()
                .bits()
                .filter(|b| b % 8 == 0)
                .ok_or(format!("{:?}: sub-byte data cannot be pruned", t.name()))?
                as usize
                / 8;
            let data = t.le_bytes().map_err(|e| e.to_string())?;
            let new = gather(&data, t.dims(), elem, map.axis, &ix)
                .map_err(|e| format!("{:?}: {e}", t.name()))?;
            t.set_raw(Bytes::from(new));
            t.proto.dims[map.axis] = ix.len() as i64;
        }
        if t.dims() != before.as_slice() {
            changes.push(format!("{}: {:?} -> {:?}", t.name(), before, t.dims()));
        }
    }
    let sizes: BTreeMap<usize, usize> = keep.iter().map(|(g, k)| (*g, k.len())).collect();
    let channels = |gs: &[usize], a: &Analysis| -> i64 {
        gs.iter()
            .map(|g| {
                sizes
                    .get(g)
                    .copied()
                    .unwrap_or(a.groups[*g].channels as usize) as i64
            })
            .sum()
    };
    for n in model.graph.nodes_mut() {
        let name = n.name().to_string();
        let Some(gs) = analysis.depthwise.get(&name) else {
            continue;
        };
        let new = channels(gs, analysis);
        let group = n.attributes.iter_mut().find(|a| a.proto.name() == "group");
        if let Some(a) = group.filter(|a| a.proto.i != Some(new)) {
            a.proto.i = Some(new);
            changes.push(format!("{name}: group -> {new}"));
        }
    }
    for fix in &analysis.int_fixes {
        let IntFix::SliceBounds {
            starts,
            ends,
            pos,
            before,
            inside,
        } = fix
        else {
            continue; // Split sizes: `split_sizes::rewrite` below
        };
        if !before.iter().chain(inside).any(|g| keep.contains_key(g)) {
            continue;
        }
        let start = channels(before, analysis);
        let end = start + channels(inside, analysis);
        for (tensor, v) in [(starts, start), (ends, end)] {
            if set_int(model, tensor, *pos, v)? {
                changes.push(format!("{tensor}: Slice bound {pos} -> {v}"));
            }
        }
    }
    changes.extend(super::split_sizes::rewrite(model, analysis, keep)?);
    changes.extend(super::split_sizes::fix_split_attributes(
        model, analysis, keep,
    ));
    let stale: Vec<&String> = analysis
        .values
        .iter()
        .filter(|(_, gs)| gs.iter().any(|g| keep.contains_key(g)))
        .map(|(v, _)| v)
        .collect();
    model
        .graph
        .proto
        .value_info
        .retain(|v| !stale.contains(&&v.name().to_string()));
    Ok(changes)
}

/// Sets element `i` of an int64 initializer (left as is when it already holds `v`);
/// whether it changed.
fn set_int(model: &mut Model, tensor: &str, i: usize, v: i64) -> Result<bool, String> {
    let t = model
        .graph
        .initializers
        .iter_mut()
        .find(|t| t.name() == tensor)
        .ok_or(format!("{tensor:?} is not an initializer"))?;
    let mut data = t.le_bytes().map_err(|e| e.to_string())?.into_owned();
    let slot = data
        .get_mut(i * 8..i * 8 + 8)
        .ok_or(format!("{tensor:?} has no element {i}"))?;
    if slot == v.to_le_bytes() {
        return Ok(false);
    }
    slot.copy_from_slice(&v.to_le_bytes());
    t.set_raw(Bytes::from(data));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_along_an_inner_axis() {
        // [2, 3] u8 data, keep columns 0 and 2.
        let data = [1u8, 2, 3, 4, 5, 6];
        assert_eq!(
            gather(&data, &[2, 3], 1, 1, &[0, 2]).unwrap(),
            vec![1, 3, 4, 6]
        );
        assert_eq!(gather(&data, &[2, 3], 1, 0, &[1]).unwrap(), vec![4, 5, 6]);
        assert!(gather(&data, &[2, 3], 1, 0, &[2]).is_err());
    }

    #[test]
    fn runs_and_offsets_map_channels_to_features() {
        let map = TensorMap {
            axis: 0,
            segs: vec![(0, 2), (1, 2)],
            run: 2,
        };
        let keep: Keep = [(1, vec![1])].into_iter().collect();
        assert_eq!(axis_indices(&map, &keep).unwrap(), vec![0, 1, 2, 3, 6, 7]);
    }
}
