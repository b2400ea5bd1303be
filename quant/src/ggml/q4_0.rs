//! Q4_0: 32 unsigned 4-bit values offset by 8, and one `f16` scale.
//!
//! Transcribes ggml's `quantize_row_q4_0_ref` and `dequantize_row_q4_0`
//! (`ggml/src/ggml-quants.c`); the semantics, error bound and edge cases are documented in
//! the [parent module](super#q4_0).

use half::f16;

use super::{
    QK, check_dequantize_lengths, check_quantize_lengths, float_to_code, fp32_to_fp16,
    inverse_or_zero, nibble, pack_nibbles,
};

/// One Q4_0 block: element `j` is `d · (nibble_j − 8)`; `qs[j]` holds element `j` in its low
/// nibble and element `j + 16` in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);

/// Quantizes one block as ggml's `quantize_row_q4_0_ref` does.
fn quantize_block(x: &[f32]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = inverse_or_zero(d);
    let mut codes = [0u8; QK];
    for (c, &v) in codes.iter_mut().zip(x) {
        // C: `(uint8_t) MIN(15, (int8_t)(x*id + 8.5f))`, two separate roundings.
        *c = float_to_code(v * id + 8.5).min(15) as u8;
    }
    BlockQ4_0 {
        d: fp32_to_fp16(d),
        qs: pack_nibbles(&codes),
    }
}

/// Quantizes a row to Q4_0 blocks, bit-exact with ggml's `quantize_row_q4_0_ref`.
///
/// Semantics, error bound and the handling of NaN, infinities and overflow:
/// [`ggml`](crate::ggml#q4_0).
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32).
///
/// # Example
///
/// ```
/// use quant::ggml::{dequantize_row_q4_0, quantize_row_q4_0};
///
/// let x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
/// let blocks = quantize_row_q4_0(&x);
/// assert_eq!(blocks[0].d.to_f32(), 2.0); // d = max / -8 = -16 / -8
/// let mut y = vec![0.0; 32];
/// dequantize_row_q4_0(&blocks, &mut y);
/// assert_eq!(y[0], -16.0);
/// assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 1.0));
/// ```
#[must_use]
pub fn quantize_row_q4_0(x: &[f32]) -> Vec<BlockQ4_0> {
    check_quantize_lengths("quantize_row_q4_0", x.len(), x.len() / QK);
    x.chunks_exact(QK).map(quantize_block).collect()
}

/// Quantizes a row to Q4_0 into `y`, bit-exact with ggml's `quantize_row_q4_0_ref`.
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32), or `y.len() != x.len() / 32`.
pub fn quantize_row_q4_0_into(x: &[f32], y: &mut [BlockQ4_0]) {
    check_quantize_lengths("quantize_row_q4_0_into", x.len(), y.len());
    for (b, xb) in y.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(xb);
    }
}

