//! Same input and options give the same bytes: every model-writing command runs twice, once
//! with `RAYON_NUM_THREADS=1` and once with 2 threads, and the outputs must be identical.
use std::ffi::OsString;
use std::path::Path;
use whittle_tests::{fixture, repo_root};

fn run(args: &[OsString], out: &Path, threads: &str) -> Vec<u8> {
    let mut full: Vec<OsString> = args.to_vec();
    full.extend(["-o".into(), out.into(), "--force".into()]);
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_whittle-e2e"))
        .args(&full)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "{full:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    std::fs::read(out).unwrap()
}

#[test]
fn every_writing_command_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let digits = fixture("digits_cnn.onnx");
    let calib = fixture("digits_calib.npz");
    let s = |x: &str| OsString::from(x);
    let cases: Vec<Vec<OsString>> = vec![
        vec![
            s("convert"),
            digits.clone().into(),
            s("--external-data"),
            s("64"),
        ],
        vec![s("optimize"), digits.clone().into()],
        vec![
            s("compress"),
            digits.clone().into(),
            s("--calib"),
            calib.clone().into(),
            s("--prune"),
            s("0.25"),
        ],
        vec![
            s("quantize"),
            digits.clone().into(),
            s("--mode"),
            s("static"),
            s("--calib"),
            calib.clone().into(),
        ],
        vec![
            s("quantize"),
            digits.clone().into(),
            s("--mode"),
            s("weight"),
            s("--dtype"),
            s("int4"),
            s("--block-size"),
            s("16"),
        ],
        vec![
            s("quantize"),
            fixture("attention.onnx").into(),
            s("--mode"),
            s("fp16"),
        ],
        vec![
            s("prune"),
            digits.clone().into(),
            s("--ratio"),
            s("0.25"),
            s("--criterion"),
            s("activation"),
            s("--calib"),
            calib.into(),
        ],
        vec![
            s("merge"),
            digits.clone().into(),
            repo_root()
                .join("tests/data/merge/digits_seed1.onnx")
                .into(),
            s("--combine"),
            s("vote"),
        ],
    ];
    for (k, args) in cases.iter().enumerate() {
        // Same file name in two folders: external data locations name the output file.
        let (da, db) = (
            dir.path().join(format!("a{k}")),
            dir.path().join(format!("b{k}")),
        );
        std::fs::create_dir_all(&da).unwrap();
        std::fs::create_dir_all(&db).unwrap();
        let a = run(args, &da.join("out.onnx"), "1");
        let b = run(args, &db.join("out.onnx"), "2");
        assert!(
            a == b,
            "{args:?}: outputs differ between runs / thread counts"
        );
        let data = |d: &Path| std::fs::read(d.join("out.onnx.data")).ok();
        assert_eq!(data(&da), data(&db), "{args:?}");
    }
}
