//! Deterministic random test data: a seeded [`StdRng`] and uniform, normal and
//! probability-vector fills.
//!
//! Every test that needs random data starts from [`seeded`] with a fixed seed, so failures
//! reproduce (faer's tests seed `StdRng::seed_from_u64` the same way). Normal samples use
//! the Box–Muller transform in `f64`, since `rand` alone has no normal distribution.
//!
//! # Example
//!
//! ```
//! use numerics::testing::rng;
//!
//! let mut r = rng::seeded(7);
//! let x = rng::uniform_vec(&mut r, 16, -1.0, 1.0);
//! assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
//! let p = rng::prob_vec(&mut r, 16);
//! assert!((p.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() < 1e-5);
//! // Same seed, same data.
//! assert_eq!(rng::normal_vec(&mut rng::seeded(1), 5), rng::normal_vec(&mut rng::seeded(1), 5));
//! ```

use rand::distr::Uniform;
pub use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

/// A deterministic generator seeded from `seed`.
#[must_use]
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Fills `out` with independent samples uniform on `[lo, hi)`.
///
/// # Panics
///
/// Unless `lo < hi` and both are finite.
pub fn fill_uniform<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32], lo: f32, hi: f32) {
    assert!(
        lo.is_finite() && hi.is_finite() && lo < hi,
        "fill_uniform: need finite lo < hi, got [{lo}, {hi})"
    );
    let dist = Uniform::new(lo, hi).expect("checked: finite lo < hi");
    for x in out {
        *x = rng.sample(dist);
    }
}

/// `n` independent samples uniform on `[lo, hi)`; see [`fill_uniform`].
///
/// # Panics
///
/// Unless `lo < hi` and both are finite.
#[must_use]
pub fn uniform_vec<R: Rng + ?Sized>(rng: &mut R, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut out = vec![0.0; n];
    fill_uniform(rng, &mut out, lo, hi);
    out
}

/// Two independent standard normal samples by the Box–Muller transform (Box & Muller 1958).
fn box_muller<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    // `random::<f64>()` is uniform on [0, 1); 1 − u is on (0, 1], so ln never sees 0.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let radius = (-2.0 * u1.ln()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
    (radius * cos, radius * sin)
}

/// Fills `out` with independent normal samples of the given mean and standard deviation,
/// computed in `f64` and rounded to `f32`.
///
/// # Panics
///
/// Unless `mean` is finite and `std` is finite and non-negative.
pub fn fill_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32], mean: f32, std: f32) {
    assert!(
        mean.is_finite() && std.is_finite() && std >= 0.0,
        "fill_normal: need finite mean and std >= 0, got mean {mean}, std {std}"
    );
    let (mean, std) = (f64::from(mean), f64::from(std));
    for pair in out.chunks_mut(2) {
        let (z0, z1) = box_muller(rng);
        pair[0] = (mean + std * z0) as f32;
        if let Some(x) = pair.get_mut(1) {
            *x = (mean + std * z1) as f32;
        }
    }
}

/// `n` independent standard normal samples (mean 0, standard deviation 1).
#[must_use]
pub fn normal_vec<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n];
    fill_normal(rng, &mut out, 0.0, 1.0);
    out
}

/// A random probability vector of length `n`, uniform on the probability simplex
/// (normalized exponential samples, i.e. Dirichlet(1, …, 1)).
///
/// Entries are positive; normalized in `f64` and rounded to `f32`, they sum to 1 within
/// a few `f32` ulps times `n`, far inside [`crate::entropy::PROB_SUM_TOLERANCE`].
///
/// # Panics
///
/// If `n` is 0.
#[must_use]
pub fn prob_vec<R: Rng + ?Sized>(rng: &mut R, n: usize) -> Vec<f32> {
    assert!(n > 0, "prob_vec: n must be at least 1");
    let w: Vec<f64> = (0..n).map(|_| -(1.0 - rng.random::<f64>()).ln()).collect();
    let sum: f64 = w.iter().sum();
    if sum > 0.0 {
        w.iter().map(|&x| (x / sum) as f32).collect()
    } else {
        // Every draw was exactly 0 (probability about 2⁻⁵³ⁿ): fall back to uniform.
        vec![1.0 / n as f32; n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_var(x: &[f32]) -> (f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var)
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn deterministic() {
        let a = normal_vec(&mut seeded(3), 101);
        let b = normal_vec(&mut seeded(3), 101);
        let c = normal_vec(&mut seeded(4), 101);
        assert!(same_bits(&a, &b));
        assert!(!same_bits(&a, &c));
        assert!(same_bits(
            &uniform_vec(&mut seeded(9), 10, 0.0, 1.0),
            &uniform_vec(&mut seeded(9), 10, 0.0, 1.0)
        ));
    }

    #[test]
    fn normal_moments() {
        let x = normal_vec(&mut seeded(11), 100_001);
        assert_eq!(x.len(), 100_001);
        assert!(x.iter().all(|v| v.is_finite()));
        let (mean, var) = mean_and_var(&x);
        // Standard errors: 1/√n ≈ 0.003 for the mean, √(2/n) ≈ 0.0045 for the variance.
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "var {var}");
        // About 68.3% within one standard deviation.
        let within = x.iter().filter(|v| v.abs() < 1.0).count() as f64 / x.len() as f64;
        assert!((within - 0.6827).abs() < 0.01, "within {within}");

        let mut y = vec![0.0f32; 50_000];
        fill_normal(&mut seeded(12), &mut y, 5.0, 0.5);
        let (mean, var) = mean_and_var(&y);
        assert!((mean - 5.0).abs() < 0.02 && (var - 0.25).abs() < 0.02);
    }

    #[test]
    fn uniform_range_and_moments() {
        let x = uniform_vec(&mut seeded(5), 50_000, -2.0, 6.0);
        assert!(x.iter().all(|v| (-2.0..6.0).contains(v)));
        let (mean, var) = mean_and_var(&x);
        assert!((mean - 2.0).abs() < 0.05, "mean {mean}");
        assert!((var - 64.0 / 12.0).abs() < 0.1, "var {var}");
    }

    #[test]
    fn prob_vectors() {
        let mut r = seeded(21);
        for n in [1usize, 2, 3, 100, 4097] {
            let p = prob_vec(&mut r, n);
            assert_eq!(p.len(), n);
            assert!(p.iter().all(|&v| v > 0.0 && v <= 1.0));
            let sum: f64 = p.iter().map(|&v| f64::from(v)).sum();
            assert!((sum - 1.0).abs() < 1e-5, "n {n}: sum {sum}");
            assert!(crate::entropy::entropy_nats(&p).is_ok());
        }
    }

    #[test]
    #[should_panic(expected = "fill_uniform: need finite lo < hi")]
    fn uniform_rejects_empty_range() {
        let _ = uniform_vec(&mut seeded(0), 3, 1.0, 1.0);
    }

    #[test]
    #[should_panic(expected = "prob_vec: n must be at least 1")]
    fn prob_vec_rejects_zero() {
        let _ = prob_vec(&mut seeded(0), 0);
    }
}
