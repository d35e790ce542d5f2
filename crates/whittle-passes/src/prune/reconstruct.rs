//! Least-squares reconstruction after pruning (ThiNet / He et al. 2017): the consumer
//! layers of pruned groups get their weights re-fitted so that, on calibration data, their
//! outputs from the *pruned* model's inputs match the *original* model's outputs.
//!
//! This module holds the math only — the pass crate never runs a model. The CLI reads the
//! activations through the runtime and feeds them here, one batch at a time:
//! [`layer::consumers`] names the layers to re-fit (and the ones skipped, with the reason),
//! [`layer::Layer::rows`] turns a batch into regression rows (im2col for Conv),
//! [`NormalEquations`] accumulates XᵀX, XᵀY and ‖Y‖² streaming over the batches, and
//! [`NormalEquations::solve`] returns the new weights, which [`layer::Layer::write`] puts
//! back.
//!
//! Invariants:
//! - only sums are kept (XᵀX is features², not rows × features), so memory does not grow
//!   with the calibration set;
//! - the solve is ridge regression *toward the current weights*:
//!   `(XᵀX + λI) W = XᵀY + λ W₀` with λ = `ridge` × mean diag(XᵀX). When the system is
//!   consistent and well-posed the exact weights are recovered (up to O(λ)); directions the
//!   data does not see (fewer rows than unknowns) keep the pruned model's weights instead of
//!   collapsing to zero;
//! - the relative errors reported before and after are computed from the same sums, on the
//!   same rows, so they are directly comparable;
//! - accumulation is in f64 and in batch order: the result does not depend on threads.
pub mod layer;
mod rows;
mod weights;

pub use layer::{Layer, LayerKind, Pads, SkippedLayer, consumers};
pub use rows::Batch;

use nalgebra::{Cholesky, DMatrix};

/// What can go wrong re-fitting a layer. Messages name the node or tensor.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReconstructError {
    #[error("{node}: {message}")]
    Shape { node: String, message: String },
    #[error("{0}")]
    Tensor(String),
    #[error("{node}: no calibration rows reached the layer")]
    NoRows { node: String },
    #[error("{node}: the normal equations are not positive definite (non-finite data?)")]
    Singular { node: String },
}

/// Running sums of one least-squares problem `X W ≈ Y` (X: rows × `inputs`, Y: rows ×
/// `outputs`).
#[derive(Clone, Debug)]
pub struct NormalEquations {
    xtx: DMatrix<f64>,
    xty: DMatrix<f64>,
    yty: f64,
    rows: u64,
}

impl NormalEquations {
    pub fn new(inputs: usize, outputs: usize) -> NormalEquations {
        NormalEquations {
            xtx: DMatrix::zeros(inputs, inputs),
            xty: DMatrix::zeros(inputs, outputs),
            yty: 0.0,
            rows: 0,
        }
    }

    pub fn inputs(&self) -> usize {
        self.xtx.nrows()
    }

    pub fn outputs(&self) -> usize {
        self.xty.ncols()
    }

    /// Rows accumulated so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds row-major `x` (n × inputs) and `y` (n × outputs).
    pub fn add_rows(&mut self, x: &[f32], y: &[f32]) -> Result<(), String> {
        let (ni, no) = (self.inputs(), self.outputs());
        if ni == 0 || no == 0 || !x.len().is_multiple_of(ni) || !y.len().is_multiple_of(no) {
            return Err(format!(
                "{} inputs / {} outputs do not split into rows of {ni} / {no}",
                x.len(),
                y.len()
            ));
        }
        let n = x.len() / ni;
        if y.len() / no != n {
            return Err(format!("{n} input rows but {} output rows", y.len() / no));
        }
        if n == 0 {
            return Ok(());
        }
        let xm = DMatrix::from_row_iterator(n, ni, x.iter().map(|&v| v as f64));
        let ym = DMatrix::from_row_iterator(n, no, y.iter().map(|&v| v as f64));
        self.xtx.gemm_tr(1.0, &xm, &xm, 1.0);
        self.xty.gemm_tr(1.0, &xm, &ym, 1.0);
        self.yty += ym.norm_squared();
        self.rows += n as u64;
        Ok(())
    }

    /// ‖X W − Y‖ / ‖Y‖ over the accumulated rows (0 when Y is all zero and so is X W).
    pub fn relative_error(&self, w: &DMatrix<f64>) -> f64 {
        // ‖XW − Y‖² = tr(Wᵀ XᵀX W) − 2 tr(Wᵀ XᵀY) + ‖Y‖²
        let quad = (w.transpose() * &self.xtx * w).trace();
        let cross = w.dot(&self.xty);
        let sq = (quad - 2.0 * cross + self.yty).max(0.0);
        if self.yty > 0.0 {
            (sq / self.yty).sqrt()
        } else {
            sq.sqrt()
        }
    }

    /// The ridge-regularised solution `(XᵀX + λI)⁻¹ (XᵀY + λ prior)`, λ = `ridge` × mean
    /// diag(XᵀX) (`ridge` itself when that mean is 0). `prior` is inputs × outputs.
    pub fn solve(
        &self,
        prior: &DMatrix<f64>,
        ridge: f64,
        node: &str,
    ) -> Result<DMatrix<f64>, ReconstructError> {
        if self.rows == 0 {
            return Err(ReconstructError::NoRows { node: node.into() });
        }
        if prior.shape() != self.xty.shape() {
            return Err(ReconstructError::Shape {
                node: node.into(),
                message: format!(
                    "current weights are {:?} but the data gives {:?}",
                    prior.shape(),
                    self.xty.shape()
                ),
            });
        }
        let lambda = self.lambda(ridge);
        let mut a = self.xtx.clone();
        for i in 0..a.nrows() {
            a[(i, i)] += lambda;
        }
        let b = &self.xty + prior * lambda;
        let chol =
            Cholesky::new(a).ok_or_else(|| ReconstructError::Singular { node: node.into() })?;
        let w = chol.solve(&b);
        if w.iter().all(|v| v.is_finite()) {
            Ok(w)
        } else {
            Err(ReconstructError::Singular { node: node.into() })
        }
    }

    /// The ridge λ used for `ridge` (see [`NormalEquations::solve`]).
    pub fn lambda(&self, ridge: f64) -> f64 {
        let n = self.inputs().max(1) as f64;
        let mean = self.xtx.diagonal().sum() / n;
        if mean > 0.0 { ridge * mean } else { ridge }
    }
}

#[cfg(test)]
mod tests;
