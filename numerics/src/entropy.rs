//! Shannon entropy and Kullback–Leibler divergence of probability vectors, attention maps,
//! empirical histograms and quantized code streams.
//!
//! # Definitions
//!
//! For a probability vector `p` of length `n` (Shannon 1948, "A Mathematical Theory of
//! Communication"; Cover & Thomas, *Elements of Information Theory*, 2nd ed., §2.1 and §2.3):
//!
//! - entropy `H(p) = −Σ pᵢ ln pᵢ` in nats, or with `log₂` in bits; `0 ≤ H(p) ≤ ln n`;
//! - normalized entropy `H(p) / ln n ∈ [0, 1]` (1 for the uniform distribution);
//! - relative entropy (KL divergence) `D(p‖q) = Σ pᵢ ln(pᵢ / qᵢ) ≥ 0`, zero iff `p = q`.
//!
//! The conventions of Cover & Thomas §2.3 hold exactly: `0 · ln 0 = 0`, `0 · ln(0/q) = 0`
//! and `p · ln(p/0) = +∞` for `p > 0`. No valid input produces NaN.
//!
//! The entropy of a sequence of discrete symbols (the codes of a quantized tensor, the bins
//! of a histogram) is the entropy of its empirical distribution `cᵢ / N`. In bits it is the
//! average code length per symbol an ideal entropy coder needs for a memoryless source with
//! that distribution (Shannon's source coding theorem, Cover & Thomas §5.3–5.4).
//!
//! # Numerics
//!
//! Inputs are `f32`; everything is accumulated in `f64`. A probability vector must be
//! non-empty, finite, non-negative and sum to one within [`PROB_SUM_TOLERANCE`]. Within
//! that tolerance the vector is treated as `p / Σp`, so results are the exact quantities of
//! a normalized distribution (up to `f64` rounding) and stay inside their mathematical
//! ranges: entropies are clamped to `[0, ln n]`, divergences to `[0, +∞]`.
//!
//! # Example
//!
//! ```
//! use numerics::entropy::{entropy_bits, kl_divergence_nats, normalized_entropy};
//! # fn main() -> Result<(), numerics::Error> {
//! let uniform = [0.25f32; 4];
//! assert!((entropy_bits(&uniform)? - 2.0).abs() < 1e-12);
//! assert!((normalized_entropy(&uniform)? - 1.0).abs() < 1e-12);
//! assert!(normalized_entropy(&[0.0, 1.0, 0.0])?.abs() < 1e-12);
//! assert!(kl_divergence_nats(&[0.5, 0.5], &[1.0, 0.0])?.is_infinite());
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};

/// How far from 1 the sum of a probability vector may be, absolutely.
///
/// Generous enough for `f32` vectors produced by a softmax or by normalizing counts (whose
/// sums are off by about `n · 2⁻²⁴`), tight enough to catch unnormalized input such as raw
/// logits or counts.
pub const PROB_SUM_TOLERANCE: f64 = 1e-3;

/// The largest number of bins [`histogram_entropy_bits`] accepts (2²⁴).
pub const MAX_HISTOGRAM_BINS: usize = 1 << 24;

/// Checks that `p` is a probability vector; returns its `f64` sum.
fn validate_prob(op: &'static str, p: &[f32]) -> Result<f64> {
    if p.is_empty() {
        return Err(Error::Empty { op });
    }
    let mut sum = 0.0f64;
    for (index, &x) in p.iter().enumerate() {
        if !x.is_finite() {
            return Err(Error::InvalidValue {
                op,
                index,
                value: f64::from(x),
                reason: "probability must be finite",
            });
        }
        if x < 0.0 {
            return Err(Error::InvalidValue {
                op,
                index,
                value: f64::from(x),
                reason: "probability must be non-negative",
            });
        }
        sum += f64::from(x);
    }
    check_sum(op, sum)?;
    Ok(sum)
}

