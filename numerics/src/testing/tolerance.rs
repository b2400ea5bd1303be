//! Named tolerances and an `assert_close` that reports the worst element.

use std::fmt::Debug;

/// A combined absolute and relative tolerance: `got` is close to `expected` when
/// `|got − expected| ≤ abs + rel · |expected|`.
///
/// Tests name their tolerance instead of writing literals: start from a preset, scale the
/// absolute part for reductions with [`scaled_abs`](Self::scaled_abs), or build one with
/// [`rel_abs`](Self::rel_abs). Modelled on burn's `burn-std/src/data/compare.rs`; the
/// presets are `torch.testing.assert_close`'s defaults for each dtype.
///
/// # Example
///
/// ```
/// use numerics::testing::Tolerance;
///
/// assert!(Tolerance::F16.allows(1000.0, 1000.9));
/// assert!(!Tolerance::F16.allows(1000.0, 1001.1));
/// // A dot product of 4096 terms: each term may contribute its own rounding.
/// let tol = Tolerance::F32.scaled_abs(4096);
/// assert!(tol.allows(0.0, 0.04));
/// assert!(Tolerance::EXACT.allows(f64::NAN, f64::NAN));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative part, a multiple of `|expected|`.
    pub rel: f64,
    /// Absolute part.
    pub abs: f64,
}

impl Tolerance {
    /// Bit-for-bit agreement (up to `+0 == −0`; NaN matches NaN).
    pub const EXACT: Self = Self::rel_abs(0.0, 0.0);
    /// Single precision: `rel = 1.3e-6` (about 11 ulps of 2⁻²³), `abs = 1e-5`.
    pub const F32: Self = Self::rel_abs(1.3e-6, 1e-5);
    /// IEEE half precision (10 explicit mantissa bits): `rel = 1e-3`, `abs = 1e-5`.
    pub const F16: Self = Self::rel_abs(1e-3, 1e-5);
    /// bfloat16 (7 explicit mantissa bits): `rel = 1.6e-2`, `abs = 1e-5`.
    pub const BF16: Self = Self::rel_abs(1.6e-2, 1e-5);

    /// A tolerance with the given relative and absolute parts.
    ///
    /// # Panics
    ///
    /// If either part is negative or NaN (`+∞` is accepted and allows any finite error).
    #[must_use]
    pub const fn rel_abs(rel: f64, abs: f64) -> Self {
        assert!(
            rel >= 0.0 && abs >= 0.0,
            "Tolerance parts must be non-negative"
        );
        Self { rel, abs }
    }

    /// This tolerance with its absolute part multiplied by `k` (at least 1), for results that
    /// are reductions over `k` terms, each of which may contribute its own rounding error
    /// (candle scales matmul errors by the vector length the same way).
    #[must_use]
    pub const fn scaled_abs(self, k: usize) -> Self {
        let k = if k == 0 { 1 } else { k };
        Self {
            rel: self.rel,
            abs: self.abs * k as f64,
        }
    }

    /// The looser of two tolerances, part by part (for an op that mixes precisions).
    #[must_use]
    pub const fn max(self, other: Self) -> Self {
        Self {
            rel: self.rel.max(other.rel),
            abs: self.abs.max(other.abs),
        }
    }

    /// The largest `|got − expected|` this tolerance allows at `expected`:
    /// `abs + rel · |expected|`.
    #[must_use]
    pub fn bound(self, expected: f64) -> f64 {
        self.abs + self.rel * expected.abs()
    }

    /// Whether `got` is within this tolerance of `expected`.
    ///
    /// NaN matches only NaN; an infinity matches only the same infinity; otherwise
    /// `|got − expected| ≤ abs + rel · |expected|`.
    #[must_use]
    pub fn allows(self, expected: f64, got: f64) -> bool {
        if expected.is_nan() || got.is_nan() {
            return expected.is_nan() && got.is_nan();
        }
        if expected.is_infinite() || got.is_infinite() {
            return expected.to_bits() == got.to_bits();
        }
        (got - expected).abs() <= self.bound(expected)
    }

    /// How far outside this tolerance `got` is: `|got − expected| / bound`, `+∞` for a
    /// NaN, infinity or zero-bound mismatch. Only called on elements that fail.
    fn excess(self, expected: f64, got: f64) -> f64 {
        let bound = self.bound(expected);
        let err = (got - expected).abs();
        if err.is_finite() && bound > 0.0 {
            err / bound
        } else {
            f64::INFINITY
        }
    }
}

