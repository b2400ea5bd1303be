//! Helpers shared by the integration tests: seeded Gaussian data and error measures.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One standard-normal sample (Box–Muller).
pub(crate) fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `n` samples of `N(0, std²)`.
pub(crate) fn normal(rng: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| std * gaussian(rng)).collect()
}

/// Seeded `Q`, `K` of standard deviation `qk_std` and unit-normal `V` for `shape`.
pub(crate) fn qkv(
    shape: attention::Shape,
    qk_std: f32,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        normal(&mut rng, shape.q_len(), qk_std),
        normal(&mut rng, shape.kv_len(), qk_std),
        normal(&mut rng, shape.kv_len(), 1.0),
    )
}

/// Asserts every `|expected − got| ≤ abs` (NaN counts as infinitely far), naming the worst.
pub(crate) fn assert_close(what: &str, expected: &[f32], got: &[f32], abs: f32) {
    assert_eq!(expected.len(), got.len(), "{what}: lengths");
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        let diff = (e - g).abs();
        if diff.is_nan() || diff > worst {
            worst = if diff.is_nan() { f32::INFINITY } else { diff };
            at = i;
        }
    }
    assert!(
        worst <= abs,
        "{what}: worst at {at}: expected {}, got {}, |diff| {worst} > {abs}",
        expected[at],
        got[at]
    );
}

/// `‖approx − exact‖₂ / ‖exact‖₂`.
pub(crate) fn rel_l2(exact: &[f32], approx: &[f32]) -> f64 {
    let num: f64 = exact
        .iter()
        .zip(approx)
        .map(|(&e, &a)| (f64::from(a) - f64::from(e)).powi(2))
        .sum();
    let den: f64 = exact.iter().map(|&e| f64::from(e).powi(2)).sum();
    (num / den).sqrt()
}
