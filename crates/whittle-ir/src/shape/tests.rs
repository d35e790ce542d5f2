//! Rules for elementwise ops, convolutions, pooling and matrix products; expectations
//! computed by hand.
use super::Dim;
use super::testutil::*;
use crate::dtype::DataType;

#[test]
fn unary_keeps_shape_and_symbols() {
    for op in [
        "Relu",
        "Sigmoid",
        "Tanh",
        "Clip",
        "LeakyRelu",
        "HardSwish",
        "Gelu",
        "Erf",
        "Sqrt",
        "Softmax",
    ] {
        let g = G::new().input("x", F32, "N,3,?,8");
        assert_eq!(
            one_node(17, g, node(op, &["x"], &["y"], vec![])),
            "f32[N,3,?,8]",
            "{op}"
        );
    }
    let g = G::new().input("x", F32, "N,4");
    let cast = node("Cast", &["x"], &["y"], vec![int("to", 7)]);
    assert_eq!(one_node(17, g, cast), "i64[N,4]");
}

#[test]
fn binary_broadcasts_numpy_style() {
    let cases = [
        ("N,3,8,8", "3,1,1", "f32[N,3,8,8]"),
        ("N,1", "1,5", "f32[N,5]"),
        ("N,4", "M,4", "f32[?,4]"),
        ("N,4", "N,4", "f32[N,4]"),
        ("?,4", "2,4", "f32[2,4]"),
        ("?,4", "1,4", "f32[?,4]"),
        ("3", "4", "f32[?]"),
        ("..", "4", "f32[..]"),
    ];
    for (a, b, want) in cases {
        let g = G::new().input("a", F32, a).input("b", F32, b);
        assert_eq!(
            one_node(17, g, node("Add", &["a", "b"], &["y"], vec![])),
            want,
            "{a} + {b}"
        );
    }
    let g = G::new().input("a", F32, "N,4").input("b", F32, "4");
    assert_eq!(
        one_node(17, g, node("Less", &["a", "b"], &["y"], vec![])),
        "bool[N,4]"
    );
    let g = G::new()
        .input("c", DataType::BOOL, "1,4")
        .input("a", F32, "N,1")
        .input("b", F32, "1");
    assert_eq!(
        one_node(17, g, node("Where", &["c", "a", "b"], &["y"], vec![])),
        "f32[N,4]"
    );
    let g = G::new()
        .input("a", F32, "2,1")
        .input("b", F32, "1,3")
        .input("c", F32, "3");
    assert_eq!(
        one_node(17, g, node("Sum", &["a", "b", "c"], &["y"], vec![])),
        "f32[2,3]"
    );
}

#[test]
fn legacy_broadcast_keeps_the_first_shape() {
    let g = G::new().input("a", F32, "2,3,4,5").input("b", F32, "3");
    let add = node(
        "Add",
        &["a", "b"],
        &["y"],
        vec![int("broadcast", 1), int("axis", 1)],
    );
    assert_eq!(one_node(6, g, add), "f32[2,3,4,5]");
}

