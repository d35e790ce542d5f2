use super::*;

fn digits() -> Model {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/digits_cnn.onnx");
    Model::load(&path).unwrap()
}

#[test]
fn digits_residual_add_makes_one_group_and_fc_is_blocked_by_the_output() {
    let a = analyse_model(&digits());
    assert_eq!(a.groups.len(), 2, "{}", explain(&a));
    let g = &a.groups[0];
    assert_eq!(g.producers, vec!["conv1", "conv2"]);
    assert!(g.blockers.is_empty(), "{:?}", g.blockers);
    let fc = g.members.iter().find(|m| m.tensor == "fc.weight").unwrap();
    assert_eq!((fc.axis, fc.run), (1, 16));
    assert!(a.groups[1].blockers[0].contains("graph output"));
}

#[test]
fn bn_scale_prunes_digits_and_the_result_verifies() {
    let mut m = digits();
    let pass = Prune::new(PruneOptions {
        ratio: 0.125,
        criterion: Criterion::BnScale,
        ..Default::default()
    });
    let mut pm = crate::PassManager::new();
    pm.add(Box::new(pass));
    pm.run(&mut m, &mut PassContext::default()).unwrap();
    let dims = |n: &str| m.graph.initializer(n).unwrap().dims().to_vec();
    assert_eq!(dims("conv1.weight"), vec![14, 1, 3, 3]);
    assert_eq!(dims("conv2.weight"), vec![14, 14, 3, 3]);
    assert_eq!(dims("bn2.var"), vec![14]);
    assert_eq!(dims("fc.weight"), vec![10, 224]);
}

fn test_model(name: &str) -> Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/prune")
        .join(name);
    Model::load(&path).unwrap()
}

/// The groups whose producers include `node`.
fn groups_of<'a>(a: &'a Analysis, node: &str) -> Vec<&'a ChannelGroup> {
    a.groups
        .iter()
        .filter(|g| g.producers.iter().any(|p| p == node))
        .collect()
}

#[test]
fn split_of_one_conv_cuts_it_into_one_group_per_half() {
    let a = analyse_model(&test_model("yolo_zero.onnx"));
    let cv1 = groups_of(&a, "/model/2/cv1/conv/Conv");
    assert_eq!(cv1.len(), 2, "{}", explain(&a));
    for g in &cv1 {
        assert!(g.blockers.is_empty(), "{:?}", g.blockers);
        assert_eq!(g.channels, 8);
    }
    // Each half maps back to its own rows of the producer weight.
    let rows = |g: &ChannelGroup| {
        g.members
            .iter()
            .filter(|m| m.tensor == "model.2.cv1.conv.weight")
            .map(|m| (m.axis, m.offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(cv1[0]), vec![(0, 0)]);
    assert_eq!(rows(cv1[1]), vec![(0, 8)]);
    // The second half is tied to the bottleneck's residual Add, but not to model.4's
    // halves although both Splits read the same sizes initializer.
    let hi = &cv1[1].producers;
    assert!(
        hi.iter().any(|h| h == "/model/2/m/0/cv2/conv/Conv"),
        "{hi:?}"
    );
    for g in &cv1 {
        assert!(
            !g.producers.iter().any(|p| p.starts_with("/model/4/")),
            "{:?}",
            g.producers
        );
    }
    // Only the two detect convs (graph outputs) are left unprunable.
    let blocked: Vec<_> = a.groups.iter().filter(|g| !g.blockers.is_empty()).collect();
    assert_eq!(blocked.len(), 2, "{}", explain(&a));
}

#[test]
fn halves_added_together_make_one_group_with_both_row_ranges() {
    let a = analyse_model(&test_model("unknown_op.onnx"));
    let g = groups_of(&a, "conv4");
    assert_eq!(g.len(), 1, "{}", explain(&a));
    assert_eq!(g[0].channels, 3);
    assert!(g[0].blockers.is_empty(), "{:?}", g[0].blockers);
    let offsets: Vec<u64> = g[0]
        .members
        .iter()
        .filter(|m| m.tensor == "conv4.weight")
        .map(|m| m.offset)
        .collect();
    assert_eq!(offsets, vec![0, 3]);
}

#[test]
fn residual_chains_and_depthwise_convs_group_like_the_architectures() {
    let a = analyse_model(&test_model("resnet.onnx"));
    let stage2 = groups_of(&a, "/layer2/0/downsample/0/Conv");
    assert_eq!(
        stage2[0].producers,
        vec![
            "/layer2/0/conv2/Conv",
            "/layer2/0/downsample/0/Conv",
            "/layer2/1/conv2/Conv"
        ]
    );
    let m = analyse_model(&test_model("mobilenetv2.onnx"));
    let expand = groups_of(&m, "/features/3/conv/0/0/Conv");
    // Expand rows, depthwise filters and their BNs, and the project's input channels.
    let dw = expand[0]
        .members
        .iter()
        .find(|m| m.role == Role::Depthwise)
        .map(|m| m.tensor.as_str());
    assert_eq!(dw, Some("features.3.conv.1.0.weight"));
    for a in [&a, &m] {
        let prunable = a.groups.iter().filter(|g| g.blockers.is_empty()).count();
        assert_eq!(prunable, a.groups.len() - 1, "{}", explain(a));
    }
}

/// Split sizes read by `split` (by first output) in `m`.
fn sizes_of(m: &Model, split: &str) -> (String, Vec<i64>) {
    let (_, n) = m
        .graph
        .nodes()
        .find(|(_, n)| n.outputs().first().map(String::as_str) == Some(split))
        .unwrap();
    let t = m.graph.initializer(&n.inputs()[1]).unwrap();
    let bytes = t.le_bytes().unwrap();
    let v = bytes.chunks_exact(8);
    let v = v
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.name().to_string(), v)
}

#[test]
fn splits_sharing_sizes_get_their_own_copy_when_they_differ() {
    let mut m = test_model("yolo_zero.onnx");
    let a = analyse_model(&m);
    let lo = groups_of(&a, "/model/2/cv1/conv/Conv")[0].id;
    // model.2's first half loses channel 0; model.4 (same sizes tensor) loses nothing.
    let keep: apply::Keep = [(lo, (1..8).collect())].into_iter().collect();
    let changes = apply::apply(&mut m, &a, &keep).unwrap();
    let own = "onnx::Split_138_/model/2/Split_output_0";
    assert_eq!(
        sizes_of(&m, "/model/2/Split_output_0"),
        (own.into(), vec![7, 8])
    );
    assert_eq!(
        sizes_of(&m, "/model/4/Split_output_0"),
        ("onnx::Split_138".into(), vec![8, 8])
    );
    let line =
        format!("/model/2/Split: Split sizes onnx::Split_138 (shared) -> own copy {own} [7, 8]");
    assert!(changes.contains(&line), "{changes:?}");
    whittle_ir::verify::verify(&m).unwrap();
    // Both Splits change the same way: the shared tensor is rewritten in place.
    let mut m = test_model("yolo_zero.onnx");
    let lo4 = groups_of(&a, "/model/4/cv1/conv/Conv")[0].id;
    let keep: apply::Keep = [(lo, (1..8).collect()), (lo4, (0..7).collect())]
        .into_iter()
        .collect();
    apply::apply(&mut m, &a, &keep).unwrap();
    assert_eq!(sizes_of(&m, "/model/4/Split_output_0").1, vec![7, 8]);
    assert_eq!(sizes_of(&m, "/model/2/Split_output_0").0, "onnx::Split_138");
}
