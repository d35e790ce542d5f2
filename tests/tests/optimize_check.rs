//! The numeric self-check that `optimize` runs before writing: it passes an exact rewrite
//! and stops a wrong one.
use whittle_cli::cmd::selfcheck::{CheckOutcome, check_against_original};
use whittle_ir::Model;
use whittle_runtime::Tolerance;
use whittle_tests::{fixture, whittle};

const TOL: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-4,
    min_cosine: -1.0,
};

#[test]
fn an_unchanged_model_passes_and_a_perturbed_one_fails() {
    let path = fixture("digits_cnn.onnx");
    let model = Model::load(&path).unwrap();
    match check_against_original(&path, &model, &[], None, TOL).unwrap() {
        CheckOutcome::Passed { max_abs, .. } => assert_eq!(max_abs, 0.0),
        other => panic!("{other:?}"),
    }
    let mut wrong = model.clone();
    let bias = wrong
        .graph
        .initializers
        .iter_mut()
        .find(|t| t.name() == "fc.bias")
        .unwrap();
    let mut v = bias.to_f32_vec().unwrap();
    v[3] += 0.01;
    bias.set_raw(
        v.iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    );
    let e = check_against_original(&path, &wrong, &[], None, TOL)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("differs from the original") && e.contains("\"logits\""),
        "{e}"
    );
}

#[test]
fn optimize_reports_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.onnx");
    let r = whittle!("optimize", fixture("digits_cnn.onnx"), "-o", &out);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        stdout.contains("check: outputs equal the original's within float rounding"),
        "{stdout}"
    );
}
