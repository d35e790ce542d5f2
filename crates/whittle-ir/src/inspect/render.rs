//! The human-readable form of an [`InspectReport`]: short sections of aligned columns.
use super::{InspectReport, Macs, ValueReport};
use crate::shape::Dim;
use std::fmt::Write;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows as aligned columns, indented by two spaces. Columns listed in `right` are
/// right-aligned (numbers); the last column is never padded.
fn table(rows: &[Vec<String>], right: &[usize]) -> String {
    table_with(rows, right, "  ")
}

fn table_with(rows: &[Vec<String>], right: &[usize], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(width[c].saturating_sub(cell.chars().count()));
            if c > 0 {
                line.push_str("  ");
            }
            if right.contains(&c) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dims_text(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(Dim::to_string).collect();
    format!("[{}]", parts.join(","))
}

fn values_rows(values: &[ValueReport]) -> Vec<Vec<String>> {
    values
        .iter()
        .map(|v| {
            let mut row = vec![v.name.clone(), v.type_text.clone()];
            let declared: Option<Vec<Dim>> = v.shape.as_ref().map(|d| {
                d.iter()
                    .map(|d| match d {
                        crate::types::Dim::Fixed(n) => Dim::from_i64(*n),
                        crate::types::Dim::Symbolic(s) => Dim::Symbolic(s.clone()),
                        crate::types::Dim::Unknown => Dim::Unknown,
                    })
                    .collect()
            });
            if let Some(inferred) = v
                .inferred_shape
                .as_ref()
                .filter(|i| declared.as_ref() != Some(*i))
            {
                row.push(format!("→ {}", dims_text(inferred)));
            }
            row
        })
        .collect()
}

fn header(r: &InspectReport, out: &mut String) {
    let mut rows = Vec::new();
    if let Some(f) = &r.file {
        let size = r
            .file_bytes
            .map_or(String::new(), |b| format!(" ({} bytes)", thousands(b)));
        rows.push(vec!["file".into(), format!("{f}{size}")]);
    }
    let producer = format!("{} {}", r.producer.name, r.producer.version);
    rows.push(vec!["producer".into(), producer.trim().to_string()]);
    rows.push(vec!["ir version".into(), r.ir_version.to_string()]);
    let opsets: Vec<String> = r
        .opsets
        .iter()
        .map(|o| format!("{} {}", o.domain, o.version))
        .collect();
    rows.push(vec!["opsets".into(), opsets.join(", ")]);
    if !r.domain.is_empty() || r.model_version.is_some() {
        let version = r
            .model_version
            .map_or(String::new(), |v| format!(" version {v}"));
        rows.push(vec![
            "model".into(),
            format!("{}{version}", r.domain).trim().to_string(),
        ]);
    }
    out.push_str(&table_with(&rows, &[], ""));
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}");
}

fn io(r: &InspectReport, out: &mut String) {
    section(out, "inputs");
    if r.inputs.is_empty() {
        out.push_str("  none\n");
    }
    out.push_str(&table(&values_rows(&r.inputs), &[]));
    if r.initializer_inputs > 0 {
        let _ = writeln!(
            out,
            "  (and {} inputs that are initializers)",
            r.initializer_inputs
        );
    }
    section(out, "outputs");
    out.push_str(&table(&values_rows(&r.outputs), &[]));
}

fn nodes(r: &InspectReport, out: &mut String) {
    let n = &r.nodes;
    let graphs = if n.graphs == 1 {
        "1 graph".to_string()
    } else {
        format!("{} graphs", n.graphs)
    };
    section(
        out,
        &format!(
            "nodes: {} top level, {} in all ({graphs})",
            thousands(n.top_level),
            thousands(n.total)
        ),
    );
    let mut ops: Vec<(&String, &u64)> = r.op_histogram.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|(op, c)| vec![(*op).clone(), thousands(**c)])
        .collect();
    out.push_str(&table(&rows, &[1]));
}

