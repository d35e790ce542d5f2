//! Quantization arithmetic: ranges → (scale, zero point), the ONNX `QuantizeLinear` /
//! `DequantizeLinear` formulas, packing, and the signal-to-quantization-noise ratio.
//!
//! Invariants (the ONNX definitions, which onnxruntime and numpy reproduce):
//! - quantize: `q = saturate(round_half_to_even(x / scale) + zero_point)`, computed in f32
//!   (the division, not a multiplication by `1/scale`), saturating to the type's full range;
//! - dequantize: `x' = (q - zero_point) * scale`, computed in f32;
//! - a scale is never zero, negative or non-finite: a range too small for a normal f32
//!   scale gets scale 1 (every value is then 0 or the zero point maps exactly);
//! - symmetric ranges put zero exactly on the grid: signed types use zero point 0 and the
//!   restricted range `[-(2^(b-1)-1), 2^(b-1)-1]` (as onnxruntime does for int8), unsigned
//!   types zero point `2^(b-1)` and the range `[1, 2^b-1]`; asymmetric ranges are widened to
//!   contain 0 and use the full range with a rounded, clamped zero point.
//! - 4-bit values pack two to a byte, the first element in the low nibble.
use bytes::Bytes;
use whittle_ir::DataType;

/// An integer type weights or activations are quantized to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantType {
    Int8,
    Uint8,
    Int4,
    Uint4,
}

impl QuantType {
    pub fn bits(self) -> u32 {
        match self {
            QuantType::Int8 | QuantType::Uint8 => 8,
            QuantType::Int4 | QuantType::Uint4 => 4,
        }
    }

    pub fn signed(self) -> bool {
        matches!(self, QuantType::Int8 | QuantType::Int4)
    }

    /// The smallest and largest values the type holds.
    pub fn full_range(self) -> (i32, i32) {
        let b = self.bits();
        if self.signed() {
            (-(1 << (b - 1)), (1 << (b - 1)) - 1)
        } else {
            (0, (1 << b) - 1)
        }
    }

    /// The ONNX element type.
    pub fn dtype(self) -> DataType {
        match self {
            QuantType::Int8 => DataType::INT8,
            QuantType::Uint8 => DataType::UINT8,
            QuantType::Int4 => DataType(22),
            QuantType::Uint4 => DataType(21),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QuantType::Int8 => "int8",
            QuantType::Uint8 => "uint8",
            QuantType::Int4 => "int4",
            QuantType::Uint4 => "uint4",
        }
    }

    /// The unsigned type of the same width.
    pub fn unsigned(self) -> QuantType {
        match self {
            QuantType::Int8 | QuantType::Uint8 => QuantType::Uint8,
            QuantType::Int4 | QuantType::Uint4 => QuantType::Uint4,
        }
    }
}

/// Scale and zero point of one quantization group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub scale: f32,
    pub zero_point: i32,
}

/// The parameters that map `[rmin, rmax]` onto `t` (see the module docs). `round_scale`
/// rounds the scale to the precision it is stored in (identity for f32, through f16 for
/// float16 models), so the returned scale is exactly the stored one.
pub fn params_for_range(
    rmin: f32,
    rmax: f32,
    t: QuantType,
    symmetric: bool,
    round_scale: fn(f32) -> f32,
) -> Params {
    let (qmin, qmax) = t.full_range();
    let rmin = f64::from(rmin.min(0.0));
    let rmax = f64::from(rmax.max(0.0));
    let half = 1i32 << (t.bits() - 1);
    let (scale, zero_point) = if symmetric {
        let absmax = rmin.abs().max(rmax.abs());
        let zp = if t.signed() { 0 } else { half };
        (absmax / f64::from(half - 1), zp)
    } else {
        let scale = (rmax - rmin) / f64::from(qmax - qmin);
        let zp = if scale > 0.0 {
            (f64::from(qmin) - rmin / scale).round_ties_even()
        } else {
            0.0
        };
        (scale, zp.clamp(f64::from(qmin), f64::from(qmax)) as i32)
    };
    let stored = round_scale(scale as f32);
    if !(stored.is_finite() && stored >= f32::MIN_POSITIVE) {
        let zp = if symmetric && !t.signed() { half } else { 0 };
        return Params {
            scale: 1.0,
            zero_point: zp.clamp(qmin, qmax),
        };
    }
    Params {
        scale: stored,
        zero_point,
    }
}

