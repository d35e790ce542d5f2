use super::layer::classify;
use super::*;
use crate::prune::{Criterion, PruneOptions, analyse_model, plan};
use nalgebra::DMatrix;
use whittle_ir::Model;

/// Deterministic values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn digits() -> Model {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/digits_cnn.onnx");
    Model::load(&path).unwrap()
}

fn max_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).abs().max()
}

#[test]
fn consistent_system_is_recovered_exactly_streaming_over_batches() {
    let (rows, k, m) = (64, 5, 3);
    let truth = DMatrix::from_iterator(k, m, noise(k * m, 1).into_iter().map(f64::from));
    let x = noise(rows * k, 2);
    let xm = DMatrix::from_row_iterator(rows, k, x.iter().map(|&v| v as f64));
    let y: Vec<f32> = (&xm * &truth)
        .transpose()
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mut ne = NormalEquations::new(k, m);
    // Two batches of 40 and 24 rows give the same sums as one.
    ne.add_rows(&x[..40 * k], &y[..40 * m]).unwrap();
    ne.add_rows(&x[40 * k..], &y[40 * m..]).unwrap();
    assert_eq!(ne.rows(), 64);
    let w = ne.solve(&DMatrix::zeros(k, m), 1e-9, "t").unwrap();
    assert!(max_diff(&w, &truth) < 1e-5, "{w} vs {truth}");
    assert!(ne.relative_error(&w) < 1e-5);
    assert!(ne.relative_error(&DMatrix::zeros(k, m)) > 0.99);
}

#[test]
fn too_few_rows_keep_the_prior_where_the_data_is_silent() {
    // 2 rows, 4 unknowns: the prior (the true weights) already fits, so it stays.
    let (k, m) = (4, 2);
    let truth = DMatrix::from_iterator(k, m, noise(k * m, 3).into_iter().map(f64::from));
    let x = noise(2 * k, 4);
    let xm = DMatrix::from_row_iterator(2, k, x.iter().map(|&v| v as f64));
    let y: Vec<f32> = (&xm * &truth)
        .transpose()
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mut ne = NormalEquations::new(k, m);
    ne.add_rows(&x, &y).unwrap();
    let w = ne.solve(&truth, 1e-3, "t").unwrap();
    assert!(max_diff(&w, &truth) < 1e-5);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut ne = NormalEquations::new(3, 2);
    assert!(ne.add_rows(&[1.0; 5], &[1.0; 2]).is_err());
    assert!(ne.add_rows(&[1.0; 6], &[1.0; 2]).is_err());
    assert_eq!(
        ne.solve(&DMatrix::zeros(3, 2), 1e-3, "fc"),
        Err(ReconstructError::NoRows { node: "fc".into() })
    );
    ne.add_rows(&[f32::NAN, 0.0, 0.0], &[1.0, 1.0]).unwrap();
    assert!(ne.solve(&DMatrix::zeros(3, 2), 1e-3, "fc").is_err());
}

