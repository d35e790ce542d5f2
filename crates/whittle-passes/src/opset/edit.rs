//! One node being converted: the node itself, the nodes and constants a rule adds before
//! it, and small helpers over attributes and constant inputs.
//!
//! Invariants: a rule only touches its own node, adds new values under fresh names, and
//! records in `notes` every change a reader of the report should know about; a rule that
//! returns `Err` leaves nothing behind (the whole conversion is abandoned).
use super::scope::{Names, Scope};
use super::table::{D, Step};
use super::values::{attr, attr_int, attr_ints, new_node};
use std::collections::HashSet;
use whittle_ir::node::Attribute;
use whittle_ir::proto::attribute_proto::AttributeType;
use whittle_ir::{DataType, Node, Tensor};

/// Why a rule cannot convert a node (one sentence, no node name: the caller adds it).
pub(crate) type Refusal = String;
pub(crate) type Outcome = Result<(), Refusal>;

pub(crate) struct Edit<'a> {
    pub node: Node,
    /// Nodes to insert right before `node`, in order.
    pub before: Vec<Node>,
    /// Nodes to insert right after `node`, in order.
    pub after: Vec<Node>,
    /// New initializers of the node's graph.
    pub inits: Vec<Tensor>,
    /// Input names this conversion stopped reading (candidates for clean-up).
    pub released: Vec<String>,
    /// Outputs this conversion removed from the node.
    pub dropped_outputs: Vec<String>,
    pub notes: Vec<String>,
    pub scope: &'a Scope,
    /// Every value name read anywhere in the node's graph (its subgraphs included) or
    /// listed as a graph output.
    pub used: &'a HashSet<String>,
    pub names: &'a mut Names,
    /// Whether new constants may be initializers (IR >= 4); otherwise `Constant` nodes.
    pub initializers_ok: bool,
    /// New constants may not be added at all (function bodies, training graphs).
    pub frozen: bool,
    /// The opset the model is being converted to.
    pub target: i64,
}