/// `saturate(round_half_to_even(x / scale) + zero_point)`; NaN quantizes to 0.
///
/// Saturating before rounding gives the same integer (the bounds are integers and rounding
/// is monotonic) and keeps |x / scale| small, so round half to even is the add-and-subtract
/// of 1.5·2²³ (exact for |v| < 2²²) instead of a libm call: weights quantize several times
/// faster, with the same bytes.
#[inline]
pub fn quantize_value(x: f32, p: Params, t: QuantType) -> i32 {
    const ROUND: f32 = 12_582_912.0;
    let (qmin, qmax) = t.full_range();
    let v = x / p.scale;
    if v.is_nan() {
        return 0;
    }
    let v = v
        .max((qmin - p.zero_point) as f32)
        .min((qmax - p.zero_point) as f32);
    ((v + ROUND) - ROUND) as i32 + p.zero_point
}

/// `(q - zero_point) * scale` in f32.
pub fn dequantize_value(q: i32, p: Params) -> f32 {
    (q - p.zero_point) as f32 * p.scale
}

/// Packs integer values of type `t` into `raw_data` bytes (4-bit: two per byte, low nibble
/// first; the last byte's high nibble is 0 when the count is odd).
pub fn pack(values: &[i32], t: QuantType) -> Bytes {
    match t.bits() {
        8 => Bytes::from(values.iter().map(|&v| v as u8).collect::<Vec<u8>>()),
        _ => {
            let mut out = vec![0u8; values.len().div_ceil(2)];
            for (i, &v) in values.iter().enumerate() {
                out[i / 2] |= ((v as u8) & 0x0f) << (4 * (i % 2));
            }
            Bytes::from(out)
        }
    }
}

/// Signal-to-quantization-noise ratio in dB, `10·log10(Σx² / Σ(x - x')²)`; `None` when the
/// error is zero (exact).
pub fn sqnr_db(original: &[f32], approx: &[f32]) -> Option<f64> {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&a, &b) in original.iter().zip(approx) {
        signal += f64::from(a) * f64::from(a);
        let d = f64::from(a) - f64::from(b);
        noise += d * d;
    }
    if noise == 0.0 {
        return None;
    }
    if signal == 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    Some(10.0 * (signal / noise).log10())
}

/// f32 scales stay as they are.
pub fn keep_f32(x: f32) -> f32 {
    x
}