/// Direct 2-D convolution (NCHW, OIHW, group 1) with begin pads `p`, for checking im2col.
#[allow(clippy::too_many_arguments)]
fn conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    p: usize,
    out: usize,
) -> Vec<f32> {
    let [n, c, h, wd] = xs;
    let mut y = vec![0f32; n * m * out * out];
    for s in 0..n {
        for o in 0..m {
            for py in 0..out {
                for px in 0..out {
                    let mut acc = b[o];
                    for ch in 0..c {
                        for i in 0..k {
                            for j in 0..k {
                                let (iy, ix) = (
                                    (py + i) as isize - p as isize,
                                    (px + j) as isize - p as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += w[((o * c + ch) * k + i) * k + j]
                                        * x[((s * c + ch) * h + iy as usize) * wd + ix as usize];
                                }
                            }
                        }
                    }
                    y[((s * m + o) * out + py) * out + px] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv_im2col_matches_a_direct_convolution_and_refits_its_own_weights() {
    let model = digits();
    let n = model
        .graph
        .nodes()
        .map(|(_, n)| n)
        .find(|n| n.name() == "conv2")
        .unwrap();
    let layer = classify(&model, n, "conv2.weight").unwrap();
    let LayerKind::Conv {
        kernel: [3, 3],
        pads: Pads::Begin([1, 1]),
        ..
    } = layer.kind
    else {
        panic!("{:?}", layer.kind);
    };
    let w = model
        .graph
        .initializer("conv2.weight")
        .unwrap()
        .to_f32_vec()
        .unwrap();
    let b = model
        .graph
        .initializer("conv2.bias")
        .unwrap()
        .to_f32_vec()
        .unwrap();
    let xs = [4, 16, 8, 8];
    let x = noise(xs.iter().product(), 5);
    let y = conv(&x, xs, &w, &b, 16, 3, 1, 8);
    let prior = layer.prior(&model).unwrap();
    assert_eq!(prior.shape(), (16 * 9 + 1, 16));
    let mut ne = NormalEquations::new(prior.nrows(), prior.ncols());
    let xb = Batch {
        values: &x,
        shape: &xs,
    };
    let yb = Batch {
        values: &y,
        shape: &[4, 16, 8, 8],
    };
    layer.accumulate(&mut ne, xb, yb, 1024).unwrap();
    assert_eq!(ne.rows(), 256);
    assert!(
        ne.relative_error(&prior) < 1e-6,
        "{}",
        ne.relative_error(&prior)
    );
    let fit = ne
        .solve(&DMatrix::zeros(prior.nrows(), prior.ncols()), 1e-9, "conv2")
        .unwrap();
    assert!(max_diff(&fit, &prior) < 1e-3, "{}", max_diff(&fit, &prior));
    // Subsampling keeps every 4th position of each sample.
    let mut few = NormalEquations::new(prior.nrows(), prior.ncols());
    layer.accumulate(&mut few, xb, yb, 16).unwrap();
    assert_eq!(few.rows(), 64);
    // A mismatched channel count is an error naming the node.
    let bad = layer.accumulate(
        &mut few,
        Batch {
            values: &x[..4 * 15 * 64],
            shape: &[4, 15, 8, 8],
        },
        yb,
        16,
    );
    assert!(bad.unwrap_err().to_string().starts_with("conv2:"));
}

#[test]
fn write_is_the_inverse_of_prior_for_gemm_with_trans_b() {
    let mut model = digits();
    let n = model
        .graph
        .nodes()
        .map(|(_, n)| n)
        .find(|n| n.name() == "fc")
        .unwrap();
    let layer = classify(&model, n, "fc.weight").unwrap();
    assert!(
        matches!(layer.kind, LayerKind::Gemm { trans_b: true, .. }),
        "{:?}",
        layer.kind
    );
    let prior = layer.prior(&model).unwrap();
    assert_eq!(prior.shape(), (257, 10));
    let before = model
        .graph
        .initializer("fc.weight")
        .unwrap()
        .to_f32_vec()
        .unwrap();
    // fc.weight is [10, 256]: element (o, f) is row f, column o of the matrix.
    assert_eq!(prior[(3, 2)], before[2 * 256 + 3] as f64);
    let doubled = &prior * 2.0;
    layer.write(&mut model, &doubled).unwrap();
    assert_eq!(layer.prior(&model).unwrap(), doubled);
}

#[test]
fn digits_consumers_are_conv2_and_fc() {
    let model = digits();
    let analysis = analyse_model(&model);
    let options = PruneOptions {
        ratio: 0.25,
        criterion: Criterion::L2,
        ..Default::default()
    };
    let (_, outcomes) = plan(&model, &analysis, &options);
    let (layers, skipped) = consumers(&model, &analysis, &outcomes);
    assert!(skipped.is_empty(), "{skipped:?}");
    let names: Vec<&str> = layers.iter().map(|l| l.node.as_str()).collect();
    assert_eq!(names, ["conv2", "fc"]);
    // conv2 is also a producer of the pruned group: its target keeps 12 of 16 outputs.
    assert_eq!(layers[0].kept_outputs.as_ref().map(Vec::len), Some(12));
    assert_eq!(layers[1].kept_outputs, None);
    assert_eq!(layers[1].bias.as_deref(), Some("fc.bias"));
}

#[test]
fn kept_outputs_follow_every_group_on_the_output_axis() {
    // In yolo_zero, a Split after /model/2/cv1 puts two groups on its output axis (offset
    // 0 and 8): the target keeps the kept channels of both, in weight order.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/prune/yolo_zero.onnx");
    let model = Model::load(&path).unwrap();
    let analysis = analyse_model(&model);
    let options = PruneOptions {
        ratio: 0.3,
        criterion: Criterion::L1,
        ..Default::default()
    };
    let (keep, outcomes) = plan(&model, &analysis, &options);
    let mut pruned = model.clone();
    crate::prune::apply::apply(&mut pruned, &analysis, &keep).unwrap();
    let (layers, skipped) = consumers(&model, &analysis, &outcomes);
    assert!(skipped.is_empty(), "{skipped:?}");
    let split = layers
        .iter()
        .find(|l| l.node == "/model/2/cv1/conv/Conv")
        .expect("cv1 is re-fitted");
    assert!(split.kept_outputs.as_ref().unwrap().iter().any(|&c| c >= 8));
    for l in &layers {
        let outputs = l.prior(&pruned).unwrap().ncols();
        let original = l.prior(&model).unwrap().ncols();
        let kept = l.kept_outputs.as_ref().map_or(original, Vec::len);
        assert_eq!(kept, outputs, "{}", l.node);
    }
}

#[test]
fn matmul_rows_subsample_positions_and_keep_only_kept_outputs() {
    let layer = Layer {
        node: "mm".into(),
        op: "MatMul".into(),
        input: "x".into(),
        output: "y".into(),
        weight: "w".into(),
        bias: None,
        kind: LayerKind::MatMul,
        kept_outputs: Some(vec![1]),
    };
    // x: [2, 3, 2]; y = x · [[1, 2], [3, 4]], of which only column 1 is kept.
    let x: Vec<f32> = noise(12, 7);
    let y: Vec<f32> = x
        .chunks(2)
        .flat_map(|r| [r[0] + 3.0 * r[1], 2.0 * r[0] + 4.0 * r[1]])
        .collect();
    let mut ne = NormalEquations::new(2, 1);
    let xb = Batch {
        values: &x,
        shape: &[2, 3, 2],
    };
    let yb = Batch {
        values: &y,
        shape: &[2, 3, 2],
    };
    // 3 positions per sample, at most 2: positions 0 and 2 of each sample.
    layer.accumulate(&mut ne, xb, yb, 2).unwrap();
    assert_eq!(ne.rows(), 4);
    let w = ne.solve(&DMatrix::zeros(2, 1), 1e-9, "mm").unwrap();
    assert!(
        (w[(0, 0)] - 2.0).abs() < 1e-4 && (w[(1, 0)] - 4.0).abs() < 1e-4,
        "{w}"
    );
}

#[test]
fn matmul_bias_is_a_correction_to_the_add_after_it() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/external_mlp.onnx");
    let mut model = Model::load(&path).unwrap();
    let n = model
        .graph
        .nodes()
        .map(|(_, n)| n)
        .find(|n| n.name() == "fc1_matmul")
        .unwrap();
    let layer = classify(&model, n, &n.inputs()[1].clone()).unwrap();
    let bias = layer.bias.clone().expect("the Add constant is the bias");
    assert!(layer.corrects_add());
    let before = model
        .graph
        .initializer(&bias)
        .unwrap()
        .to_f32_vec()
        .unwrap();
    let mut prior = layer.prior(&model).unwrap();
    assert_eq!(prior.nrows(), 33);
    assert!(prior.row(32).iter().all(|&v| v == 0.0));
    prior[(32, 0)] = 0.5;
    layer.write(&mut model, &prior).unwrap();
    let after = model
        .graph
        .initializer(&bias)
        .unwrap()
        .to_f32_vec()
        .unwrap();
    assert_eq!(after[0], before[0] + 0.5);
    assert_eq!(after[1..], before[1..]);
}
