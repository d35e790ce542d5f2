use super::*;

fn spec(name: &str, dtype: DType, dims: Vec<Dim>) -> InputSpec {
    InputSpec {
        name: name.into(),
        dtype,
        dims,
    }
}

fn sym(s: &str) -> Dim {
    Dim::Symbolic(s.into())
}

#[test]
fn parses_overrides() {
    let o = parse_shape_override("input=1x3x224x224").unwrap();
    assert_eq!((o.name.as_str(), o.dims), ("input", vec![1, 3, 224, 224]));
    let o = parse_shape_override("serving_default_x:0=2,5").unwrap();
    assert_eq!(
        (o.name.as_str(), o.dims),
        ("serving_default_x:0", vec![2, 5])
    );
    let err = parse_shape_override("x=1xbatch").unwrap_err().to_string();
    assert_eq!(
        err,
        "cannot parse shape \"x=1xbatch\": \"batch\" is not a dim size \
         (expected NAME=DIMS, e.g. input=1x3x224x224)"
    );
    assert!(parse_shape_override("1x3").is_err());
    assert!(parse_shape_override("=1").is_err());
}

#[test]
fn every_missing_dim_is_listed_in_one_error() {
    let specs = [
        spec("x", DType::F32, vec![sym("batch"), Dim::Fixed(4)]),
        spec(
            "ids",
            DType::I64,
            vec![Dim::Fixed(2), sym("seq"), Dim::Unknown],
        ),
        spec("scale", DType::F32, vec![]),
    ];
    let err = resolve_shapes(&specs, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "3 input dim(s) need a value:\n  \
         input \"x\" dim 0 (\"batch\") needs a value: pass --shape x=<batch>x4\n  \
         input \"ids\" dim 1 (\"seq\") needs a value: pass --shape ids=2x<seq>x<d2>\n  \
         input \"ids\" dim 2 (unnamed) needs a value: pass --shape ids=2x<seq>x<d2>"
    );
    // binding a symbol fills it everywhere; the rest is still reported
    let err = resolve_shapes(&specs, &[parse_shape_override("seq=7").unwrap()]).unwrap_err();
    let InputError::Unresolved { missing } = err else {
        panic!("{err:?}")
    };
    let listed: Vec<_> = missing.iter().map(|m| (m.input.as_str(), m.axis)).collect();
    assert_eq!(listed, vec![("x", 0), ("ids", 2)]);
    assert_eq!(missing[1].suggestion, "ids=2x7x<d2>");
}

#[test]
fn resolves_with_whole_and_symbol_overrides() {
    let specs = [
        spec("x", DType::F32, vec![sym("batch"), Dim::Fixed(4)]),
        spec("y", DType::F32, vec![sym("batch")]),
    ];
    let shapes = resolve_shapes(
        &specs,
        &[
            parse_shape_override("batch=3").unwrap(),
            parse_shape_override("x=2x4").unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(shapes, vec![vec![2, 4], vec![3]]);
}

#[test]
fn override_mistakes_are_named() {
    let specs = [spec("x", DType::F32, vec![sym("batch"), Dim::Fixed(4)])];
    let o = |t: &str| vec![parse_shape_override(t).unwrap()];
    assert_eq!(
        resolve_shapes(&specs, &o("x=1x5")).unwrap_err().to_string(),
        "input \"x\" dim 1 is fixed at 4 but 5 was given"
    );
    assert_eq!(
        resolve_shapes(&specs, &o("x=1x4x1"))
            .unwrap_err()
            .to_string(),
        "input \"x\" has rank 2 but the shape given has 3 dims"
    );
    assert_eq!(
        resolve_shapes(&specs, &o("z=1")).unwrap_err().to_string(),
        "shape given for \"z\", which is neither an input nor a symbolic dim (inputs: x)"
    );
    let twice = [
        parse_shape_override("x=1x4").unwrap(),
        parse_shape_override("x=2x4").unwrap(),
    ];
    assert_eq!(
        resolve_shapes(&specs, &twice).unwrap_err().to_string(),
        "shape given twice for \"x\""
    );
}

fn checksum(bytes: &[u8]) -> u64 {
    crate::rng::fnv1a(bytes)
}

#[test]
fn seeded_inputs_are_pinned() {
    // Pinned values: if these change, every stored reference output in every project that
    // uses seeded inputs silently changes meaning. Do not update them casually.
    let x = seeded_tensor("x", DType::F32, &[2, 3], 42).unwrap();
    let bits: Vec<u32> = x.as_slice::<f32>().unwrap()[..3]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    // -0.10411954, -0.3628255, -0.22955465 (multiples of 2^-23, computed independently
    // with a Python transcription of splitmix64 and the mapping in the module docs)
    assert_eq!(bits, PINNED_F32_X_SEED42_BITS);
    assert_eq!(checksum(&x.to_le_bytes()), PINNED_F32_X_SEED42_FNV);
    let ids = seeded_tensor("ids", DType::I64, &[8], 42).unwrap();
    assert_eq!(ids.as_slice::<i64>().unwrap(), PINNED_I64_IDS_SEED42);
}

const PINNED_F32_X_SEED42_BITS: [u32; 3] = [0xBDD5_3CA0, 0xBEB9_C444, 0xBE6B_1060];
/// FNV-1a of the 24 little-endian bytes of `x` ([2, 3], f32, seed 42).
const PINNED_F32_X_SEED42_FNV: u64 = 0x9731_DDED_B1BA_998F;
const PINNED_I64_IDS_SEED42: [i64; 8] = [2, 5, 5, 4, 5, 9, 7, 8];

#[test]
fn seeded_inputs_are_deterministic_and_in_range() {
    let specs = [
        spec("a", DType::F16, vec![]),
        spec("b", DType::F64, vec![]),
        spec("c", DType::U8, vec![]),
        spec("d", DType::Bool, vec![]),
        spec("e", DType::I32, vec![]),
    ];
    let shapes = vec![vec![1000]; 5];
    let one = seeded_inputs(&specs, &shapes, 7).unwrap();
    let two = seeded_inputs(&specs, &shapes, 7).unwrap();
    assert_eq!(one, two);
    let other = seeded_inputs(&specs, &shapes, 8).unwrap();
    assert_ne!(one[0].1, other[0].1);
    for (name, t) in &one {
        let v = t.to_f64_vec();
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        match t.dtype() {
            DType::F16 | DType::F64 => assert!(lo >= -1.0 && hi < 1.0 && lo < -0.9, "{name}"),
            DType::Bool => assert!(lo == 0.0 && hi == 1.0, "{name}"),
            _ => assert!(lo == 0.0 && hi == 9.0, "{name}: {lo}..{hi}"),
        }
    }
    // each input has its own stream: dropping one does not change the others
    let fewer = seeded_inputs(&specs[1..], &shapes[1..], 7).unwrap();
    assert_eq!(fewer[..], one[1..]);
    assert_eq!(
        seeded_inputs(&specs, &shapes[..2], 7)
            .unwrap_err()
            .to_string(),
        "5 input specs but 2 shapes were given"
    );
}
