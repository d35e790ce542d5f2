//! Hand-computed cases for the running statistics.

use super::*;

fn f(shape: &[usize], v: &[f32]) -> HostTensor {
    HostTensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
}

fn config(bins: usize) -> StatsConfig {
    StatsConfig {
        bins,
        channel_axis: None,
    }
}

#[test]
fn first_batch_sets_the_range() {
    let mut s = RunningStats::new("act", config(4)).unwrap();
    s.update(&f(&[5], &[0., 1., 2., 3., 4.])).unwrap();
    // lo = 0, top = 4, width 1: [0,1) {0}, [1,2) {1}, [2,3) {2}, [3,4] {3, 4}
    let h = s.histogram().unwrap();
    assert_eq!(
        (h.lo, h.width, h.counts.clone()),
        (0.0, 1.0, vec![1, 1, 1, 2])
    );
    assert_eq!(h.edges(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    let m = s.summary();
    assert_eq!((m.min, m.max, m.count), (0.0, 4.0, 5));
    assert_eq!(m.mean_abs(), 2.0); // (0+1+2+3+4)/5
}

#[test]
fn growth_merges_bins_exactly() {
    let mut s = RunningStats::new("act", config(4)).unwrap();
    s.update(&f(&[5], &[0., 1., 2., 3., 4.])).unwrap();
    s.update(&f(&[2], &[-4., 7.])).unwrap();
    // -4 < lo: double downward → lo = -4, width 2, [0,0,2,3];
    // 7 > top 4: double upward → width 4, range [-4, 12]; the 4 that sat on the old top
    // moves to [4, 8): [0, 4, 1, 0]; then -4 → bin 0, 7 → bin 2.
    // Truth: [-4,0) {-4}, [0,4) {0,1,2,3}, [4,8) {4,7}, [8,12] {} = [1, 4, 2, 0].
    let h = s.histogram().unwrap();
    assert_eq!((h.lo, h.width), (-4.0, 4.0));
    assert_eq!(h.counts, vec![1, 4, 2, 0]);
    let m = s.summary();
    assert_eq!((m.min, m.max, m.count), (-4.0, 7.0, 7));
    assert_eq!(m.mean_abs(), 3.0); // (0+1+2+3+4+4+7)/7 = 21/7
}

#[test]
fn nonfinite_values_are_counted_and_skipped() {
    let mut s = RunningStats::new("act", config(2)).unwrap();
    s.update(&f(&[4], &[f32::NAN, 1.0, f32::INFINITY, 3.0]))
        .unwrap();
    assert_eq!(s.nonfinite(), 2);
    let m = s.summary();
    assert_eq!((m.min, m.max, m.count), (1.0, 3.0, 2));
    assert_eq!(s.histogram().unwrap().counts, vec![1, 1]);
    // a batch of only NaN leaves everything else alone
    s.update(&f(&[1], &[f32::NAN])).unwrap();
    assert_eq!((s.nonfinite(), s.summary().count), (3, 2));
}

#[test]
fn constant_first_batch_gets_a_small_range() {
    let mut s = RunningStats::new("act", config(2)).unwrap();
    s.update(&f(&[3], &[2.0, 2.0, 2.0])).unwrap();
    // span = max(|2|, 1) / 1024 → width = 2/1024/2
    let h = s.histogram().unwrap();
    assert_eq!(
        (h.lo, h.width, h.counts.clone()),
        (2.0, 2.0 / 2048.0, vec![3, 0])
    );
    s.update(&f(&[1], &[3.0])).unwrap();
    let h = s.histogram().unwrap();
    assert!(h.top() >= 3.0);
    assert_eq!(h.counts.iter().sum::<u64>(), 4);
}

#[test]
fn per_channel_statistics() {
    let cfg = StatsConfig {
        bins: 2,
        channel_axis: Some(1),
    };
    let mut s = RunningStats::new("conv_out", cfg).unwrap();
    // [[1, -2, 3], [-4, 5, -6]]: ch0 {1, -4}, ch1 {-2, 5}, ch2 {3, -6}
    s.update(&f(&[2, 3], &[1., -2., 3., -4., 5., -6.])).unwrap();
    let c = s.channels();
    assert_eq!((c[0].min, c[0].max, c[0].mean_abs()), (-4.0, 1.0, 2.5));
    assert_eq!((c[1].min, c[1].max, c[1].mean_abs()), (-2.0, 5.0, 3.5));
    assert_eq!((c[2].min, c[2].max, c[2].mean_abs()), (-6.0, 3.0, 4.5));
    let err = s.update(&f(&[1, 2], &[0., 0.])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor \"conv_out\": 3 channels along axis 1 so far, this batch has 2"
    );
    let err = s.update(&f(&[6], &[0.; 6])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor \"conv_out\": channel axis 1 but the batch has rank 1"
    );
}

#[test]
fn odd_bins_are_refused() {
    let err = RunningStats::new("x", config(3)).unwrap_err();
    assert!(
        err.to_string()
            .contains("even, non-zero number of bins, got 3")
    );
}