impl Edit<'_> {
    pub fn op(&self) -> &str {
        self.node.op_type()
    }
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// A short base for new names: the node name, else its first output.
    fn base(&self) -> String {
        match self.node.name() {
            "" => self
                .node
                .outputs()
                .first()
                .cloned()
                .unwrap_or_else(|| self.op().to_lowercase()),
            n => n.to_string(),
        }
    }

    /// Adds constant `t` (its name is replaced by a fresh `<node>_<hint>`) and returns its name.
    pub fn constant(&mut self, hint: &str, mut t: Tensor) -> Result<String, Refusal> {
        if self.frozen {
            return Err(format!(
                "needs a new constant ({hint}), which whittle does not add inside function bodies or training graphs"
            ));
        }
        let name = self.names.fresh(&format!("{}_{hint}", self.base()));
        t.proto.name = Some(name.clone());
        if self.initializers_ok {
            self.inits.push(t);
        } else {
            let node_name = self.names.fresh(&format!("{name}_const"));
            let mut value = attr("value", AttributeType::Tensor);
            value.t = Some(t);
            self.before.push(new_node(
                "Constant",
                &node_name,
                &[],
                std::slice::from_ref(&name),
                vec![value],
            ));
        }
        Ok(name)
    }

    /// A fresh value name derived from this node.
    pub fn fresh_value(&mut self, hint: &str) -> String {
        self.names.fresh(&format!("{}_{hint}", self.base()))
    }

    /// The constant tensor feeding input `slot`, if that input is present and constant.
    pub fn const_input(&self, slot: usize) -> Option<Tensor> {
        let name = self.node.inputs().get(slot).filter(|s| !s.is_empty())?;
        let added = self.before.iter().filter(|n| n.op_type() == "Constant");
        let added = added.filter(|n| n.outputs().first() == Some(name));
        self.inits
            .iter()
            .find(|t| t.name() == name.as_str())
            .cloned()
            .or_else(|| added.filter_map(super::scope::constant_value).next())
            .or_else(|| self.scope.constant(name).cloned())
    }

    pub fn has_input(&self, slot: usize) -> bool {
        self.node.inputs().get(slot).is_some_and(|s| !s.is_empty())
    }

    /// The name of input `slot` ("" when absent).
    pub fn input(&self, slot: usize) -> String {
        self.node.inputs().get(slot).cloned().unwrap_or_default()
    }

    /// Sets input `slot` (padding with empty names); an empty name marks it absent.
    pub fn set_input(&mut self, slot: usize, name: &str) {
        let inputs = &mut self.node.proto.input;
        while inputs.len() <= slot {
            inputs.push(String::new());
        }
        inputs[slot] = name.to_string();
        trim_empty(inputs);
    }

    /// Removes input `slot` (it becomes absent); remembers the name for clean-up.
    pub fn drop_input(&mut self, slot: usize) {
        if let Some(old) = self
            .node
            .proto
            .input
            .get(slot)
            .cloned()
            .filter(|s| !s.is_empty())
        {
            self.released.push(old);
            self.set_input(slot, "");
        }
    }

    /// Removes output `slot` if the graph never reads it; `Err` if something does.
    pub fn drop_output_if_unused(&mut self, slot: usize) -> Outcome {
        let Some(out) = self
            .node
            .proto
            .output
            .get(slot)
            .cloned()
            .filter(|s| !s.is_empty())
        else {
            return Ok(());
        };
        if self.used.contains(&out) {
            return Err(format!(
                "output {out:?} is used, and its meaning differs between the versions"
            ));
        }
        self.node.proto.output[slot] = String::new();
        trim_empty(&mut self.node.proto.output);
        self.dropped_outputs.push(out.clone());
        self.note(format!("unused output {out:?} removed"));
        Ok(())
    }

    /// The element type of input `slot`, when known.
    pub fn input_dtype(&self, slot: usize) -> Option<DataType> {
        self.node
            .inputs()
            .get(slot)
            .and_then(|n| self.scope.dtype(n))
    }

    pub fn input_rank(&self, slot: usize) -> Option<usize> {
        let name = self.node.inputs().get(slot)?;
        self.const_input(slot)
            .map(|t| t.dims().len())
            .or_else(|| self.scope.rank(name))
    }

    /// The dims of input `slot` when stored or declared (`None` entries: symbolic).
    pub fn input_dims(&self, slot: usize) -> Option<Vec<Option<i64>>> {
        let name = self.node.inputs().get(slot)?;
        match self.const_input(slot) {
            Some(t) => Some(t.dims().iter().map(|&d| Some(d)).collect()),
            None => self.scope.dims(name).map(<[_]>::to_vec),
        }
    }

    /// Removes attribute `name` and returns it.
    pub fn take_attr(&mut self, name: &str) -> Option<Attribute> {
        let at = self
            .node
            .attributes
            .iter()
            .position(|a| a.proto.name() == name)?;
        Some(self.node.attributes.remove(at))
    }

    /// Sets (replacing in place, or appending) an attribute.
    pub fn set_attr(&mut self, a: Attribute) {
        match self
            .node
            .attributes
            .iter_mut()
            .find(|x| x.proto.name() == a.proto.name())
        {
            Some(slot) => *slot = a,
            None => self.node.attributes.push(a),
        }
    }

    pub fn attr_str(&self, name: &str) -> Option<String> {
        let a = self.node.attribute(name)?;
        a.proto
            .s
            .as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// Checks, for downgrading across an additive `step`, that the node uses nothing the
    /// step added, and removes what it spells out at its default.
    pub fn generic_down(&mut self, step: &Step) -> Outcome {
        for &(name, default) in step.new_attrs {
            let Some(a) = self.node.attribute(name) else {
                continue;
            };
            if !is_default(a, default) {
                return Err(format!(
                    "uses attribute {name}, which {}-{} does not have",
                    step.op, step.prev
                ));
            }
            self.take_attr(name);
        }
        let old_in = step.old_max_inputs;
        if self
            .node
            .inputs()
            .iter()
            .skip(old_in)
            .any(|s| !s.is_empty())
        {
            return Err(format!(
                "uses input {}, which {}-{} does not have",
                old_in + 1,
                step.op,
                step.prev
            ));
        }
        self.node.proto.input.truncate(old_in);
        for &slot in step.now_optional {
            if !self.has_input(slot) {
                return Err(format!(
                    "leaves out input {}, which {}-{} requires",
                    slot + 1,
                    step.op,
                    step.prev
                ));
            }
        }
        if self
            .node
            .outputs()
            .iter()
            .skip(step.old_max_outputs)
            .any(|s| !s.is_empty())
        {
            return Err(format!(
                "uses output {}, which {}-{} does not have",
                step.old_max_outputs + 1,
                step.op,
                step.prev
            ));
        }
        self.node.proto.output.truncate(step.old_max_outputs);
        self.check_types(step)?;
        if step.since == 11 {
            self.non_negative_axes(step)?;
        }
        Ok(())
    }

    /// Opset 11 allowed negative axes throughout; older versions do not. Negative `axis` /
    /// `axes` values are made positive with the rank they count from (the output's for
    /// Unsqueeze and OneHot, else the input's), or the node is refused.
    fn non_negative_axes(&mut self, step: &Step) -> Outcome {
        for name in ["axis", "axes"] {
            let Some(a) = self.node.attribute(name) else {
                continue;
            };
            let (single, list) = (a.proto.i, a.proto.ints.clone());
            if single.is_none_or(|i| i >= 0) && list.iter().all(|&i| i >= 0) {
                continue;
            }
            let rank = match self.op() {
                "Unsqueeze" => self.input_rank(0).map(|r| r + list.len()),
                "OneHot" => self.input_rank(0).map(|r| r + 1),
                _ => self.input_rank(0),
            };
            let out_rank = self.node.outputs().first().and_then(|o| self.scope.rank(o));
            let rank = rank.or(if matches!(self.op(), "Unsqueeze" | "OneHot") {
                out_rank
            } else {
                None
            });
            let Some(rank) = rank.map(|r| r as i64) else {
                return Err(format!(
                    "uses negative {name} on a tensor of unknown rank, which {}-{} does not accept",
                    step.op, step.prev
                ));
            };
            let fix = |i: i64| if i < 0 { i + rank } else { i };
            let fixed = match single {
                Some(i) => attr_int(name, fix(i)),
                None => attr_ints(name, list.iter().map(|&i| fix(i)).collect()),
            };
            self.note(format!("negative {name} made positive (rank {rank})"));
            self.set_attr(fixed);
        }
        Ok(())
    }

    /// Refuses when a known element type of the node's values is one `step` added.
    pub fn check_types(&self, step: &Step) -> Outcome {
        let values = self.node.inputs().iter().chain(self.node.outputs());
        for v in values.filter(|v| !v.is_empty()) {
            if let Some(t) = self
                .scope
                .dtype(v)
                .filter(|t| step.new_types.contains(&t.0))
            {
                return Err(format!(
                    "{v:?} is {t}, which {}-{} does not accept",
                    step.op, step.prev
                ));
            }
        }
        Ok(())
    }
}

/// Whether attribute `a` spells out `default`.
fn is_default(a: &Attribute, default: D) -> bool {
    let p = &a.proto;
    match default {
        D::None => false,
        D::I(v) => p.i == Some(v),
        D::F(v) => p.f == Some(v),
        D::S(v) => p.s.as_deref() == Some(v.as_bytes()),
    }
}

fn trim_empty(names: &mut Vec<String>) {
    while names.last().is_some_and(|s| s.is_empty()) {
        names.pop();
    }
}
