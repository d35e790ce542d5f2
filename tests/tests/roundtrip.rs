//! Lossless round-trip: every fixture loads and saves back to the same bytes, with its
//! external data laid out as it was.
use whittle_ir::{ExternalMode, Model, SaveOptions, save};
use whittle_proto::Message;
use whittle_tests::fixture_models;

#[test]
fn fixtures_reencode_byte_identical() {
    let models = fixture_models();
    assert!(models.len() >= 8, "fixtures missing: {models:?}");
    for path in models {
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = model.to_proto().encode_to_vec();
        assert!(
            again == bytes,
            "{}: re-encoded bytes differ",
            path.display()
        );
    }
}

#[test]
fn save_keeps_external_layout_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = whittle_tests::fixture("external_mlp.onnx");
    let model = Model::load(&src).unwrap();
    let out = dir.path().join("external_mlp.onnx");
    let report = save(&model, &out, &SaveOptions::default()).unwrap();
    let external = model
        .graph
        .initializers
        .iter()
        .filter(|t| t.is_external())
        .count();
    assert!(external >= 2, "the fixture should have external tensors");
    assert_eq!(report.external_tensors, external);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("external_mlp.onnx.data")).unwrap(),
        std::fs::read(whittle_tests::fixture("external_mlp.onnx.data")).unwrap()
    );
    // Inline, then back to external: the numbers survive both moves.
    let inline = dir.path().join("inline.onnx");
    save(
        &model,
        &inline,
        &SaveOptions {
            external: ExternalMode::Inline,
            ..Default::default()
        },
    )
    .unwrap();
    let m2 = Model::load(&inline).unwrap();
    assert!(m2.graph.initializers.iter().all(|t| !t.is_external()));
    let hashes = |m: &Model| {
        m.graph
            .initializers
            .iter()
            .map(|t| t.content_hash())
            .collect::<Vec<_>>()
    };
    assert_eq!(hashes(&model), hashes(&m2));
    let ext = dir.path().join("ext.onnx");
    save(
        &m2,
        &ext,
        &SaveOptions {
            external: ExternalMode::Threshold(1024),
            ..Default::default()
        },
    )
    .unwrap();
    let m3 = Model::load(&ext).unwrap();
    assert!(m3.graph.initializers.iter().any(|t| t.is_external()));
    assert_eq!(hashes(&model), hashes(&m3));
    // A scratch copy (not flushed to the disk) has the same bytes, model and data file.
    let scratch = dir.path().join("scratch.onnx");
    save(
        &m2,
        &scratch,
        &SaveOptions {
            external: ExternalMode::Threshold(1024),
            scratch: true,
        },
    )
    .unwrap();
    let bytes = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(
        bytes(&scratch.with_extension("onnx.data")),
        bytes(&ext.with_extension("onnx.data"))
    );
    let m4 = Model::load(&scratch).unwrap();
    assert_eq!(hashes(&model), hashes(&m4));
    // No temporary file is left behind.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn tensor_bytes_are_slices_of_the_source_buffer() {
    let src = whittle_tests::fixture("digits_cnn.onnx");
    let buf = bytes::Bytes::from(std::fs::read(&src).unwrap());
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let model = Model::decode(buf.clone(), None, &src).unwrap();
    let raw: Vec<_> = model
        .graph
        .initializers
        .iter()
        .filter_map(|t| t.proto.raw_data.as_ref())
        .collect();
    assert!(raw.len() >= 4);
    for r in raw {
        assert!(
            range.contains(&(r.as_ptr() as usize)),
            "raw_data was copied"
        );
    }
}

#[test]
fn canonical_text_snapshots() {
    for path in fixture_models() {
        let model = Model::load(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(
            format!("text_{name}"),
            whittle_ir::text::model_to_text(&model)
        );
    }
}

#[test]
fn every_fixture_verifies() {
    for path in fixture_models() {
        let model = Model::load(&path).unwrap();
        whittle_ir::verify::verify(&model).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn every_dtype_reads_the_same_from_raw_and_typed_fields() {
    let model = Model::load(&whittle_tests::fixture("dtype_zoo.onnx")).unwrap();
    let mut pairs = 0;
    for t in model
        .graph
        .initializers
        .iter()
        .filter(|t| t.name().ends_with("_raw"))
    {
        let typed_name = t.name().replace("_raw", "_typed");
        let typed = model.graph.initializer(&typed_name).unwrap();
        assert_eq!(t.storage(), whittle_ir::Storage::Raw);
        assert_eq!(typed.storage(), whittle_ir::Storage::Typed, "{typed_name}");
        assert_eq!(
            t.le_bytes().unwrap(),
            typed.le_bytes().unwrap(),
            "{typed_name}"
        );
        pairs += 1;
    }
    assert!(pairs >= 27, "only {pairs} dtype pairs");
}