fn parameters(r: &InspectReport, out: &mut String) {
    let p = &r.parameters;
    section(
        out,
        &format!(
            "parameters: {} in {}, {} bytes (initializers {}, sparse initializer values {}, Constant nodes {})",
            thousands(p.total),
            plural(p.tensors, "tensor"),
            thousands(p.bytes),
            thousands(p.initializer_elements),
            thousands(p.sparse_initializer_elements),
            thousands(p.constant_node_elements)
        ),
    );
    let mut rows = vec![vec![
        "dtype".into(),
        "tensors".into(),
        "elements".into(),
        "bytes".into(),
    ]];
    for (dtype, c) in &p.by_dtype {
        rows.push(vec![
            dtype.clone(),
            thousands(c.tensors),
            thousands(c.elements),
            thousands(c.bytes),
        ]);
    }
    out.push_str(&table(&rows, &[1, 2, 3]));
    if p.external_tensors > 0 {
        let _ = writeln!(
            out,
            "  {} stored as external data",
            plural(p.external_tensors, "tensor")
        );
    }
    if r.largest_tensors.is_empty() {
        return;
    }
    section(out, "largest tensors");
    let mut rows = vec![vec![
        "name".into(),
        "kind".into(),
        "dtype".into(),
        "shape".into(),
        "bytes".into(),
    ]];
    for t in &r.largest_tensors {
        let shape: Vec<String> = t.shape.iter().map(i64::to_string).collect();
        rows.push(vec![
            t.name.clone(),
            t.kind.to_string(),
            t.dtype.clone(),
            format!("[{}]", shape.join(",")),
            thousands(t.bytes),
        ]);
    }
    out.push_str(&table(&rows, &[4]));
}

fn extras(r: &InspectReport, out: &mut String) {
    section(out, &format!("functions: {}", r.functions.len()));
    let rows: Vec<Vec<String>> = r
        .functions
        .iter()
        .map(|f| {
            let overload = f
                .overload
                .as_ref()
                .map_or(String::new(), |o| format!(" (overload {o})"));
            vec![
                format!("{}::{}{overload}", f.domain, f.name),
                plural(f.nodes, "node"),
            ]
        })
        .collect();
    out.push_str(&table(&rows, &[]));
    section(out, &format!("metadata: {}", r.metadata_props.len()));
    let rows: Vec<Vec<String>> = r
        .metadata_props
        .iter()
        .map(|e| vec![e.key.clone(), e.value.clone()])
        .collect();
    out.push_str(&table(&rows, &[]));
    if r.training_info_graphs > 0 {
        section(
            out,
            &format!(
                "training_info graphs: {} (not counted above)",
                r.training_info_graphs
            ),
        );
    }
}

/// `1 node`, `2 nodes`.
fn plural(n: u64, what: &str) -> String {
    format!("{} {what}{}", thousands(n), if n == 1 { "" } else { "s" })
}

fn macs_text(known: u64, unknown: u64) -> String {
    match (known, unknown) {
        (k, 0) => thousands(k),
        (0, u) => format!("unknown ({})", plural(u, "node")),
        (k, u) => format!("{} + unknown ({})", thousands(k), plural(u, "node")),
    }
}

fn macs(m: &Macs, out: &mut String) {
    let o = &m.overrides;
    let mut with: Vec<String> = o.batch.iter().map(|b| format!("batch {b}")).collect();
    with.extend(o.shapes.iter().map(|(k, v)| {
        let dims: Vec<String> = v.iter().map(u64::to_string).collect();
        format!("{k}={}", dims.join("x"))
    }));
    with.extend(o.bindings.iter().map(|(k, v)| format!("{k}={v}")));
    let with = if with.is_empty() {
        String::new()
    } else {
        format!(" with {}", with.join(", "))
    };
    section(
        out,
        &format!(
            "MACs{with} (Conv, ConvTranspose, Gemm, MatMul of the main graph; bias adds not counted)"
        ),
    );
    if m.by_op.is_empty() {
        out.push_str("  none of these ops\n");
    } else {
        let mut rows = vec![vec!["op".into(), "nodes".into(), "MACs".into()]];
        for (op, c) in &m.by_op {
            rows.push(vec![
                op.clone(),
                thousands(c.nodes),
                macs_text(c.macs, c.unknown_nodes),
            ]);
        }
        let nodes: u64 = m.by_op.values().map(|c| c.nodes).sum();
        rows.push(vec![
            "total".into(),
            thousands(nodes),
            macs_text(m.known_total, m.unknown_nodes),
        ]);
        out.push_str(&table(&rows, &[1, 2]));
    }
    if m.unknown_nodes > 0 {
        out.push_str("  unknown: a needed dim is symbolic or not inferred; fix inputs with --batch N or --shape NAME=DIMS\n");
    }
    if m.subgraph_nodes_not_counted > 0 {
        let _ = writeln!(
            out,
            "  not counted: {} such nodes inside subgraphs (If/Loop/Scan bodies)",
            m.subgraph_nodes_not_counted
        );
    }
}

impl InspectReport {
    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        header(self, &mut out);
        io(self, &mut out);
        nodes(self, &mut out);
        parameters(self, &mut out);
        extras(self, &mut out);
        macs(&self.macs, &mut out);
        out
    }
}
