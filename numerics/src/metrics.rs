//! Error metrics between a reference and an approximation: MSE, maximum absolute and
//! relative error, relative L2 error, signal-to-quantization-noise ratio (SQNR), and ULP
//! distance within a format ([`ulp_distance`], [`f32_ulp_distance`]).
//!
//! # Conventions
//!
//! - Inputs are `f32` slices; every sum and quotient is computed in `f64`.
//! - The per-element error is `eᵢ = |aᵢ − rᵢ|`, except that an element reproduced exactly
//!   (`aᵢ == rᵢ`, which includes equal infinities, or both NaN) has `eᵢ = 0`. So an exact
//!   copy always scores as exact, even when it holds infinities or NaN.
//! - Otherwise a NaN or infinity in either input makes the affected metrics NaN or infinite:
//!   a broken kernel can't hide behind `f64::max`, which ignores NaN. [`ErrorStats`] also
//!   counts the non-finite approximations.
//! - Empty inputs give the values of an exact reproduction (errors 0, SQNR `+∞`); see each
//!   function.
//!
//! These are slice-level kernels: passing slices of different lengths is a contract
//! violation and panics (as `half`'s slice conversions do).
//!
//! # Example
//!
//! ```
//! use numerics::metrics::{error_stats, max_abs_error, mse, sqnr_db};
//!
//! let reference = [1.0f32, -2.0, 3.0, 0.0];
//! let approx = [1.0f32, -2.5, 3.0, 0.5];
//! assert!((mse(&reference, &approx) - 0.125).abs() < 1e-12);
//! assert!((max_abs_error(&reference, &approx) - 0.5).abs() < 1e-12);
//! // Σr² = 14, Σe² = 0.5: 10 · log₁₀ 28 ≈ 14.47 dB.
//! assert!((sqnr_db(&reference, &approx) - 10.0 * 28f64.log10()).abs() < 1e-12);
//! assert!(sqnr_db(&reference, &reference).is_infinite());
//!
//! let stats = error_stats(&reference, &approx);
//! assert_eq!(stats.len, 4);
//! assert!((stats.max_rel - 0.25).abs() < 1e-12);
//! ```

/// Panics unless the two slices have the same length.
#[track_caller]
fn check_len(op: &str, reference: &[f32], approx: &[f32]) {
    assert!(
        reference.len() == approx.len(),
        "{op}: reference and approx lengths differ ({} vs {})",
        reference.len(),
        approx.len()
    );
}

/// The signed error `a − r` in `f64`, or 0 for an exact reproduction (equal, or both NaN).
///
/// Equal bit patterns cover equal infinities; `+0` vs `−0` falls through to `0 − 0 = 0`.
#[inline]
fn diff(r: f32, a: f32) -> f64 {
    if r.to_bits() == a.to_bits() || (r.is_nan() && a.is_nan()) {
        0.0
    } else {
        f64::from(a) - f64::from(r)
    }
}

/// The relative error `e / |r|` for `r ≠ 0`; 0 when `e` is 0 (so `r = ∞` or NaN reproduced
/// exactly is exact, not `0/∞` or `0/NaN`).
#[inline]
fn rel(e: f64, r: f32) -> f64 {
    if e == 0.0 {
        0.0
    } else {
        e / f64::from(r).abs()
    }
}

/// `max` that propagates NaN: once either argument is NaN the result is NaN.
#[inline]
fn nan_max(acc: f64, x: f64) -> f64 {
    if x > acc || x.is_nan() { x } else { acc }
}

/// SQNR in dB from the signal and noise energies.
fn sqnr_from(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// Relative L2 error from the two energies.
fn rel_l2_from(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        0.0
    } else {
        (noise / signal).sqrt()
    }
}

