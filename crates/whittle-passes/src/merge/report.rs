//! What a merge reports: per member what it brought and shared, the merged inputs and
//! outputs (with how each output is computed), opsets, sizes and notes.
use super::combine::MergedOutput;
use super::inputs::InputPlan;
use super::opsets::Opsets;
use super::options::Combine;
use super::shared::{Pool, SharedTensor};
use whittle_ir::Model;

/// What one member brought.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberReport {
    pub file: String,
    pub prefix: String,
    pub sha256: Option<String>,
    pub producer: String,
    /// Its ai.onnx opset as read.
    pub opset: Option<i64>,
    pub nodes: usize,
    pub initializers: usize,
    pub initializer_bytes: u64,
    /// Of those, stored once with an earlier member's.
    pub shared_initializers: usize,
    pub shared_bytes: u64,
}

/// One merged input and the member inputs it feeds (`m1:image`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct InputReport {
    pub name: String,
    #[serde(rename = "type")]
    pub type_text: String,
    pub feeds: Vec<String>,
}

/// What a merge did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MergeReport {
    pub combine: String,
    pub members: Vec<MemberReport>,
    pub inputs: Vec<InputReport>,
    pub outputs: Vec<MergedOutput>,
    /// `ai.onnx:18`, `com.microsoft:1`, …
    pub opset_imports: Vec<String>,
    pub ir_version: i64,
    /// Tensors stored once although several members hold them.
    pub shared: Vec<SharedTensor>,
    pub shared_bytes: u64,
    pub initializers: usize,
    pub initializer_bytes: u64,
    pub nodes: usize,
    /// Opset conversions, dropped training graphs, …
    pub notes: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn report(
    model: &Model,
    combine: &Combine,
    members: Vec<MemberReport>,
    plan: &InputPlan,
    labels: &[String],
    outputs: Vec<MergedOutput>,
    pool: Pool,
    notes: Vec<String>,
    opsets: &Opsets,
) -> MergeReport {
    let inputs = plan
        .inputs
        .iter()
        .map(|s| InputReport {
            name: s.info.name().to_string(),
            type_text: s
                .info
                .r#type
                .as_ref()
                .map_or("?".into(), whittle_ir::types::type_string),
            feeds: s
                .fed
                .iter()
                .map(|(i, name)| format!("{}:{name}", labels[*i].split(' ').next().unwrap_or("")))
                .collect(),
        })
        .collect();
    let opset_imports = opsets
        .imports
        .iter()
        .map(|o| match o.domain() {
            "" => format!("ai.onnx:{}", o.version()),
            d => format!("{d}:{}", o.version()),
        })
        .collect();
    let inits = &model.graph.initializers;
    MergeReport {
        combine: combine.to_string(),
        members,
        inputs,
        outputs,
        opset_imports,
        ir_version: opsets.ir_version,
        shared_bytes: pool.shared.iter().map(|s| s.bytes).sum(),
        shared: pool.shared,
        initializers: inits.len(),
        initializer_bytes: inits.iter().map(|t| t.data_byte_len()).sum(),
        nodes: crate::count_nodes(model),
        notes,
    }
}
