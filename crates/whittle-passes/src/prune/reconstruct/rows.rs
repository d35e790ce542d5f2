//! One batch of activations → regression rows (see the row layout in [`super::layer`]).
//!
//! Conv rows are im2col patches: for output position (oh, ow) the input element of
//! channel c, kernel tap (i, j) is `x[n, c, oh·s₀ + i·d₀ − p₀, ow·s₁ + j·d₁ − p₁]`, zero
//! outside the input (ONNX zero padding). Gemm/MatMul rows are the input's last axis,
//! one per leading position. At most `max_positions` evenly spaced positions are taken
//! per sample, the same ones for every sample, so the rows are deterministic.
use super::layer::{Layer, LayerKind, Pads, kept_or_all};
use super::{NormalEquations, ReconstructError};
use crate::im2col;

/// A batch as a flat row-major buffer with its shape.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub values: &'a [f32],
    pub shape: &'a [usize],
}

impl Batch<'_> {
    fn check(&self, what: &str, layer: &Layer) -> Result<(), ReconstructError> {
        if self.shape.iter().product::<usize>() != self.values.len() {
            return Err(layer.shape_error(format!(
                "{what} has {} values for shape {:?}",
                self.values.len(),
                self.shape
            )));
        }
        Ok(())
    }
}

impl Layer {
    pub(super) fn shape_error(&self, message: String) -> ReconstructError {
        ReconstructError::Shape {
            node: self.node.clone(),
            message,
        }
    }

    /// Adds the rows of one batch (`x`: the layer's input in the pruned model, `y`: its
    /// output in the original) to `ne`, whose width must be the layer's unknowns.
    pub fn accumulate(
        &self,
        ne: &mut NormalEquations,
        x: Batch,
        y: Batch,
        max_positions: usize,
    ) -> Result<(), ReconstructError> {
        x.check("input", self)?;
        y.check("output", self)?;
        if x.shape.first() != y.shape.first() {
            return Err(self.shape_error(format!(
                "input {:?} and output {:?} disagree on the batch",
                x.shape, y.shape
            )));
        }
        let kept = |total: usize| {
            kept_or_all(&self.kept_outputs, total)
                .ok_or_else(|| self.shape_error(format!("kept outputs exceed {total}")))
        };
        let window = match &self.kind {
            LayerKind::Conv {
                kernel,
                strides,
                dilations,
                pads,
            } => Some(Window {
                geometry: im2col::Window {
                    kernel: *kernel,
                    strides: *strides,
                    dilations: *dilations,
                },
                pads: pads.clone(),
            }),
            LayerKind::Gemm { .. } | LayerKind::MatMul => None,
        };
        let channels = match window {
            Some(_) => y.shape.get(1),
            None => y.shape.last(),
        };
        let kept = kept(channels.copied().unwrap_or(0))?;
        // One sample at a time: the row buffers stay at `max_positions` rows.
        for s in 0..x.shape.first().copied().unwrap_or(1) {
            let (width, xr, yr) = match &window {
                Some(w) => self.conv_rows(w, x, y, s, &kept, max_positions)?,
                None => self.dense_rows(x, y, s, &kept, max_positions)?,
            };
            if width != ne.inputs() {
                return Err(self.shape_error(format!(
                    "input gives {width} features per row but the pruned weights take {}",
                    ne.inputs()
                )));
            }
            ne.add_rows(&xr, &yr).map_err(|e| self.shape_error(e))?;
        }
        Ok(())
    }

    /// The rows of sample `s` (rows of the last axis, evenly subsampled).
    fn dense_rows(
        &self,
        x: Batch,
        y: Batch,
        s: usize,
        kept: &[usize],
        max_positions: usize,
    ) -> Result<(usize, Vec<f32>, Vec<f32>), ReconstructError> {
        let k = x.shape.last().copied().unwrap_or(0);
        let m = y.shape.last().copied().unwrap_or(0);
        let n = x.shape.first().copied().unwrap_or(1).max(1);
        let rows = x.values.len() / k.max(1);
        if k == 0 || m == 0 || rows != y.values.len() / m || !rows.is_multiple_of(n) {
            return Err(self.shape_error(format!(
                "input {:?} and output {:?} have different row counts",
                x.shape, y.shape
            )));
        }
        let per_sample = rows / n;
        let step = per_sample.div_ceil(max_positions.max(1)).max(1);
        let bias = self.bias.is_some();
        let (mut xr, mut yr) = (Vec::new(), Vec::new());
        for r in (s * per_sample..(s + 1) * per_sample).step_by(step) {
            xr.extend_from_slice(&x.values[r * k..(r + 1) * k]);
            if bias {
                xr.push(1.0);
            }
            yr.extend(kept.iter().map(|&o| y.values[r * m + o]));
        }
        Ok((k + usize::from(bias), xr, yr))
    }

    /// The im2col rows of sample `s`.
    fn conv_rows(
        &self,
        w: &Window,
        x: Batch,
        y: Batch,
        s: usize,
        kept: &[usize],
        max_positions: usize,
    ) -> Result<(usize, Vec<f32>, Vec<f32>), ReconstructError> {
        let (&[_, c, h, wd], &[_, m, oh, ow]) = (x.shape, y.shape) else {
            return Err(self.shape_error(format!(
                "Conv input {:?} / output {:?} are not 4-D",
                x.shape, y.shape
            )));
        };
        let [kh, kw] = w.geometry.kernel;
        let begin = w.begin([h, wd], [oh, ow]);
        let bias = self.bias.is_some();
        let width = c * kh * kw + usize::from(bias);
        let positions = oh * ow;
        let step = positions.div_ceil(max_positions.max(1)).max(1);
        let (mut xr, mut yr) = (Vec::new(), Vec::new());
        for p in (0..positions).step_by(step) {
            let (py, px) = (p / ow, p % ow);
            let sample = &x.values[s * c * h * wd..(s + 1) * c * h * wd];
            w.geometry
                .patch(sample, [h, wd], 0..c, begin, [py, px], &mut xr);
            if bias {
                xr.push(1.0);
            }
            yr.extend(
                kept.iter()
                    .map(|&o| y.values[((s * m + o) * oh + py) * ow + px]),
            );
        }
        Ok((width, xr, yr))
    }
}

/// A Conv's window and how its padding is given.
struct Window {
    geometry: im2col::Window,
    pads: Pads,
}

impl Window {
    /// The begin padding per spatial axis for input size `input` and output size `out`.
    fn begin(&self, input: [usize; 2], out: [usize; 2]) -> [usize; 2] {
        match self.pads {
            Pads::Begin(p) => p,
            Pads::Same { upper } => self.geometry.same_begin(upper, input, out),
        }
    }
}