/// Mean squared error `Σ(aᵢ − rᵢ)² / n`, accumulated in `f64`; 0 for empty input.
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn mse(reference: &[f32], approx: &[f32]) -> f64 {
    check_len("mse", reference, approx);
    if reference.is_empty() {
        return 0.0;
    }
    let sum: f64 = reference
        .iter()
        .zip(approx)
        .map(|(&r, &a)| {
            let d = diff(r, a);
            d * d
        })
        .sum();
    sum / reference.len() as f64
}

/// Maximum absolute error `maxᵢ |aᵢ − rᵢ|`; 0 for empty input, NaN if any error is NaN.
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn max_abs_error(reference: &[f32], approx: &[f32]) -> f64 {
    check_len("max_abs_error", reference, approx);
    reference
        .iter()
        .zip(approx)
        .fold(0.0, |m, (&r, &a)| nan_max(m, diff(r, a).abs()))
}

/// Maximum relative error `maxᵢ |aᵢ − rᵢ| / |rᵢ|` over the entries where `rᵢ ≠ 0`.
///
/// Entries with `rᵢ = 0` are skipped, since their relative error is undefined; bound them
/// with [`max_abs_error`]. The result is 0 when there are no such entries (empty input or an
/// all-zero reference) and NaN if any considered error is NaN.
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn max_rel_error(reference: &[f32], approx: &[f32]) -> f64 {
    check_len("max_rel_error", reference, approx);
    reference
        .iter()
        .zip(approx)
        .filter(|&(&r, _)| r != 0.0)
        .fold(0.0, |m, (&r, &a)| nan_max(m, rel(diff(r, a).abs(), r)))
}

/// Relative L2 error `‖a − r‖₂ / ‖r‖₂`.
///
/// 0 when `a` reproduces `r` exactly (including empty input); `+∞` when `r` is all zeros
/// and `a` is not.
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn rel_l2_error(reference: &[f32], approx: &[f32]) -> f64 {
    check_len("rel_l2_error", reference, approx);
    let (signal, noise) = energies(reference, approx);
    rel_l2_from(signal, noise)
}

/// Signal-to-quantization-noise ratio in decibels, `10 · log₁₀(Σrᵢ² / Σ(aᵢ − rᵢ)²)`.
///
/// `+∞` when `a` reproduces `r` exactly (including empty input and an all-zero `r`);
/// `−∞` when `r` is all zeros and `a` is not. Each halving of the RMS error adds about
/// 6.02 dB.
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn sqnr_db(reference: &[f32], approx: &[f32]) -> f64 {
    check_len("sqnr_db", reference, approx);
    let (signal, noise) = energies(reference, approx);
    sqnr_from(signal, noise)
}

/// `(Σrᵢ², Σ(aᵢ − rᵢ)²)` in `f64`.
fn energies(reference: &[f32], approx: &[f32]) -> (f64, f64) {
    reference
        .iter()
        .zip(approx)
        .fold((0.0, 0.0), |(s, n), (&r, &a)| {
            let r64 = f64::from(r);
            let d = diff(r, a);
            (s + r64 * r64, n + d * d)
        })
}

/// All error metrics of an approximation, computed in one pass by [`error_stats`].
///
/// Each field equals what the corresponding function returns on the same input.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ErrorStats {
    /// Number of elements compared.
    pub len: usize,
    /// Mean squared error, as [`mse`].
    pub mse: f64,
    /// Maximum absolute error, as [`max_abs_error`].
    pub max_abs: f64,
    /// Maximum relative error over non-zero reference entries, as [`max_rel_error`].
    pub max_rel: f64,
    /// Relative L2 error, as [`rel_l2_error`].
    pub rel_l2: f64,
    /// Signal-to-quantization-noise ratio in dB, as [`sqnr_db`].
    pub sqnr_db: f64,
    /// How many approximated values are NaN or infinite.
    pub non_finite: usize,
}

