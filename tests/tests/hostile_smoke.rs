//! Smoke fuzzing of the loader in CI: truncated, bit-flipped and spliced versions of every
//! fixture go through decode → verify → canonical text → export → save. Each must end in
//! an `Ok` or an error, never a panic. Deterministic (a fixed xorshift stream), bounded
//! (a few thousand cases, about a second), so it runs on every CI run.
use bytes::Bytes;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use whittle_ir::{Model, SaveOptions, save};
use whittle_proto::Message;
use whittle_tests::fixture_models;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Everything a command does with a model it loaded; errors are fine, panics are not.
fn exercise(bytes: Vec<u8>, dir: &Path) {
    let Ok(model) = Model::decode(Bytes::from(bytes), Some(dir), Path::new("mutant.onnx")) else {
        return;
    };
    let _ = whittle_ir::verify::verify(&model);
    let _ = whittle_ir::text::model_to_text(&model);
    let _ = model.to_proto().encode_to_vec();
    let out = dir.join("out").join("mutant.onnx");
    let _ = save(
        &model,
        &out,
        &SaveOptions {
            external: whittle_ir::ExternalMode::Inline,
            ..Default::default()
        },
    );
    for t in model.graph.initializers.iter() {
        let _ = t.to_f32_vec();
        let _ = t.content_hash();
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    // External data resolves against the fixtures' own data file.
    std::fs::copy(
        whittle_tests::fixture("external_mlp.onnx.data"),
        dir.path().join("external_mlp.onnx.data"),
    )
    .unwrap();
    let originals: Vec<Vec<u8>> = fixture_models()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut cases = 0;
    for (k, orig) in originals.iter().enumerate() {
        let mut mutants: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..64 {
            let cut = orig.len() * i / 64;
            mutants.push((format!("truncate {cut}"), orig[..cut].to_vec()));
        }
        for _ in 0..300 {
            let mut m = orig.clone();
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let at = rng.below(m.len());
                m[at] ^= 1 << rng.below(8);
            }
            mutants.push(("bit flips".into(), m));
        }
        for _ in 0..60 {
            let other = &originals[rng.below(originals.len())];
            let a = rng.below(orig.len());
            let b = rng.below(other.len());
            let mut m = orig[..a].to_vec();
            m.extend_from_slice(&other[b..]);
            mutants.push(("splice".into(), m));
        }
        for (what, m) in mutants {
            cases += 1;
            let r = catch_unwind(AssertUnwindSafe(|| exercise(m, dir.path())));
            assert!(r.is_ok(), "fixture #{k}: {what}: panicked");
        }
    }
    assert!(cases > 3000, "{cases}");
    let stray: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty());
}

#[test]
fn deep_subgraph_nesting_is_an_error_not_a_stack_overflow() {
    use whittle_proto::*;
    // 200 nested If-branches: prost's recursion limit (100) rejects it while decoding.
    let mut g = GraphProto {
        name: Some("leaf".into()),
        ..Default::default()
    };
    for i in 0..200 {
        let node = NodeProto {
            op_type: Some("If".into()),
            name: Some(format!("if{i}")),
            attribute: vec![AttributeProto {
                name: Some("then_branch".into()),
                r#type: Some(attribute_proto::AttributeType::Graph as i32),
                g: Some(g),
                ..Default::default()
            }],
            ..Default::default()
        };
        g = GraphProto {
            node: vec![node],
            name: Some(format!("g{i}")),
            ..Default::default()
        };
    }
    let model = ModelProto {
        ir_version: Some(8),
        graph: Some(g),
        ..Default::default()
    };
    let bytes = Bytes::from(model.encode_to_vec());
    let e = Model::decode(bytes, None, Path::new("deep.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("deep.onnx") && e.contains("recursion limit"),
        "{e}"
    );
}

#[test]
fn mutated_npz_files_never_panic() {
    let mut rng = XorShift(0x0dd5_eed5_1234_5678);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npz");
    let mut cases = 0;
    for name in ["digits_calib.npz", "digits_test.npz"] {
        let orig = std::fs::read(whittle_tests::fixture(name)).unwrap();
        let mut mutants: Vec<Vec<u8>> = (0..48)
            .map(|i| orig[..orig.len() * i / 48].to_vec())
            .collect();
        for _ in 0..250 {
            let mut m = orig.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                m[at] ^= 1 << rng.below(8);
            }
            mutants.push(m);
        }
        for m in mutants {
            cases += 1;
            std::fs::write(&path, &m).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| {
                whittle_runtime::read_npz(&path).map(|v| v.len())
            }));
            assert!(r.is_ok(), "{name}: read_npz panicked on a mutant");
        }
    }
    assert!(cases >= 590);
}
