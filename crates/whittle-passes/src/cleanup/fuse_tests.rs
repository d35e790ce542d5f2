//! The fusion arithmetic checked against a direct computation.
use super::attrs::{float_attribute, int_attribute};
use super::conv_affine::FuseConvAffine;
use super::fuse_bn::FuseBatchNorm;
use super::testutil::{f32_init, model, node, value_info};
use super::weights::f32_data;
use crate::{PassContext, PassManager};
use whittle_ir::DataType;

/// 1×1 conv over a [1, 2, 1, 1] input, computed directly: y[o] = Σ_i w[o,i]·x[i] + b[o].
fn conv1x1(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    (0..b.len())
        .map(|o| (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum::<f64>() + b[o])
        .collect()
}

#[test]
fn batchnorm_fold_matches_conv_then_batchnorm() {
    let (w, b) = ([0.5f32, -1.0, 2.0, 0.25], [0.1f32, -0.2]);
    let (scale, shift, mean, var) = (
        [1.5f32, 0.5],
        [0.3f32, -0.4],
        [0.2f32, -1.0],
        [4.0f32, 0.25],
    );
    let eps = 1e-3f32;
    let mut m = model(
        vec![value_info("x", DataType::FLOAT, &[1, 2, 1, 1])],
        vec![value_info("z", DataType::FLOAT, &[1, 2, 1, 1])],
        vec![
            f32_init("w", &[2, 2, 1, 1], &w),
            f32_init("b", &[2], &b),
            f32_init("scale", &[2], &scale),
            f32_init("shift", &[2], &shift),
            f32_init("mean", &[2], &mean),
            f32_init("var", &[2], &var),
        ],
        vec![
            node("Conv", &["x", "w", "b"], &["y"], vec![]),
            node(
                "BatchNormalization",
                &["y", "scale", "shift", "mean", "var"],
                &["z"],
                vec![float_attribute("epsilon", eps)],
            ),
        ],
        17,
    );
    let mut pm = PassManager::new();
    pm.add(Box::new(FuseBatchNorm));
    let r = pm.run(&mut m, &mut PassContext::default()).unwrap();
    assert_eq!((r[0].nodes_before, r[0].nodes_after), (2, 1), "{r:?}");
    let (_, conv) = m.graph.nodes().next().unwrap();
    assert_eq!(conv.outputs(), ["z"]);
    let get = |name: &str| f32_data(m.graph.initializer(name).unwrap()).unwrap();
    let (w2, b2) = (get(&conv.inputs()[1]), get(&conv.inputs()[2]));
    let f = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    for x in [[1.0, 2.0], [-0.5, 3.0], [0.0, 0.0]] {
        let y = conv1x1(&f(&w), &f(&b), &x);
        let direct: Vec<f64> = (0..2)
            .map(|c| {
                (y[c] - f64::from(mean[c])) / (f64::from(var[c]) + f64::from(eps)).sqrt()
                    * f64::from(scale[c])
                    + f64::from(shift[c])
            })
            .collect();
        let fused = conv1x1(&w2, &b2, &x);
        for c in 0..2 {
            assert!(
                (direct[c] - fused[c]).abs() < 1e-6 * (1.0 + direct[c].abs()),
                "{direct:?} vs {fused:?}"
            );
        }
    }
}

#[test]
fn batchnorm_fold_into_gemm_with_beta() {
    // Y = 1·A·B + 0.5·C, then BN over the N = 2 columns.
    let (bw, c) = ([1.0f32, 2.0, 3.0, 4.0], [1.0f32, -1.0]);
    let mut m = model(
        vec![value_info("a", DataType::FLOAT, &[1, 2])],
        vec![value_info("z", DataType::FLOAT, &[1, 2])],
        vec![
            f32_init("bw", &[2, 2], &bw),
            f32_init("c", &[2], &c),
            f32_init("scale", &[2], &[2.0, 1.0]),
            f32_init("shift", &[2], &[0.0, 1.0]),
            f32_init("mean", &[2], &[1.0, 0.0]),
            f32_init("var", &[2], &[1.0, 4.0]),
        ],
        vec![
            node(
                "Gemm",
                &["a", "bw", "c"],
                &["y"],
                vec![float_attribute("beta", 0.5)],
            ),
            node(
                "BatchNormalization",
                &["y", "scale", "shift", "mean", "var"],
                &["z"],
                vec![float_attribute("epsilon", 0.0)],
            ),
        ],
        17,
    );
    let mut pm = PassManager::new();
    pm.add(Box::new(FuseBatchNorm));
    pm.run(&mut m, &mut PassContext::default()).unwrap();
    let (_, gemm) = m.graph.nodes().next().unwrap();
    assert_eq!(gemm.attribute("beta").and_then(|a| a.proto.f), Some(1.0));
    let get = |name: &str| f32_data(m.graph.initializer(name).unwrap()).unwrap();
    // s = [2, 0.5]; columns of B scale by s; C' = (0.5·C − mean)·s + shift.
    assert_eq!(get(&gemm.inputs()[1]), vec![2.0, 1.0, 6.0, 2.0]);
    assert_eq!(
        get(&gemm.inputs()[2]),
        vec![(0.5 - 1.0) * 2.0, -0.5 * 0.5 + 1.0]
    );
}

#[test]
fn per_channel_mul_and_add_fold_into_the_conv() {
    let mut m = model(
        vec![value_info("x", DataType::FLOAT, &[1, 2, 1, 1])],
        vec![value_info("z", DataType::FLOAT, &[1, 2, 1, 1])],
        vec![
            f32_init("w", &[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
            f32_init("k", &[2, 1, 1], &[10.0, -1.0]),
            f32_init("d", &[1, 2, 1, 1], &[0.5, 0.25]),
        ],
        vec![
            node("Conv", &["x", "w"], &["y"], vec![int_attribute("group", 1)]),
            node("Mul", &["k", "y"], &["y2"], vec![]),
            node("Add", &["y2", "d"], &["z"], vec![]),
        ],
        17,
    );
    let mut pm = PassManager::new();
    pm.add(Box::new(FuseConvAffine))
        .add(Box::new(FuseConvAffine));
    pm.run(&mut m, &mut PassContext::default()).unwrap();
    assert_eq!(m.graph.node_count(), 1);
    let (_, conv) = m.graph.nodes().next().unwrap();
    assert_eq!(conv.outputs(), ["z"]);
    let get = |name: &str| f32_data(m.graph.initializer(name).unwrap()).unwrap();
    assert_eq!(get(&conv.inputs()[1]), vec![10.0, 20.0, -3.0, -4.0]);
    assert_eq!(get(&conv.inputs()[2]), vec![0.5, 0.25]);
}

#[test]
fn spatial_mul_is_not_per_channel() {
    let mut m = model(
        vec![value_info("x", DataType::FLOAT, &[1, 2, 2, 1])],
        vec![value_info("z", DataType::FLOAT, &[1, 2, 2, 1])],
        vec![
            f32_init("w", &[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
            f32_init("k", &[2, 1], &[10.0, -1.0]),
        ],
        vec![
            node("Conv", &["x", "w"], &["y"], vec![]),
            node("Mul", &["y", "k"], &["z"], vec![]),
        ],
        17,
    );
    let mut pm = PassManager::new();
    pm.add(Box::new(FuseConvAffine));
    let r = pm.run(&mut m, &mut PassContext::default()).unwrap();
    assert_eq!(m.graph.node_count(), 2);
    assert!(r[0].skipped[0].contains("not per channel"), "{r:?}");
}
