//! 2-D convolution windows as im2col patches: which input element each kernel tap of an
//! output position reads, zero outside the input (ONNX zero padding). One piece of code for
//! every pass that turns a Conv's input into regression rows: least-squares reconstruction
//! after pruning (`prune::reconstruct`) and GPTQ's input moments (`quantize::gptq`).
//!
//! Invariant: a patch lists channel by channel, kernel row by kernel row — the order of a
//! Conv weight `[M, C/g, kh, kw]` flattened per output channel.
use std::ops::Range;

/// Kernel, strides and dilations per spatial axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
}

impl Window {
    /// The begin padding of `SAME_UPPER` (`upper`) / `SAME_LOWER` for input size `input`
    /// and output size `out`: the odd pixel goes to the end (UPPER) or the start (LOWER).
    pub fn same_begin(&self, upper: bool, input: [usize; 2], out: [usize; 2]) -> [usize; 2] {
        std::array::from_fn(|a| {
            let span = out[a].saturating_sub(1) * self.strides[a]
                + self.kernel[a].saturating_sub(1) * self.dilations[a]
                + 1;
            let total = span.saturating_sub(input[a]);
            if upper { total / 2 } else { total - total / 2 }
        })
    }

    /// Appends to `out` the patch of output position `at` (row, column) over `channels` of
    /// one sample `x` (its channel planes of `hw` = height × width), with the input shifted
    /// by the begin padding `begin`.
    pub fn patch(
        &self,
        x: &[f32],
        hw: [usize; 2],
        channels: Range<usize>,
        begin: [usize; 2],
        at: [usize; 2],
        out: &mut Vec<f32>,
    ) {
        let [h, w] = hw;
        for ch in channels {
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            for i in 0..self.kernel[0] {
                let iy = (at[0] * self.strides[0] + i * self.dilations[0]).checked_sub(begin[0]);
                for j in 0..self.kernel[1] {
                    let ix =
                        (at[1] * self.strides[1] + j * self.dilations[1]).checked_sub(begin[1]);
                    out.push(match (iy, ix) {
                        (Some(iy), Some(ix)) if iy < h && ix < w => plane[iy * w + ix],
                        _ => 0.0,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kernel: usize, stride: usize) -> Window {
        Window {
            kernel: [kernel; 2],
            strides: [stride; 2],
            dilations: [1, 1],
        }
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_where_onnx_does() {
        // 8 → 4 with k3 s2: one pixel of padding, at the end (UPPER) or the start (LOWER).
        assert_eq!(w(3, 2).same_begin(true, [8, 8], [4, 4]), [0, 0]);
        assert_eq!(w(3, 2).same_begin(false, [8, 8], [4, 4]), [1, 1]);
        // 7 → 4: two pixels, one on each side either way.
        assert_eq!(w(3, 2).same_begin(true, [7, 7], [4, 4]), [1, 1]);
    }

    #[test]
    fn patches_read_channel_by_channel_with_zero_padding() {
        // Two 2×2 planes: 0 1 / 2 3 and 10 11 / 12 13; a 2×2 window, begin padding 1.
        let x = [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0];
        let mut out = Vec::new();
        w(2, 1).patch(&x, [2, 2], 0..2, [1, 1], [0, 0], &mut out);
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]);
        out.clear();
        w(2, 1).patch(&x, [2, 2], 1..2, [1, 1], [1, 1], &mut out);
        assert_eq!(out, [10.0, 11.0, 12.0, 13.0]);
    }
}