/// Computes every metric of [`ErrorStats`] in one pass over the inputs (for ablation
/// tables, which need all of them at once).
///
/// # Panics
///
/// If `reference.len() != approx.len()`.
#[track_caller]
pub fn error_stats(reference: &[f32], approx: &[f32]) -> ErrorStats {
    check_len("error_stats", reference, approx);
    let mut signal = 0.0f64;
    let mut noise = 0.0f64;
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut non_finite = 0usize;
    for (&r, &a) in reference.iter().zip(approx) {
        let r64 = f64::from(r);
        let d = diff(r, a);
        let e = d.abs();
        signal += r64 * r64;
        noise += d * d;
        max_abs = nan_max(max_abs, e);
        if r != 0.0 {
            max_rel = nan_max(max_rel, rel(e, r));
        }
        non_finite += usize::from(!a.is_finite());
    }
    let len = reference.len();
    ErrorStats {
        len,
        mse: if len == 0 { 0.0 } else { noise / len as f64 },
        max_abs,
        max_rel,
        rel_l2: rel_l2_from(signal, noise),
        sqnr_db: sqnr_from(signal, noise),
        non_finite,
    }
}

/// Distance in representable steps of `format` between `a` and `b`, counting across zero
/// (±0 are one point): 0 when they round to the same value, 1 for neighbours.
///
/// Values that are not representable are rounded with the format's plain cast first, so
/// the answer is exact for values that are (the usual case: comparing two results already
/// in the format). `None` if either rounds to NaN or an infinity.
///
/// ```
/// use numerics::{metrics::ulp_distance, Format};
/// assert_eq!(ulp_distance(Format::F8E4M3FN, 1.0, 1.125), Some(1));
/// assert_eq!(ulp_distance(Format::BF16, -0.0, 0.0), Some(0));
/// assert_eq!(ulp_distance(Format::F8E5M2, 1.0, f32::INFINITY), None);
/// ```
pub fn ulp_distance(format: crate::Format, a: f32, b: f32) -> Option<u32> {
    format
        .spec()
        .ulp_distance(format.encode(a), format.encode(b))
}