#[test]
fn conv_output_sizes() {
    let conv = |attrs| {
        let g = G::new()
            .input("x", F32, "N,3,32,W")
            .init(f32_tensor("w", &[16, 3, 3, 3]));
        one_node(17, g, node("Conv", &["x", "w"], &["y"], attrs))
    };
    // (32 + 2 - 3) / 1 + 1 = 32; the symbolic width stays W because pads offset the kernel.
    assert_eq!(conv(vec![ints("pads", &[1, 1, 1, 1])]), "f32[N,16,32,W]");
    // (32 - 3) / 2 + 1 = 15; W with stride 2 is unknown.
    assert_eq!(conv(vec![ints("strides", &[2, 2])]), "f32[N,16,15,?]");
    // Dilation 2: effective kernel 5, (32 + 2 - 5) + 1 = 30.
    assert_eq!(
        conv(vec![
            ints("dilations", &[2, 2]),
            ints("pads", &[1, 1, 1, 1])
        ]),
        "f32[N,16,30,?]"
    );
    assert_eq!(
        conv(vec![
            string("auto_pad", "SAME_UPPER"),
            ints("strides", &[2, 2])
        ]),
        "f32[N,16,16,?]"
    );
    assert_eq!(
        conv(vec![string("auto_pad", "SAME_LOWER")]),
        "f32[N,16,32,W]"
    );
    assert_eq!(conv(vec![string("auto_pad", "VALID")]), "f32[N,16,30,?]");
    // 1-D and 3-D convolutions.
    let g = G::new()
        .input("x", F32, "1,4,10")
        .init(f32_tensor("w", &[2, 2, 3]));
    let c1 = node("Conv", &["x", "w"], &["y"], vec![int("group", 2)]);
    assert_eq!(one_node(17, g, c1), "f32[1,2,8]");
    let g = G::new()
        .input("x", F32, "1,1,5,6,7")
        .init(f32_tensor("w", &[4, 1, 1, 3, 3]));
    assert_eq!(
        one_node(17, g, node("Conv", &["x", "w"], &["y"], vec![])),
        "f32[1,4,5,4,5]"
    );
}

#[test]
fn conv_transpose_output_sizes() {
    let ct = |attrs| {
        let g = G::new()
            .input("x", F32, "1,8,5,H")
            .init(f32_tensor("w", &[8, 2, 3, 3]));
        one_node(17, g, node("ConvTranspose", &["x", "w"], &["y"], attrs))
    };
    // stride 2: 2·(5−1) + 3 = 11; channels W[1]·group = 2·2.
    assert_eq!(
        ct(vec![ints("strides", &[2, 2]), int("group", 2)]),
        "f32[1,4,11,?]"
    );
    // stride 1, pads 1: 5 − 1 + 3 − 2 = 5, and H stays H.
    assert_eq!(ct(vec![ints("pads", &[1, 1, 1, 1])]), "f32[1,2,5,H]");
    assert_eq!(
        ct(vec![
            ints("strides", &[2, 2]),
            ints("output_padding", &[1, 1])
        ]),
        "f32[1,2,12,?]"
    );
    assert_eq!(ct(vec![ints("output_shape", &[10, 20])]), "f32[1,2,10,20]");
}

#[test]
fn pooling_output_sizes() {
    let pool = |op: &str, attrs| {
        let g = G::new().input("x", F32, "N,16,7,7");
        one_node(17, g, node(op, &["x"], &["y"], attrs))
    };
    let k2s2 = || vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
    assert_eq!(pool("MaxPool", k2s2()), "f32[N,16,3,3]");
    let mut ceil = k2s2();
    ceil.push(int("ceil_mode", 1));
    assert_eq!(pool("MaxPool", ceil), "f32[N,16,4,4]");
    // ceil_mode whose last window would start in the padding: (5+1−2)/2 → ceil 2 + 1 = 3,
    // but window 3 starts at 4 ≥ 5 + 0? No: (3−1)·2 = 4 < 5, kept.
    let g = G::new().input("x", F32, "1,1,5");
    let attrs = vec![
        ints("kernel_shape", &[2]),
        ints("strides", &[2]),
        ints("pads", &[0, 1]),
        int("ceil_mode", 1),
    ];
    assert_eq!(
        one_node(17, g, node("MaxPool", &["x"], &["y"], attrs)),
        "f32[1,1,3]"
    );
    // kernel 3 stride 2 over 6 with pads 1,1 and ceil: (6+2−3)/2 = 2.5 → 3, +1 = 4; the
    // 4th window starts at 6 ≥ 6 + 1? no (6 < 7): kept → 4. Over 5 with pads 0,1: (5+1−3)/2
    // = 1.5 → 2, +1 = 3, third starts at 4 < 5: kept.
    let g = G::new().input("x", F32, "1,1,6");
    let attrs = vec![
        ints("kernel_shape", &[3]),
        ints("strides", &[2]),
        ints("pads", &[1, 1]),
        int("ceil_mode", 1),
    ];
    assert_eq!(
        one_node(17, g, node("AveragePool", &["x"], &["y"], attrs)),
        "f32[1,1,4]"
    );
    let g = G::new().input("x", F32, "1,1,2");
    let attrs = vec![
        ints("kernel_shape", &[1]),
        ints("strides", &[2]),
        ints("pads", &[0, 1]),
        int("ceil_mode", 1),
    ];
    // (2+1−1)/2 = 1 → +1 = 2; window 2 starts at 2 ≥ 2 + 0: dropped → 1.
    assert_eq!(
        one_node(17, g, node("MaxPool", &["x"], &["y"], attrs)),
        "f32[1,1,1]"
    );
    assert_eq!(pool("GlobalAveragePool", vec![]), "f32[N,16,1,1]");
    assert_eq!(
        pool(
            "AveragePool",
            vec![
                ints("kernel_shape", &[3, 3]),
                string("auto_pad", "SAME_UPPER")
            ]
        ),
        "f32[N,16,7,7]"
    );
}

