//! The bias-correction shifts `δ = (W_q − W)·E[x]`, one per output channel, for the
//! weight layouts of [`super::bias_correct`]. Pure arithmetic on row-major slices; a mean
//! vector of the wrong length is an error, never an out-of-bounds read.

/// `δ[o]` of a convolution weight `[M, C/g, k…]` against per-input-channel means.
pub fn conv_shift(
    diff: &[f64],
    dims: &[usize],
    mean: &[f64],
    group: i64,
) -> Result<Vec<f64>, String> {
    if dims.len() < 3 || diff.len() != dims.iter().product::<usize>() {
        return Err(format!("weight dims {dims:?} do not fit a convolution"));
    }
    let (m, cg) = (dims[0], dims[1]);
    let k: usize = dims[2..].iter().product();
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0 && m % g == 0)
        .ok_or_else(|| format!("group {group} does not divide {m} output channels"))?;
    if mean.len() != cg * group {
        return Err(format!(
            "input has {} channels, the weight expects {}",
            mean.len(),
            cg * group
        ));
    }
    let per_group = m / group;
    Ok((0..m)
        .map(|o| {
            let first = (o / per_group) * cg;
            (0..cg)
                .map(|j| {
                    let row = &diff[(o * cg + j) * k..(o * cg + j + 1) * k];
                    row.iter().sum::<f64>() * mean[first + j]
                })
                .sum()
        })
        .collect())
}

/// `δ[n]` of a 2-D weight, `[K, N]` (or `[N, K]` when `trans`), against per-feature means.
pub fn matmul_shift(
    diff: &[f64],
    dims: &[usize],
    mean: &[f64],
    trans: bool,
) -> Result<Vec<f64>, String> {
    if dims.len() != 2 || diff.len() != dims[0] * dims[1] {
        return Err(format!("weight dims {dims:?} are not a matrix"));
    }
    let (k, n) = if trans {
        (dims[1], dims[0])
    } else {
        (dims[0], dims[1])
    };
    if mean.len() != k {
        return Err(format!(
            "input has {} features, the weight expects {k}",
            mean.len()
        ));
    }
    Ok((0..n)
        .map(|o| {
            (0..k)
                .map(|i| {
                    let at = if trans { o * k + i } else { i * n + o };
                    diff[at] * mean[i]
                })
                .sum()
        })
        .collect())
}
