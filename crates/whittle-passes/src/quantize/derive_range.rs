//! Min/max calibration without measuring what follows exactly from other measured values.
//!
//! Each measured value costs a ReduceMin and a ReduceMax over the whole activation on every
//! calibration run, and the reductions, not the model, dominate calibration time (YOLOv8n:
//! 29 against 14 ms a sample in onnxruntime). Some values' ranges are a function of other
//! values' ranges, *exactly*, because min and max commute with them:
//! - `Sigmoid`, `Tanh`, `Relu` (monotonically non-decreasing): range = f(range of the input);
//! - `Identity`, `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose` (the same
//!   elements): range = range of the input;
//! - `Concat` (the union of its inputs' elements): range = hull of the inputs' ranges;
//! - SiLU, `Mul(x, Sigmoid(x))` (YOLO's activation after every Conv): x·σ(x) falls to its
//!   minimum at x* ≈ −1.2785 and rises on both sides, so the maximum is at an end of x's
//!   range, and so is the minimum unless x* lies inside it; then the minimum is σ's value
//!   at x*, which the data reaches to within a second-order term (the function is flat
//!   there: on YOLOv8n's 58 SiLUs the measured minimum differs by < 1e-7 of the range).
//!
//! Invariant: a value is derived only from values that are themselves measured or derived
//! (decided earlier in node order), so the result equals what measuring it would give, up
//! to the rounding of the function itself (Sigmoid/Tanh in f64 against the runtime's f32
//! kernel) and SiLU's flat minimum above, where the derived range is the wider one (it
//! never clips). Only the min/max method may use this: histograms do not commute.
use std::collections::{HashMap, HashSet};
use whittle_ir::Model;

/// How a value's range follows from others.
#[derive(Debug, Clone, PartialEq)]
pub enum Derivation {
    /// f(range of `input`) for a non-decreasing elementwise `op` (or the same elements).
    Monotone { op: String, input: String },
    /// The hull of these values' ranges.
    Union(Vec<String>),
    /// x·σ(x) over the range of `input` (x).
    Silu { input: String },
}

/// Where x·σ(x) has its minimum: the root of σ(x)·(1 + x·(1 − σ(x))) = 0.
const SILU_ARGMIN: f64 = -1.278_464_542_761_074;

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// The range of x·σ(x) for x in [lo, hi].
fn silu_range(lo: f64, hi: f64) -> (f64, f64) {
    let min = if lo < SILU_ARGMIN && SILU_ARGMIN < hi {
        silu(SILU_ARGMIN)
    } else {
        silu(lo).min(silu(hi))
    };
    (min, silu(lo).max(silu(hi)))
}

