//! What the rules may know about the values a node reads: which are constants (and their
//! tensors), element types and ranks, and which names are taken.
//!
//! Invariants:
//! - a value is constant only if it is an initializer that is not also a graph input (such
//!   initializers are overridable defaults) or the output of a `Constant` node; names a
//!   subgraph defines itself shadow the enclosing graph's;
//! - element types are best effort: declared types (graph inputs, outputs, value_info,
//!   initializers, constants) and a forward walk over ai.onnx nodes whose output type is
//!   fixed by the op or follows their first input. A type that cannot be told is absent,
//!   never guessed.
use std::collections::{HashMap, HashSet};
use whittle_ir::node::Attribute;
use whittle_ir::types::tensor_type;
use whittle_ir::{DataType, Graph, Node, Tensor};

/// Facts about the values visible in one graph.
#[derive(Clone, Default)]
pub(crate) struct Scope {
    consts: HashMap<String, Tensor>,
    dtypes: HashMap<String, DataType>,
    ranks: HashMap<String, usize>,
    /// Declared or stored dims (`None`: symbolic or unknown).
    dims: HashMap<String, Vec<Option<i64>>>,
}

impl Scope {
    pub fn constant(&self, name: &str) -> Option<&Tensor> {
        self.consts.get(name)
    }
    pub fn dtype(&self, name: &str) -> Option<DataType> {
        self.dtypes.get(name).copied()
    }
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.ranks.get(name).copied()
    }
    pub fn dims(&self, name: &str) -> Option<&[Option<i64>]> {
        self.dims.get(name).map(Vec::as_slice)
    }

    /// The facts for graph `g` nested in a graph described by `outer`.
    pub fn for_graph(g: &Graph, outer: &Scope) -> Scope {
        let mut s = outer.clone();
        let own: Vec<&str> = g
            .input_names()
            .chain(
                g.nodes()
                    .flat_map(|(_, n)| n.outputs().iter().map(String::as_str)),
            )
            .chain(g.initializers.iter().map(|t| t.name()))
            .collect();
        for name in &own {
            s.consts.remove(*name);
            s.dtypes.remove(*name);
            s.ranks.remove(*name);
            s.dims.remove(*name);
        }
        let inputs: HashSet<&str> = g.input_names().collect();
        for t in &g.initializers {
            s.dtypes.insert(t.name().to_string(), t.dtype());
            s.ranks.insert(t.name().to_string(), t.dims().len());
            s.dims.insert(
                t.name().to_string(),
                t.dims().iter().map(|&d| Some(d)).collect(),
            );
            if !inputs.contains(t.name()) {
                s.consts.insert(t.name().to_string(), t.clone());
            }
        }
        let declared = g
            .proto
            .input
            .iter()
            .chain(&g.proto.output)
            .chain(&g.proto.value_info);
        for v in declared {
            if let Some((dtype, dims)) = v.r#type.as_ref().and_then(tensor_type) {
                if dtype.0 != 0 {
                    s.dtypes.insert(v.name().to_string(), dtype);
                }
                if let Some(dims) = dims {
                    s.ranks.insert(v.name().to_string(), dims.len());
                    let fixed = dims.iter().map(|d| match d {
                        whittle_ir::types::Dim::Fixed(v) => Some(*v),
                        _ => None,
                    });
                    s.dims
                        .entry(v.name().to_string())
                        .or_insert_with(|| fixed.collect());
                }
            }
        }
        for (_, n) in g.nodes() {
            s.learn(n);
        }
        s
    }

    /// Records what node `n` tells about its outputs.
    fn learn(&mut self, n: &Node) {
        if n.domain() != "" {
            return;
        }
        if n.op_type() == "Constant" {
            if let (Some(out), Some(t)) = (n.outputs().first(), constant_value(n)) {
                self.dtypes.insert(out.clone(), t.dtype());
                self.ranks.insert(out.clone(), t.dims().len());
                self.consts.insert(out.clone(), t);
            }
            return;
        }
        for (slot, out) in n.outputs().iter().enumerate() {
            if out.is_empty() {
                continue;
            }
            if let Some(t) = self
                .output_dtype(n, slot)
                .filter(|_| !self.dtypes.contains_key(out))
            {
                self.dtypes.insert(out.clone(), t);
            }
            if let Some(r) = self
                .output_rank(n, slot)
                .filter(|_| !self.ranks.contains_key(out))
            {
                self.ranks.insert(out.clone(), r);
            }
        }
    }

    fn input_rank(&self, n: &Node, slot: usize) -> Option<usize> {
        n.inputs().get(slot).and_then(|i| self.rank(i))
    }

    /// The rank of output `slot` of ai.onnx node `n`, for ops where it follows simply.
    fn output_rank(&self, n: &Node, slot: usize) -> Option<usize> {
        let axes = || n.attr_ints("axes").map(<[i64]>::len);
        match (n.op_type(), slot) {
            (op, 0) if SAME_RANK.contains(&op) => self.input_rank(n, 0),
            (op, 0) if BROADCASTING.contains(&op) => {
                let ranks: Option<Vec<usize>> = (0..n.inputs().len())
                    .map(|i| self.input_rank(n, i))
                    .collect();
                ranks?.into_iter().max()
            }
            ("Flatten" | "Gemm", 0) => Some(2),
            ("MatMul", 0) => {
                let (a, b) = (self.input_rank(n, 0)?, self.input_rank(n, 1)?);
                (a >= 2 && b >= 2).then_some(a.max(b))
            }
            ("Shape", 0) => Some(1),
            ("Size", 0) => Some(0),
            ("Squeeze", 0) if n.inputs().len() == 1 => {
                Some(self.input_rank(n, 0)?.checked_sub(axes()?)?)
            }
            ("Unsqueeze", 0) if n.inputs().len() == 1 => Some(self.input_rank(n, 0)? + axes()?),
            _ => None,
        }
    }

    fn input_dtype(&self, n: &Node, slot: usize) -> Option<DataType> {
        n.inputs().get(slot).and_then(|i| self.dtype(i))
    }

    /// The element type of output `slot` of ai.onnx node `n`, when the op fixes it.
    fn output_dtype(&self, n: &Node, slot: usize) -> Option<DataType> {
        let attr_dtype = |name: &str, default: Option<DataType>| {
            n.attr_int(name).map(|v| DataType(v as i32)).or(default)
        };
        match (n.op_type(), slot) {
            ("Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "NonMaxSuppression", _) => {
                Some(DataType::INT64)
            }
            ("TopK" | "MaxPool", 1) | ("Unique", 1..) => Some(DataType::INT64),
            (
                "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And"
                | "Or" | "Xor" | "IsNaN" | "IsInf" | "RegexFullMatch",
                _,
            ) => Some(DataType::BOOL),
            ("Cast", _) => attr_dtype("to", None),
            ("CastLike", _) => self.input_dtype(n, 1),
            ("ConstantOfShape", _) => n
                .attribute("value")
                .and_then(|a| a.t.as_ref())
                .map(Tensor::dtype)
                .or(Some(DataType::FLOAT)),
            ("EyeLike" | "RandomNormalLike" | "RandomUniformLike" | "Bernoulli", _) => {
                attr_dtype("dtype", self.input_dtype(n, 0))
            }
            (
                "RandomNormal" | "RandomUniform" | "HannWindow" | "HammingWindow"
                | "BlackmanWindow",
                _,
            ) => attr_dtype("output_datatype", None).or(attr_dtype("dtype", Some(DataType::FLOAT))),
            ("Where", _) => self.input_dtype(n, 1),
            ("OneHot", _) => self.input_dtype(n, 2),
            ("DequantizeLinear", _) => self.input_dtype(n, 1),
            ("QuantizeLinear", _) => self.input_dtype(n, 2).or(Some(DataType::UINT8)),
            ("DynamicQuantizeLinear", 1) => Some(DataType::FLOAT),
            ("DynamicQuantizeLinear", _) => Some(DataType::UINT8),
            ("MatMulInteger" | "ConvInteger", _) => Some(DataType::INT32),
            ("QLinearMatMul" | "QLinearConv", _) => self.input_dtype(n, 7),
            ("TfIdfVectorizer", _) => Some(DataType::FLOAT),
            ("Dropout", 1) | ("Multinomial", _) | ("ImageDecoder", _) | ("StringSplit", _) => None,
            ("If" | "Loop" | "Scan" | "SequenceMap", _) => None,
            (op, _)
                if op.starts_with("Sequence")
                    || op.starts_with("Optional")
                    || op.contains("Sequence") =>
            {
                None
            }
            _ => self.input_dtype(n, 0),
        }
    }
}

