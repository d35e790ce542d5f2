//! What a merge is asked to do: the combiner, the axis, the member prefixes, the input map
//! and the target opset; parsed from the CLI's spellings (`weighted:1,2,1`, `1:image=input`).
use std::fmt;
use std::str::FromStr;

/// How the members' matched outputs become the merged model's outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Combine {
    /// `Mean(y0, y1, …)`.
    Mean,
    /// `Sum(y0·w0/Σw, y1·w1/Σw, …)`: a weighted mean (the weights are normalised to sum 1).
    Weighted(Vec<f64>),
    /// `Max(y0, y1, …)`, elementwise.
    Max,
    /// `Mean(Softmax(y0, axis), Softmax(y1, axis), …)`: the mean probability of logit outputs.
    SoftmaxMean,
    /// Per-member `ArgMax` on the axis, one-hot votes summed; the winner is the class with
    /// the most votes, ties broken by the highest mean score. Outputs `NAME/winner` (int64)
    /// and `NAME/votes` (int64 counts).
    Vote,
    /// `Concat(y0, y1, …, axis)`.
    Concat,
    /// `Concat(Unsqueeze(y0, 0), Unsqueeze(y1, 0), …, axis 0)`: a new leading member axis.
    Stack,
    /// Every member's outputs, renamed with the member prefix; no combiner node.
    All,
    /// Two members: both outputs (renamed) plus `NAME/absdiff = Abs(Sub(y0, y1))`.
    Diff,
}

impl Combine {
    /// Whether the combiner uses `--axis`.
    pub fn uses_axis(&self) -> bool {
        matches!(self, Combine::SoftmaxMean | Combine::Vote | Combine::Concat)
    }
}

impl fmt::Display for Combine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Combine::Mean => f.write_str("mean"),
            Combine::Weighted(w) => {
                let w: Vec<String> = w.iter().map(|x| x.to_string()).collect();
                write!(f, "weighted:{}", w.join(","))
            }
            Combine::Max => f.write_str("max"),
            Combine::SoftmaxMean => f.write_str("softmax-mean"),
            Combine::Vote => f.write_str("vote"),
            Combine::Concat => f.write_str("concat"),
            Combine::Stack => f.write_str("stack"),
            Combine::All => f.write_str("all"),
            Combine::Diff => f.write_str("diff"),
        }
    }
}

impl FromStr for Combine {
    type Err = String;
    fn from_str(s: &str) -> Result<Combine, String> {
        if let Some(list) = s.strip_prefix("weighted:") {
            let weights = list
                .split(',')
                .map(|w| {
                    w.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite() && *w >= 0.0)
                        .ok_or_else(|| {
                            format!("weight {w:?} is not a finite number >= 0 (in {s:?})")
                        })
                })
                .collect::<Result<Vec<f64>, String>>()?;
            if weights.iter().sum::<f64>() <= 0.0 {
                return Err(format!("the weights of {s:?} sum to 0"));
            }
            return Ok(Combine::Weighted(weights));
        }
        Ok(match s {
            "mean" => Combine::Mean,
            "max" => Combine::Max,
            "softmax-mean" => Combine::SoftmaxMean,
            "vote" => Combine::Vote,
            "concat" => Combine::Concat,
            "stack" => Combine::Stack,
            "all" => Combine::All,
            "diff" => Combine::Diff,
            "weighted" => {
                return Err("weighted needs one weight per member: weighted:W1,W2,…".into());
            }
            _ => {
                return Err(format!(
                    "unknown combiner {s:?} (mean, weighted:W1,W2,…, max, softmax-mean, vote, concat, stack, all, diff)"
                ));
            }
        })
    }
}

/// One `--input-map` entry: member input `name` (of member `member`, or of every member
/// that has it) is fed by the merged model's input `shared`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputMap {
    pub member: Option<usize>,
    pub name: String,
    pub shared: String,
}

impl FromStr for InputMap {
    type Err = String;
    /// `[M:]NAME=SHARED`, M a member index (0-based). Names may contain `:` (`input:0`);
    /// only an all-digit part before the first `:` is read as a member index.
    fn from_str(s: &str) -> Result<InputMap, String> {
        let (left, shared) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?}: expected [MEMBER:]NAME=SHARED"))?;
        let (member, name) = match left.split_once(':') {
            Some((m, n)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
                let m = m
                    .parse()
                    .map_err(|_| format!("{s:?}: bad member index {m:?}"))?;
                (Some(m), n)
            }
            _ => (None, left),
        };
        if name.is_empty() || shared.is_empty() {
            return Err(format!("{s:?}: expected [MEMBER:]NAME=SHARED"));
        }
        Ok(InputMap {
            member,
            name: name.to_string(),
            shared: shared.to_string(),
        })
    }
}

