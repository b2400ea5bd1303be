//! Q8_0: 32 signed 8-bit values and one `f16` scale.
//!
//! Transcribes ggml's `quantize_row_q8_0_ref` and `dequantize_row_q8_0`
//! (`ggml/src/ggml-quants.c`); the semantics, error bound and edge cases are documented in
//! the [parent module](super#q8_0).

use half::f16;

use super::{QK, check_dequantize_lengths, check_quantize_lengths, float_to_code, fp32_to_fp16};

/// One Q8_0 block: `d · qs[j]` for `j` in `0..32`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quantized values.
    pub qs: [i8; 32],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);

/// Quantizes one block as ggml's `quantize_row_q8_0_ref` does.
fn quantize_block(x: &[f32]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        // C's MAX(amax, a): not f32::max, whose NaN handling differs.
        amax = if amax > a { amax } else { a };
    }
    let d = amax / 127.0;
    let id = super::inverse_or_zero(d);
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = float_to_code((v * id).round());
    }
    BlockQ8_0 {
        d: fp32_to_fp16(d),
        qs,
    }
}

/// Quantizes a row to Q8_0 blocks, bit-exact with ggml's `quantize_row_q8_0_ref`.
///
/// Semantics, error bound and the handling of NaN, infinities and overflow:
/// [`ggml`](crate::ggml#q8_0).
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32).
///
/// # Example
///
/// ```
/// use quant::ggml::{dequantize_row_q8_0, quantize_row_q8_0};
///
/// let x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
/// let blocks = quantize_row_q8_0(&x);
/// assert_eq!(blocks.len(), 1);
/// assert_eq!(blocks[0].qs[0], -127); // the largest magnitude, -16, maps to -127
/// let mut y = vec![0.0; 32];
/// dequantize_row_q8_0(&blocks, &mut y);
/// assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 0.07));
/// ```
#[must_use]
pub fn quantize_row_q8_0(x: &[f32]) -> Vec<BlockQ8_0> {
    check_quantize_lengths("quantize_row_q8_0", x.len(), x.len() / QK);
    x.chunks_exact(QK).map(quantize_block).collect()
}

/// Quantizes a row to Q8_0 into `y`, bit-exact with ggml's `quantize_row_q8_0_ref`.
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32), or `y.len() != x.len() / 32`.
pub fn quantize_row_q8_0_into(x: &[f32], y: &mut [BlockQ8_0]) {
    check_quantize_lengths("quantize_row_q8_0_into", x.len(), y.len());
    for (b, xb) in y.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(xb);
    }
}

