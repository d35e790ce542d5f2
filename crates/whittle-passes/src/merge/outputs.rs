//! Matching the members' outputs into groups, one group per merged output.
//!
//! Rule: outputs whose name every member has are matched by name; the remaining outputs
//! of each member are matched by position, in order. When the members have different
//! numbers of remaining outputs, nothing is guessed: the merge is refused, listing each
//! member's outputs. Groups come in the order of the first member's outputs.
//!
//! Shapes and element types come from shape inference on each member (declared output
//! types fill what inference cannot tell), before any renaming.
use super::MergeError;
use super::build::shape_text;
use whittle_ir::Model;
use whittle_ir::proto::ValueInfoProto;
use whittle_ir::shape::{Dim, ShapeOverrides, ValueShape, infer_shapes};

/// One member output.
#[derive(Clone, Debug)]
pub(crate) struct Port {
    /// The member's output name.
    pub name: String,
    /// Its name in the merged model (set once the member is renamed).
    pub value: String,
    pub shape: ValueShape,
    /// The member's declared output (renamed along with the member).
    pub info: ValueInfoProto,
}

/// One merged output: one port per member (`ports[i]` is member i's).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub name: String,
    pub ports: Vec<Port>,
}

/// A member's outputs, with what shape inference knows about them.
pub(crate) fn ports(model: &Model) -> Vec<Port> {
    let shapes = infer_shapes(model, &ShapeOverrides::default()).unwrap_or_default();
    model
        .graph
        .proto
        .output
        .iter()
        .map(|o| Port {
            name: o.name().to_string(),
            value: o.name().to_string(),
            shape: shapes.get(o.name()).cloned().unwrap_or_default(),
            info: o.clone(),
        })
        .collect()
}

/// Matches outputs by name, then position (see the module doc).
pub(crate) fn match_outputs(
    ports: &[Vec<Port>],
    labels: &[String],
) -> Result<Vec<Vec<usize>>, MergeError> {
    let names = |i: usize| ports[i].iter().map(|p| p.name.as_str());
    let everywhere =
        |name: &str| (0..ports.len()).all(|i| names(i).filter(|n| *n == name).count() == 1);
    let rest: Vec<Vec<usize>> = (0..ports.len())
        .map(|i| {
            (0..ports[i].len())
                .filter(|&k| !everywhere(&ports[i][k].name))
                .collect()
        })
        .collect();
    if rest.iter().any(|r| r.len() != rest[0].len()) || ports[0].is_empty() {
        let listed: Vec<String> = (0..ports.len())
            .map(|i| {
                format!(
                    "{} has [{}]",
                    labels[i],
                    names(i).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        return Err(MergeError::Outputs(format!(
            "cannot match the outputs by name or position: {}",
            listed.join(", ")
        )));
    }
    let mut groups = Vec::new();
    let mut positional = 0;
    for k in 0..ports[0].len() {
        let name = &ports[0][k].name;
        let group = if everywhere(name) {
            (0..ports.len())
                .map(|i| ports[i].iter().position(|p| &p.name == name).unwrap_or(0))
                .collect()
        } else {
            let g = rest.iter().map(|r| r[positional]).collect();
            positional += 1;
            g
        };
        groups.push(group);
    }
    Ok(groups)
}

/// The shape every port agrees on: same element type, same rank, equal fixed dims (a
/// fixed dim wins over a symbol; the first symbol wins over unknown). `except` skips one
/// axis (concat's), which becomes unknown unless every port fixes it (then: the sum).
pub(crate) fn agree(
    g: &Group,
    labels: &[String],
    except: Option<usize>,
) -> Result<ValueShape, MergeError> {
    let mismatch = |i: usize, what: &str| {
        MergeError::Outputs(format!(
            "output {:?}: {} gives {} but {} gives {} ({what})",
            g.name,
            labels[0],
            shape_text(&g.ports[0].shape),
            labels[i],
            shape_text(&g.ports[i].shape)
        ))
    };
    let mut out = g.ports[0].shape.clone();
    for (i, p) in g.ports.iter().enumerate().skip(1) {
        match (out.dtype, p.shape.dtype) {
            (Some(a), Some(b)) if a != b => return Err(mismatch(i, "element types differ")),
            (None, b) => out.dtype = b,
            _ => {}
        }
        let dims = match (&out.dims, &p.shape.dims) {
            (None, d) | (d, None) => d.clone(),
            (Some(a), Some(b)) if a.len() != b.len() => {
                return Err(mismatch(i, "ranks differ"));
            }
            (Some(a), Some(b)) => {
                let mut merged = Vec::with_capacity(a.len());
                for (axis, (x, y)) in a.iter().zip(b).enumerate() {
                    merged.push(match (x, y) {
                        _ if Some(axis) == except => match (x, y) {
                            (Dim::Known(m), Dim::Known(n)) => Dim::Known(m + n),
                            _ => Dim::Unknown,
                        },
                        (Dim::Known(m), Dim::Known(n)) if m != n => {
                            return Err(mismatch(i, "static shapes differ"));
                        }
                        (Dim::Known(_), _)
                        | (Dim::Symbolic(_), Dim::Unknown | Dim::Symbolic(_)) => x.clone(),
                        _ => y.clone(),
                    });
                }
                Some(merged)
            }
        };
        out.dims = dims;
    }
    Ok(out)
}