fn check_sum(op: &'static str, sum: f64) -> Result<()> {
    if (sum - 1.0).abs() <= PROB_SUM_TOLERANCE {
        Ok(())
    } else {
        Err(Error::NotNormalized {
            op,
            sum,
            tolerance: PROB_SUM_TOLERANCE,
        })
    }
}

/// `−Σ qᵢ ln qᵢ` with `qᵢ = pᵢ / sum`, clamped to `[0, ln n]`. `p` is already validated.
fn entropy_nats_unchecked(p: &[f32], sum: f64) -> f64 {
    let mut h = 0.0f64;
    for &x in p {
        if x > 0.0 {
            let q = f64::from(x) / sum;
            h -= q * q.ln();
        }
    }
    h.clamp(0.0, (p.len() as f64).ln())
}

/// Shannon entropy of a probability vector in nats: `H(p) = −Σ pᵢ ln pᵢ`, with `0 · ln 0 = 0`.
///
/// The result lies in `[0, ln n]`: 0 for a one-hot vector, `ln n` for the uniform one.
///
/// # Errors
///
/// - [`Error::Empty`] if `p` is empty;
/// - [`Error::InvalidValue`] at the first entry that is NaN, infinite or negative;
/// - [`Error::NotNormalized`] if `|Σp − 1| > `[`PROB_SUM_TOLERANCE`].
pub fn entropy_nats(p: &[f32]) -> Result<f64> {
    let sum = validate_prob("entropy_nats", p)?;
    Ok(entropy_nats_unchecked(p, sum))
}

/// Shannon entropy of a probability vector in bits: `H(p) = −Σ pᵢ log₂ pᵢ ∈ [0, log₂ n]`.
///
/// # Errors
///
/// As [`entropy_nats`].
pub fn entropy_bits(p: &[f32]) -> Result<f64> {
    let sum = validate_prob("entropy_bits", p)?;
    Ok(entropy_nats_unchecked(p, sum) / std::f64::consts::LN_2)
}

/// Normalized entropy `H(p) / ln n ∈ [0, 1]`: 0 for a one-hot vector, 1 for the uniform one.
///
/// A vector of length 1 has no uncertainty to normalize; its normalized entropy is 0.
///
/// # Errors
///
/// As [`entropy_nats`].
pub fn normalized_entropy(p: &[f32]) -> Result<f64> {
    let sum = validate_prob("normalized_entropy", p)?;
    Ok(normalized_unchecked(p, sum))
}

fn normalized_unchecked(p: &[f32], sum: f64) -> f64 {
    if p.len() < 2 {
        return 0.0;
    }
    (entropy_nats_unchecked(p, sum) / (p.len() as f64).ln()).clamp(0.0, 1.0)
}