/// Options of [`super::merge`].
#[derive(Clone, Debug)]
pub struct MergeOptions {
    pub combine: Combine,
    /// The axis of `softmax-mean`, `vote` and `concat` (negative: from the end).
    pub axis: i64,
    /// One name prefix per member; empty: `m0/`, `m1/`, …. A `/` is added when missing.
    pub prefixes: Vec<String>,
    pub input_map: Vec<InputMap>,
    /// The ai.onnx opset of the result; `None`: the highest of the members.
    pub opset: Option<i64>,
}

impl Default for MergeOptions {
    fn default() -> MergeOptions {
        MergeOptions {
            combine: Combine::Mean,
            axis: -1,
            prefixes: Vec::new(),
            input_map: Vec::new(),
            opset: None,
        }
    }
}

/// The members' prefixes, each ending in `/`; distinct, and none the start of another (so
/// no two renamed names can collide).
pub(crate) fn prefixes(given: &[String], members: usize) -> Result<Vec<String>, String> {
    if given.is_empty() {
        return Ok((0..members).map(|i| format!("m{i}/")).collect());
    }
    if given.len() != members {
        return Err(format!(
            "{} prefixes given for {members} members",
            given.len()
        ));
    }
    let prefixes: Vec<String> = given
        .iter()
        .map(|p| match p.ends_with('/') {
            true => p.clone(),
            false => format!("{p}/"),
        })
        .collect();
    for (i, a) in prefixes.iter().enumerate() {
        if a == "/" {
            return Err("a prefix may not be empty".into());
        }
        for b in &prefixes[i + 1..] {
            if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                return Err(format!(
                    "prefixes {a:?} and {b:?} overlap: renamed names could collide"
                ));
            }
        }
    }
    Ok(prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combiners_parse_and_print_back() {
        for s in [
            "mean",
            "max",
            "softmax-mean",
            "vote",
            "concat",
            "stack",
            "all",
            "diff",
        ] {
            assert_eq!(s.parse::<Combine>().unwrap().to_string(), s);
        }
        let w: Combine = "weighted:2,1,0.5".parse().unwrap();
        assert_eq!(w, Combine::Weighted(vec![2.0, 1.0, 0.5]));
        assert_eq!(w.to_string(), "weighted:2,1,0.5");
        assert!(
            "weighted:1,x"
                .parse::<Combine>()
                .unwrap_err()
                .contains("\"x\"")
        );
        assert!(
            "weighted:0,0"
                .parse::<Combine>()
                .unwrap_err()
                .contains("sum to 0")
        );
        assert!("weighted:-1,2".parse::<Combine>().is_err());
        assert!(
            "median"
                .parse::<Combine>()
                .unwrap_err()
                .contains("unknown combiner")
        );
    }

    #[test]
    fn input_maps_parse_member_indices_but_keep_colons_in_names() {
        let m: InputMap = "1:image=input".parse().unwrap();
        assert_eq!(
            (m.member, m.name.as_str(), m.shared.as_str()),
            (Some(1), "image", "input")
        );
        let m: InputMap = "input:0=x".parse().unwrap();
        assert_eq!(
            (m.member, m.name.as_str(), m.shared.as_str()),
            (None, "input:0", "x")
        );
        assert!("image".parse::<InputMap>().is_err());
        assert!("=x".parse::<InputMap>().is_err());
    }

    #[test]
    fn prefixes_get_a_slash_and_may_not_overlap() {
        assert_eq!(prefixes(&[], 2).unwrap(), ["m0/", "m1/"]);
        let given = ["base".to_string(), "small/".to_string()];
        assert_eq!(prefixes(&given, 2).unwrap(), ["base/", "small/"]);
        let overlap = ["a".to_string(), "a/b".to_string()];
        assert!(prefixes(&overlap, 2).unwrap_err().contains("overlap"));
        assert!(
            prefixes(&given, 3)
                .unwrap_err()
                .contains("2 prefixes given for 3")
        );
    }
}