#[test]
fn matmul_and_gemm() {
    let mm = |a: &str, b: &str| {
        let g = G::new().input("a", F32, a).input("b", F32, b);
        one_node(17, g, node("MatMul", &["a", "b"], &["y"], vec![]))
    };
    assert_eq!(mm("N,S,16", "16,32"), "f32[N,S,32]");
    assert_eq!(mm("4", "4,5"), "f32[5]");
    assert_eq!(mm("3,4", "4"), "f32[3]");
    assert_eq!(mm("4", "4"), "f32[]");
    assert_eq!(mm("2,1,3,4", "5,4,6"), "f32[2,5,3,6]");
    assert_eq!(mm("..", "4,5"), "f32[..]");
    let gemm = |attrs| {
        let g = G::new().input("a", F32, "K,M").input("b", F32, "N,K");
        one_node(17, g, node("Gemm", &["a", "b"], &["y"], attrs))
    };
    assert_eq!(gemm(vec![int("transA", 1), int("transB", 1)]), "f32[M,N]");
    assert_eq!(gemm(vec![]), "f32[K,K]");
}

#[test]
fn dims_serialize_as_number_string_or_null() {
    let v =
        serde_json::to_string(&[Dim::Known(3), Dim::Symbolic("N".into()), Dim::Unknown]).unwrap();
    assert_eq!(v, r#"[3,"N",null]"#);
}

#[test]
fn absurd_attributes_do_not_panic() {
    let g = G::new()
        .input("x", F32, "1,1,4,4")
        .init(f32_tensor("w", &[1, 1, 3, 3]));
    let attrs = vec![
        ints("pads", &[i64::MAX, 0, i64::MAX, 0]),
        ints("strides", &[0, 1]),
    ];
    assert_eq!(
        one_node(17, g, node("Conv", &["x", "w"], &["y"], attrs)),
        "f32[1,1,?,?]"
    );
    let g = G::new().input("x", F32, "1,1,4,4");
    let attrs = vec![
        ints("kernel_shape", &[i64::MAX, 2]),
        ints("dilations", &[i64::MAX, 1]),
    ];
    assert_eq!(
        one_node(17, g, node("MaxPool", &["x"], &["y"], attrs)),
        "f32[1,1,?,3]"
    );
    // Pads near i64::MAX: huge but representable sizes, or unknown — never an overflow.
    let pool = |pad: i64| {
        let g = G::new().input("x", F32, "1,1,4");
        let attrs = vec![
            ints("kernel_shape", &[1]),
            ints("pads", &[pad, 0]),
            int("ceil_mode", 1),
        ];
        one_node(17, g, node("AveragePool", &["x"], &["y"], attrs))
    };
    assert_eq!(pool(i64::MAX - 4), format!("f32[1,1,{}]", i64::MAX));
    assert_eq!(pool(i64::MAX - 3), "f32[1,1,?]");
}
