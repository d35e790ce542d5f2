use super::*;
use crate::quantize::scheme::keep_f32;

/// A small deterministic generator (no test may depend on a seed-less RNG).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

fn dense(features: usize, output_axis: usize) -> Target {
    Target {
        node: "n".into(),
        weight: "w".into(),
        input: "x".into(),
        rows: Rows::Dense,
        output_axis,
        features,
        groups: 1,
    }
}

/// ‖(W − Q) xᵀ‖² summed over the rows of `x` (rows × d), W/Q as `rows_w` × d row-major.
fn output_error(w: &[f32], q: &[f32], x: &[f64], d: usize) -> f64 {
    let rows_w = w.len() / d;
    let mut total = 0.0;
    for xr in x.chunks(d) {
        for r in 0..rows_w {
            let e: f64 = (0..d)
                .map(|j| (f64::from(w[r * d + j]) - f64::from(q[r * d + j])) * xr[j])
                .sum();
            total += e * e;
        }
    }
    total
}

#[test]
fn uncorrelated_inputs_give_round_to_nearest() {
    // H ∝ I: no rounding error can be compensated, so GPTQ must equal round-to-nearest.
    let (rows, d) = (3, 5);
    let mut seed = 7;
    let w: Vec<f32> = (0..rows * d).map(|_| lcg(&mut seed) as f32).collect();
    let t = dense(d, 0);
    let mut h = LayerHessian::new(&t);
    h.groups[0] = DMatrix::identity(d, d) * 4.0;
    h.rows = 4;
    let rtn = weights::quantize(
        &w,
        &[rows, d],
        Layout::PerAxis { axis: 0 },
        QuantType::Int4,
        true,
        keep_f32,
    );
    let mut q = rtn.clone();
    round(
        &w,
        &[rows, d],
        Layout::PerAxis { axis: 0 },
        QuantType::Int4,
        &h,
        &mut q,
    )
    .unwrap();
    assert_eq!(q.values, rtn.values);
    assert_eq!(q.params, rtn.params);
}

#[test]
fn correlated_inputs_lower_the_output_error_in_both_orientations() {
    let (outs, d, n) = (6, 12, 200);
    let mut seed = 11;
    // Inputs with strongly correlated features: x = z·A.
    let a: Vec<f64> = (0..d * d).map(|_| lcg(&mut seed)).collect();
    let x: Vec<f64> = (0..n)
        .flat_map(|_| {
            let z: Vec<f64> = (0..d).map(|_| lcg(&mut seed)).collect();
            (0..d)
                .map(|j| (0..d).map(|k| z[k] * a[k * d + j]).sum::<f64>() + 0.5)
                .collect::<Vec<_>>()
        })
        .collect();
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let w: Vec<f32> = (0..outs * d).map(|_| lcg(&mut seed) as f32).collect();
    for output_axis in [0, 1] {
        let t = dense(d, output_axis);
        let mut h = LayerHessian::new(&t);
        accumulate(&t, &mut h, &xf, &[n, d], n).unwrap();
        assert_eq!(h.rows, n as u64);
        // The weight as the layer stores it: [outs, d] (axis 0) or [d, outs] (axis 1).
        let (dims, stored): (Vec<usize>, Vec<f32>) = if output_axis == 0 {
            (vec![outs, d], w.clone())
        } else {
            let tw = (0..d * outs)
                .map(|i| w[(i % outs) * d + i / outs])
                .collect();
            (vec![d, outs], tw)
        };
        let layout = Layout::PerAxis { axis: output_axis };
        let rtn = weights::quantize(&stored, &dims, layout, QuantType::Int4, true, keep_f32);
        let mut q = rtn.clone();
        round(&stored, &dims, layout, QuantType::Int4, &h, &mut q).unwrap();
        let rows_major = |v: &[f32]| -> Vec<f32> {
            if output_axis == 0 {
                v.to_vec()
            } else {
                (0..outs * d).map(|i| v[(i % d) * outs + i / d]).collect()
            }
        };
        let e_rtn = output_error(&w, &rows_major(&rtn.dequantized), &x, d);
        let e_gptq = output_error(&w, &rows_major(&q.dequantized), &x, d);
        assert!(
            e_gptq < 0.7 * e_rtn,
            "axis {output_axis}: GPTQ {e_gptq} vs RTN {e_rtn}"
        );
        // Same scales, every integer in the int4 range.
        assert_eq!(q.params, rtn.params);
        assert!(q.values.iter().all(|&v| (-8..=7).contains(&v)));
    }
}

