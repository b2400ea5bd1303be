//! Q4_1: 32 unsigned 4-bit values with an `f16` scale and an `f16` minimum.
//!
//! Transcribes ggml's `quantize_row_q4_1_ref` and `dequantize_row_q4_1`
//! (`ggml/src/ggml-quants.c`); the semantics, error bound and edge cases are documented in
//! the [parent module](super#q4_1).

use half::f16;

use super::{
    QK, check_dequantize_lengths, check_quantize_lengths, float_to_code, fp32_to_fp16,
    inverse_or_zero, nibble, pack_nibbles,
};

/// One Q4_1 block: element `j` is `d · nibble_j + m`; `qs[j]` holds element `j` in its low
/// nibble and element `j + 16` in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (the value of nibble 0).
    pub m: f16,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);

/// Quantizes one block as ggml's `quantize_row_q4_1_ref` does.
fn quantize_block(x: &[f32]) -> BlockQ4_1 {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = inverse_or_zero(d);
    let mut codes = [0u8; QK];
    for (c, &v) in codes.iter_mut().zip(x) {
        // C: `(uint8_t) MIN(15, (int8_t)((x - min)*id + 0.5f))`, three separate roundings.
        *c = float_to_code((v - min) * id + 0.5).min(15) as u8;
    }
    BlockQ4_1 {
        d: fp32_to_fp16(d),
        m: fp32_to_fp16(min),
        qs: pack_nibbles(&codes),
    }
}

/// Quantizes a row to Q4_1 blocks, bit-exact with ggml's `quantize_row_q4_1_ref`.
///
/// Semantics, error bound and the handling of NaN, infinities and overflow:
/// [`ggml`](crate::ggml#q4_1).
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32).
///
/// # Example
///
/// ```
/// use quant::ggml::{dequantize_row_q4_1, quantize_row_q4_1};
///
/// let x: Vec<f32> = (0..32).map(|j| j as f32 / 2.0 + 1.0).collect(); // 1.0 ..= 16.5
/// let blocks = quantize_row_q4_1(&x);
/// assert_eq!((blocks[0].m.to_f32(), blocks[0].d.to_f32()), (1.0, 1.033203125)); // f16(15.5/15)
/// let mut y = vec![0.0; 32];
/// dequantize_row_q4_1(&blocks, &mut y);
/// assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 0.53));
/// ```
#[must_use]
pub fn quantize_row_q4_1(x: &[f32]) -> Vec<BlockQ4_1> {
    check_quantize_lengths("quantize_row_q4_1", x.len(), x.len() / QK);
    x.chunks_exact(QK).map(quantize_block).collect()
}

/// Quantizes a row to Q4_1 into `y`, bit-exact with ggml's `quantize_row_q4_1_ref`.
///
/// # Panics
///
/// If `x.len()` is not a multiple of [`QK`] (32), or `y.len() != x.len() / 32`.
pub fn quantize_row_q4_1_into(x: &[f32], y: &mut [BlockQ4_1]) {
    check_quantize_lengths("quantize_row_q4_1_into", x.len(), y.len());
    for (b, xb) in y.iter_mut().zip(x.chunks_exact(QK)) {
        *b = quantize_block(xb);
    }
}

