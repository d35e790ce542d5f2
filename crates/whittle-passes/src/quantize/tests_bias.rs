//! `--bias-correction` on handmade layers: the corrected bias is exactly
//! `b − (W_q − W)·E[x]` (Gemm with and without a bias, α/β honoured; grouped Conv).
use super::tests::{f32t, graph, model, node, vi};
use super::*;
use crate::cleanup::attrs::{float_attribute, int_attribute};
use whittle_ir::Attribute;

/// W [2, 3] with transB: int4 symmetric per tensor gives scale 0.7/7 = 0.1 and
/// q = [[7, 3, -1], [3, -7, 0]], so W_q − W = [[0, 0.04, 0], [-0.03, 0, -0.04]].
const W: [f32; 6] = [0.7, 0.26, -0.1, 0.33, -0.7, 0.04];
/// E[x] per feature.
const MEAN: [f64; 3] = [1.0, 2.0, 3.0];

fn gemm(bias: Option<&[f32]>, attrs: Vec<Attribute>) -> Model {
    let mut inits = vec![f32t("W", &[2, 3], &W)];
    let mut inputs = vec!["x", "W"];
    if let Some(b) = bias {
        inits.push(f32t("b", &[2], b));
        inputs.push("b");
    }
    let mut a = vec![int_attribute("transB", 1)];
    a.extend(attrs);
    model(
        graph(
            "g",
            vec![vi("x", &[1, 3])],
            vec![vi("y", &[1, 2])],
            inits,
            vec![node("Gemm", "fc", &inputs, "y", a)],
        ),
        21,
    )
}

fn int4_corrected(m: &mut Model, input: &str, mean: &[f64]) -> QuantizeReport {
    let opts = QuantizeOptions {
        weight_type: QuantType::Int4,
        granularity: Granularity::PerTensor,
        bias_correction: true,
        ..Default::default()
    };
    let mut calib = CalibrationData::default();
    calib.means.insert(input.into(), mean.to_vec());
    let r = quantize(m, &opts, &Default::default(), Some(&calib)).unwrap();
    whittle_ir::verify::verify(m).unwrap();
    r
}

/// The bias the node named `node` reads at `slot`.
fn bias_of(m: &Model, node: &str, slot: usize) -> Vec<f32> {
    let n = m.graph.nodes().find(|(_, n)| n.name() == node).unwrap().1;
    let name = &n.inputs()[slot];
    m.graph.initializer(name).unwrap().to_f32_vec().unwrap()
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn gemm_bias_moves_by_the_weight_error_times_the_input_mean() {
    let mut m = gemm(Some(&[0.5, -0.5]), vec![]);
    let r = int4_corrected(&mut m, "x", &MEAN);
    // δ = [0.04·2, −0.03·1 − 0.04·3] = [0.08, −0.15]
    assert_close(&bias_of(&m, "fc", 2), &[0.5 - 0.08, -0.5 + 0.15]);
    let bc = &r.bias_correction;
    assert_eq!(bc.len(), 1);
    assert!(bc[0].corrected, "{bc:?}");
    assert!((bc[0].max_abs_shift.unwrap() - 0.15).abs() < 1e-6);
    assert!(
        m.graph.initializer("b").is_none(),
        "the old bias is dropped"
    );
}

#[test]
fn gemm_without_bias_gets_one_scaled_by_alpha_over_beta() {
    let attrs = vec![float_attribute("alpha", 2.0), float_attribute("beta", 0.5)];
    let mut m = gemm(None, attrs);
    int4_corrected(&mut m, "x", &MEAN);
    // C = −α·δ/β = −4·δ
    assert_close(&bias_of(&m, "fc", 2), &[-0.32, 0.6]);
}

#[test]
fn grouped_conv_uses_the_mean_of_each_output_s_own_input_channel() {
    // group 2: output 0 reads input channel 0, output 1 reads channel 1; W [2, 1, 1, 2].
    let w = [0.7f32, 0.26, 0.33, -0.7];
    let mut m = model(
        graph(
            "c",
            vec![vi("x", &[1, 2, 1, 2])],
            vec![vi("y", &[1, 2, 1, 1])],
            vec![f32t("W", &[2, 1, 1, 2], &w)],
            vec![node(
                "Conv",
                "conv",
                &["x", "W"],
                "y",
                vec![int_attribute("group", 2)],
            )],
        ),
        21,
    );
    int4_corrected(&mut m, "x", &[1.0, 10.0]);
    // W_q − W = [[0, 0.04], [−0.03, 0]]: δ = [0.04·1, −0.03·10]; no bias before, so b = −δ.
    assert_close(&bias_of(&m, "conv", 2), &[-0.04, 0.3]);
}

#[test]
fn a_missing_mean_skips_the_layer_with_the_reason() {
    let mut m = gemm(Some(&[0.5, -0.5]), vec![]);
    let r = int4_corrected(&mut m, "not_x", &MEAN);
    let bc = &r.bias_correction;
    assert!(!bc[0].corrected);
    assert!(bc[0].reason.as_deref().unwrap().contains("\"x\""), "{bc:?}");
    assert_close(&bias_of(&m, "fc", 2), &[0.5, -0.5]);
}

/// Paddle exports keep weights in Constant nodes: the layers whose input means the CLI must
/// measure are those `quantize` sees after turning them into initializers (this used to
/// find none, so no bias was ever corrected on such models).
#[test]
fn mean_targets_see_weights_held_in_constant_nodes() {
    use whittle_ir::proto::AttributeProto;
    use whittle_ir::proto::attribute_proto::AttributeType;
    let mut m = gemm(Some(&[0.5, -0.5]), Vec::new());
    let w = m.graph.initializers.remove(0);
    let value = Attribute {
        proto: AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            ..Default::default()
        },
        t: Some(w),
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    };
    let constant = node("Constant", "w_const", &[], "W", vec![value]);
    let fc = m.graph.nodes().map(|(ix, _)| ix).next().unwrap();
    m.graph.insert_node_before(fc, constant);
    let opts = QuantizeOptions {
        bias_correction: true,
        ..Default::default()
    };
    let targets = mean_targets(&m, &opts);
    assert_eq!(
        targets.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(),
        ["x"]
    );
    // And the correction then applies to that layer.
    let r = int4_corrected(&mut m, "x", &MEAN);
    assert!(r.bias_correction.iter().any(|b| b.corrected), "{r:?}");
}