/// Dequantizes Q4_0 blocks into `y` (`y[32·i + j] = (nibble_j − 8) · d` of block `i`),
/// bit-exact with ggml's `dequantize_row_q4_0`.
///
/// # Panics
///
/// If `y.len() != 32 · x.len()`.
pub fn dequantize_row_q4_0(x: &[BlockQ4_0], y: &mut [f32]) {
    check_dequantize_lengths("dequantize_row_q4_0", x.len(), y.len());
    for (b, yb) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (j, o) in yb.iter_mut().enumerate() {
            *o = f32::from(i16::from(nibble(&b.qs, j)) - 8) * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ROUNDING_SLACK, assert_within, blocks_bytes, magnitude_row};
    use super::*;
    use proptest::prelude::*;

    fn dequantized(b: &[BlockQ4_0]) -> Vec<f32> {
        let mut y = vec![0.0; b.len() * QK];
        dequantize_row_q4_0(b, &mut y);
        y
    }

    fn codes(b: &BlockQ4_0) -> Vec<u8> {
        (0..QK).map(|j| nibble(&b.qs, j)).collect()
    }

    /// The per-element bound of the module docs, in f64, for one block.
    fn bound(x: &[f32], b: &BlockQ4_0) -> impl Fn(usize) -> f64 {
        let mut amax = 0.0f64;
        let mut max = 0.0f64;
        for &v in x {
            if amax < f64::from(v).abs() {
                amax = f64::from(v).abs();
                max = f64::from(v);
            }
        }
        let d = max / -8.0;
        let dd = f64::from(b.d.to_f32());
        let t: Vec<f64> = x
            .iter()
            .map(|&v| if d == 0.0 { 0.0 } else { f64::from(v) / d })
            .collect();
        move |j| d.abs() * (0.5f64.max(t[j] - 7.0) + ROUNDING_SLACK) + 8.0 * (d - dd).abs()
    }

    fn check_roundtrip(x: &[f32]) {
        let b = quantize_row_q4_0(x);
        let y = dequantized(&b);
        for (i, blk) in b.iter().enumerate() {
            if !blk.d.to_f32().is_finite() {
                continue;
            }
            let r = i * QK..(i + 1) * QK;
            assert_within("q4_0", &x[r.clone()], &y[r.clone()], bound(&x[r], blk));
        }
    }

    #[test]
    fn zeros_map_to_code_8_with_negative_zero_scale() {
        // max starts at +0, so d = +0 / -8 = -0 for zeros of either sign.
        for z in [0.0f32, -0.0] {
            let b = quantize_row_q4_0(&[z; 64]);
            for blk in &b {
                assert_eq!(blk.d.to_bits(), 0x8000);
                assert_eq!(blk.qs, [0x88; 16]);
            }
            // (8 - 8) * -0 = -0.
            assert!(dequantized(&b).iter().all(|v| v.to_bits() == 0x8000_0000));
        }
    }

    #[test]
    fn max_is_the_signed_value_of_largest_magnitude_first_on_ties() {
        let mut x = vec![0.0f32; 32];
        x[0] = 3.0;
        x[1] = -3.0;
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_f32().to_bits(), (-0.375f32).to_bits());
        assert_eq!(&codes(&b[0])[..3], &[0, 15, 8]); // 3 -> -8 (code 0), -3 -> +8 clamped
        x.swap(0, 1);
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_f32().to_bits(), 0.375f32.to_bits());
        assert_eq!(&codes(&b[0])[..3], &[0, 15, 8]);
    }

    #[test]
    fn ties_round_up_and_f32_addition_can_round_to_the_next_integer() {
        // max = -8 gives d = 1 and id = 1 exactly.
        let mut x = vec![0.0f32; 32];
        x[0] = -8.0;
        x[1] = -7.5; // t + 8.5 = 1: code 1 (value -7)
        x[2] = 2.5; // 11: code 11 (value 3)
        x[3] = 7.5; // 16: clamped to 15 (value 7)
        x[4] = 8.0; // 16.5: clamped to 15
        x[5] = 6.5 - 2f32.powi(-21); // 14.99999952 rounds to 15.0 in f32: code 15
        x[6] = 6.5 - 2f32.powi(-20); // 14.99999905 is representable: code 14
        x[7] = -0.5; // 8: code 8 (value 0)
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x3C00);
        assert_eq!(&codes(&b[0])[..8], &[0, 1, 11, 15, 15, 15, 14, 8]);
    }

    #[test]
    fn roundtrip_error_is_within_bound_over_magnitudes() {
        for (seed, exp) in (-44..=4).step_by(2).enumerate() {
            check_roundtrip(&magnitude_row(seed as u64, 4, exp));
        }
    }

    #[test]
    fn clamped_element_has_error_of_one_step() {
        let mut x = vec![0.0f32; 32];
        x[0] = 16.0;
        x[1] = -16.0;
        let b = quantize_row_q4_0(&x);
        let y = dequantized(&b);
        assert_eq!(y[0].to_bits(), 16.0f32.to_bits());
        assert_eq!(y[1].to_bits(), (-14.0f32).to_bits()); // one step, |d| = 2, off
    }

    #[test]
    fn requantizing_is_exact_when_the_scale_is_finite_and_nonzero() {
        for (seed, exp) in (-5..=4).enumerate() {
            let x = magnitude_row(200 + seed as u64, 4, exp);
            let b = quantize_row_q4_0(&x);
            assert!(b.iter().all(|b| b.d.to_f32() != 0.0 && b.d.is_finite()));
            assert_eq!(
                blocks_bytes(&quantize_row_q4_0(&dequantized(&b))),
                blocks_bytes(&b)
            );
        }
    }

    #[test]
    fn scale_underflowing_f16_requantizes_to_the_zero_block() {
        let mut x = vec![0.0f32; 32];
        x[0] = -(2f32.powi(-23));
        x[1] = 2f32.powi(-24);
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x0000); // d = 2^-26 > 0 rounds to +0
        assert_eq!(&codes(&b[0])[..3], &[0, 12, 8]);
        let b2 = quantize_row_q4_0(&dequantized(&b));
        assert_eq!(b2[0].d.to_bits(), 0x8000);
        assert_eq!(b2[0].qs, [0x88; 16]);
    }

    #[test]
    fn inverse_scale_overflow_gives_zero_codes() {
        // max = -3e-39 (the first of the largest magnitudes): d = 3.75e-40 is below
        // 2^-128, so id = +inf and every scaled value is ±inf or NaN.
        let x: Vec<f32> = (0..32).map(|j| 3e-39 * ((j % 3) as f32 - 1.0)).collect();
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x0000);
        assert_eq!(b[0].qs, [0; 16]);
    }

    #[test]
    fn nans_are_skipped_and_get_code_zero() {
        let mut x = vec![1.0f32; 32];
        x[0] = f32::NAN;
        x[9] = -2.0;
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_f32().to_bits(), 0.25f32.to_bits());
        let c = codes(&b[0]);
        assert_eq!((c[0], c[9], c[1]), (0, 0, 12));
        let all_nan = quantize_row_q4_0(&[f32::NAN; 32]);
        assert_eq!(all_nan[0].d.to_bits(), 0x8000);
        assert_eq!(all_nan[0].qs, [0; 16]);
    }

    #[test]
    fn infinity_becomes_max() {
        let mut x = vec![0.5f32; 32];
        x[2] = f32::NEG_INFINITY;
        x[5] = f32::INFINITY;
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x7C00); // -inf / -8
        let c = codes(&b[0]);
        assert_eq!((c[0], c[2], c[5]), (8, 0, 0));
        let y = dequantized(&b);
        assert_eq!(y[2].to_bits(), f32::NEG_INFINITY.to_bits());
        assert_eq!(y[5].to_bits(), f32::NEG_INFINITY.to_bits());
        assert!(y[0].is_nan());
    }

    #[test]
    fn f16_overflow_of_the_scale() {
        let mut x = vec![0.0f32; 32];
        x[0] = -6e5;
        x[1] = 3e5;
        let b = quantize_row_q4_0(&x);
        assert_eq!(b[0].d.to_bits(), 0x7C00);
        assert_eq!(&codes(&b[0])[..3], &[0, 12, 8]);
        let y = dequantized(&b);
        assert_eq!(y[0].to_bits(), f32::NEG_INFINITY.to_bits());
        assert_eq!(y[1].to_bits(), f32::INFINITY.to_bits());
        assert!(y[2].is_nan());
    }

    #[test]
    fn into_matches_owned_and_empty_rows_work() {
        let x = magnitude_row(9, 3, 0);
        let mut y = vec![
            BlockQ4_0 {
                d: f16::ZERO,
                qs: [0; 16]
            };
            3
        ];
        quantize_row_q4_0_into(&x, &mut y);
        assert_eq!(blocks_bytes(&y), blocks_bytes(&quantize_row_q4_0(&x)));
        assert!(quantize_row_q4_0(&[]).is_empty());
        dequantize_row_q4_0(&[], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q4_0: row length 40 is not a multiple of the block size 32"
    )]
    fn quantize_rejects_ragged_rows() {
        let _ = quantize_row_q4_0(&[0.0; 40]);
    }

    #[test]
    #[should_panic(expected = "quantize_row_q4_0_into: row length 1 is not a multiple")]
    fn quantize_into_rejects_ragged_rows() {
        quantize_row_q4_0_into(&[0.0; 1], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q4_0_into: output has 3 blocks, but a row of 64 values needs 2"
    )]
    fn quantize_into_rejects_wrong_output_length() {
        let mut y = [BlockQ4_0 {
            d: f16::ZERO,
            qs: [0; 16],
        }; 3];
        quantize_row_q4_0_into(&[0.0; 64], &mut y);
    }

    #[test]
    #[should_panic(expected = "dequantize_row_q4_0: output has 0 values, but 1 blocks hold 32")]
    fn dequantize_rejects_wrong_output_length() {
        let x = [BlockQ4_0 {
            d: f16::ZERO,
            qs: [0; 16],
        }];
        dequantize_row_q4_0(&x, &mut []);
    }

    proptest! {
        #[test]
        fn prop_roundtrip_within_bound_and_requantize(
            seed: u64,
            blocks in 1usize..5,
            exp in -45i32..5,
        ) {
            let x = magnitude_row(seed, blocks, exp);
            check_roundtrip(&x);
            let b = quantize_row_q4_0(&x);
            let b2 = quantize_row_q4_0(&dequantized(&b));
            for (orig, re) in b.iter().zip(&b2) {
                let dd = orig.d.to_f32();
                if dd != 0.0 && dd.is_finite() {
                    prop_assert_eq!(bytemuck::bytes_of(re), bytemuck::bytes_of(orig));
                } else if dd == 0.0 {
                    prop_assert_eq!(re.d.to_bits(), 0x8000);
                    prop_assert_eq!(re.qs, [0x88; 16]);
                }
            }
        }

        #[test]
        fn prop_never_panics_on_any_bits(bits in proptest::collection::vec(any::<u32>(), 32..=32)) {
            let x: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
            let b = quantize_row_q4_0(&x);
            let mut y = vec![0.0; 32];
            dequantize_row_q4_0(&b, &mut y);
        }
    }
}