/// Scales stored as float16 are rounded through it.
pub fn through_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(scale: f32, zero_point: i32) -> Params {
        Params { scale, zero_point }
    }

    #[test]
    fn rounds_half_to_even_and_saturates() {
        // Values computed by hand from the ONNX formula (numpy: np.rint(x / s) + zp, clip).
        let s = p(0.5, 0);
        let xs = [1.25f32, 1.75, -1.25, 0.25, 0.75, 100.0, -100.0];
        let got: Vec<i32> = xs
            .iter()
            .map(|&x| quantize_value(x, s, QuantType::Int8))
            .collect();
        // 2.5→2, 3.5→4, -2.5→-2, 0.5→0, 1.5→2, saturate at 127 / -128
        assert_eq!(got, vec![2, 4, -2, 0, 2, 127, -128]);
        let u = p(0.5, 128);
        assert_eq!(quantize_value(1.25, u, QuantType::Uint8), 130);
        assert_eq!(quantize_value(-1000.0, u, QuantType::Uint8), 0);
        assert_eq!(quantize_value(7.75, p(1.0, 0), QuantType::Int4), 7);
        assert_eq!(quantize_value(-8.5, p(1.0, 0), QuantType::Int4), -8);
        assert_eq!(quantize_value(-9.0, p(1.0, 0), QuantType::Int4), -8);
        assert_eq!(quantize_value(4.5, p(1.0, 8), QuantType::Uint4), 12);
    }

    /// The ONNX formula as written, in f64: the reference the fast rounding must equal.
    fn reference(x: f32, p: Params, t: QuantType) -> i32 {
        let (qmin, qmax) = t.full_range();
        let r = (x / p.scale).round_ties_even();
        (f64::from(r) + f64::from(p.zero_point)).clamp(f64::from(qmin), f64::from(qmax)) as i32
    }

    #[test]
    fn fast_rounding_equals_the_formula_everywhere() {
        let types = [
            QuantType::Int8,
            QuantType::Uint8,
            QuantType::Int4,
            QuantType::Uint4,
        ];
        // Ties (k + 1/2)·scale, values near them, the saturation edges, extremes, NaN.
        let mut xs: Vec<f32> = (-600..=600)
            .flat_map(|k| {
                let tie = (k as f32 + 0.5) * 0.37;
                [tie, tie.next_up(), tie.next_down(), k as f32 * 0.37]
            })
            .collect();
        xs.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            1e30,
            -1e30,
            0.0,
        ]);
        xs.extend([-0.0, f32::MIN_POSITIVE, 4194304.5 * 0.37, 8388607.5 * 0.37]);
        for t in types {
            let (qmin, qmax) = t.full_range();
            for zp in [qmin, (qmin + qmax) / 2, qmax, 0.clamp(qmin, qmax)] {
                for scale in [0.37f32, 1.0, 3.0e-5, 1.0e4] {
                    let p = p(scale, zp);
                    for &x in &xs {
                        let x = x * (scale / 0.37);
                        assert_eq!(
                            quantize_value(x, p, t),
                            reference(x, p, t),
                            "{t:?} x {x} scale {scale} zp {zp}"
                        );
                    }
                }
            }
            assert_eq!(quantize_value(f32::NAN, p(0.5, qmax), t), 0);
        }
    }

    #[test]
    fn symmetric_and_asymmetric_params() {
        let s = params_for_range(-0.5, 1.27, QuantType::Int8, true, keep_f32);
        assert_eq!(s, p(0.01, 0));
        let u = params_for_range(-0.5, 1.27, QuantType::Uint8, true, keep_f32);
        assert_eq!(u.zero_point, 128);
        let i4 = params_for_range(-7.0, 3.0, QuantType::Int4, true, keep_f32);
        assert_eq!(i4, p(1.0, 0));
        // asymmetric uint8 over [-1, 3]: scale 4/255, zp = round(0 + 1/(4/255)) = round(63.75) = 64
        let a = params_for_range(-1.0, 3.0, QuantType::Uint8, false, keep_f32);
        assert_eq!(a.zero_point, 64);
        assert!((a.scale - 4.0 / 255.0).abs() < 1e-9);
        // the range always contains 0: [2, 3] → [0, 3], zp 0
        let pos = params_for_range(2.0, 3.0, QuantType::Uint8, false, keep_f32);
        assert_eq!(pos.zero_point, 0);
        // int8 asymmetric: zp = round(-128 + 1/(4/255)) = round(-64.25) = -64
        let a8 = params_for_range(-1.0, 3.0, QuantType::Int8, false, keep_f32);
        assert_eq!(a8.zero_point, -64);
    }

    #[test]
    fn zero_ranges_get_scale_one() {
        assert_eq!(
            params_for_range(0.0, 0.0, QuantType::Int8, true, keep_f32),
            p(1.0, 0)
        );
        assert_eq!(
            params_for_range(0.0, 0.0, QuantType::Uint4, true, keep_f32),
            p(1.0, 8)
        );
        assert_eq!(
            params_for_range(0.0, 1e-40, QuantType::Uint8, false, keep_f32),
            p(1.0, 0)
        );
        // a scale that underflows float16 is replaced too
        assert_eq!(
            params_for_range(-1e-9, 1e-9, QuantType::Int8, true, through_f16),
            p(1.0, 0)
        );
    }

    #[test]
    fn packs_low_nibble_first() {
        assert_eq!(pack(&[7, -1, -8], QuantType::Int4).as_ref(), &[0xF7, 0x08]);
        assert_eq!(pack(&[1, 15], QuantType::Uint4).as_ref(), &[0xF1]);
        assert_eq!(pack(&[-1, 2], QuantType::Int8).as_ref(), &[0xFF, 0x02]);
    }

    #[test]
    fn sqnr() {
        assert_eq!(sqnr_db(&[1.0, 2.0], &[1.0, 2.0]), None);
        let v = sqnr_db(&[1.0, 0.0], &[0.5, 0.0]).unwrap_or_default();
        assert!((v - 10.0 * 4f64.log10()).abs() < 1e-12, "{v}");
    }
}
