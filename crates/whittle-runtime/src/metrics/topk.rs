//! Top-1 agreement and top-5 containment for class-score outputs.
//!
//! Definitions (rows are the N rows of an `[N, C]` output, or the single row of a `[C]`):
//! - ranking within a row is by descending score; ties go to the lower class index; NaN
//!   ranks below every number (so a NaN row ranks classes by index);
//! - `top1 = (rows where argmax(reference) == argmax(candidate)) / N`;
//! - `top5_containment = (rows where argmax(candidate) is among the reference's
//!   min(5, C) best classes) / N` — with C ≤ 5 it is always 1.
//!   An empty output (N = 0) gives 1 for both.

use std::cmp::Ordering;

/// `(rows, classes)` when `shape` looks like class scores: `[C]` or `[N, C]` with C ≥ 2.
pub fn class_layout(shape: &[usize]) -> Option<(usize, usize)> {
    match *shape {
        [c] if c >= 2 => Some((1, c)),
        [n, c] if c >= 2 => Some((n, c)),
        _ => None,
    }
}

/// Top-k agreement fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    pub top1: f64,
    pub top5_containment: f64,
}

/// Compares row-major `[rows, classes]` score matrices (see the module docs).
pub fn agreement(reference: &[f64], candidate: &[f64], rows: usize, classes: usize) -> Agreement {
    if rows == 0 || classes == 0 {
        return Agreement {
            top1: 1.0,
            top5_containment: 1.0,
        };
    }
    let (mut top1, mut top5) = (0usize, 0usize);
    for (r, c) in reference
        .chunks_exact(classes)
        .zip(candidate.chunks_exact(classes))
        .take(rows)
    {
        let ref_rank = ranking(r);
        let cand_best = ranking(c)[0];
        if ref_rank[0] == cand_best {
            top1 += 1;
        }
        if ref_rank.iter().take(5).any(|&k| k == cand_best) {
            top5 += 1;
        }
    }
    Agreement {
        top1: top1 as f64 / rows as f64,
        top5_containment: top5 as f64 / rows as f64,
    }
}

/// Class indices ordered best first (descending score, NaN last, ties by lower index).
pub fn ranking(row: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (row[a], row[b]);
        let by_score = match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
        };
        by_score.then(a.cmp(&b))
    });
    idx
}