/// Dequantizes Q4_1 blocks into `y` (`y[32·i + j] = nibble_j · d + m` of block `i`, one
/// rounding for the sum), bit-exact with ggml's `dequantize_row_q4_1`.
///
/// # Panics
///
/// If `y.len() != 32 · x.len()`.
pub fn dequantize_row_q4_1(x: &[BlockQ4_1], y: &mut [f32]) {
    check_dequantize_lengths("dequantize_row_q4_1", x.len(), y.len());
    for (b, yb) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        for (j, o) in yb.iter_mut().enumerate() {
            *o = f32::from(nibble(&b.qs, j)) * d + m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ROUNDING_SLACK, assert_within, blocks_bytes, magnitude_row};
    use super::*;
    use numerics::testing::rng;
    use proptest::prelude::*;

    fn dequantized(b: &[BlockQ4_1]) -> Vec<f32> {
        let mut y = vec![0.0; b.len() * QK];
        dequantize_row_q4_1(b, &mut y);
        y
    }

    fn codes(b: &BlockQ4_1) -> Vec<u8> {
        (0..QK).map(|j| nibble(&b.qs, j)).collect()
    }

    /// The per-element bound of the module docs, in f64, for one block.
    fn bound<'a>(x: &'a [f32], b: &BlockQ4_1, y: &'a [f32]) -> impl Fn(usize) -> f64 + 'a {
        let min = x.iter().fold(f64::INFINITY, |m, &v| m.min(f64::from(v)));
        let max = x
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let d = (max - min) / 15.0;
        let dd = f64::from(b.d.to_f32());
        let mm = f64::from(b.m.to_f32());
        let fixed = d * (0.5 + ROUNDING_SLACK) + 15.0 * (d - dd).abs() + (min - mm).abs();
        move |j| fixed + f64::from(y[j]).abs() * 2f64.powi(-24) + 2f64.powi(-150)
    }

    fn check_roundtrip(x: &[f32]) {
        let b = quantize_row_q4_1(x);
        let y = dequantized(&b);
        for (i, blk) in b.iter().enumerate() {
            if !(blk.d.is_finite() && blk.m.is_finite()) {
                continue;
            }
            let r = i * QK..(i + 1) * QK;
            assert_within(
                "q4_1",
                &x[r.clone()],
                &y[r.clone()],
                bound(&x[r.clone()], blk, &y[r]),
            );
        }
    }

    /// Whether every `code · D + M` of the block is exact in f32.
    fn sums_are_exact(b: &BlockQ4_1) -> bool {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        codes(b).iter().all(|&c| {
            let exact = f64::from(c) * f64::from(d) + f64::from(m);
            f64::from(f32::from(c) * d + m).to_bits() == exact.to_bits()
        })
    }

    #[test]
    fn zeros_map_to_the_zero_block() {
        let b = quantize_row_q4_1(&[0.0; 64]);
        assert!(blocks_bytes(&b).iter().all(|&v| v == 0));
        assert!(dequantized(&b).iter().all(|v| v.to_bits() == 0));
    }

    #[test]
    fn the_first_minimum_decides_the_sign_of_a_zero_m() {
        let b = quantize_row_q4_1(&[-0.0, 0.0].repeat(16));
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0, 0x8000));
        let b = quantize_row_q4_1(&[0.0, -0.0].repeat(16));
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0, 0));
    }

    #[test]
    fn constant_rows_keep_only_the_f16_rounding_of_m() {
        let b = quantize_row_q4_1(&[1000.3; 32]);
        assert_eq!(b[0].d.to_bits(), 0);
        assert_eq!(b[0].qs, [0; 16]);
        assert!(
            dequantized(&b)
                .iter()
                .all(|v| v.to_bits() == 1000.5f32.to_bits())
        );
    }

    #[test]
    fn ties_round_up_and_f32_addition_can_round_to_the_next_integer() {
        // min = 0, max = 15: d = 1 and id = 1 exactly.
        let mut x = vec![0.0f32; 32];
        x[1] = 15.0;
        x[2] = 0.5; // code 1
        x[3] = 7.5; // code 8
        x[4] = 14.5; // 15
        x[5] = 0.5 - 2f32.powi(-25); // + 0.5 = 1 - 2^-25, a tie in f32, rounds to 1: code 1
        x[6] = 0.5 - 2f32.powi(-24); // + 0.5 = 1 - 2^-24 is representable: code 0
        x[7] = 14.5 - 2f32.powi(-20); // code 14
        let b = quantize_row_q4_1(&x);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x3C00, 0));
        assert_eq!(&codes(&b[0])[..8], &[0, 15, 1, 8, 15, 1, 0, 14]);
    }

    #[test]
    fn roundtrip_error_is_within_bound_over_magnitudes() {
        for (seed, exp) in (-44..=4).step_by(2).enumerate() {
            check_roundtrip(&magnitude_row(seed as u64, 4, exp));
        }
        // Offset rows, where |min - M| matters.
        let mut r = rng::seeded(5);
        for offset in [1.0f32, 100.0, 1000.0, -3000.0] {
            let x: Vec<f32> = rng::uniform_vec(&mut r, 128, 0.0, 0.01)
                .iter()
                .map(|v| v + offset)
                .collect();
            check_roundtrip(&x);
        }
    }

    #[test]
    fn requantizing_is_exact_when_the_sums_are_exact() {
        for (seed, exp) in (-4..=3).enumerate() {
            let x = magnitude_row(300 + seed as u64, 4, exp);
            let b = quantize_row_q4_1(&x);
            assert!(
                b.iter()
                    .all(|b| b.d.to_f32() > 0.0 && b.d.is_finite() && b.m.is_finite())
            );
            assert!(b.iter().all(sums_are_exact));
            assert_eq!(
                blocks_bytes(&quantize_row_q4_1(&dequantized(&b))),
                blocks_bytes(&b)
            );
        }
    }

    #[test]
    fn requantizing_turns_a_negative_zero_m_positive() {
        let mut x = vec![1.0f32; 32];
        x[0] = -0.0;
        let b = quantize_row_q4_1(&x);
        assert_eq!(b[0].m.to_bits(), 0x8000);
        let b2 = quantize_row_q4_1(&dequantized(&b));
        assert_eq!(b2[0].m.to_bits(), 0);
        assert_eq!((b2[0].d, b2[0].qs), (b[0].d, b[0].qs));
    }

    #[test]
    fn requantizing_can_change_d_when_m_dwarfs_it() {
        // A narrow block just below 1024 (M = 1024, |M| / D about 6e5): 15 * D + M is not
        // exact in f32, so the dequantized range is not 15 * D and the new scale differs.
        let step = (0.003f64 / 31.0) as f32;
        let x: Vec<f32> = (0..32).map(|j| 1023.99f32 + j as f32 * step).collect();
        let b = quantize_row_q4_1(&x);
        assert!(!sums_are_exact(&b[0]));
        let b2 = quantize_row_q4_1(&dequantized(&b));
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x0A89, 0x6400));
        assert_eq!((b2[0].d.to_bits(), b2[0].m.to_bits()), (0x0AAB, 0x6400));
        assert_eq!(b2[0].qs, b[0].qs);
    }

    #[test]
    fn requantizing_can_change_codes_when_m_dwarfs_d() {
        // Values 2 + k * 2^-22 (k = 0..3): D is the least f16 subnormal, 2^-24, and
        // 2 + c * D rounds to the 2^-22 grid, so the dequantized values no longer sit
        // c steps apart.
        let g = 2f32.powi(-22);
        let x: Vec<f32> = (0..32).map(|j| 2.0 + (j % 4) as f32 * g).collect();
        let b = quantize_row_q4_1(&x);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x0001, 0x4000));
        assert_eq!(&codes(&b[0])[..4], &[0, 5, 10, 15]);
        let b2 = quantize_row_q4_1(&dequantized(&b));
        assert_eq!((b2[0].d.to_bits(), b2[0].m.to_bits()), (0x0001, 0x4000));
        assert_eq!(&codes(&b2[0])[..4], &[0, 4, 7, 15]);
    }

    #[test]
    fn inverse_scale_overflow_gives_zero_codes() {
        let x: Vec<f32> = (0..32).map(|j| j as f32 * 1e-45).collect();
        let b = quantize_row_q4_1(&x);
        assert_eq!(b[0].qs, [0; 16]);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0, 0));
    }

    #[test]
    fn nans_are_skipped_and_get_code_zero() {
        let mut x = vec![1.0f32; 32];
        x[0] = f32::NAN;
        x[1] = 16.0;
        let b = quantize_row_q4_1(&x);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x3C00, 0x3C00));
        assert_eq!(&codes(&b[0])[..3], &[0, 15, 0]);
        let all_nan = quantize_row_q4_1(&[f32::NAN; 32]);
        assert_eq!(
            (all_nan[0].d.to_bits(), all_nan[0].m.to_bits()),
            (0xFC00, 0x7C00)
        );
        assert_eq!(all_nan[0].qs, [0; 16]);
    }

    #[test]
    fn infinities() {
        let mut x = vec![0.5f32; 32];
        x[3] = f32::INFINITY;
        let b = quantize_row_q4_1(&x);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x7C00, 0x3800));
        assert_eq!(b[0].qs, [0; 16]);
        assert!(dequantized(&b).iter().all(|v| v.is_nan()));
        x[3] = f32::NEG_INFINITY;
        let b = quantize_row_q4_1(&x);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x7C00, 0xFC00));
        assert_eq!(b[0].qs, [0; 16]);
        // Blocks of one infinity: min (or max) keeps its FLT_MAX start, so d = +inf.
        let b = quantize_row_q4_1(&[f32::INFINITY; 32]);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x7C00, 0x7C00));
        let b = quantize_row_q4_1(&[f32::NEG_INFINITY; 32]);
        assert_eq!((b[0].d.to_bits(), b[0].m.to_bits()), (0x7C00, 0xFC00));
    }

    #[test]
    fn into_matches_owned_and_empty_rows_work() {
        let x = magnitude_row(9, 3, 0);
        let mut y = vec![
            BlockQ4_1 {
                d: f16::ZERO,
                m: f16::ZERO,
                qs: [0; 16]
            };
            3
        ];
        quantize_row_q4_1_into(&x, &mut y);
        assert_eq!(blocks_bytes(&y), blocks_bytes(&quantize_row_q4_1(&x)));
        assert!(quantize_row_q4_1(&[]).is_empty());
        dequantize_row_q4_1(&[], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q4_1: row length 16 is not a multiple of the block size 32"
    )]
    fn quantize_rejects_ragged_rows() {
        let _ = quantize_row_q4_1(&[0.0; 16]);
    }

    #[test]
    #[should_panic(expected = "quantize_row_q4_1_into: row length 65 is not a multiple")]
    fn quantize_into_rejects_ragged_rows() {
        quantize_row_q4_1_into(&[0.0; 65], &mut []);
    }

    #[test]
    #[should_panic(
        expected = "quantize_row_q4_1_into: output has 0 blocks, but a row of 32 values needs 1"
    )]
    fn quantize_into_rejects_wrong_output_length() {
        quantize_row_q4_1_into(&[0.0; 32], &mut []);
    }

    #[test]
    #[should_panic(expected = "dequantize_row_q4_1: output has 31 values, but 1 blocks hold 32")]
    fn dequantize_rejects_wrong_output_length() {
        let x = [BlockQ4_1 {
            d: f16::ZERO,
            m: f16::ZERO,
            qs: [0; 16],
        }];
        dequantize_row_q4_1(&x, &mut [0.0; 31]);
    }

    proptest! {
        #[test]
        fn prop_roundtrip_within_bound_and_requantize(
            seed: u64,
            blocks in 1usize..5,
            exp in -45i32..4,
            offset_exp in -3i32..4,
            offset_sign in prop_oneof![Just(0.0f32), Just(1.0f32), Just(-1.0f32)],
        ) {
            let off = offset_sign * 10f32.powi(offset_exp + exp);
            let x: Vec<f32> = magnitude_row(seed, blocks, exp).iter().map(|v| v + off).collect();
            check_roundtrip(&x);
            let b = quantize_row_q4_1(&x);
            let b2 = quantize_row_q4_1(&dequantized(&b));
            for (orig, re) in b.iter().zip(&b2) {
                let ok = orig.d.to_f32() > 0.0 && orig.d.is_finite() && orig.m.is_finite();
                if ok && sums_are_exact(orig) {
                    let m = if orig.m.to_bits() == 0x8000 { f16::ZERO } else { orig.m };
                    prop_assert_eq!(re.m.to_bits(), m.to_bits());
                    prop_assert_eq!((re.d.to_bits(), re.qs), (orig.d.to_bits(), orig.qs));
                }
            }
        }

        #[test]
        fn prop_never_panics_on_any_bits(bits in proptest::collection::vec(any::<u32>(), 32..=32)) {
            let x: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
            let b = quantize_row_q4_1(&x);
            let mut y = vec![0.0; 32];
            dequantize_row_q4_1(&b, &mut y);
        }
    }
}
