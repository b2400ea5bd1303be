//! Proptest strategies for `f32` data and probability vectors.
//!
//! - [`any_f32_bits`]: every bit pattern, NaN payloads, infinities and subnormals included
//!   (for number-format conversions);
//! - [`finite_f32`]: every finite bit pattern;
//! - [`moderate_f32`] and [`f32_vec`]: finite values of moderate size whose sums and
//!   products stay far from overflow (for kernels: softmax, matmul, metrics);
//! - [`prob_vec`]: probability vectors with exact zeros.
//!
//! # Example
//!
//! ```
//! use numerics::testing::strategies::{f32_vec, prob_vec};
//! use proptest::prelude::*;
//!
//! proptest! {
//!     # #![proptest_config(ProptestConfig::with_cases(16))]
//!     fn entropy_is_bounded(p in prob_vec(1..=16)) {
//!         let h = numerics::entropy::normalized_entropy(&p).unwrap();
//!         prop_assert!((0.0..=1.0).contains(&h));
//!     }
//!
//!     fn mse_is_symmetric(a in f32_vec(8), b in f32_vec(8)) {
//!         let (ab, ba) = (numerics::metrics::mse(&a, &b), numerics::metrics::mse(&b, &a));
//!         prop_assert_eq!(ab.to_bits(), ba.to_bits());
//!     }
//! }
//! # entropy_is_bounded();
//! # mse_is_symmetric();
//! ```

use proptest::collection::{SizeRange, vec};
use proptest::prelude::*;

/// Any `f32` bit pattern, uniformly over the 2³² encodings: NaNs (with payloads and either
/// sign), ±∞, ±0, subnormals and normals. Shrinks toward `+0.0`.
pub fn any_f32_bits() -> impl Strategy<Value = f32> {
    any::<u32>().prop_map(f32::from_bits)
}

/// Any finite `f32` bit pattern (±0, subnormals, normals up to ±`f32::MAX`), uniformly
/// over encodings.
pub fn finite_f32() -> impl Strategy<Value = f32> {
    any_f32_bits().prop_filter("finite f32", |x| x.is_finite())
}

/// The bound of [`moderate_f32`]: values lie in `[−MODERATE_MAX, MODERATE_MAX]`.
pub const MODERATE_MAX: f32 = 1e3;

/// A finite `f32` in `[−1000, 1000]`, with exact zeros, ±1 and tiny (partly subnormal)
/// magnitudes mixed in, so that kernels meet their edge cases without overflowing.
pub fn moderate_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -MODERATE_MAX..=MODERATE_MAX,
        1 => -1.0f32..=1.0,
        1 => prop_oneof![Just(0.0f32), Just(-0.0), Just(1.0), Just(-1.0)],
        1 => -1e-37f32..=1e-37,
    ]
}

/// A vector of [`moderate_f32`] values with a length in `len` (`5`, `0..64`, `1..=8`, …).
pub fn f32_vec(len: impl Into<SizeRange>) -> impl Strategy<Value = Vec<f32>> {
    vec(moderate_f32(), len)
}

/// A probability vector with a length in `n`: non-negative `f32` entries, some exactly
/// zero, normalized in `f64` so that the sum is 1 within a few `f32` ulps times the length
/// (far inside [`crate::entropy::PROB_SUM_TOLERANCE`] for any practical length).
///
/// Shrinks toward short vectors and one-hot vectors.
///
/// # Panics
///
/// If `n` admits length 0 (a probability vector can't be empty).
pub fn prob_vec(n: impl Into<SizeRange>) -> impl Strategy<Value = Vec<f32>> {
    let n = n.into();
    assert!(n.start() >= 1, "prob_vec: lengths must be at least 1");
    let weight = prop_oneof![1 => Just(0.0f32), 4 => 0.0f32..=1.0];
    vec(weight, n).prop_map(|w| {
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        if sum > 0.0 {
            w.iter().map(|&x| (f64::from(x) / sum) as f32).collect()
        } else {
            // All weights zero: one-hot at the front.
            let mut p = vec![0.0; w.len()];
            p[0] = 1.0;
            p
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::PROB_SUM_TOLERANCE;

    proptest! {
        #[test]
        fn finite_is_finite(x in finite_f32()) {
            prop_assert!(x.is_finite());
        }

        #[test]
        fn moderate_is_bounded(v in f32_vec(0..32)) {
            prop_assert!(v.len() < 32);
            prop_assert!(v.iter().all(|x| x.abs() <= MODERATE_MAX));
        }

        #[test]
        fn prob_vec_is_a_probability_vector(p in prob_vec(1..=300)) {
            prop_assert!(!p.is_empty() && p.len() <= 300);
            prop_assert!(p.iter().all(|&x| (0.0..=1.0).contains(&x)));
            let sum: f64 = p.iter().map(|&x| f64::from(x)).sum();
            prop_assert!((sum - 1.0).abs() <= 1e-5 && (sum - 1.0).abs() <= PROB_SUM_TOLERANCE);
        }
    }

    #[test]
    fn any_bits_reaches_every_class() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = any_f32_bits();
        let (mut nan, mut sub, mut normal) = (false, false, false);
        // Encodings are uniform: NaNs are about 1/256 of them, subnormals 1/256.
        for _ in 0..20_000 {
            let x = strategy.new_tree(&mut runner).unwrap().current();
            nan |= x.is_nan();
            sub |= x.is_subnormal();
            normal |= x.is_normal();
        }
        assert!(nan && sub && normal, "nan {nan} sub {sub} normal {normal}");
    }

    #[test]
    #[should_panic(expected = "prob_vec: lengths must be at least 1")]
    fn prob_vec_rejects_empty_lengths() {
        let _ = prob_vec(0..4);
    }
}
