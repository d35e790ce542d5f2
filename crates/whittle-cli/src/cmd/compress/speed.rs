//! Whether the compressed model runs slower than the original, per runtime, and why.
//! A slower result is a finding the table states (with what to do), never one it hides.
use super::measure::Snapshot;
use super::stages::NoSlower;
use whittle_passes::quantize::Mode;

/// Latency ratios above this count as slower (timing noise on a busy machine stays below).
const SLOWER: f64 = 1.10;

/// How the compressed model's latency compares with the original's on one runtime.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpeedVerdict {
    pub runtime: &'static str,
    /// after / before median latency.
    pub ratio: f64,
    pub slower: bool,
    /// Why, and what to do, when slower.
    pub hint: Option<String>,
}

/// One verdict per runtime both sides were timed on. A slower result is a finding the
/// table states, never one it hides.
pub fn speed_verdicts(
    before: &Snapshot,
    after: &Snapshot,
    mode: Option<Mode>,
) -> Vec<SpeedVerdict> {
    let pairs = [
        ("tract", before.tract_ms, after.tract_ms),
        ("onnxruntime", before.ort_ms, after.ort_ms),
    ];
    pairs
        .into_iter()
        .filter_map(|(runtime, b, a)| {
            let (b, a) = (b?, a?);
            if b <= 0.0 {
                return None;
            }
            let ratio = a / b;
            let slower = ratio > SLOWER;
            let hint = slower.then(|| slower_hint(runtime, mode).to_string());
            Some(SpeedVerdict {
                runtime,
                ratio,
                slower,
                hint,
            })
        })
        .collect()
}

/// With `--no-slower`, a slower verdict is explained by what that search measured: on the
/// runtime it timed, it already chose on the same seeded-input median (the table's separate
/// timing of a sub-millisecond model can land on the other side of the threshold); on the
/// other runtime the scheme's hint stays, with a word that the search did not time it.
pub fn explain_after_no_slower(
    verdicts: &mut [SpeedVerdict],
    search: &NoSlower,
    quantized_layers: usize,
) {
    let d = &search.decision;
    for v in verdicts.iter_mut().filter(|v| v.slower) {
        v.hint = Some(if quantized_layers == 0 {
            "--no-slower kept no layer quantized: the graph is the float model after clean-up \
             (and pruning), so the difference is not quantization's — timing noise or those \
             steps; re-time with `whittle bench`"
                .to_string()
        } else if v.runtime == search.runtime {
            format!(
                "--no-slower measured this configuration at {} of the original ({:.3} ms) on \
                 {} and kept it as the fastest not-slower one; re-time with `whittle bench`",
                d.chosen
                    .and_then(|k| d.tries[k].ratio)
                    .map_or("?".into(), |r| format!("{r:.2}×")),
                d.float_ms,
                search.runtime
            )
        } else {
            format!(
                "{} (--no-slower timed {} only)",
                v.hint.as_deref().unwrap_or(""),
                search.runtime
            )
        });
    }
}

/// Why a compressed model can run slower on `runtime`, and what to do about it.
fn slower_hint(runtime: &str, mode: Option<Mode>) -> &'static str {
    match (runtime, mode) {
        (_, Some(Mode::Weight)) => {
            "weight-only int8/int4 is a size format: the runtime dequantizes every weight on \
             every run; for speed give --calib (static int8, integer kernels)"
        }
        ("tract", Some(Mode::Static | Mode::Dynamic)) => {
            "tract runs QuantizeLinear/DequantizeLinear as separate float ops (no fused \
             integer kernels): static QDQ targets onnxruntime and other QDQ-fusing runtimes"
        }
        (_, Some(Mode::Static)) => {
            "on small layers the quantize/dequantize steps cost more than the integer kernels \
             save; --no-slower keeps in float the op types that do not gain"
        }
        (_, Some(Mode::Dynamic)) => {
            "dynamic quantization adds a quantize step per layer at run time; try --calib \
             (static int8)"
        }
        (_, Some(Mode::Fp16)) => "no fast float16 kernels on this CPU: fp16 is a size format here",
        _ => "the rewritten graph runs slower here; compare `whittle bench` on both",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(tract: Option<f64>, ort: Option<f64>) -> Snapshot {
        Snapshot {
            tract_ms: tract,
            ort_ms: ort,
            ..Default::default()
        }
    }

    #[test]
    fn slower_results_are_called_out_with_a_reason() {
        let v = speed_verdicts(
            &snap(Some(10.0), Some(10.0)),
            &snap(Some(10.5), Some(16.0)),
            Some(Mode::Weight),
        );
        assert_eq!(v.len(), 2);
        assert!(!v[0].slower && v[0].hint.is_none(), "within noise: {v:?}");
        assert!(v[1].slower && (v[1].ratio - 1.6).abs() < 1e-9);
        assert!(
            v[1].hint
                .as_deref()
                .is_some_and(|h| h.contains("size format"))
        );
        let v = speed_verdicts(
            &snap(Some(10.0), None),
            &snap(Some(20.0), None),
            Some(Mode::Static),
        );
        assert_eq!(v.len(), 1, "onnxruntime not timed: no verdict");
        assert!(v[0].hint.as_deref().is_some_and(|h| h.contains("tract")));
    }

    /// Injected timings (no runtime): on the runtime the search timed, the hint reports its
    /// measurement; on the other the scheme's hint stays, marked as not timed by it.
    #[test]
    fn no_slower_explains_slower_verdicts_per_runtime() {
        use super::super::super::quantize::no_slower::choose;
        let decision = choose(10.0, &[], &mut |_| Ok(10.2));
        let search = NoSlower {
            runtime: "onnxruntime",
            decision,
        };
        let mut v = speed_verdicts(
            &snap(Some(10.0), Some(10.0)),
            &snap(Some(15.0), Some(12.0)),
            Some(Mode::Static),
        );
        explain_after_no_slower(&mut v, &search, 3);
        let hint = |i: usize| v[i].hint.clone().unwrap_or_default();
        assert!(hint(0).contains("tract runs") && hint(0).contains("timed onnxruntime only"));
        assert!(
            hint(1).contains("measured this configuration at 1.02×"),
            "{}",
            hint(1)
        );
        explain_after_no_slower(&mut v, &search, 0);
        assert!(
            v[0].hint
                .as_deref()
                .is_some_and(|h| h.contains("float model"))
        );
    }
}
