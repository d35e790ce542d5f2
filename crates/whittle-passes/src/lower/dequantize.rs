//! Folds `DequantizeLinear` of constant inputs into a float initializer.
//!
//! `y = (x - zero_point) * scale`, per tensor (scalar scale), per axis (1-D scale along
//! `axis`) or blocked (opset 21: scale of x's rank with `ceil(dim/block_size)` along
//! `axis`). The result takes the scale's dtype (f32, or f16/bf16 computed in f32 and
//! rounded once, which equals the runtime's single rounding since the f32 product of an
//! integer below 2^16 and a 16-bit float is exact). Quantized inputs of every integer
//! width are read, 4-bit ones unpacked low nibble first; float8 inputs are skipped.
use crate::{PassError, PassReport};
use bytes::Bytes;
use whittle_ir::{DataType, Graph, Tensor};

fn err(node: &str, message: String) -> PassError {
    PassError::Failed {
        pass: "fold-dequantize".into(),
        message: format!("node {node:?}: {message}"),
    }
}

/// Integer values of a quantized tensor.
fn int_values(t: &Tensor) -> Option<Vec<i64>> {
    let b = t.le_bytes().ok()?;
    let n = t.num_elements()? as usize;
    let v: Vec<i64> = match t.dtype().short_name().as_str() {
        "i8" => b.iter().map(|&x| x as i8 as i64).collect(),
        "u8" => b.iter().map(|&x| x as i64).collect(),
        "i16" => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        "u16" => b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        "i32" => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        "u4" => (0..n)
            .map(|i| ((b[i / 2] >> (4 * (i % 2))) & 0xf) as i64)
            .collect(),
        "i4" => (0..n)
            .map(|i| {
                let nib = (b[i / 2] >> (4 * (i % 2))) & 0xf;
                ((nib << 4) as i8 >> 4) as i64
            })
            .collect(),
        _ => return None,
    };
    (v.len() == n).then_some(v)
}

/// How element `i` of x maps to its scale/zero-point index.
fn param_index(dims: &[usize], axis: usize, block: usize, scale_len: usize, i: usize) -> usize {
    if scale_len == 1 {
        return 0;
    }
    let inner: usize = dims[axis + 1..].iter().product();
    let along = (i / inner) % dims[axis];
    if block == 0 {
        return along;
    }
    // Blocked: the scale has x's shape with dims[axis] replaced by ceil(dims[axis]/block).
    let blocks = dims[axis].div_ceil(block);
    let outer = i / (inner * dims[axis]);
    let within = i % inner;
    (outer * blocks + along / block) * inner + within
}

/// The folded float tensor for one DequantizeLinear node, or why it cannot be folded.
pub fn fold(
    graph: &Graph,
    node: &whittle_ir::Node,
    name: &str,
) -> Result<Result<Tensor, String>, PassError> {
    let init = |i: usize| {
        node.inputs()
            .get(i)
            .filter(|s| !s.is_empty())
            .and_then(|s| graph.initializer(s))
    };
    let (Some(x), Some(scale)) = (init(0), init(1)) else {
        return Ok(Err("x or scale is not a constant initializer".into()));
    };
    let zp = init(2);
    if node.inputs().get(2).is_some_and(|s| !s.is_empty()) && zp.is_none() {
        return Ok(Err("zero point is not a constant initializer".into()));
    }
    let Some(xv) = int_values(x) else {
        return Ok(Err(format!(
            "x has dtype {} (not an integer type whittle reads)",
            x.dtype()
        )));
    };
    let zpv = match zp {
        Some(z) => match int_values(z) {
            Some(v) => v,
            None => return Ok(Err(format!("zero point has dtype {}", z.dtype()))),
        },
        None => vec![0],
    };
    let sv = scale
        .to_f32_vec()
        .map_err(|e| err(node.name(), e.to_string()))?;
    let dims: Vec<usize> = x.dims().iter().map(|&d| d.max(0) as usize).collect();
    let rank = dims.len() as i64;
    let axis = node.attr_int("axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank } else { axis };
    let block = node.attr_int("block_size").unwrap_or(0).max(0) as usize;
    if sv.len() > 1 && !(0..rank).contains(&axis) {
        return Ok(Err(format!("axis {axis} is out of range for rank {rank}")));
    }
    let axis = axis.max(0) as usize;
    if zpv.len() != 1 && zpv.len() != sv.len() {
        return Ok(Err("zero point and scale have different sizes".into()));
    }
    let expected = if sv.len() == 1 {
        1
    } else if block == 0 {
        dims.get(axis).copied().unwrap_or(0)
    } else {
        dims.iter()
            .enumerate()
            .map(|(k, &d)| if k == axis { d.div_ceil(block) } else { d })
            .product()
    };
    if sv.len() != expected {
        return Ok(Err(format!(
            "scale has {} elements, expected {expected}",
            sv.len()
        )));
    }
    let values: Vec<f32> = xv
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let k = param_index(&dims, axis, block, sv.len(), i);
            let z = zpv[if zpv.len() == 1 { 0 } else { k }];
            (q - z) as f32 * sv[k]
        })
        .collect();
    let out_dtype = match node.attr_int("output_dtype") {
        Some(d) if d != 0 => DataType(d as i32),
        _ => scale.dtype(),
    };
    let data: Vec<u8> = match out_dtype {
        DataType::FLOAT => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DataType::FLOAT16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        DataType::BFLOAT16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        d => {
            return Ok(Err(format!(
                "output dtype {d} is not a float type whittle writes"
            )));
        }
    };
    Ok(Ok(Tensor::new_raw(
        name,
        out_dtype,
        x.dims().to_vec(),
        Bytes::from(data),
    )))
}

/// Folds every foldable DequantizeLinear of `graph` (not recursing); returns the report lines.
pub fn fold_graph(graph: &mut Graph, report: &mut PassReport) -> Result<(), PassError> {
    let mut folded = Vec::new();
    for (ix, n) in graph.nodes() {
        if n.op_type() != "DequantizeLinear" || n.domain() != "" {
            continue;
        }
        let Some(out) = n.outputs().first() else {
            continue;
        };
        match fold(graph, n, out)? {
            Ok(t) => folded.push((ix, t, n.label(0))),
            Err(why) => report
                .skipped
                .push(format!("DequantizeLinear {}: {why}", n.label(0))),
        }
    }
    let doomed: Vec<_> = folded.iter().map(|(ix, _, _)| *ix).collect();
    for (_, t, label) in folded {
        report.changes.push(format!(
            "folded DequantizeLinear {label} into initializer {:?}",
            t.name()
        ));
        graph.initializers.push(t);
    }
    graph.remove_nodes(&doomed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_index_maps_to_its_block() {
        // x [2, 4], axis 1, block 2 → scale [2, 2].
        let dims = [2, 4];
        let got: Vec<usize> = (0..8).map(|i| param_index(&dims, 1, 2, 4, i)).collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2, 3, 3]);
        // per-axis along axis 0 of [3, 2]
        let got: Vec<usize> = (0..6).map(|i| param_index(&[3, 2], 0, 0, 3, i)).collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn int4_unpacks_low_nibble_first_with_sign() {
        let t = Tensor::new_raw(
            "q",
            DataType(22),
            vec![3],
            Bytes::from_static(&[0xF7, 0x08]),
        );
        assert_eq!(int_values(&t), Some(vec![7, -1, -8]));
        let u = Tensor::new_raw(
            "q",
            DataType(21),
            vec![3],
            Bytes::from_static(&[0xF7, 0x08]),
        );
        assert_eq!(int_values(&u), Some(vec![7, 15, 8]));
    }
}