/// Distance in `f32` ulps between `a` and `b`, counting across zero (±0 are one point).
/// `None` if either is NaN.
///
/// ```
/// use numerics::metrics::f32_ulp_distance;
/// assert_eq!(f32_ulp_distance(1.0, 1.0 + f32::EPSILON), Some(1));
/// assert_eq!(f32_ulp_distance(-f32::from_bits(1), f32::from_bits(1)), Some(2));
/// ```
pub fn f32_ulp_distance(a: f32, b: f32) -> Option<u64> {
    if a.is_nan() || b.is_nan() {
        return None;
    }
    let ordinal = |x: f32| {
        let mag = (x.to_bits() & 0x7FFF_FFFF) as i64;
        if x.is_sign_negative() { -mag } else { mag }
    };
    Some(ordinal(a).abs_diff(ordinal(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn is_pos_inf(x: f64) -> bool {
        x.is_infinite() && x > 0.0
    }

    #[test]
    fn simple_values() {
        let r = [1.0f32, -2.0, 4.0, 0.0];
        let a = [1.5f32, -2.0, 3.0, 0.25];
        // Errors: 0.5, 0, 1, 0.25.
        assert!(close(mse(&r, &a), (0.25 + 1.0 + 0.0625) / 4.0, 1e-15));
        assert!(close(max_abs_error(&r, &a), 1.0, 0.0));
        // Relative: 0.5, 0, 0.25, (skipped).
        assert!(close(max_rel_error(&r, &a), 0.5, 0.0));
        let signal = 1.0f64 + 4.0 + 16.0;
        let noise = 0.25f64 + 1.0 + 0.0625;
        assert!(close(rel_l2_error(&r, &a), (noise / signal).sqrt(), 1e-15));
        assert!(close(
            sqnr_db(&r, &a),
            10.0 * (signal / noise).log10(),
            1e-12
        ));
    }

    #[test]
    fn sqnr_of_uniform_noise_scale() {
        // Halving the error adds 20·log₁₀ 2 ≈ 6.02 dB.
        let r = [1.0f32, 2.0, 3.0, 4.0];
        let a1: Vec<f32> = r.iter().map(|x| x + 0.5).collect();
        let a2: Vec<f32> = r.iter().map(|x| x + 0.25).collect();
        let gain = sqnr_db(&r, &a2) - sqnr_db(&r, &a1);
        assert!(close(gain, 20.0 * 2f64.log10(), 1e-12));
    }

    #[test]
    fn empty_and_zero_reference() {
        let e: [f32; 0] = [];
        assert!(close(mse(&e, &e), 0.0, 0.0));
        assert!(close(max_abs_error(&e, &e), 0.0, 0.0));
        assert!(close(max_rel_error(&e, &e), 0.0, 0.0));
        assert!(close(rel_l2_error(&e, &e), 0.0, 0.0));
        assert!(is_pos_inf(sqnr_db(&e, &e)));

        let z = [0.0f32; 3];
        let a = [0.0f32, 1.0, 0.0];
        assert!(close(max_rel_error(&z, &a), 0.0, 0.0));
        assert!(is_pos_inf(rel_l2_error(&z, &a)));
        let s = sqnr_db(&z, &a);
        assert!(s.is_infinite() && s < 0.0);
        assert!(is_pos_inf(sqnr_db(&z, &z)));
        assert!(close(rel_l2_error(&z, &z), 0.0, 0.0));

        let stats = error_stats(&e, &e);
        assert_eq!(stats.len, 0);
        assert!(close(stats.mse, 0.0, 0.0));
        assert!(is_pos_inf(stats.sqnr_db));
    }

    #[test]
    fn non_finite_inputs() {
        let r = [1.0f32, f32::INFINITY, f32::NAN];
        // An exact copy is exact, even with infinities and NaN.
        assert!(close(mse(&r, &r), 0.0, 0.0));
        assert!(close(max_abs_error(&r, &r), 0.0, 0.0));
        assert!(is_pos_inf(sqnr_db(&r, &r)));
        let s = error_stats(&r, &r);
        assert_eq!(s.non_finite, 2);
        assert!(close(s.max_rel, 0.0, 0.0));

        // A NaN where a number was expected is never hidden.
        let r = [1.0f32, 2.0, 3.0];
        let a = [1.0f32, f32::NAN, 100.0];
        assert!(mse(&r, &a).is_nan());
        assert!(max_abs_error(&r, &a).is_nan());
        assert!(max_rel_error(&r, &a).is_nan());
        assert!(sqnr_db(&r, &a).is_nan());
        let a = [1.0f32, 100.0, f32::NAN];
        assert!(max_abs_error(&r, &a).is_nan());
        let s = error_stats(&r, &a);
        assert!(s.max_abs.is_nan() && s.max_rel.is_nan() && s.mse.is_nan());
        assert_eq!(s.non_finite, 1);

        // An overflow to infinity is an infinite error.
        let a = [1.0f32, f32::INFINITY, 3.0];
        assert!(is_pos_inf(max_abs_error(&r, &a)));
        assert!(is_pos_inf(mse(&r, &a)));
        let s = sqnr_db(&r, &a);
        assert!(s.is_infinite() && s < 0.0);
        assert_eq!(error_stats(&r, &a).non_finite, 1);
    }

    #[test]
    fn f32_extremes_do_not_overflow() {
        let r = [f32::MAX, -f32::MAX];
        let a = [-f32::MAX, f32::MAX];
        let e = 2.0 * f64::from(f32::MAX);
        assert!(close(mse(&r, &a), e * e, e * e * 1e-15));
        assert!(close(max_abs_error(&r, &a), e, 0.0));
        assert!(close(max_rel_error(&r, &a), 2.0, 0.0));
        assert!(close(sqnr_db(&r, &a), 10.0 * 0.25f64.log10(), 1e-12));
    }

    #[test]
    #[should_panic(expected = "mse: reference and approx lengths differ (2 vs 3)")]
    fn mse_length_mismatch_panics() {
        mse(&[1.0, 2.0], &[1.0, 2.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "lengths differ")]
    fn sqnr_length_mismatch_panics() {
        sqnr_db(&[1.0], &[]);
    }

    #[test]
    #[should_panic(expected = "error_stats")]
    fn error_stats_length_mismatch_panics() {
        error_stats(&[], &[1.0]);
    }

    #[test]
    #[should_panic(expected = "max_abs_error: reference and approx lengths differ (1 vs 0)")]
    fn max_abs_length_mismatch_panics() {
        max_abs_error(&[1.0], &[]);
    }

    #[test]
    #[should_panic(expected = "max_rel_error")]
    fn max_rel_length_mismatch_panics() {
        max_rel_error(&[1.0], &[]);
    }

    #[test]
    #[should_panic(expected = "rel_l2_error")]
    fn rel_l2_length_mismatch_panics() {
        rel_l2_error(&[1.0], &[]);
    }

    fn vec_pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..64).prop_flat_map(|n| {
            (
                proptest::collection::vec(-1e6f32..1e6, n),
                proptest::collection::vec(-1e6f32..1e6, n),
            )
        })
    }

    fn same_bits(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }

    proptest! {
        #[test]
        fn prop_exact_copy(r in proptest::collection::vec(-1e30f32..1e30, 0..64)) {
            prop_assert!(is_pos_inf(sqnr_db(&r, &r)));
            prop_assert!(same_bits(mse(&r, &r), 0.0));
            prop_assert!(same_bits(max_abs_error(&r, &r), 0.0));
            prop_assert!(same_bits(max_rel_error(&r, &r), 0.0));
            prop_assert!(same_bits(rel_l2_error(&r, &r), 0.0));
        }

        #[test]
        fn prop_mse_nonnegative_and_symmetric((r, a) in vec_pair()) {
            let m = mse(&r, &a);
            prop_assert!(m >= 0.0);
            prop_assert!(same_bits(m, mse(&a, &r)));
            prop_assert!(same_bits(max_abs_error(&r, &a), max_abs_error(&a, &r)));
            // The largest squared error bounds the mean.
            let mx = max_abs_error(&r, &a);
            prop_assert!(m <= mx * mx * (1.0 + 1e-12));
        }

        #[test]
        fn prop_stats_match_functions((r, a) in vec_pair()) {
            let s = error_stats(&r, &a);
            prop_assert_eq!(s.len, r.len());
            prop_assert_eq!(s.non_finite, 0);
            // Same operations in the same order: bit-identical.
            prop_assert!(same_bits(s.mse, mse(&r, &a)));
            prop_assert!(same_bits(s.max_abs, max_abs_error(&r, &a)));
            prop_assert!(same_bits(s.max_rel, max_rel_error(&r, &a)));
            prop_assert!(same_bits(s.rel_l2, rel_l2_error(&r, &a)));
            prop_assert!(same_bits(s.sqnr_db, sqnr_db(&r, &a)));
        }

        #[test]
        fn prop_sqnr_matches_rel_l2((r, a) in vec_pair()) {
            // SQNR = −20 · log₁₀(relative L2 error).
            let s = sqnr_db(&r, &a);
            let e = rel_l2_error(&r, &a);
            if e > 0.0 && e.is_finite() {
                prop_assert!((s + 20.0 * e.log10()).abs() <= 1e-9 * (1.0 + s.abs()));
            }
        }

        #[test]
        fn prop_agrees_with_direct_f64((r, a) in vec_pair()) {
            let n = r.len();
            let d: Vec<f64> = r.iter().zip(&a).map(|(&x, &y)| f64::from(y) - f64::from(x)).collect();
            let direct_mse = if n == 0 { 0.0 } else { d.iter().map(|x| x * x).sum::<f64>() / n as f64 };
            let direct_max = d.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            prop_assert!((mse(&r, &a) - direct_mse).abs() <= 1e-12 * direct_mse);
            prop_assert!(same_bits(max_abs_error(&r, &a), direct_max));
        }
    }
}
