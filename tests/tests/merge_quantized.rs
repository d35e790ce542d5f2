//! Merging a model with its own weight-quantized variant stores each tensor they share once
//! (issue 7), and the diff model measures their difference inside one graph.
use std::collections::HashMap;
use whittle_ir::Model;
use whittle_tests::{fixture, whittle};

fn hashes(m: &Model) -> Vec<[u8; 32]> {
    m.graph
        .initializers
        .iter()
        .map(|t| t.content_hash())
        .collect()
}

#[test]
fn shared_tensors_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let float = fixture("digits_cnn.onnx");
    let quant = dir.path().join("q.onnx");
    let r = whittle!(
        "quantize",
        &float,
        "-o",
        &quant,
        "--mode",
        "weight",
        "--no-optimize"
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let merged = dir.path().join("m.onnx");
    let r = whittle!("merge", &float, &quant, "-o", &merged, "--combine", "diff");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    let (a, b, m) = (
        Model::load(&float).unwrap(),
        Model::load(&quant).unwrap(),
        Model::load(&merged).unwrap(),
    );
    let in_b: std::collections::HashSet<_> = hashes(&b).into_iter().collect();
    let shared: Vec<_> = hashes(&a)
        .into_iter()
        .filter(|h| in_b.contains(h))
        .collect();
    // BatchNorm parameters and biases stay float in weight-only mode: shared by both.
    assert!(shared.len() >= 8, "only {} shared tensors", shared.len());
    let mut count: HashMap<[u8; 32], usize> = HashMap::new();
    for h in hashes(&m) {
        *count.entry(h).or_default() += 1;
    }
    for h in &shared {
        assert_eq!(
            count.get(h),
            Some(&1),
            "a shared tensor is stored {:?} times",
            count.get(h)
        );
    }
    let bytes = |m: &Model| {
        m.graph
            .initializers
            .iter()
            .map(|t| t.data_byte_len())
            .sum::<u64>()
    };
    let shared_bytes: u64 = a
        .graph
        .initializers
        .iter()
        .filter(|t| in_b.contains(&t.content_hash()))
        .map(|t| t.data_byte_len())
        .sum();
    assert!(
        bytes(&m) <= bytes(&a) + bytes(&b) - shared_bytes + 64,
        "{} bytes",
        bytes(&m)
    );
}
