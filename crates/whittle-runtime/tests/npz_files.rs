//! .npz reading (files written by numpy, committed) and writing (round trips).

mod common;

use half::f16;
use whittle_runtime::npz::{NpzCompression, NpzError, read_npz, take_key, write_npz};
use whittle_runtime::{DType, HostTensor};

fn check_numpy_arrays(file: &str) {
    let path = common::data(file);
    let mut arrays = read_npz(&path).unwrap();
    let keys: Vec<&str> = arrays.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "f32",
            "i64",
            "u8",
            "flags",
            "half",
            "scalar",
            "fortran",
            "big_endian"
        ]
    );
    let mut take = |k: &str| take_key(&mut arrays, &path, k).unwrap();
    let t = take("f32");
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(
        t.as_slice::<f32>().unwrap(),
        &[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]
    );
    assert_eq!(take("i64").as_slice::<i64>().unwrap(), &[-3, 0, 7, 1 << 40]);
    let t = take("u8");
    assert_eq!(
        (t.shape(), t.as_slice::<u8>().unwrap()),
        (&[2usize, 2][..], &[0u8, 255, 17, 4][..])
    );
    assert_eq!(
        take("flags").as_slice::<bool>().unwrap(),
        &[true, false, true]
    );
    let t = take("half");
    let want: Vec<f16> = [0.5f32, -2.0, 65504.0]
        .iter()
        .map(|&x| f16::from_f32(x))
        .collect();
    assert_eq!(t.as_slice::<f16>().unwrap(), &want[..]);
    let t = take("scalar");
    assert_eq!(
        (t.shape().len(), t.as_slice::<f64>().unwrap()),
        (0, &[3.25][..])
    );
    // Fortran-ordered on disk, row-major here: arange(6).reshape(2, 3)
    let t = take("fortran");
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(
        t.as_slice::<f64>().unwrap(),
        &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    let t = take("big_endian");
    assert_eq!(
        (t.dtype(), t.as_slice::<i32>().unwrap()),
        (DType::I32, &[1, 256, -2][..])
    );
}

#[test]
fn reads_numpy_savez() {
    check_numpy_arrays("numpy_plain.npz");
}

#[test]
fn reads_numpy_savez_compressed() {
    check_numpy_arrays("numpy_compressed.npz");
}

fn sample_arrays() -> Vec<(String, HostTensor)> {
    vec![
        (
            "x".into(),
            HostTensor::from_vec(vec![2, 2], vec![1.5f32, -2.0, 0.0, 9.25]).unwrap(),
        ),
        (
            "ids".into(),
            HostTensor::from_vec(vec![3], vec![1i64, -7, 1 << 50]).unwrap(),
        ),
        (
            "mask".into(),
            HostTensor::from_vec(vec![2], vec![true, false]).unwrap(),
        ),
        (
            "h".into(),
            HostTensor::from_vec(vec![1], vec![f16::from_f32(0.25)]).unwrap(),
        ),
        ("s".into(), HostTensor::scalar(3u16)),
        (
            "input:0/with.dots".into(),
            HostTensor::from_vec(vec![0, 4], Vec::<f64>::new()).unwrap(),
        ),
    ]
}

#[test]
fn round_trips_and_is_byte_stable() {
    let dir = tempfile::tempdir().unwrap();
    for compression in [NpzCompression::Stored, NpzCompression::Deflated] {
        let a = dir.path().join("a.npz");
        let b = dir.path().join("b.npz");
        write_npz(&a, &sample_arrays(), compression).unwrap();
        assert_eq!(read_npz(&a).unwrap(), sample_arrays(), "{compression:?}");
        write_npz(&b, &sample_arrays(), compression).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}

#[test]
fn errors_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npz");
    // a zip whose member is not a .npy
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        zip.start_file("logits.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"not numpy").unwrap();
        zip.finish().unwrap();
    }
    let err = read_npz(&path).unwrap_err();
    assert!(matches!(&err, NpzError::Array { key, .. } if key == "logits"));
    let text = err.to_string();
    assert!(
        text.contains("bad.npz: array \"logits\": not a .npy file"),
        "{text}"
    );

    let good = common::data("numpy_plain.npz");
    let mut arrays = read_npz(&good).unwrap();
    let text = take_key(&mut arrays, &good, "nope")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("numpy_plain.npz: key \"nope\" not found (keys: f32, i64"),
        "{text}"
    );

    let missing = dir.path().join("missing.npz");
    let text = read_npz(&missing).unwrap_err().to_string();
    assert!(text.contains("missing.npz"), "{text}");
}
