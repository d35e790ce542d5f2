//! Shared by the `cleanup_*` suites: a compact model builder, a runner that applies
//! passes and renders `before → after` in the canonical text, and the onnxruntime check
//! that the rewrite kept the outputs.
#![allow(dead_code)]
use bytes::Bytes;
use std::ffi::OsStr;
use std::path::Path;
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::proto::tensor_shape_proto::{Dimension, dimension};
use whittle_ir::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto, type_proto,
};
use whittle_ir::{Attribute, DataType, Graph, Model, Node, SaveOptions, Tensor};
use whittle_passes::cleanup::{CleanupOptions, make_pass, run_cleanup};
use whittle_passes::{PassContext, PassManager, PassReport};

/// `f32[N,3,8,8]`, `i64[2]`, `bool[]`: dtype, then dims (numbers, symbols, `?`).
pub fn vi(name: &str, ty: &str) -> ValueInfoProto {
    let (dt, rest) = ty.split_once('[').expect("type like f32[2,3]");
    let elem = match dt {
        "f32" => DataType::FLOAT,
        "i64" => DataType::INT64,
        "bool" => DataType::BOOL,
        other => panic!("dtype {other}"),
    };
    let dims = rest.trim_end_matches(']');
    let dim = dims
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| Dimension {
            value: match d.parse::<i64>() {
                Ok(v) => Some(dimension::Value::DimValue(v)),
                Err(_) if d == "?" => None,
                Err(_) => Some(dimension::Value::DimParam(d.to_string())),
            },
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem.0),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Deterministic numbers in [-1, 1) (a small LCG), so snapshots and checks are stable.
pub fn numbers(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn f32v(name: &str, dims: &[i64], v: &[f32]) -> Tensor {
    Tensor::new_raw(
        name,
        DataType::FLOAT,
        dims.to_vec(),
        Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
    )
}

/// An f32 tensor of seeded numbers.
pub fn f32r(name: &str, dims: &[i64], seed: u64) -> Tensor {
    f32v(
        name,
        dims,
        &numbers(seed, dims.iter().product::<i64>() as usize),
    )
}

pub fn i64v(name: &str, dims: &[i64], v: &[i64]) -> Tensor {
    Tensor::new_raw(
        name,
        DataType::INT64,
        dims.to_vec(),
        Bytes::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
    )
}

fn attr(proto: AttributeProto) -> Attribute {
    Attribute {
        proto,
        t: None,
        tensors: vec![],
        g: None,
        graphs: vec![],
    }
}

pub fn int(name: &str, v: i64) -> Attribute {
    attr(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    })
}

pub fn float(name: &str, v: f32) -> Attribute {
    attr(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    })
}

pub fn ints(name: &str, v: &[i64]) -> Attribute {
    attr(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    })
}

pub fn tensor(name: &str, t: Tensor) -> Attribute {
    let mut a = attr(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        ..Default::default()
    });
    a.t = Some(t);
    a
}

pub fn graph_attr(name: &str, g: Graph) -> Attribute {
    let mut a = attr(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        ..Default::default()
    });
    a.g = Some(g);
    a
}

/// A node named after its op and first output; inputs/outputs comma-separated.
pub fn n(op: &str, inputs: &str, outputs: &str, attributes: Vec<Attribute>) -> Node {
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() {
            vec![]
        } else {
            s.split(',').map(|x| x.trim().to_string()).collect()
        }
    };
    let output = split(outputs);
    Node {
        proto: NodeProto {
            name: Some(format!(
                "{}_{}",
                op.to_lowercase(),
                output.first().cloned().unwrap_or_default()
            )),
            op_type: Some(op.into()),
            input: split(inputs),
            output,
            ..Default::default()
        },
        attributes,
    }
}

pub fn graph(
    name: &str,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<Tensor>,
    nodes: Vec<Node>,
) -> Graph {
    let proto = GraphProto {
        name: Some(name.into()),
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    Graph::new(proto, inits, nodes)
}

pub fn model(g: Graph, opset: i64) -> Model {
    let proto = ModelProto {
        ir_version: Some(8),
        producer_name: Some("cleanup-test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        ..Default::default()
    };
    Model {
        proto,
        graph: g,
        path: None,
        source_len: None,
    }
}

fn report_text(reports: &[PassReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "[{}] nodes {} -> {}\n",
            r.pass, r.nodes_before, r.nodes_after
        ));
        for c in &r.changes {
            out.push_str(&format!("  + {c}\n"));
        }
        for s in &r.skipped {
            out.push_str(&format!("  - {s}\n"));
        }
    }
    out
}

/// Runs the named passes once each, in the order given; returns the snapshot text.
pub fn run_passes(m: &mut Model, passes: &[&str]) -> String {
    let before = whittle_ir::text::model_to_text(m);
    let mut pm = PassManager::new();
    for p in passes {
        pm.add(make_pass(p, &CleanupOptions::default()).expect("known pass"));
    }
    let reports = pm.run(m, &mut PassContext::default()).expect("passes run");
    format!(
        "--- before\n{before}--- after\n{}--- report\n{}",
        whittle_ir::text::model_to_text(m),
        report_text(&reports)
    )
}

/// Runs the whole pipeline with `opts`; returns the snapshot text.
pub fn run_pipeline(m: &mut Model, opts: &CleanupOptions) -> String {
    let before = whittle_ir::text::model_to_text(m);
    let r = run_cleanup(m, opts, &mut PassContext::default()).expect("pipeline runs");
    let reports: Vec<PassReport> = r
        .steps
        .into_iter()
        .map(|s| s.report)
        .filter(|r| !r.changes.is_empty() || !r.skipped.is_empty())
        .collect();
    format!(
        "--- before\n{before}--- after\n{}--- report\n{}",
        whittle_ir::text::model_to_text(m),
        report_text(&reports)
    )
}

/// Saves both models and checks in onnxruntime that they give the same outputs (within
/// `atol`) on seeded inputs; `extra` goes to `ort_run_compare.py` (e.g. `--shape`).
pub fn assert_same_in_ort(before: &Model, after: &Model, atol: f64, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("before.onnx"),
        dir.path().join("after.onnx"),
    );
    whittle_ir::save(before, &a, &SaveOptions::default()).unwrap();
    whittle_ir::save(after, &b, &SaveOptions::default()).unwrap();
    let atol = atol.to_string();
    let mut args: Vec<&OsStr> = vec![
        a.as_os_str(),
        b.as_os_str(),
        OsStr::new("--atol"),
        OsStr::new(&atol),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let r = whittle_tests::python_json("ort_run_compare.py", &args);
    assert!(r.is_ok(), "onnxruntime sees a difference: {r:?}");
}

/// Same as [`assert_same_in_ort`] for two files.
pub fn assert_files_same_in_ort(
    a: &Path,
    b: &Path,
    atol: f64,
    extra: &[&str],
) -> serde_json::Value {
    let atol = atol.to_string();
    let mut args: Vec<&OsStr> = vec![
        a.as_os_str(),
        b.as_os_str(),
        OsStr::new("--atol"),
        OsStr::new(&atol),
    ];
    args.extend(extra.iter().map(OsStr::new));
    whittle_tests::python_json("ort_run_compare.py", &args)
        .unwrap_or_else(|e| panic!("{}: {e}", a.display()))
}
