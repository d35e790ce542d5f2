//! Small constructors for the combiner: fresh names, nodes with attributes, scalar and
//! int64 constants (as initializers, each distinct value once), and value infos from
//! inferred shapes.
//!
//! Invariant: every name [`Namer::fresh`] returns is unused anywhere in the merged model
//! (values, node names, initializers, at every nesting level) and is then taken.
use std::collections::HashSet;
use whittle_ir::node::Attribute;
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::proto::{AttributeProto, NodeProto, ValueInfoProto};
use whittle_ir::shape::{Dim, ValueShape};
use whittle_ir::{DataType, Graph, Node, Tensor};

/// Names already in use, and fresh ones.
#[derive(Default)]
pub(crate) struct Namer {
    taken: HashSet<String>,
}

impl Namer {
    /// Takes every name of `g` and its subgraphs.
    pub fn take_graph(&mut self, g: &Graph) {
        g.walk(&mut |g, _| {
            let p = &g.proto;
            let infos = p.input.iter().chain(&p.output).chain(&p.value_info);
            self.taken.extend(infos.map(|v| v.name().to_string()));
            self.taken
                .extend(g.initializers.iter().map(|t| t.name().to_string()));
            for (_, n) in g.nodes() {
                self.taken.extend(n.outputs().iter().cloned());
                self.taken.insert(n.name().to_string());
            }
        });
    }

    /// `base`, or `base_1`, `base_2`, … when taken.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.taken.insert(name.clone());
        name
    }
}

pub(crate) fn attr_int(name: &str, v: i64) -> Attribute {
    attribute(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    })
}

pub(crate) fn attr_ints(name: &str, v: Vec<i64>) -> Attribute {
    attribute(AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v,
        ..Default::default()
    })
}

fn attribute(proto: AttributeProto) -> Attribute {
    Attribute {
        proto,
        t: None,
        tensors: Vec::new(),
        g: None,
        graphs: Vec::new(),
    }
}

/// Combiner nodes and constants being built, in order.
pub(crate) struct Emit<'a> {
    pub names: &'a mut Namer,
    /// The merged model's ai.onnx opset (rules that changed between versions follow it).
    pub opset: i64,
    pub nodes: Vec<Node>,
    pub inits: Vec<Tensor>,
}

/// An equal constant already added is reused (same dtype, dims and bytes).
fn find_constant(inits: &[Tensor], dtype: DataType, dims: &[i64], bytes: &[u8]) -> Option<String> {
    inits
        .iter()
        .find(|t| {
            t.dtype() == dtype && t.dims() == dims && t.proto.raw_data.as_deref() == Some(bytes)
        })
        .map(|t| t.name().to_string())
}

impl Emit<'_> {
    /// Adds `op(inputs) {attrs}` named `merge/<scope>/<op>`; its one output is `out`, or a
    /// fresh `merge/<scope>/<hint>`. Returns the output name.
    pub fn op(
        &mut self,
        op: &str,
        scope: &str,
        inputs: &[&str],
        attrs: Vec<Attribute>,
        out: Option<String>,
    ) -> String {
        let hint = op.to_lowercase();
        let name = self.names.fresh(&format!("merge/{scope}/{op}"));
        let out = out.unwrap_or_else(|| self.names.fresh(&format!("merge/{scope}/{hint}")));
        self.nodes.push(Node {
            proto: NodeProto {
                name: Some(name),
                op_type: Some(op.into()),
                domain: Some(String::new()),
                input: inputs.iter().map(|s| s.to_string()).collect(),
                output: vec![out.clone()],
                ..Default::default()
            },
            attributes: attrs,
        });
        out
    }

    /// A scalar initializer of float type `dtype` holding `v` (rounded to the type).
    pub fn float_scalar(&mut self, scope: &str, hint: &str, dtype: DataType, v: f64) -> String {
        let bytes: Vec<u8> = match dtype {
            DataType::DOUBLE => v.to_le_bytes().to_vec(),
            DataType::FLOAT16 => half::f16::from_f64(v).to_le_bytes().to_vec(),
            DataType::BFLOAT16 => half::bf16::from_f64(v).to_le_bytes().to_vec(),
            _ => (v as f32).to_le_bytes().to_vec(),
        };
        self.constant(scope, hint, dtype, Vec::new(), bytes)
    }

    /// An int64 initializer: a scalar when `dims` is empty, else of those dims.
    pub fn int64s(&mut self, scope: &str, hint: &str, dims: Vec<i64>, v: &[i64]) -> String {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(scope, hint, DataType::INT64, dims, bytes)
    }

    fn constant(
        &mut self,
        scope: &str,
        hint: &str,
        dtype: DataType,
        dims: Vec<i64>,
        bytes: Vec<u8>,
    ) -> String {
        if let Some(name) = find_constant(&self.inits, dtype, &dims, &bytes) {
            return name;
        }
        let name = self.names.fresh(&format!("merge/{scope}/{hint}"));
        self.inits.push(Tensor::new_raw(
            &name,
            dtype,
            dims,
            bytes::Bytes::from(bytes),
        ));
        name
    }

    /// `Unsqueeze(x, axes)`: the axes are an attribute before opset 13, an input from 13.
    pub fn unsqueeze(&mut self, scope: &str, x: &str, axes: &[i64]) -> String {
        if self.opset >= 13 {
            let a = self.int64s(scope, "axes", vec![axes.len() as i64], axes);
            self.op("Unsqueeze", scope, &[x, &a], Vec::new(), None)
        } else {
            let attrs = vec![attr_ints("axes", axes.to_vec())];
            self.op("Unsqueeze", scope, &[x], attrs, None)
        }
    }

    /// `ReduceMax(x, axes, keepdims=1)`: axes an attribute before opset 18, an input from 18.
    pub fn reduce_max(&mut self, scope: &str, x: &str, axis: i64) -> String {
        let keep = attr_int("keepdims", 1);
        if self.opset >= 18 {
            let a = self.int64s(scope, "axes", vec![1], &[axis]);
            self.op("ReduceMax", scope, &[x, &a], vec![keep], None)
        } else {
            let attrs = vec![attr_ints("axes", vec![axis]), keep];
            self.op("ReduceMax", scope, &[x], attrs, None)
        }
    }
}

/// A tensor value info from what shape inference knows (`dtype` must be known).
pub(crate) fn value_info(name: &str, dtype: DataType, dims: Option<&[Dim]>) -> ValueInfoProto {
    whittle_ir::shape::tensor_value_info(name, dtype, dims)
}

/// `f32[N,5]` for messages.
pub(crate) fn shape_text(s: &ValueShape) -> String {
    let dtype = s.dtype.map_or("?".to_string(), |d| d.to_string());
    match &s.dims {
        None => format!("{dtype}[..]"),
        Some(d) => {
            let d: Vec<String> = d.iter().map(|d| d.to_string()).collect();
            format!("{dtype}[{}]", d.join(","))
        }
    }
}
