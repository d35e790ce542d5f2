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