/// Splits `computed` (values to calibrate, not graph inputs) into those to measure and those
/// derived from the measured ones, in node order. `fed` are graph inputs whose range is known.
pub fn plan(
    model: &Model,
    computed: &[String],
    fed: &[String],
) -> (Vec<String>, Vec<(String, Derivation)>) {
    let wanted: HashSet<&str> = computed.iter().map(String::as_str).collect();
    let mut known: HashSet<String> = fed.iter().cloned().collect();
    let mut derived = Vec::new();
    let mut derived_names = HashSet::new();
    // Sigmoid outputs and their inputs, for spotting x·σ(x).
    let mut sigmoid_of: HashMap<String, String> = HashMap::new();
    for (_, n) in model.graph.nodes() {
        if let (true, Some(i), Some(o)) = (
            n.op_type() == "Sigmoid" && n.domain().is_empty(),
            n.inputs().first(),
            n.outputs().first(),
        ) {
            sigmoid_of.insert(o.clone(), i.clone());
        }
        let Some(out) = n.outputs().first().filter(|o| wanted.contains(o.as_str())) else {
            continue;
        };
        let inputs: Vec<&String> = n.inputs().iter().filter(|i| !i.is_empty()).collect();
        let rule = if !n.domain().is_empty() {
            None
        } else {
            match n.op_type() {
                "Sigmoid" | "Tanh" | "Relu" | "Identity" | "Flatten" | "Transpose" => inputs
                    .first()
                    .filter(|_| inputs.len() == 1)
                    .map(|i| Derivation::Monotone {
                        op: n.op_type().to_string(),
                        input: (*i).clone(),
                    }),
                // The second input of these is a shape or axes, not data.
                "Reshape" | "Squeeze" | "Unsqueeze" => {
                    inputs.first().map(|i| Derivation::Monotone {
                        op: n.op_type().to_string(),
                        input: (*i).clone(),
                    })
                }
                "Concat" if !inputs.is_empty() => Some(Derivation::Union(
                    inputs.iter().map(|i| (*i).clone()).collect(),
                )),
                "Mul" if inputs.len() == 2 => {
                    let silu_of = |x: &String, s: &String| {
                        (sigmoid_of.get(s) == Some(x))
                            .then(|| Derivation::Silu { input: x.clone() })
                    };
                    silu_of(inputs[0], inputs[1]).or_else(|| silu_of(inputs[1], inputs[0]))
                }
                _ => None,
            }
        };
        let from_known = |d: &Derivation| match d {
            Derivation::Monotone { input, .. } | Derivation::Silu { input } => {
                known.contains(input)
            }
            Derivation::Union(all) => all.iter().all(|i| known.contains(i)),
        };
        if let Some(d) = rule.filter(from_known) {
            derived_names.insert(out.clone());
            derived.push((out.clone(), d));
        }
        known.insert(out.clone());
    }
    let measured = computed
        .iter()
        .filter(|c| !derived_names.contains(*c))
        .cloned()
        .collect();
    (measured, derived)
}

