//! The real-model corpus (fetched by `scripts/fetch-corpus.sh` into `corpus/`) round-trips:
//! - every model loads;
//! - what whittle writes equals what prost writes for the same decoded proto (the IR drops
//!   and reorders nothing), and decodes to a proto equal to the input;
//! - for every file the onnx library would write byte-for-byte the same (its canonical
//!   encoding), whittle's output is byte-identical to the file;
//! - saving through `whittle_ir::save` writes those same bytes.
//!
//! Files that are not byte-identical are listed with the reason in
//! `target/corpus-roundtrip.txt`.
use std::ffi::OsStr;
use whittle_ir::{Model, SaveOptions, save};
use whittle_proto::{Message, ModelProto};
use whittle_tests::{corpus_models, python_json, repo_root};

#[test]
fn corpus_round_trips() {
    let models = corpus_models();
    assert!(
        models.len() >= 100,
        "corpus/ has {} models: run `bash scripts/fetch-corpus.sh` (the test script does)",
        models.len()
    );
    let args: Vec<&OsStr> = models.iter().map(|p| p.as_os_str()).collect();
    let canon = python_json("onnx_canonical.py", &args).expect("onnx_canonical.py runs");
    let dir = tempfile::tempdir().unwrap();
    let mut identical = 0;
    let mut listed = Vec::new();
    for path in &models {
        let bytes = std::fs::read(path).unwrap();
        let model = Model::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ours = model.to_proto().encode_to_vec();
        let reference = ModelProto::decode(&bytes[..]).unwrap();
        assert!(
            ours == reference.encode_to_vec(),
            "{}: whittle's encoding differs from prost's for the same proto",
            path.display()
        );
        assert_eq!(
            ModelProto::decode(&ours[..]).unwrap(),
            reference,
            "{}",
            path.display()
        );
        let out = dir.path().join("out.onnx");
        save(&model, &out, &SaveOptions::default()).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == ours,
            "{}: save wrote other bytes",
            path.display()
        );
        let key = path.to_string_lossy();
        let is_canonical = canon["canonical"][key.as_ref()].as_bool() == Some(true);
        if ours == bytes {
            identical += 1;
        } else {
            assert!(
                !is_canonical,
                "{}: the onnx library writes this file byte-identically but whittle does not",
                path.display()
            );
            let rel = path.strip_prefix(repo_root()).unwrap_or(path);
            listed.push(format!(
                "{}\t{} -> {} bytes\tnot written by onnx's serializer (onnx.load + SerializeToString changes it too)",
                rel.display(),
                bytes.len(),
                ours.len()
            ));
        }
    }
    let report = format!(
        "{} models, {identical} byte-identical, {} not:\n{}\n",
        models.len(),
        listed.len(),
        listed.join("\n")
    );
    let _ = std::fs::write(repo_root().join("target/corpus-roundtrip.txt"), &report);
    eprintln!("{report}");
}