/// Panics unless every `got[i]` is within `tol` of `expected[i]`, reporting the worst
/// element: its index, expected and actual values, absolute and relative error, and the
/// tolerance, plus how many elements failed. `name` identifies the check in the message.
///
/// The worst element is the one furthest outside the tolerance relative to its allowed
/// error (a NaN or infinity mismatch counts as infinitely far; ties go to the first).
///
/// # Panics
///
/// If the lengths differ or any element is outside the tolerance.
#[track_caller]
pub fn assert_close(name: &str, expected: &[f32], got: &[f32], tol: Tolerance) {
    assert_close_impl(name, expected, got, tol);
}

/// [`assert_close`] for `f64` data (reference implementations that keep `f64` results).
///
/// # Panics
///
/// If the lengths differ or any element is outside the tolerance.
#[track_caller]
pub fn assert_close_f64(name: &str, expected: &[f64], got: &[f64], tol: Tolerance) {
    assert_close_impl(name, expected, got, tol);
}

#[track_caller]
fn assert_close_impl<T: Copy + Into<f64> + Debug>(
    name: &str,
    expected: &[T],
    got: &[T],
    tol: Tolerance,
) {
    assert!(
        expected.len() == got.len(),
        "assert_close({name}): length mismatch: expected {} elements, got {}",
        expected.len(),
        got.len()
    );
    let mut failures = 0usize;
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&e, &g)) in expected.iter().zip(got).enumerate() {
        let (e, g) = (e.into(), g.into());
        if tol.allows(e, g) {
            continue;
        }
        failures += 1;
        let x = tol.excess(e, g);
        if worst.is_none_or(|(_, w)| x > w) {
            worst = Some((i, x));
        }
    }
    if let Some((i, _)) = worst {
        let (e, g) = (expected[i], got[i]);
        let (e64, g64): (f64, f64) = (e.into(), g.into());
        let abs_err = (g64 - e64).abs();
        let rel_err = abs_err / e64.abs();
        panic!(
            "assert_close({name}): {failures} of {len} elements outside tolerance; \
             worst at index {i}: expected {e:?}, got {g:?}, abs err {abs_err:e}, \
             rel err {rel_err:e}; tolerance rel {rel:e}, abs {abs:e} \
             (allowed abs err {bound:e} here)",
            len = expected.len(),
            rel = tol.rel,
            abs = tol.abs,
            bound = tol.bound(e64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn presets_are_ordered() {
        const {
            assert!(Tolerance::EXACT.rel < Tolerance::F32.rel);
            assert!(Tolerance::F32.rel < Tolerance::F16.rel);
            assert!(Tolerance::F16.rel < Tolerance::BF16.rel);
        }
        // Half a unit in the last place of each format at 1.0 is allowed.
        assert!(Tolerance::F32.allows(1.0, 1.0 + f64::from(f32::EPSILON) / 2.0));
        assert!(Tolerance::F16.allows(1.0, 1.0 + 2f64.powi(-11)));
        assert!(Tolerance::BF16.allows(1.0, 1.0 + 2f64.powi(-8)));
        assert!(!Tolerance::F16.allows(1.0, 1.0 + 2f64.powi(-8)));
    }

    #[test]
    fn exact() {
        let t = Tolerance::EXACT;
        assert!(t.allows(1.5, 1.5));
        assert!(t.allows(0.0, -0.0));
        assert!(!t.allows(1.0, 1.0 + f64::EPSILON));
        assert!(!t.allows(1e-300, 0.0));
    }

    #[test]
    fn nan_and_infinity() {
        for t in [
            Tolerance::EXACT,
            Tolerance::BF16,
            Tolerance::rel_abs(1.0, 1e30),
        ] {
            assert!(t.allows(f64::NAN, f64::NAN));
            assert!(!t.allows(f64::NAN, 1.0));
            assert!(!t.allows(1.0, f64::NAN));
            assert!(t.allows(f64::INFINITY, f64::INFINITY));
            assert!(t.allows(f64::NEG_INFINITY, f64::NEG_INFINITY));
            assert!(!t.allows(f64::INFINITY, f64::NEG_INFINITY));
            assert!(!t.allows(f64::INFINITY, f64::MAX));
            assert!(!t.allows(1.0, f64::INFINITY));
        }
        // An infinite tolerance allows any finite error, never a NaN.
        let any = Tolerance::rel_abs(0.0, f64::INFINITY);
        assert!(any.allows(0.0, f64::MAX));
        assert!(!any.allows(0.0, f64::NAN));
    }

    #[test]
    fn rel_and_abs_parts() {
        let t = Tolerance::rel_abs(0.1, 0.01);
        assert!(t.allows(100.0, 110.0));
        assert!(!t.allows(100.0, 110.1));
        assert!(t.allows(0.0, 0.01));
        assert!(!t.allows(0.0, 0.0101));
        assert!(t.allows(-100.0, -90.0));
    }

    #[test]
    fn scaling_and_max() {
        let t = Tolerance::rel_abs(1e-3, 1e-6);
        assert!(!t.allows(0.0, 1e-4));
        assert!(t.scaled_abs(100).allows(0.0, 0.9e-4));
        assert!(!t.scaled_abs(100).allows(0.0, 1.1e-4));
        assert_eq!(t.scaled_abs(0), t);
        assert_eq!(t.scaled_abs(1), t);
        let m = Tolerance::F32.max(Tolerance::rel_abs(0.0, 1.0));
        assert_eq!(m, Tolerance::rel_abs(Tolerance::F32.rel, 1.0));
    }

    #[test]
    #[should_panic(expected = "Tolerance parts must be non-negative")]
    fn negative_tolerance_panics() {
        let _ = Tolerance::rel_abs(-1.0, 0.0);
    }

    #[test]
    #[should_panic(expected = "Tolerance parts must be non-negative")]
    fn nan_tolerance_panics() {
        let _ = Tolerance::rel_abs(0.0, f64::NAN);
    }

    #[test]
    fn assert_close_passes() {
        assert_close("empty", &[], &[], Tolerance::EXACT);
        assert_close(
            "ok",
            &[1.0, f32::NAN, f32::INFINITY],
            &[1.0, f32::NAN, f32::INFINITY],
            Tolerance::EXACT,
        );
        assert_close_f64("ok64", &[1.0, 2.0], &[1.0 + 1e-9, 2.0], Tolerance::F32);
    }

    #[test]
    #[should_panic(expected = "2 of 4 elements outside tolerance; worst at index 2: \
                               expected 3.0, got 3.5")]
    fn assert_close_names_the_worst_element() {
        // Index 1 fails by a little, index 2 by more.
        assert_close(
            "worst",
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0, 2.01, 3.5, 4.0],
            Tolerance::rel_abs(0.0, 1e-3),
        );
    }

    #[test]
    #[should_panic(expected = "worst at index 1: expected 1.0, got 1.01")]
    fn assert_close_worst_is_relative_to_the_bound() {
        // Index 0 has the larger absolute error (2, twice its bound of 1); index 1 errs by
        // 0.01, ten times its bound of 1e-3.
        assert_close(
            "relative",
            &[1000.0, 1.0],
            &[1002.0, 1.01],
            Tolerance::rel_abs(1e-3, 0.0),
        );
    }

    #[test]
    #[should_panic(expected = "worst at index 1: expected 2.0, got NaN")]
    fn assert_close_nan_is_worst() {
        assert_close(
            "nan",
            &[1.0, 2.0, 3.0],
            &[100.0, f32::NAN, 3.0],
            Tolerance::F32,
        );
    }

    #[test]
    #[should_panic(expected = "tolerance rel 0e0, abs 1e-3")]
    fn assert_close_reports_the_tolerance() {
        assert_close("tol", &[0.0], &[1.0], Tolerance::rel_abs(0.0, 1e-3));
    }

    #[test]
    #[should_panic(expected = "assert_close(len): length mismatch: expected 2 elements, got 1")]
    fn assert_close_length_mismatch() {
        assert_close("len", &[1.0, 2.0], &[1.0], Tolerance::EXACT);
    }

    proptest! {
        #[test]
        fn prop_allows_is_reflexive(x in any::<u64>().prop_map(f64::from_bits)) {
            prop_assert!(Tolerance::EXACT.allows(x, x));
        }

        #[test]
        fn prop_looser_tolerance_allows_more(
            e in -1e6f64..1e6,
            g in -1e6f64..1e6,
            rel in 0.0f64..1.0,
            abs in 0.0f64..10.0,
        ) {
            let t = Tolerance::rel_abs(rel, abs);
            if t.allows(e, g) {
                prop_assert!(t.scaled_abs(3).allows(e, g));
                prop_assert!(t.max(Tolerance::BF16).allows(e, g));
            }
        }
    }
}