/// Fills in the derived ranges, in order, from `ranges` (which holds every measured value).
pub fn apply(derived: &[(String, Derivation)], ranges: &mut HashMap<String, (f64, f64)>) {
    for (name, d) in derived {
        let range = match d {
            Derivation::Monotone { op, input } => ranges.get(input).map(|&(lo, hi)| {
                let f = |x: f64| match op.as_str() {
                    "Sigmoid" => 1.0 / (1.0 + (-x).exp()),
                    "Tanh" => x.tanh(),
                    "Relu" => x.max(0.0),
                    _ => x,
                };
                (f(lo), f(hi))
            }),
            Derivation::Union(all) => all
                .iter()
                .try_fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), i| {
                    ranges.get(i).map(|&(a, b)| (lo.min(a), hi.max(b)))
                }),
            Derivation::Silu { input } => ranges.get(input).map(|&(lo, hi)| silu_range(lo, hi)),
        };
        if let Some(r) = range {
            ranges.insert(name.clone(), r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{graph, model, node, vi};
    use super::*;

    /// x → Conv-like Mul → Sigmoid → Mul(c, s) → Concat(m, z) → Reshape, and z = Exp(x).
    fn chain() -> Model {
        let nodes = vec![
            node("Mul", "c", &["x", "x"], "c", vec![]),
            node("Sigmoid", "s", &["c"], "s", vec![]),
            node("Mul", "m", &["c", "s"], "m", vec![]),
            node("Exp", "e", &["x"], "z", vec![]),
            node("Concat", "cat", &["m", "z"], "cat", vec![]),
            node("Reshape", "r", &["cat", "shape"], "r", vec![]),
            node("Tanh", "t", &["z"], "t", vec![]),
        ];
        model(
            graph(
                "g",
                vec![vi("x", &[4])],
                vec![vi("r", &[8]), vi("t", &[4])],
                vec![],
                nodes,
            ),
            17,
        )
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn derives_only_from_measured_or_derived_values() {
        let m = chain();
        // z is not calibrated, so neither the Concat nor the Tanh over it can be derived.
        let (measured, derived) = plan(&m, &names(&["c", "s", "m", "cat", "r", "t"]), &[]);
        assert_eq!(measured, names(&["c", "cat", "t"]));
        assert_eq!(
            derived,
            vec![
                (
                    "s".to_string(),
                    Derivation::Monotone {
                        op: "Sigmoid".into(),
                        input: "c".into()
                    }
                ),
                ("m".to_string(), Derivation::Silu { input: "c".into() }),
                (
                    "r".to_string(),
                    Derivation::Monotone {
                        op: "Reshape".into(),
                        input: "cat".into()
                    }
                ),
            ]
        );
        // With z calibrated too, the Concat is the hull of m and z, and Tanh follows z.
        let (measured, derived) = plan(&m, &names(&["c", "s", "m", "z", "cat", "r", "t"]), &[]);
        assert_eq!(measured, names(&["c", "z"]));
        assert_eq!(derived.len(), 5);
        assert!(derived.contains(&("cat".to_string(), Derivation::Union(names(&["m", "z"])))));
        assert!(derived.contains(&(
            "t".to_string(),
            Derivation::Monotone {
                op: "Tanh".into(),
                input: "z".into()
            }
        )));
        // Every derivation comes after the ones it reads.
        let at = |n: &str| derived.iter().position(|(d, _)| d == n);
        assert!(at("m") < at("cat") && at("cat") < at("r"));
    }

    #[test]
    fn a_mul_by_the_sigmoid_of_another_value_is_measured() {
        let nodes = vec![
            node("Sigmoid", "s", &["y"], "s", vec![]),
            node("Mul", "m", &["x", "s"], "m", vec![]),
        ];
        let m = model(
            graph(
                "g",
                vec![vi("x", &[4]), vi("y", &[4])],
                vec![vi("m", &[4])],
                vec![],
                nodes,
            ),
            17,
        );
        let (measured, derived) = plan(&m, &names(&["s", "m"]), &names(&["x", "y"]));
        assert_eq!(measured, names(&["m"]));
        assert_eq!(derived.len(), 1);
    }

    #[test]
    fn silu_range_covers_the_values_and_is_tight() {
        let silu = |x: f64| x / (1.0 + (-x).exp());
        // Ranges inside the falling part, the rising part, and across the minimum.
        for (lo, hi) in [(-9.0, -2.0), (-1.0, 3.0), (-9.5, 18.5), (-1.3, -1.25)] {
            let xs: Vec<f64> = (0..=100_000)
                .map(|k| lo + (hi - lo) * k as f64 / 100_000.0)
                .collect();
            let (a, b) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(silu(x)), b.max(silu(x)))
                });
            let (dlo, dhi) = silu_range(lo, hi);
            assert!(
                dlo <= a && dhi >= b,
                "[{lo}, {hi}]: {dlo}..{dhi} misses {a}..{b}"
            );
            // Across the minimum the grid (spacing ≤ 3e-4) misses x* by a second-order amount.
            assert!(
                a - dlo < 1e-7 && dhi - b < 1e-12,
                "[{lo}, {hi}]: {dlo}..{dhi} vs {a}..{b}"
            );
        }
    }

    #[test]
    fn applied_ranges_equal_the_elementwise_ones() {
        let xs = [-3.0f64, -0.5, 0.25, 2.0];
        let c: Vec<f64> = xs.iter().map(|x| x * x - 1.0).collect();
        let s: Vec<f64> = c.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        let m: Vec<f64> = c.iter().zip(&s).map(|(a, b)| a * b).collect();
        let z: Vec<f64> = xs.iter().map(|x| x.exp()).collect();
        let t: Vec<f64> = z.iter().map(|v| v.tanh()).collect();
        let range = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                })
        };
        let (_, derived) = plan(
            &chain(),
            &names(&["c", "s", "m", "z", "cat", "r", "t"]),
            &[],
        );
        let mut ranges: HashMap<String, (f64, f64)> = [("c", range(&c)), ("z", range(&z))]
            .into_iter()
            .map(|(k, r)| (k.to_string(), r))
            .collect();
        apply(&derived, &mut ranges);
        let all: Vec<f64> = m.iter().chain(&z).copied().collect();
        for (name, want) in [
            ("s", range(&s)),
            ("m", range(&m)),
            ("cat", range(&all)),
            ("r", range(&all)),
            ("t", range(&t)),
        ] {
            let got = ranges[name];
            assert!(
                (got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12,
                "{name}: {got:?} vs {want:?}"
            );
        }
    }
}
