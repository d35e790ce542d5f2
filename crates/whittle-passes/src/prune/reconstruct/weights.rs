//! A layer's weights as the regression's unknowns: [`Layer::prior`] reads the current
//! weight (and bias) of the pruned model into a features(+1) × outputs matrix and
//! [`Layer::write`] is its exact inverse. Gemm's `alpha`/`beta` scale the matrix so the
//! fit sees what the layer computes; a MatMul's bias row is a correction to the constant
//! of the Add after it (prior 0, added on write).
use super::ReconstructError;
use super::layer::{Layer, LayerKind};
use bytes::Bytes;
use nalgebra::DMatrix;
use whittle_ir::Model;

/// How the weight's elements map to the matrix (features × outputs).
struct Layout {
    out_major: bool,
    features: usize,
    outputs: usize,
    scale: f64,
    bias_scale: f64,
}

impl Layout {
    /// Where feature `f` of output `o` sits in the stored weight.
    fn at(&self, f: usize, o: usize) -> usize {
        if self.out_major {
            o * self.features + f
        } else {
            f * self.outputs + o
        }
    }
}

impl Layer {
    fn layout(&self, model: &Model) -> Result<Layout, ReconstructError> {
        let t = model
            .graph
            .initializer(&self.weight)
            .ok_or_else(|| ReconstructError::Tensor(format!("{:?} is gone", self.weight)))?;
        let d: Vec<usize> = t.dims().iter().map(|&d| d.max(0) as usize).collect();
        let rest = d.iter().skip(1).product::<usize>();
        let (out_major, scale, bias_scale) = match self.kind {
            LayerKind::Conv { .. } => (true, 1.0, 1.0),
            LayerKind::Gemm {
                trans_b,
                alpha,
                beta,
            } => (trans_b, alpha, beta),
            LayerKind::MatMul => (false, 1.0, 1.0),
        };
        let (features, outputs) = match out_major {
            true => (rest, d.first().copied().unwrap_or(0)),
            false => (d.first().copied().unwrap_or(0), rest),
        };
        Ok(Layout {
            out_major,
            features,
            outputs,
            scale,
            bias_scale,
        })
    }

    /// Columns of the regression (features, plus 1 with a bias) in `pruned`.
    pub fn unknowns(&self, pruned: &Model) -> Result<usize, ReconstructError> {
        Ok(self.layout(pruned)?.features + usize::from(self.bias.is_some()))
    }

    /// The current weights of `pruned` as the (features(+1)) × outputs matrix.
    pub fn prior(&self, pruned: &Model) -> Result<DMatrix<f64>, ReconstructError> {
        let l = self.layout(pruned)?;
        let w = read(pruned, &self.weight)?;
        let rows = l.features + usize::from(self.bias.is_some());
        let mut m = DMatrix::zeros(rows, l.outputs);
        for f in 0..l.features {
            for o in 0..l.outputs {
                m[(f, o)] = w[l.at(f, o)] as f64 * l.scale;
            }
        }
        if let Some(b) = self.bias.as_ref().filter(|_| !self.corrects_add()) {
            let b = read(pruned, b)?;
            if b.len() != l.outputs {
                return Err(self.shape_error(format!(
                    "bias has {} values for {} outputs",
                    b.len(),
                    l.outputs
                )));
            }
            for (o, v) in b.iter().enumerate() {
                m[(l.features, o)] = *v as f64 * l.bias_scale;
            }
        }
        Ok(m)
    }

    /// Writes `w` (as [`Layer::prior`] lays it out) into the weight and bias of `pruned`.
    pub fn write(&self, pruned: &mut Model, w: &DMatrix<f64>) -> Result<(), ReconstructError> {
        let l = self.layout(pruned)?;
        if w.shape() != (l.features + usize::from(self.bias.is_some()), l.outputs) {
            return Err(self.shape_error(format!("solution is {:?}", w.shape())));
        }
        let mut weight = vec![0f32; l.features * l.outputs];
        for f in 0..l.features {
            for o in 0..l.outputs {
                weight[l.at(f, o)] = (w[(f, o)] / l.scale) as f32;
            }
        }
        store(pruned, &self.weight, &weight)?;
        if let Some(b) = &self.bias {
            let base = match self.corrects_add() {
                true => read(pruned, b)?,
                false => vec![0.0; l.outputs],
            };
            if base.len() != l.outputs {
                return Err(self.shape_error(format!("{b:?} has {} values", base.len())));
            }
            let bias: Vec<f32> = (0..l.outputs)
                .map(|o| (base[o] as f64 + w[(l.features, o)] / l.bias_scale) as f32)
                .collect();
            store(pruned, b, &bias)?;
        }
        Ok(())
    }
}

fn read(model: &Model, name: &str) -> Result<Vec<f32>, ReconstructError> {
    let t = model
        .graph
        .initializer(name)
        .ok_or_else(|| ReconstructError::Tensor(format!("{name:?} is not an initializer")))?;
    t.to_f32_vec()
        .map_err(|e| ReconstructError::Tensor(format!("{name:?}: {e}")))
}

fn store(model: &mut Model, name: &str, values: &[f32]) -> Result<(), ReconstructError> {
    let t = model
        .graph
        .initializers
        .iter_mut()
        .find(|t| t.name() == name)
        .ok_or_else(|| ReconstructError::Tensor(format!("{name:?} is not an initializer")))?;
    if t.num_elements() != Some(values.len() as u64) {
        return Err(ReconstructError::Tensor(format!(
            "{name:?}: {} values for dims {:?}",
            values.len(),
            t.dims()
        )));
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.set_raw(Bytes::from(bytes));
    Ok(())
}
