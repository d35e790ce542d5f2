//! compress's before/after table.
use super::super::backend_args::print_aligned;
use super::Report;

fn change(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if b != 0.0 => format!("{:+.1}%", (a / b - 1.0) * 100.0),
        _ => String::new(),
    }
}

fn count(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.3}"))
}

pub fn table(r: &Report) {
    println!("compress: {} -> {}", r.input.display(), r.output.display());
    println!("steps: {}", r.steps.join(" → "));
    let (b, a) = (&r.before, &r.after);
    let f = |x: u64| Some(x as f64);
    let mut rows: Vec<[String; 4]> = vec![
        [
            "file bytes".into(),
            b.file_bytes.to_string(),
            a.file_bytes.to_string(),
            change(f(b.file_bytes), f(a.file_bytes)),
        ],
        [
            "parameters".into(),
            b.parameters.to_string(),
            a.parameters.to_string(),
            change(f(b.parameters), f(a.parameters)),
        ],
        [
            "MACs (batch 1)".into(),
            count(b.macs),
            count(a.macs),
            change(b.macs.map(|m| m as f64), a.macs.map(|m| m as f64)),
        ],
        [
            "nodes".into(),
            b.nodes.to_string(),
            a.nodes.to_string(),
            change(f(b.nodes), f(a.nodes)),
        ],
        [
            "latency tract (ms)".into(),
            ms(b.tract_ms),
            ms(a.tract_ms),
            change(b.tract_ms, a.tract_ms),
        ],
        [
            "latency onnxruntime (ms)".into(),
            ms(b.ort_ms),
            ms(a.ort_ms),
            change(b.ort_ms, a.ort_ms),
        ],
    ];
    if let (Some(x), Some(y)) = (b.accuracy, a.accuracy) {
        rows.push([
            "accuracy".into(),
            format!("{x:.4}"),
            format!("{y:.4}"),
            format!("{:+.2} pts", (y - x) * 100.0),
        ]);
    }
    if let Some(g) = &r.agreement {
        let top1 = g.top1_agreement.map_or("-".into(), |t| format!("{t:.4}"));
        rows.push(["top-1 agreement".into(), "1".into(), top1, String::new()]);
        rows.push([
            "cosine".into(),
            "1".into(),
            format!("{:.6}", g.cosine),
            String::new(),
        ]);
    }
    print_aligned(&["", "before", "after", "change"], &rows);
    if let Some(g) = &r.agreement {
        println!(
            "agreement with the original on {} (SNR {})",
            g.inputs,
            g.snr_db.map_or("∞".into(), |s| format!("{s:.1} dB"))
        );
    }
    if let Some(fit) = &r.reconstruction {
        super::stages::reconstruct::print(fit);
    }
    println!("quantized layers: {}", r.quantized_layers);
    if let Some(n) = r.bias_corrected {
        println!(
            "bias correction: {n} layer biases shifted by their mean error on the calibration set"
        );
    }
    if let Some(s) = &r.no_slower {
        println!("--no-slower ({}): {}", s.runtime, s.decision.summary());
    }
    for v in r.speed.iter().filter(|v| v.slower) {
        println!(
            "warning: the result runs {:.2}x slower than the original in {}: {}",
            v.ratio,
            v.runtime,
            v.hint.as_deref().unwrap_or("")
        );
    }
    if let Some(fb) = &r.fallback {
        let sens: Vec<String> = fb
            .sensitivity
            .iter()
            .map(|l| {
                let snr = l.snr_db.map_or("∞".into(), |s| format!("{s:.1} dB"));
                format!("{} ({}) {snr}", l.node, l.op)
            })
            .collect();
        println!(
            "sensitivity (output SNR with only that layer quantized, worst first): {}",
            sens.join(", ")
        );
        let steps: Vec<String> = fb.steps.iter().map(|a| format!("{a:.4}")).collect();
        println!(
            "max drop {} pts: kept in float: {} (accuracy per step: {})",
            fb.max_drop,
            fb.kept_float.join(", "),
            steps.join(" → ")
        );
    }
    println!("wrote {}", r.output.display());
}
