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
        assert!(again == bytes, "{}: re-encoded bytes differ", path.display());
    }
}

#[test]
fn save_keeps_external_layout_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = whittle_tests::fixture("external_mlp.onnx");
    let model = Model::load(&src).unwrap();
    let out = dir.path().join("external_mlp.onnx");
    let report = save(&model, &out, &SaveOptions::default()).unwrap();
    let external = model.graph.initializers.iter().filter(|t| t.is_external()).count();
    assert!(external >= 2, "the fixture should have external tensors");
    assert_eq!(report.external_tensors, external);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    assert_eq!(
        std::fs::read(dir.path().join("external_mlp.onnx.data")).unwrap(),
        std::fs::read(whittle_tests::fixture("external_mlp.onnx.data")).unwrap()
    );
    // Inline, then back to external: the numbers survive both moves.
    let inline = dir.path().join("inline.onnx");
    save(&model, &inline, &SaveOptions { external: ExternalMode::Inline }).unwrap();
    let m2 = Model::load(&inline).unwrap();
    assert!(m2.graph.initializers.iter().all(|t| !t.is_external()));
    let hashes = |m: &Model| m.graph.initializers.iter().map(|t| t.content_hash()).collect::<Vec<_>>();
    assert_eq!(hashes(&model), hashes(&m2));
    let ext = dir.path().join("ext.onnx");
    save(&m2, &ext, &SaveOptions { external: ExternalMode::Threshold(1024) }).unwrap();
    let m3 = Model::load(&ext).unwrap();
    assert!(m3.graph.initializers.iter().any(|t| t.is_external()));
    assert_eq!(hashes(&model), hashes(&m3));
    // No temporary file is left behind.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}
