//! The human-readable quantize report: one row per candidate node (all of them with
//! `--verbose` or when there are few; else the weakest layers and the skip reasons
//! grouped), then bytes, MAC coverage and the error against the float model.
use super::super::backend_args::{backend_line, print_aligned};
use super::calibrate::{ErrorReport, ValueError};
use super::{QuantizeArgs, Timings};
use std::collections::BTreeMap;
use whittle_passes::quantize::{NodeEntry, QuantizeReport, Status};

/// Candidate rows shown in full without `--verbose`.
const FULL_TABLE: usize = 30;

fn status(s: Status) -> &'static str {
    match s {
        Status::Quantized => "quantized",
        Status::Skipped => "skipped",
        Status::Float16 => "float16",
        Status::KeptFloat32 => "kept f32",
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.2} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn ratio(before: u64, after: u64) -> String {
    if after == 0 {
        "-".into()
    } else {
        format!("{:.2}×", before as f64 / after as f64)
    }
}

fn db(x: Option<f64>) -> String {
    x.map_or("exact".into(), |v| format!("{v:.1}"))
}

fn row(n: &NodeEntry) -> [String; 6] {
    let what = match n.status {
        Status::Quantized | Status::Float16 => n.form.clone().unwrap_or_default(),
        _ => n.reason.clone().unwrap_or_default(),
    };
    let has_weight = n.weight.is_some() && matches!(n.status, Status::Quantized | Status::Float16);
    let b = match (n.weight_bytes_before, n.weight_bytes_after) {
        (Some(a), Some(b)) if has_weight => format!("{} → {}", bytes(a), bytes(b)),
        _ => "-".into(),
    };
    let sqnr = if has_weight {
        db(n.weight_sqnr_db)
    } else {
        "-".into()
    };
    [
        n.node.clone(),
        status(n.status).into(),
        what,
        sqnr,
        b,
        n.macs.map_or("-".into(), count),
    ]
}

pub fn report(
    args: &QuantizeArgs,
    r: &QuantizeReport,
    error: Option<&ErrorReport>,
    save: Option<&whittle_ir::SaveReport>,
    t: &Timings,
) {
    println!("quantize: {}", args.input.display());
    println!("scheme: {}", r.scheme);
    match (r.opset_before, r.opset_after) {
        (Some(a), Some(b)) if a != b => println!("opset: ai.onnx {a} → {b}"),
        (Some(a), _) => println!("opset: ai.onnx {a}"),
        _ => {}
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    let header = [
        "node",
        "status",
        "form / reason",
        "SQNR dB",
        "weight bytes",
        "MACs",
    ];
    if args.verbose || r.nodes.len() <= FULL_TABLE {
        let rows: Vec<[String; 6]> = r.nodes.iter().map(row).collect();
        print_aligned(&header, &rows);
    } else {
        let mut worst: Vec<&NodeEntry> = r
            .nodes
            .iter()
            .filter(|n| n.status == Status::Quantized)
            .collect();
        worst.sort_by(|a, b| {
            let key = |n: &NodeEntry| n.weight_sqnr_db.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        println!(
            "lowest weight SQNR (of {} quantized; --verbose lists every node):",
            worst.len()
        );
        let rows: Vec<[String; 6]> = worst.iter().take(10).map(|n| row(n)).collect();
        print_aligned(&header, &rows);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for n in r
            .nodes
            .iter()
            .filter(|n| !matches!(n.status, Status::Quantized | Status::Float16))
        {
            *reasons
                .entry(n.reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        for (why, k) in reasons {
            println!(
                "  {k} node(s) {}: {why}",
                if k > 0 { "left alone" } else { "" }
            );
        }
    }
    let quantized = r.quantized();
    println!(
        "{}: {quantized} of {} candidate nodes",
        if r.scheme == "fp16" {
            "float16"
        } else {
            "quantized"
        },
        r.nodes.len()
    );
    let b = &r.bytes;
    if b.weights_before > 0 {
        println!(
            "weights: {} → {} ({}); all tensor data: {} → {} ({})",
            bytes(b.weights_before),
            bytes(b.weights_after),
            ratio(b.weights_before, b.weights_after),
            bytes(b.tensors_before),
            bytes(b.tensors_after),
            ratio(b.tensors_before, b.tensors_after)
        );
    } else {
        println!(
            "tensor data: {} → {} ({})",
            bytes(b.tensors_before),
            bytes(b.tensors_after),
            ratio(b.tensors_before, b.tensors_after)
        );
    }
    let c = &r.coverage;
    let unknown = if c.nodes_unknown_macs > 0 {
        format!(
            " ({} nodes with unknown MACs not counted; --shape fixes input dims)",
            c.nodes_unknown_macs
        )
    } else {
        String::new()
    };
    println!(
        "MAC coverage: {:.1}% of {} MACs have quantized weights, {:.1}% run in integer arithmetic{unknown}",
        c.weight_coverage * 100.0,
        count(c.macs_total),
        c.integer_coverage * 100.0
    );
    if let Some(e) = error {
        print_error(e);
    }
    match save {
        Some(s) => println!(
            "wrote {} ({}) in {:.2} s (calibration {:.2} s, quantization {:.2} s)",
            s.model_path.display(),
            bytes(s.model_bytes),
            t.total,
            t.calibrate,
            t.quantize
        ),
        None => println!("no --output given: nothing written ({:.2} s)", t.total),
    }
}

fn error_row(v: &ValueError) -> [String; 6] {
    [
        v.name.clone(),
        db(v.snr_db),
        format!("{:.3e}", v.max_abs),
        format!("{:.3e}", v.mean_abs),
        format!("{:.6}", v.cosine),
        v.top1_agreement
            .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
    ]
}

fn print_error(e: &ErrorReport) {
    println!(
        "error vs the float model on {} calibration samples ({}):",
        e.samples,
        backend_line(e.backend)
    );
    let header = [
        "output",
        "SNR dB",
        "max|Δ|",
        "mean|Δ|",
        "cosine",
        "top-1 agree",
    ];
    print_aligned(
        &header,
        &e.outputs.iter().map(error_row).collect::<Vec<_>>(),
    );
    if !e.layers.is_empty() {
        println!("per quantized layer (first {} samples):", e.layer_samples);
        let header = [
            "layer",
            "SNR dB",
            "max|Δ|",
            "mean|Δ|",
            "cosine",
            "top-1 agree",
        ];
        print_aligned(&header, &e.layers.iter().map(error_row).collect::<Vec<_>>());
    }
}