/// Ops whose first output has the rank of their first input.
const SAME_RANK: &[&str] = &[
    "Abs",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Conv",
    "ConvTranspose",
    "CumSum",
    "DepthToSpace",
    "Dropout",
    "Elu",
    "Erf",
    "Exp",
    "Floor",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "InstanceNormalization",
    "LRN",
    "LayerNormalization",
    "LeakyRelu",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "LpPool",
    "MaxPool",
    "Neg",
    "Not",
    "Pad",
    "Reciprocal",
    "Relu",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Sqrt",
    "Tanh",
    "Transpose",
    "Concat",
    "Slice",
    "Split",
    "Tile",
    "Upsample",
    "Resize",
    "Gelu",
    "Mish",
];

/// Element-wise ops with numpy broadcasting: the output has the largest input rank.
const BROADCASTING: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Equal",
    "Less",
    "Greater",
    "And",
    "Or",
    "Xor",
    "Where",
    "PRelu",
    "Mod",
    "LessOrEqual",
    "GreaterOrEqual",
];

/// The tensor a `Constant` node produces, for the forms that hold numbers.
pub(crate) fn constant_value(n: &Node) -> Option<Tensor> {
    let a: &Attribute = n.attributes.first()?;
    let p = &a.proto;
    let out = n.outputs().first()?.as_str();
    let tensor = |dtype: DataType, dims: Vec<i64>, floats: Vec<f32>, ints: Vec<i64>| {
        Tensor::from_proto(whittle_ir::proto::TensorProto {
            name: Some(out.to_string()),
            data_type: Some(dtype.0),
            dims,
            float_data: floats,
            int64_data: ints,
            ..Default::default()
        })
    };
    match p.name() {
        "value" => a.t.clone(),
        "value_float" => Some(tensor(DataType::FLOAT, vec![], vec![p.f?], vec![])),
        "value_floats" => Some(tensor(
            DataType::FLOAT,
            vec![p.floats.len() as i64],
            p.floats.clone(),
            vec![],
        )),
        "value_int" => Some(tensor(DataType::INT64, vec![], vec![], vec![p.i?])),
        "value_ints" => Some(tensor(
            DataType::INT64,
            vec![p.ints.len() as i64],
            vec![],
            p.ints.clone(),
        )),
        _ => None,
    }
}

/// Names already used anywhere in the model (values and nodes), to make fresh ones.
#[derive(Default)]
pub(crate) struct Names {
    used: HashSet<String>,
}

impl Names {
    pub fn of_graph(g: &Graph) -> Names {
        let mut names = Names::default();
        g.walk(&mut |g, _| {
            names
                .used
                .extend(g.proto.input.iter().map(|v| v.name().to_string()));
            names
                .used
                .extend(g.proto.output.iter().map(|v| v.name().to_string()));
            names
                .used
                .extend(g.initializers.iter().map(|t| t.name().to_string()));
            for (_, n) in g.nodes() {
                names.used.insert(n.name().to_string());
                names.used.extend(n.inputs().iter().cloned());
                names.used.extend(n.outputs().iter().cloned());
            }
        });
        names
    }

    /// `base`, or `base_2`, `base_3`, … — the first not yet used; it is then taken.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }
}