/// Checks `row_len` and the shape of a row-major matrix; returns the number of rows.
fn rows_of(op: &'static str, len: usize, row_len: usize) -> Result<usize> {
    if row_len == 0 {
        return Err(Error::OutOfRange {
            op,
            what: "row_len",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    if !len.is_multiple_of(row_len) {
        return Err(Error::OutOfRange {
            op,
            what: "p.len()",
            value: len as f64,
            reason: "must be a multiple of row_len",
        });
    }
    Ok(len / row_len)
}

/// Entropy in nats of every row of a row-major matrix of probabilities (an attention map:
/// one softmax row per query), written to `out[r]` for row `r`.
///
/// `p` holds `p.len() / row_len` rows of `row_len` entries; each row must be a probability
/// vector as in [`entropy_nats`]. An empty `p` has zero rows. Divide by `ln row_len` for
/// normalized entropies, or by `ln 2` for bits.
///
/// # Errors
///
/// - [`Error::OutOfRange`] if `row_len` is 0 or `p.len()` is not a multiple of it;
/// - [`Error::LengthMismatch`] if `out.len()` is not the number of rows;
/// - [`Error::InvalidValue`] (with the index into `p`) or [`Error::NotNormalized`] for the
///   first row that is not a probability vector. `out` is then partly written.
pub fn row_entropies_into(p: &[f32], row_len: usize, out: &mut [f64]) -> Result<()> {
    const OP: &str = "row_entropies";
    let rows = rows_of(OP, p.len(), row_len)?;
    if out.len() != rows {
        return Err(Error::LengthMismatch {
            op: OP,
            left: rows,
            right: out.len(),
        });
    }
    for (r, (row, h)) in p.chunks_exact(row_len).zip(out.iter_mut()).enumerate() {
        let sum = validate_prob(OP, row).map_err(|e| match e {
            Error::InvalidValue {
                op,
                index,
                value,
                reason,
            } => Error::InvalidValue {
                op,
                index: r * row_len + index,
                value,
                reason,
            },
            other => other,
        })?;
        *h = entropy_nats_unchecked(row, sum);
    }
    Ok(())
}

/// Owned form of [`row_entropies_into`]: the entropy in nats of every row.
///
/// # Errors
///
/// As [`row_entropies_into`].
pub fn row_entropies(p: &[f32], row_len: usize) -> Result<Vec<f64>> {
    let rows = rows_of("row_entropies", p.len(), row_len)?;
    let mut out = vec![0.0; rows];
    row_entropies_into(p, row_len, &mut out)?;
    Ok(out)
}

/// Kullback–Leibler divergence `D(p‖q) = Σ pᵢ ln(pᵢ / qᵢ)` in nats.
///
/// Terms with `pᵢ = 0` contribute 0. If some `pᵢ > 0` has `qᵢ = 0` the divergence is
/// mathematically infinite and the result is `f64::INFINITY` (not an error: `q` cannot
/// encode an outcome `p` produces). Otherwise the result is finite and `≥ 0`, and exactly
/// 0 when `p` and `q` are the same vector.
///
/// # Errors
///
/// - [`Error::LengthMismatch`] if `p.len() != q.len()`;
/// - as [`entropy_nats`] for `p`, then for `q`.
pub fn kl_divergence_nats(p: &[f32], q: &[f32]) -> Result<f64> {
    const OP: &str = "kl_divergence";
    if p.len() != q.len() {
        return Err(Error::LengthMismatch {
            op: OP,
            left: p.len(),
            right: q.len(),
        });
    }
    let sp = validate_prob(OP, p)?;
    let sq = validate_prob(OP, q)?;
    let mut d = 0.0f64;
    for (&pi, &qi) in p.iter().zip(q) {
        if pi > 0.0 {
            if qi <= 0.0 {
                return Ok(f64::INFINITY);
            }
            let a = f64::from(pi) / sp;
            let b = f64::from(qi) / sq;
            d += a * (a / b).ln();
        }
    }
    Ok(d.max(0.0))
}

/// Kullback–Leibler divergence `D(p‖q)` in bits; see [`kl_divergence_nats`].
///
/// # Errors
///
/// As [`kl_divergence_nats`].
pub fn kl_divergence_bits(p: &[f32], q: &[f32]) -> Result<f64> {
    Ok(kl_divergence_nats(p, q)? / std::f64::consts::LN_2)
}

/// Entropy in bits of the empirical distribution `cᵢ / N` of a list of counts, `N = Σcᵢ`.
///
/// This is the building block of [`histogram_entropy_bits`] and [`code_entropy_bits`];
/// use it directly when the counts already exist. Zero counts contribute nothing.
///
/// # Errors
///
/// [`Error::Empty`] if every count is zero (including an empty slice).
pub fn counts_entropy_bits(counts: &[u64]) -> Result<f64> {
    counts_entropy_bits_op("counts_entropy_bits", counts)
}

fn counts_entropy_bits_op(op: &'static str, counts: &[u64]) -> Result<f64> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return Err(Error::Empty { op });
    }
    let n = total as f64;
    let mut h = 0.0f64;
    let mut nonzero = 0usize;
    for &c in counts {
        if c > 0 {
            let c = c as f64;
            // (c / N) · log₂(N / c): every term is ≥ 0 because c ≤ N.
            h += c / n * (n / c).log2();
            nonzero += 1;
        }
    }
    Ok(h.clamp(0.0, (nonzero as f64).log2()))
}

/// Entropy in bits of the empirical histogram of real values, with `bins` equal-width bins
/// over `range` (or over `[min, max]` of the values when `range` is `None`).
///
/// Binning follows `numpy.histogram`: bin `i` is `[lo + i·w, lo + (i+1)·w)` with
/// `w = (hi − lo) / bins`, the last bin also holds `hi`, and values outside an explicit
/// `range` are not counted. If all values are equal and `range` is `None`, they share one
/// bin and the entropy is 0. The result lies in `[0, log₂ bins]`; it depends on the binning
/// and estimates the entropy of the values quantized to that grid, not a differential entropy.
///
/// # Errors
///
/// - [`Error::Empty`] if `values` is empty, or no value falls inside an explicit `range`;
/// - [`Error::OutOfRange`] if `bins` is 0 or above [`MAX_HISTOGRAM_BINS`], or `range` is
///   not finite with `lo < hi`;
/// - [`Error::InvalidValue`] at the first NaN or infinite value.
pub fn histogram_entropy_bits(
    values: &[f32],
    bins: usize,
    range: Option<(f32, f32)>,
) -> Result<f64> {
    const OP: &str = "histogram_entropy_bits";
    if bins == 0 || bins > MAX_HISTOGRAM_BINS {
        return Err(Error::OutOfRange {
            op: OP,
            what: "bins",
            value: bins as f64,
            reason: "must be in 1..=2^24",
        });
    }
    if values.is_empty() {
        return Err(Error::Empty { op: OP });
    }
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    for (index, &x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(Error::InvalidValue {
                op: OP,
                index,
                value: f64::from(x),
                reason: "histogram values must be finite",
            });
        }
        min = min.min(x);
        max = max.max(x);
    }
    let (lo, hi) = match range {
        Some((lo, hi)) => {
            for (bound, what) in [(lo, "range.0"), (hi, "range.1")] {
                if !bound.is_finite() {
                    return Err(Error::OutOfRange {
                        op: OP,
                        what,
                        value: f64::from(bound),
                        reason: "range bounds must be finite",
                    });
                }
            }
            if lo >= hi {
                return Err(Error::OutOfRange {
                    op: OP,
                    what: "range.1",
                    value: f64::from(hi),
                    reason: "range must have lo < hi",
                });
            }
            (f64::from(lo), f64::from(hi))
        }
        None => (f64::from(min), f64::from(max)),
    };
    if hi <= lo {
        // No explicit range and all values equal: one occupied bin.
        return Ok(0.0);
    }
    let mut counts = vec![0u64; bins];
    let scale = bins as f64 / (hi - lo);
    for &x in values {
        let x = f64::from(x);
        if !(lo..=hi).contains(&x) {
            continue;
        }
        // `as usize` saturates; `min` puts `hi` (and any rounding up to `bins`) in the last bin.
        let i = (((x - lo) * scale) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts_entropy_bits_op(OP, &counts)
}

/// Empirical entropy of 8-bit code usage in bits per symbol: the average number of bits an
/// ideal entropy coder needs per code (FP8, FP6 or FP4 codes, 8-bit integer quants, …).
///
/// The result lies in `[0, log₂ k] ⊆ [0, 8]` where `k` is the number of distinct codes;
/// compare it with the format's width to see how much an entropy coder could save.
///
/// # Errors
///
/// [`Error::Empty`] if `codes` is empty.
pub fn code_entropy_bits(codes: &[u8]) -> Result<f64> {
    let mut counts = [0u64; 256];
    for &c in codes {
        counts[usize::from(c)] += 1;
    }
    counts_entropy_bits_op("code_entropy_bits", &counts)
}

/// Empirical entropy of 16-bit code usage in bits per symbol (f16/bf16 bit patterns, 16-bit
/// indices); see [`code_entropy_bits`]. The result lies in `[0, 16]`.
///
/// # Errors
///
/// [`Error::Empty`] if `codes` is empty.
pub fn code_entropy_bits_u16(codes: &[u16]) -> Result<f64> {
    let mut counts = vec![0u64; 1 << 16];
    for &c in codes {
        counts[usize::from(c)] += 1;
    }
    counts_entropy_bits_op("code_entropy_bits_u16", &counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// The textbook formula, term by term in f64, without renormalization or clamping.
    fn direct_entropy_nats(p: &[f32]) -> f64 {
        p.iter()
            .map(|&x| f64::from(x))
            .filter(|&x| x > 0.0)
            .map(|x| -x * x.ln())
            .sum()
    }

    fn direct_kl_nats(p: &[f32], q: &[f32]) -> f64 {
        p.iter()
            .zip(q)
            .map(|(&a, &b)| (f64::from(a), f64::from(b)))
            .filter(|&(a, _)| a > 0.0)
            .map(|(a, b)| a * (a / b).ln())
            .sum()
    }

    /// Probability vectors with exact zeros, normalized in f64 and rounded to f32.
    fn prob_vec(n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(prop_oneof![1 => Just(0.0f32), 3 => 0.0f32..=1.0], n).prop_map(
            |mut w| {
                let s: f64 = w.iter().map(|&x| f64::from(x)).sum();
                if s == 0.0 {
                    w[0] = 1.0;
                    return w;
                }
                w.iter().map(|&x| (f64::from(x) / s) as f32).collect()
            },
        )
    }

    #[test]
    fn uniform_is_ln_n() {
        for n in [1usize, 2, 3, 4, 7, 10, 100, 255, 256, 257, 1000] {
            let p = vec![1.0 / n as f32; n];
            let ln_n = (n as f64).ln();
            assert!(close(entropy_nats(&p).unwrap(), ln_n, 1e-6), "n = {n}");
            assert!(close(entropy_bits(&p).unwrap(), (n as f64).log2(), 1e-6));
            let expected = if n == 1 { 0.0 } else { 1.0 };
            assert!(close(normalized_entropy(&p).unwrap(), expected, 1e-6));
        }
        // Powers of two are exact in f32.
        assert!(close(entropy_bits(&[0.125; 8]).unwrap(), 3.0, EPS));
    }

    #[test]
    fn one_hot_is_zero() {
        for n in [1usize, 2, 5, 64] {
            for hot in [0, n / 2, n - 1] {
                let mut p = vec![0.0f32; n];
                p[hot] = 1.0;
                assert_eq!(entropy_nats(&p).unwrap().to_bits(), 0.0f64.to_bits());
                assert_eq!(entropy_bits(&p).unwrap().to_bits(), 0.0f64.to_bits());
                assert_eq!(normalized_entropy(&p).unwrap().to_bits(), 0.0f64.to_bits());
            }
        }
    }

    #[test]
    fn zeros_are_exact_and_negative_zero_is_accepted() {
        let p = [0.5f32, 0.0, -0.0, 0.5];
        assert!(close(entropy_bits(&p).unwrap(), 1.0, EPS));
        assert!(close(normalized_entropy(&p).unwrap(), 0.5, EPS));
    }

    #[test]
    fn agrees_with_direct_sum() {
        let p = [0.1f32, 0.2, 0.3, 0.4];
        let direct = direct_entropy_nats(&p);
        assert!(close(entropy_nats(&p).unwrap(), direct, 1e-7));
        assert!(close(direct, 1.279_854_225_833_079_5, 1e-6));
    }

    #[test]
    fn binary_entropy() {
        // H(0.25, 0.75) = 2 − 0.75 log₂ 3.
        let h = entropy_bits(&[0.25, 0.75]).unwrap();
        assert!(close(h, 2.0 - 0.75 * 3f64.log2(), EPS));
    }

    #[test]
    fn validation_errors() {
        assert_eq!(entropy_nats(&[]), Err(Error::Empty { op: "entropy_nats" }));
        match entropy_nats(&[0.5, f32::NAN, 0.5]) {
            Err(Error::InvalidValue { index: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        match entropy_nats(&[0.5, 0.5, f32::INFINITY]) {
            Err(Error::InvalidValue { index: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        match entropy_bits(&[1.5, -0.5]) {
            Err(Error::InvalidValue {
                index: 1, reason, ..
            }) => assert!(reason.contains("non-negative")),
            other => panic!("{other:?}"),
        }
        match normalized_entropy(&[0.5, 0.6]) {
            Err(Error::NotNormalized { sum, tolerance, .. }) => {
                assert!(close(sum, 1.1, 1e-6));
                assert!(close(tolerance, PROB_SUM_TOLERANCE, 0.0));
            }
            other => panic!("{other:?}"),
        }
        // Within tolerance: accepted and treated as normalized.
        let h = entropy_bits(&[0.5004, 0.5004]).unwrap();
        assert!(close(h, 1.0, EPS));
        // Slightly more than 1 on a one-hot vector still gives 0, not a negative entropy.
        assert_eq!(entropy_nats(&[1.0005]).unwrap().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn rows() {
        let p = [
            0.25f32, 0.25, 0.25, 0.25, // uniform
            1.0, 0.0, 0.0, 0.0, // one-hot
            0.5, 0.5, 0.0, 0.0,
        ];
        let h = row_entropies(&p, 4).unwrap();
        assert_eq!(h.len(), 3);
        assert!(close(h[0], 4f64.ln(), EPS));
        assert!(close(h[1], 0.0, 0.0));
        assert!(close(h[2], 2f64.ln(), EPS));
        assert!(row_entropies(&[], 3).unwrap().is_empty());

        let mut out = [0.0; 2];
        assert!(matches!(
            row_entropies_into(&p, 4, &mut out),
            Err(Error::LengthMismatch {
                left: 3,
                right: 2,
                ..
            })
        ));
        assert!(matches!(
            row_entropies(&p, 0),
            Err(Error::OutOfRange {
                what: "row_len",
                ..
            })
        ));
        assert!(matches!(
            row_entropies(&p, 5),
            Err(Error::OutOfRange { .. })
        ));
        let mut bad = p;
        bad[9] = -0.5;
        assert!(matches!(
            row_entropies(&bad, 4),
            Err(Error::InvalidValue { index: 9, .. })
        ));
        assert!(matches!(
            row_entropies(&p, 2),
            Err(Error::NotNormalized { .. })
        ));
    }

    #[test]
    fn kl() {
        let p = [0.1f32, 0.2, 0.7];
        let q = [0.3f32, 0.3, 0.4];
        assert_eq!(
            kl_divergence_nats(&p, &p).unwrap().to_bits(),
            0.0f64.to_bits()
        );
        let d = kl_divergence_nats(&p, &q).unwrap();
        assert!(close(d, direct_kl_nats(&p, &q), 1e-7));
        assert!(close(
            kl_divergence_bits(&p, &q).unwrap(),
            d / std::f64::consts::LN_2,
            EPS
        ));
        // Zeros in p contribute nothing; zeros in q where p > 0 give +∞.
        assert!(close(
            kl_divergence_nats(&[1.0, 0.0], &[0.5, 0.5]).unwrap(),
            2f64.ln(),
            EPS
        ));
        let inf = kl_divergence_nats(&[0.5, 0.5], &[1.0, 0.0]).unwrap();
        assert!(inf.is_infinite() && inf > 0.0);
        assert!(matches!(
            kl_divergence_nats(&p, &[0.5, 0.5]),
            Err(Error::LengthMismatch {
                left: 3,
                right: 2,
                ..
            })
        ));
        assert!(matches!(
            kl_divergence_nats(&p, &[0.5, 0.5, f32::NAN]),
            Err(Error::InvalidValue { index: 2, .. })
        ));
        assert!(matches!(
            kl_divergence_nats(&[], &[]),
            Err(Error::Empty { .. })
        ));
    }

    #[test]
    fn counts_and_codes() {
        assert!(close(counts_entropy_bits(&[1, 1, 1, 1]).unwrap(), 2.0, EPS));
        assert!(close(counts_entropy_bits(&[0, 7, 0]).unwrap(), 0.0, 0.0));
        assert!(counts_entropy_bits(&[0, 0]).is_err());
        assert!(counts_entropy_bits(&[]).is_err());
        // Huge counts do not overflow.
        assert!(close(
            counts_entropy_bits(&[u64::MAX, u64::MAX]).unwrap(),
            1.0,
            EPS
        ));

        let all: Vec<u8> = (0..=255).collect();
        assert!(close(code_entropy_bits(&all).unwrap(), 8.0, EPS));
        assert!(close(code_entropy_bits(&[7; 100]).unwrap(), 0.0, 0.0));
        assert!(close(
            code_entropy_bits(&[1, 2, 1, 1]).unwrap(),
            2.0 - 0.75 * 3f64.log2(),
            EPS
        ));
        assert!(matches!(
            code_entropy_bits(&[]),
            Err(Error::Empty {
                op: "code_entropy_bits"
            })
        ));

        let all16: Vec<u16> = (0..=u16::MAX).collect();
        assert!(close(code_entropy_bits_u16(&all16).unwrap(), 16.0, EPS));
        assert!(close(code_entropy_bits_u16(&[0, 65535]).unwrap(), 1.0, EPS));
        assert!(code_entropy_bits_u16(&[]).is_err());
    }

    #[test]
    fn histogram() {
        // Four values, four bins, one each: 2 bits. The max lands in the last bin.
        let v = [0.0f32, 1.0, 2.0, 3.0];
        assert!(close(
            histogram_entropy_bits(&v, 4, None).unwrap(),
            2.0,
            EPS
        ));
        // Two bins: {0, 1} and {2, 3}.
        assert!(close(
            histogram_entropy_bits(&v, 2, None).unwrap(),
            1.0,
            EPS
        ));
        // One bin.
        assert!(close(
            histogram_entropy_bits(&v, 1, None).unwrap(),
            0.0,
            0.0
        ));
        // Constant data.
        assert!(close(
            histogram_entropy_bits(&[3.5; 10], 16, None).unwrap(),
            0.0,
            0.0
        ));
        // Explicit range: values outside are dropped, `hi` is in the last bin.
        let h = histogram_entropy_bits(&[-5.0, 0.0, 1.0, 9.0], 2, Some((0.0, 1.0))).unwrap();
        assert!(close(h, 1.0, EPS));
        assert!(matches!(
            histogram_entropy_bits(&[5.0], 2, Some((0.0, 1.0))),
            Err(Error::Empty { .. })
        ));

        assert!(matches!(
            histogram_entropy_bits(&[], 4, None),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&v, 0, None),
            Err(Error::OutOfRange { what: "bins", .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&v, MAX_HISTOGRAM_BINS + 1, None),
            Err(Error::OutOfRange { what: "bins", .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&[0.0, f32::NAN], 4, None),
            Err(Error::InvalidValue { index: 1, .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&[f32::NEG_INFINITY], 4, None),
            Err(Error::InvalidValue { index: 0, .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&v, 4, Some((1.0, 1.0))),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            histogram_entropy_bits(&v, 4, Some((0.0, f32::INFINITY))),
            Err(Error::OutOfRange { .. })
        ));
        // Extreme but finite ranges do not overflow.
        let h = histogram_entropy_bits(&[f32::MIN, f32::MAX], 2, None).unwrap();
        assert!(close(h, 1.0, EPS));
    }

    proptest! {
        #[test]
        fn prop_entropy_bounds(p in prob_vec(1..=64)) {
            let n = p.len() as f64;
            let h = entropy_nats(&p).unwrap();
            prop_assert!((0.0..=n.ln()).contains(&h));
            let hn = normalized_entropy(&p).unwrap();
            prop_assert!((0.0..=1.0).contains(&hn));
            let hb = entropy_bits(&p).unwrap();
            prop_assert!((hb - h / std::f64::consts::LN_2).abs() <= EPS);
        }

        #[test]
        fn prop_entropy_agrees_with_direct_sum(p in prob_vec(1..=64)) {
            // The inputs are normalized to within a few f32 ulps, so renormalizing changes
            // the result by about n · 2⁻²⁴ at most.
            let h = entropy_nats(&p).unwrap();
            prop_assert!((h - direct_entropy_nats(&p)).abs() <= 1e-5);
        }

        #[test]
        fn prop_entropy_permutation_invariant(p in prob_vec(1..=32), seed in any::<u64>()) {
            let mut q = p.clone();
            // Deterministic Fisher–Yates driven by a simple LCG.
            let mut s = seed;
            for i in (1..q.len()).rev() {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                q.swap(i, (s >> 33) as usize % (i + 1));
            }
            let a = entropy_nats(&p).unwrap();
            let b = entropy_nats(&q).unwrap();
            prop_assert!((a - b).abs() <= 1e-12);
        }

        #[test]
        fn prop_kl_nonnegative_and_zero_on_self(p in prob_vec(1..=32), q in prob_vec(1..=32)) {
            prop_assert_eq!(kl_divergence_nats(&p, &p).unwrap().to_bits(), 0.0f64.to_bits());
            if p.len() == q.len() {
                let d = kl_divergence_nats(&p, &q).unwrap();
                prop_assert!(d >= 0.0);
                prop_assert!(!d.is_nan());
            } else {
                let is_length_mismatch =
                    matches!(kl_divergence_nats(&p, &q), Err(Error::LengthMismatch { .. }));
                prop_assert!(is_length_mismatch);
            }
        }

        #[test]
        fn prop_row_entropies_match_rows(rows in proptest::collection::vec(prob_vec(5..=5), 0..8)) {
            let flat: Vec<f32> = rows.concat();
            let h = row_entropies(&flat, 5).unwrap();
            prop_assert_eq!(h.len(), rows.len());
            for (row, hr) in rows.iter().zip(&h) {
                prop_assert_eq!(entropy_nats(row).unwrap().to_bits(), hr.to_bits());
            }
        }

        #[test]
        fn prop_code_entropy_bounds(codes in proptest::collection::vec(any::<u8>(), 1..512)) {
            let h = code_entropy_bits(&codes).unwrap();
            let mut distinct = codes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert!(h >= 0.0 && h <= (distinct.len() as f64).log2() + EPS);
            // Relabelling the codes does not change the entropy.
            let relabelled: Vec<u16> = codes.iter().map(|&c| u16::from(c) * 256 + 3).collect();
            prop_assert!((code_entropy_bits_u16(&relabelled).unwrap() - h).abs() <= EPS);
        }

        #[test]
        fn prop_histogram_entropy_bounds(
            values in proptest::collection::vec(-1e6f32..1e6, 1..256),
            bins in 1usize..64,
        ) {
            let h = histogram_entropy_bits(&values, bins, None).unwrap();
            prop_assert!(h >= 0.0 && h <= (bins as f64).log2() + EPS);
        }
    }
}
