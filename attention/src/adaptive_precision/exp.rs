//! A branch-free exponential for softmax arguments (`x ≤ 0`) that the compiler vectorizes,
//! shared by this module's kernel and [`crate::adaptive_rank`].
//!
//! `eˣ = 2ⁿ·eʳ` with `n = round(x·log₂e)` and `r = x − n·ln 2 ∈ [−½ ln 2, ½ ln 2]`, the
//! reduction done in two steps with `ln 2` split into a high part exact in a few bits and a
//! low part (Cody & Waite 1980), so that `r` carries almost no rounding error; `eʳ` by its
//! degree-7 Taylor polynomial (truncation `(½ ln 2)⁸/8! < 5·10⁻⁹`) and `2ⁿ` by building the
//! exponent bits. Arguments below about `−126·ln 2` (and `−∞`) give 0 (no subnormal
//! results). Relative error: a few `f32` ulps (tested below 5·10⁻⁷).

/// `1.5·2²³`: adding and subtracting it rounds an `f32` of magnitude below `2²²` to the
/// nearest integer (ties to even) without a library call.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `ln 2` to 16 bits (so `n·LN2_HI` is exact for `|n| < 2⁸`).
const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 0.693145751953125

/// `ln 2 − LN2_HI`.
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286068e-6

/// `eˣ` for `x ≤ 0` (module docs); `x = −∞` gives exactly 0, `x = 0` exactly 1.
#[inline(always)]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    let x = if x > -88.0 { x } else { -88.0 }; // also maps −∞ (and NaN) to −88
    // y's low mantissa bits hold n = round(x·log₂e) ∈ [−127, 0] (two's complement).
    let y = x * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = y - ROUND_MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Σ_{k≤7} r^k / k!, Horner.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2ⁿ: biased exponent n + 127 ∈ [0, 127] shifted into place (the bits of y above the
    // mantissa shift out); n = −127 gives the scale +0.0.
    let scale = f32::from_bits(y.to_bits().wrapping_add(127) << 23);
    scale * p
}

/// The largest element of `row` (`−∞` for an empty row or one of `−∞`s), with eight
/// partial maxima so the loop vectorizes. NaN-free input assumed (as everywhere in the
/// kernels: inputs must be finite).
#[inline]
pub(crate) fn max8(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &x| a.max(x));
    acc.iter().fold(tail, |a, &x| a.max(x))
}

/// Replaces every `x` of `row` by `exp_nonpos(x − m)` and returns their sum (eight partial
/// sums, so the loop vectorizes).
#[inline]
pub(crate) fn exp_shifted_sum(row: &mut [f32], m: f32) -> f32 {
    row.iter_mut().for_each(|x| *x = exp_nonpos(*x - m));
    let mut acc = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::{exp_nonpos, exp_shifted_sum};

    #[test]
    fn matches_f64_exp() {
        let mut worst = 0.0f64;
        let mut x = 0.0f32;
        while x > -87.0 {
            let e = f64::from(x).exp();
            let got = f64::from(exp_nonpos(x));
            worst = worst.max((got - e).abs() / e);
            x -= 0.001_37;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!((exp_nonpos(0.0) - 1.0).abs() <= 0.0);
        assert!(exp_nonpos(f32::NEG_INFINITY).abs() <= 0.0);
        assert!(exp_nonpos(-100.0).abs() <= 0.0);
    }

    #[test]
    fn shifted_sum() {
        let mut row: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        row[3] = f32::NEG_INFINITY;
        let s = exp_shifted_sum(&mut row, 1.8);
        let want: f64 = (0..19)
            .filter(|&i| i != 3)
            .map(|i| (f64::from(i as f32 * 0.1) - 1.8).exp())
            .sum();
        assert!((f64::from(s) - want).abs() < 1e-6 * want);
        assert!(row[3].abs() <= 0.0);
    }
}