#[test]
fn conv_rows_are_im2col_patches_per_group() {
    // x: 1 sample, 4 channels, 3×4; weight [2, 2, 2, 2] with group 2, stride 1, pads 1 on top/left only.
    let (c, ih, iw) = (4, 3, 4);
    let x: Vec<f32> = (0..c * ih * iw).map(|i| (i as f32 * 0.37).sin()).collect();
    let t = Target {
        node: "conv".into(),
        weight: "w".into(),
        input: "x".into(),
        rows: Rows::Conv {
            kernel: [2, 2],
            strides: [1, 1],
            dilations: [1, 1],
            pads: Some([1, 1, 0, 0]),
            same_upper: false,
            group: 2,
        },
        output_axis: 0,
        features: 2 * 2 * 2,
        groups: 2,
    };
    let mut h = LayerHessian::new(&t);
    accumulate(&t, &mut h, &x, &[1, c, ih, iw], 10_000).unwrap();
    // Output 3×4 (= input + 1 pad − 2 + 1); the reference builds each patch by hand.
    assert_eq!(h.rows, 12);
    for g in 0..2 {
        let mut want = DMatrix::<f64>::zeros(8, 8);
        for oy in 0..3 {
            for ox in 0..4 {
                let mut v = [0.0f64; 8];
                for cl in 0..2 {
                    for ki in 0..2 {
                        for kj in 0..2 {
                            let (iy, ix) = (oy + ki, ox + kj);
                            if iy >= 1 && ix >= 1 && iy - 1 < ih && ix - 1 < iw {
                                let ch = g * 2 + cl;
                                v[cl * 4 + ki * 2 + kj] =
                                    f64::from(x[(ch * ih + iy - 1) * iw + ix - 1]);
                            }
                        }
                    }
                }
                for a in 0..8 {
                    for b in 0..8 {
                        want[(a, b)] += v[a] * v[b];
                    }
                }
            }
        }
        assert!((&h.groups[g] - &want).abs().max() < 1e-9, "group {g}");
    }
    // A wrong channel count is an error naming the node, not a panic.
    let err = accumulate(&t, &mut h, &x[..36], &[1, 3, ih, iw], 10).unwrap_err();
    assert!(err.contains("conv") && err.contains("channels"), "{err}");
}

#[test]
fn the_factor_is_the_upper_cholesky_factor_of_the_damped_inverse() {
    // 7: one leaf; 150 and 301: the halving recursion, with odd splits.
    for d in [7usize, 150, 301] {
        let mut seed = 3;
        let a = DMatrix::from_fn(d, 2 * d, |_, _| lcg(&mut seed));
        let mut h = &a * a.transpose();
        h[(2, 2)] = 0.0; // an input never seen: its row and column are zero
        for k in 0..d {
            if k != 2 {
                h[(2, k)] = 0.0;
                h[(k, 2)] = 0.0;
            }
        }
        let u = inverse_factor_for_tests(&h).unwrap();
        let mean = (0..d).map(|i| h[(i, i)]).sum::<f64>() / d as f64;
        let mut damped = h.clone();
        damped[(2, 2)] = 1.0;
        for i in 0..d {
            damped[(i, i)] += DAMP * mean;
        }
        let inv = damped.try_inverse().unwrap();
        let err = (u.transpose() * &u - &inv).abs().max() / inv.abs().max();
        assert!(err < 1e-10, "d {d}: relative error {err:e}");
        for i in 0..d {
            assert!(u[(i, i)] > 0.0);
            for j in 0..i {
                assert_eq!(u[(i, j)], 0.0, "d {d}: U must be upper triangular");
            }
        }
    }
}

#[test]
fn targets_cover_1d_and_2d_conv_gemm_and_matmul_only() {
    use crate::cleanup::attrs::{int_attribute, ints_attribute as ints};
    use crate::quantize::tests::{f32t, graph, model, node, vi};
    let w1 = vec![0.5f32; 4 * 2 * 3];
    let wg = vec![0.25f32; 6 * 3];
    let wm = vec![0.1f32; 4 * 5];
    let nodes = vec![
        node(
            "Conv",
            "conv1d",
            &["x", "w1"],
            "c",
            vec![ints("pads", &[1, 1])],
        ),
        node(
            "Gemm",
            "gemm_ta",
            &["a", "wg"],
            "g",
            vec![int_attribute("transA", 1)],
        ),
        node("MatMul", "mm", &["m", "wm"], "y", vec![]),
    ];
    let g = graph(
        "g",
        vec![vi("x", &[1, 2, 10]), vi("a", &[3, 6]), vi("m", &[2, 4])],
        vec![vi("c", &[1, 4, 10]), vi("g", &[6, 3]), vi("y", &[2, 5])],
        vec![
            f32t("w1", &[4, 2, 3], &w1),
            f32t("wg", &[3, 6], &wg),
            f32t("wm", &[4, 5], &wm),
        ],
        nodes,
    );
    let t = targets(&model(g, 17), &QuantizeOptions::default());
    let names: Vec<&str> = t.iter().map(|t| t.weight.as_str()).collect();
    assert_eq!(names, ["w1", "wm"], "transA Gemm is not covered");
    let Rows::Conv { kernel, pads, .. } = &t[0].rows else {
        panic!("{:?}", t[0].rows)
    };
    assert_eq!((*kernel, *pads), ([1, 3], Some([0, 1, 0, 1])));
    assert_eq!((t[0].features, t[0].output_axis), (6, 0));
    assert_eq!((t[1].features, t[1].output_axis), (4, 1));
    // A 1-D input accumulates like the same data at height 1.
    let x: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).cos()).collect();
    let (mut a, mut b) = (LayerHessian::new(&t[0]), LayerHessian::new(&t[0]));
    accumulate(&t[0], &mut a, &x, &[1, 2, 10], 100).unwrap();
    accumulate(&t[0], &mut b, &x, &[1, 2, 1, 10], 100).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.rows, 10);
}