/// Dequantizes Q8_0 blocks into `y` (`y[32·i + j] = qs[j] · d` of block `i`), bit-exact
/// with ggml's `dequantize_row_q8_0`.
///
/// # Panics
///
/// If `y.len() != 32 · x.len()`.
pub fn dequantize_row_q8_0(x: &[BlockQ8_0], y: &mut [f32]) {
    check_dequantize_lengths("dequantize_row_q8_0", x.len(), y.len());
    for (b, yb) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (o, &q) in yb.iter_mut().zip(&b.qs) {
            *o = f32::from(q) * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ROUNDING_SLACK, assert_within, blocks_bytes, magnitude_row};
    use super::*;
    use proptest::prelude::*;

    fn dequantized(b: &[BlockQ8_0]) -> Vec<f32> {
        let mut y = vec![0.0; b.len() * QK];
        dequantize_row_q8_0(b, &mut y);
        y
    }

    /// The bound of the module docs, in f64, for one block.
    fn bound(x: &[f32], b: &BlockQ8_0) -> f64 {
        let amax = x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
        let d = amax / 127.0;
        let dd = f64::from(b.d.to_f32());
        d * (0.5 + ROUNDING_SLACK) + 127.0 * (d - dd).abs()
    }

    fn check_roundtrip(x: &[f32]) {
        let b = quantize_row_q8_0(x);
        let y = dequantized(&b);
        for (i, blk) in b.iter().enumerate() {
            if !blk.d.to_f32().is_finite() {
                continue;
            }
            let r = i * QK..(i + 1) * QK;
            let lim = bound(&x[r.clone()], blk);
            assert_within("q8_0", &x[r.clone()], &y[r], |_| lim);
        }
    }

    #[test]
    fn zeros_map_to_the_zero_block() {
        for z in [0.0f32, -0.0] {
            let b = quantize_row_q8_0(&[z; 64]);
            assert!(blocks_bytes(&b).iter().all(|&v| v == 0));
            assert!(dequantized(&b).iter().all(|v| v.to_bits() == 0));
        }
    }

    #[test]
    fn ties_round_away_from_zero() {
        // amax = 127 gives d = 1 and id = 1 exactly, so k + 0.5 is an exact tie.
        let mut x = vec![
            127.0f32, -127.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5,
        ];
        x.resize(32, 0.25);
        let b = quantize_row_q8_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x3C00);
        assert_eq!(&b[0].qs[..10], &[127, -127, 1, -1, 2, -2, 3, -3, 127, -127]);
        assert_eq!(b[0].qs[10], 0);
    }

    #[test]
    fn codes_use_the_unrounded_scale() {
        // amax = 1 gives d = 1/127 (f32), which f16 rounds; the codes come from the f32 id.
        let x: Vec<f32> = (0..32).map(|j| 1.0 - j as f32 / 31.0).collect();
        let b = quantize_row_q8_0(&x);
        let id = 1.0 / (1.0f32 / 127.0);
        for (j, &v) in x.iter().enumerate() {
            assert_eq!(i32::from(b[0].qs[j]), (v * id).round() as i32);
        }
        assert_eq!(b[0].d, f16::from_f32(1.0 / 127.0));
        assert_ne!(b[0].d.to_f32().to_bits(), (1.0f32 / 127.0).to_bits());
    }

    #[test]
    fn roundtrip_error_is_within_bound_over_magnitudes() {
        for (seed, exp) in (-44..=6).step_by(2).enumerate() {
            let x = magnitude_row(seed as u64, 4, exp);
            check_roundtrip(&x);
        }
    }

    #[test]
    fn requantizing_is_exact_when_the_scale_is_finite_and_nonzero() {
        for (seed, exp) in (-4..=5).enumerate() {
            let x = magnitude_row(100 + seed as u64, 4, exp);
            let b = quantize_row_q8_0(&x);
            assert!(b.iter().all(|b| b.d.to_f32() > 0.0 && b.d.is_finite()));
            assert_eq!(
                blocks_bytes(&quantize_row_q8_0(&dequantized(&b))),
                blocks_bytes(&b)
            );
        }
    }

    #[test]
    fn scale_underflowing_f16_requantizes_to_zero() {
        // amax = 127 * 2^-26: d = 2^-26 rounds to f16 zero, but the codes are computed.
        let mut x = vec![0.0f32; 32];
        x[0] = 127.0 * 2f32.powi(-26);
        x[1] = -60.0 * 2f32.powi(-26);
        let b = quantize_row_q8_0(&x);
        assert_eq!(b[0].d.to_bits(), 0);
        assert_eq!((b[0].qs[0], b[0].qs[1]), (127, -60));
        let y = dequantized(&b);
        assert_eq!(y[1].to_bits(), (-0.0f32).to_bits());
        let b2 = quantize_row_q8_0(&y);
        assert!(blocks_bytes(&b2).iter().all(|&v| v == 0));
    }

    #[test]
    fn inverse_scale_overflow_gives_zero_codes() {
        // amax = 1e-40: d is an f32 subnormal below 2^-128, so id = inf and every scaled
        // value is ±inf (or NaN for zeros); x86-64 ggml stores code 0.
        let x: Vec<f32> = (0..32).map(|j| (j as f32 - 16.0) * 1e-40 / 16.0).collect();
        let b = quantize_row_q8_0(&x);
        assert!(blocks_bytes(&b).iter().all(|&v| v == 0));
    }

    #[test]
    fn nan_resets_amax_to_the_elements_after_it() {
        let mut x = vec![0.5f32; 32];
        x[0] = 100.0;
        x[3] = f32::NAN;
        x[20] = -2.0;
        let b = quantize_row_q8_0(&x);
        // amax = 2 (the largest magnitude after the NaN), so d = 2/127.
        assert_eq!(b[0].d, f16::from_f32(2.0 / 127.0));
        assert_eq!(b[0].qs[3], 0);
        assert_eq!(b[0].qs[20], -127);
        assert_eq!(b[0].qs[4], 32); // 0.5 * 63.5 = 31.75 rounds to 32
        // 100 is before the NaN and scales to 6350 = 0x18CE: x86-64 keeps the low byte.
        assert_eq!(b[0].qs[0], -50);
    }

    #[test]
    fn trailing_nan_makes_the_scale_nan() {
        let mut x = vec![1.0f32; 32];
        x[31] = f32::NAN;
        let b = quantize_row_q8_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x7E00);
        assert!(b[0].qs.iter().all(|&q| q == 0));
        assert!(dequantized(&b).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn infinity_gives_an_infinite_scale_and_nan_values() {
        for inf in [f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = vec![0.5f32; 32];
            x[7] = inf;
            let b = quantize_row_q8_0(&x);
            assert_eq!(b[0].d.to_bits(), 0x7C00);
            assert!(b[0].qs.iter().all(|&q| q == 0));
            assert!(dequantized(&b).iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn f16_overflow_of_the_scale_gives_inf_and_nan() {
        let mut x = vec![0.0f32; 32];
        x[0] = 1e7;
        x[1] = -5e6;
        let b = quantize_row_q8_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x7C00);
        assert_eq!((b[0].qs[0], b[0].qs[1]), (127, -64));
        let y = dequantized(&b);
        assert_eq!(y[0].to_bits(), f32::INFINITY.to_bits());
        assert_eq!(y[1].to_bits(), f32::NEG_INFINITY.to_bits());
        assert!(y[2].is_nan());
    }

    #[test]
    fn into_matches_owned_and_empty_rows_work() {
        let x = magnitude_row(9, 3, 0);
        let mut y = vec![
            BlockQ8_0 {
                d: f16::ZERO,
                qs: [0; 32]
            };
            3
        ];
        quantize_row_q8_0_into(&x, &mut y);
        assert_eq!(blocks_bytes(&y), blocks_bytes(&quantize_row_q8_0(&x)));
        assert!(quantize_row_q8_0(&[]).is_empty());
        dequantize_row_q8_0(&[], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q8_0: row length 33 is not a multiple of the block size 32"
    )]
    fn quantize_rejects_ragged_rows() {
        let _ = quantize_row_q8_0(&[0.0; 33]);
    }

    #[test]
    #[should_panic(expected = "quantize_row_q8_0_into: row length 31 is not a multiple")]
    fn quantize_into_rejects_ragged_rows() {
        quantize_row_q8_0_into(&[0.0; 31], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q8_0_into: output has 1 blocks, but a row of 64 values needs 2"
    )]
    fn quantize_into_rejects_wrong_output_length() {
        let mut y = [BlockQ8_0 {
            d: f16::ZERO,
            qs: [0; 32],
        }];
        quantize_row_q8_0_into(&[0.0; 64], &mut y);
    }

    #[test]
    #[should_panic(expected = "dequantize_row_q8_0: output has 33 values, but 1 blocks hold 32")]
    fn dequantize_rejects_wrong_output_length() {
        let x = [BlockQ8_0 {
            d: f16::ZERO,
            qs: [0; 32],
        }];
        dequantize_row_q8_0(&x, &mut [0.0; 33]);
    }

    proptest! {
        #[test]
        fn prop_roundtrip_within_bound_and_requantize(
            seed: u64,
            blocks in 1usize..5,
            exp in -45i32..7,
        ) {
            let x = magnitude_row(seed, blocks, exp);
            check_roundtrip(&x);
            let b = quantize_row_q8_0(&x);
            let b2 = quantize_row_q8_0(&dequantized(&b));
            for (orig, re) in b.iter().zip(&b2) {
                let dd = orig.d.to_f32();
                if dd > 0.0 && dd.is_finite() {
                    prop_assert_eq!(bytemuck::bytes_of(re), bytemuck::bytes_of(orig));
                } else if dd == 0.0 {
                    prop_assert!(bytemuck::bytes_of(re).iter().all(|&v| v == 0));
                }
            }
        }

        #[test]
        fn prop_never_panics_on_any_bits(bits in proptest::collection::vec(any::<u32>(), 32..=32)) {
            let x: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
            let b = quantize_row_q8_0(&x);
            let mut y = vec![0.0; 32];
            dequantize_row_q8_0(&b, &mut y);
        }
    }
}
