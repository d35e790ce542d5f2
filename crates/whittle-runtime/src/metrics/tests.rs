//! Hand-computed cases: every expected number is derived in the comment next to it.

use super::*;
use crate::tensor::HostTensor;

fn t(shape: &[usize], v: &[f32]) -> HostTensor {
    HostTensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn basic_errors() {
    // r = [1, 2, 3, 4], c = [1, 2.5, 2, 4]  →  e = [0, 0.5, 1, 0]
    let m = compare(
        "y",
        &t(&[4], &[1., 2., 3., 4.]),
        &t(&[4], &[1., 2.5, 2., 4.]),
    )
    .unwrap();
    close(m.max_abs, 1.0);
    close(m.mean_abs, 1.5 / 4.0);
    assert_eq!(m.worst_index, Some(2));
    // rel = [0, 0.5/2, 1/3, 0]
    close(m.max_rel, 1.0 / 3.0);
    // dot = 1 + 5 + 6 + 16 = 28, |r|² = 30, |c|² = 1 + 6.25 + 4 + 16 = 27.25
    close(m.cosine, 28.0 / (30.0f64 * 27.25).sqrt());
    // noise = 0.25 + 1 = 1.25 → 10·log10(30 / 1.25) = 10·log10(24)
    close(m.snr_db, 10.0 * 24.0f64.log10());
    assert_eq!(m.nonfinite_mismatches, 0);
    // shape [4]: one row of 4 classes; argmax r = 3, argmax c = 3
    assert_eq!(m.top1_agreement, Some(1.0));
    assert_eq!(m.top5_containment, Some(1.0));
}

#[test]
fn identical_and_zero_vectors() {
    let a = t(&[3], &[0.5, -1.0, 2.0]);
    let m = compare("y", &a, &a).unwrap();
    assert_eq!((m.max_abs, m.mean_abs, m.max_rel), (0.0, 0.0, 0.0));
    assert_eq!(m.cosine, 1.0);
    assert_eq!(m.snr_db, f64::INFINITY);
    assert_eq!(m.worst_index, None);

    let zeros = t(&[2], &[0.0, 0.0]);
    let m = compare("y", &zeros, &zeros).unwrap();
    assert_eq!((m.cosine, m.snr_db), (1.0, f64::INFINITY));

    // Reference all zero, candidate not: floor = 0 so rel = +inf; cosine 0; SNR −inf.
    let m = compare("y", &zeros, &t(&[2], &[1.0, 0.0])).unwrap();
    assert_eq!(m.max_rel, f64::INFINITY);
    assert_eq!(m.cosine, 0.0);
    assert_eq!(m.snr_db, f64::NEG_INFINITY);
}

#[test]
fn relative_error_floor() {
    // max |r| = 1000 → floor = 1e-3; at r = 0, e = 1e-3 → rel = 1e-3 / 1e-3 = 1.
    let m = compare_values(&[1000.0, 0.0], &[1000.0, 1e-3]);
    close(m.max_rel, 1.0);
    // above the floor the plain ratio applies: e = 0.5 at r = 2 → 0.25
    let m = compare_values(&[1000.0, 2.0], &[1000.0, 2.5]);
    close(m.max_rel, 0.25);
}

#[test]
fn nan_and_inf_rules() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    // pos 0 NaN/NaN equal, pos 1 number/NaN mismatch, pos 2 inf/inf equal, pos 3 finite
    let m = compare_values(&[nan, 1.0, inf, 2.0], &[nan, nan, inf, 2.0]);
    assert_eq!(m.nonfinite_mismatches, 1);
    assert_eq!(m.max_abs, inf);
    assert_eq!(m.mean_abs, inf);
    assert_eq!(m.worst_index, Some(1));
    // cosine/SNR over the finite pairs only: just (2, 2)
    assert_eq!(m.cosine, 1.0);
    assert_eq!(m.snr_db, inf);
    // +inf vs −inf is a mismatch too
    let m = compare_values(&[inf], &[-inf]);
    assert_eq!(m.nonfinite_mismatches, 1);
}

#[test]
fn top_k_definitions() {
    // row 0: ref ranking 1 (0.9), 5 (0.8), 2, 3, 0, 4; cand argmax 5 → top1 miss, top5 hit
    // row 1: ref all-tie after class 0 → ranking 0,1,2,3,4,5; cand argmax 5 → both miss
    // row 2: ref argmax 2, cand argmax 2 → both hit
    let r = t(
        &[3, 6],
        &[
            0.1, 0.9, 0.3, 0.2, 0.05, 0.8, //
            1.0, 0.0, 0.0, 0.0, 0.0, 0.0, //
            0.0, 0.0, 5.0, 0.0, 0.0, 0.0,
        ],
    );
    let c = t(
        &[3, 6],
        &[
            0.1, 0.7, 0.3, 0.2, 0.05, 0.8, //
            0.0, 0.0, 0.0, 0.0, 0.0, 1.0, //
            0.0, 0.0, 4.0, 0.0, 0.0, 0.0,
        ],
    );
    let m = compare("logits", &r, &c).unwrap();
    close(m.top1_agreement.unwrap(), 1.0 / 3.0);
    close(m.top5_containment.unwrap(), 2.0 / 3.0);
    assert_eq!(topk::ranking(&[1.0, f64::NAN, 1.0, 2.0]), vec![3, 0, 2, 1]);
    // not class-shaped: rank 3, or a single class
    assert_eq!(topk::class_layout(&[1, 2, 3]), None);
    assert_eq!(topk::class_layout(&[4, 1]), None);
    // integer outputs get no top-k
    let i = HostTensor::from_vec(vec![2], vec![1i64, 2]).unwrap();
    assert_eq!(compare("ids", &i, &i).unwrap().top1_agreement, None);
}

#[test]
fn bounds_are_allclose_style() {
    let tol = Tolerance {
        atol: 0.05,
        rtol: 0.01,
        min_cosine: 0.99,
    };
    // |1 − 1.1| = 0.1 > 0.05 + 0.01·1 = 0.06 → violation; |100 − 100.5| = 0.5 ≤ 1.05 → ok
    let b = within_bounds("y", &t(&[2], &[1.0, 100.0]), &t(&[2], &[1.1, 100.5]), &tol).unwrap();
    assert_eq!(
        (b.pass, b.violations, b.first_violation),
        (false, 1, Some(0))
    );
    let b = within_bounds("y", &t(&[2], &[1.0, 100.0]), &t(&[2], &[1.04, 100.5]), &tol).unwrap();
    assert!(b.pass, "{b:?}");
    // a cosine below the floor fails even when every element is close: r = [0.01, 0], c = [0, 0.04], dot = 0
    let b = within_bounds("y", &t(&[2], &[0.01, 0.0]), &t(&[2], &[0.0, 0.04]), &tol).unwrap();
    assert_eq!((b.violations, b.cosine, b.pass), (0, 0.0, false));
}

#[test]
fn shape_and_name_errors() {
    let err = compare("probs", &t(&[2], &[1., 2.]), &t(&[1, 2], &[1., 2.])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "output \"probs\": reference shape [2] but candidate shape [1, 2]"
    );
    let err = compare_outputs(&[("a".into(), t(&[1], &[1.]))], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "output \"a\" is missing from the candidate outputs"
    );
}
