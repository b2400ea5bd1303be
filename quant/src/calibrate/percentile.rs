//! Percentile ranges: exact by selection for a whole tensor, refined from the histogram for
//! a stream.
//!
//! The `p`-th percentile is the linearly interpolated order statistic at rank
//! `h = (n − 1) · p / 100` (0-based): `x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌊h⌋+1₎ − x₍⌊h⌋₎)`. This is
//! definition 7 of Hyndman & Fan 1996, "Sample quantiles in statistical packages", and
//! NumPy's default (`method="linear"`). It never leaves `[min, max]`, and `p = 100` is the
//! maximum. A tensor is handled by `select_nth_unstable` (expected `O(n)`), never a sort.
//!
//! A symmetric quantizer takes the percentile of `|x|` as its threshold; an asymmetric one
//! takes `[P(100 − p), P(p)]` of `x`. Percentile calibration at 99.9–99.999 is among the
//! methods compared by Wu et al. 2020, "Integer Quantization for Deep Learning Inference:
//! Principles and Empirical Evaluation" (arXiv:2004.09602), §4.
//!
//! For a stream, the two order statistics are located in the observer's histogram (see
//! [`histogram`](super::histogram)) with the values of a bin taken as evenly spread: the
//! `k`-th of a bin's `c` values sits at `lo + (k + ½)/c · (hi − lo)`. Each is then off by
//! less than one bin width, `upper / 8192`, and so is their interpolation (in a sparse
//! tail the interpolation may bridge empty bins, as the exact one bridges the gap between
//! two values).

use super::spec::Range;

/// The percentile of `buf` at `p ∈ [0, 100]`, permuting `buf` (non-empty, finite).
pub(crate) fn select_percentile(buf: &mut [f32], p: f64) -> f32 {
    let n = buf.len();
    let h = (n - 1) as f64 * p / 100.0;
    let k = (h.floor() as usize).min(n - 1);
    let frac = h - k as f64;
    let (_, &mut below, above) = buf.select_nth_unstable_by(k, f32::total_cmp);
    if frac <= 0.0 || above.is_empty() {
        return below;
    }
    let next = above.iter().copied().fold(f32::INFINITY, f32::min);
    let v = f64::from(below) + frac * (f64::from(next) - f64::from(below));
    // Rounding to f32 is monotone, so this clamp only guards the invariant.
    (v as f32).clamp(below, next)
}

/// The exact percentile range of non-empty finite `x`.
pub(crate) fn exact_range(x: &[f32], p: f64, symmetric: bool) -> Range {
    if symmetric {
        let mut abs: Vec<f32> = x.iter().map(|v| v.abs()).collect();
        Range::symmetric(select_percentile(&mut abs, p))
    } else {
        let mut buf = x.to_vec();
        let lo = select_percentile(&mut buf, 100.0 - p);
        let hi = select_percentile(&mut buf, p);
        Range::new(lo, hi)
    }
}

/// The percentile at `p` of `total > 0` values binned as ascending `(lo, hi, count)`:
/// order statistics `⌊h⌋` and `⌊h⌋ + 1` are each placed within their bin, then
/// interpolated as in [`select_percentile`].
pub(crate) fn histogram_percentile(
    bins: impl Iterator<Item = (f64, f64, u64)>,
    total: u64,
    p: f64,
) -> f64 {
    let h = (total - 1) as f64 * p / 100.0;
    let k = (h.floor() as u64).min(total - 1);
    let frac = h - k as f64;
    let k1 = (k + 1).min(total - 1);
    let mut before = 0u64;
    let mut below = None;
    let mut top = 0.0;
    for (lo, hi, c) in bins {
        if c == 0 {
            continue;
        }
        // The i-th value overall, if it is in this bin, sits at its share of the bin.
        let at = |i: u64| lo + ((i - before) as f64 + 0.5) / c as f64 * (hi - lo);
        if below.is_none() && k < before + c {
            below = Some(at(k));
        }
        if k1 < before + c {
            let below = below.unwrap_or(lo);
            return below + frac * (at(k1) - below);
        }
        before += c;
        top = hi;
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::testutil::bits;
    use crate::calibrate::{Method, Observer, QuantSpec, calibrate};
    use numerics::testing::{Tolerance, rng};
    use rand::seq::SliceRandom;

    fn shuffled(mut x: Vec<f32>, seed: u64) -> Vec<f32> {
        x.shuffle(&mut rng::seeded(seed));
        x
    }

    #[test]
    fn exact_on_integers() {
        // 0..=1000: h = 1000 · p / 100 lands on integers for 99.9 and 50.
        let x = shuffled((0..=1000).map(|v| v as f32).collect(), 1);
        let at = |p: f64| select_percentile(&mut x.clone(), p);
        assert_eq!(at(99.9).to_bits(), 999.0f32.to_bits());
        assert_eq!(at(50.0).to_bits(), 500.0f32.to_bits());
        assert_eq!(at(100.0).to_bits(), 1000.0f32.to_bits());
        assert_eq!(at(0.0).to_bits(), 0.0f32.to_bits());
        // h = 1000 · 0.9999 = 999.9: interpolated.
        assert!(Tolerance::F32.allows(999.9, f64::from(at(99.99))));
        // 0..1000: h = 999 · 0.999 = 998.001.
        let y = shuffled((0..1000).map(|v| v as f32).collect(), 2);
        let v = select_percentile(&mut y.clone(), 99.9);
        assert!(Tolerance::F32.allows(998.001, f64::from(v)), "{v}");
        assert_eq!(
            select_percentile(&mut [3.5], 99.0).to_bits(),
            3.5f32.to_bits()
        );
    }

    #[test]
    fn calibrate_uses_magnitudes_or_both_tails() {
        // −1000..=1000: |x| has 2001 values, 0 once and 1..=1000 twice each.
        let x = shuffled((-1000..=1000).map(|v| v as f32).collect(), 3);
        let sym = QuantSpec::symmetric(8).unwrap();
        let asym = QuantSpec::asymmetric(8).unwrap();
        // Rank 2000 · 0.999 = 1998 of the sorted magnitudes (0, 1, 1, 2, 2, …) is 999.
        let c = calibrate(&x, Method::Percentile(99.9), sym).unwrap();
        assert_eq!(bits(c.range), bits(Range::symmetric(999.0)));
        // Ranks 2000 · 0.001 = 2 and 1998 of −1000..=1000: −998 and 998.
        let c = calibrate(&x, Method::Percentile(99.9), asym).unwrap();
        assert_eq!(bits(c.range), bits(Range::new(-998.0, 998.0)));
        // 100 is min-max.
        let c = calibrate(&x, Method::Percentile(100.0), asym).unwrap();
        assert_eq!(bits(c.range), bits(Range::new(-1000.0, 1000.0)));
        // At 99 the threshold is 990 (rank 1980); the step is 990 / 127, so the clamp acts
        // beyond 127.5 steps ≈ 993.9: on ±994..=±1000, 14 of 2001 values.
        let c = calibrate(&x, Method::Percentile(99.0), sym).unwrap();
        assert_eq!(bits(c.range), bits(Range::symmetric(990.0)));
        assert!(
            Tolerance::EXACT.allows(14.0 / 2001.0, c.clipped_fraction),
            "{c:?}"
        );
    }

    #[test]
    fn histogram_refinement_is_within_a_bin() {
        let mut r = rng::seeded(11);
        let x = rng::normal_vec(&mut r, 200_000);
        for p in [99.0, 99.9, 99.99] {
            for spec in [
                QuantSpec::symmetric(8).unwrap(),
                QuantSpec::asymmetric(8).unwrap(),
            ] {
                let exact = calibrate(&x, Method::Percentile(p), spec).unwrap().range;
                let mut obs = Observer::new(Method::Percentile(p)).unwrap();
                for chunk in x.chunks(30_000) {
                    obs.observe(chunk).unwrap();
                }
                let streamed = obs.range(spec).unwrap();
                // One bin width of the final histogram (its range is at most twice amax).
                let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let tol = Tolerance::rel_abs(0.0, 2.0 * f64::from(amax) / 8192.0);
                assert!(
                    tol.allows(f64::from(exact.lo), f64::from(streamed.lo)),
                    "{p} {spec}: {exact:?} vs {streamed:?}"
                );
                assert!(
                    tol.allows(f64::from(exact.hi), f64::from(streamed.hi)),
                    "{p} {spec}: {exact:?} vs {streamed:?}"
                );
            }
        }
    }

    #[test]
    fn histogram_percentile_in_one_bin() {
        // Four values spread evenly over [0, 4): they sit at 0.5, 1.5, 2.5, 3.5.
        let bins = [(0.0, 4.0, 4u64)];
        let t = Tolerance::F32;
        let at = |bins: &[(f64, f64, u64)], n, p| histogram_percentile(bins.iter().copied(), n, p);
        assert!(t.allows(0.5, at(&bins, 4, 0.0)));
        assert!(t.allows(2.0, at(&bins, 4, 50.0)));
        assert!(t.allows(3.5, at(&bins, 4, 100.0)));
        // Sparse: one value per bin, interpolated across the empty bin between them.
        let bins = [(0.0, 1.0, 1), (1.0, 2.0, 0), (2.0, 3.0, 1)];
        assert!(t.allows(0.5, at(&bins, 2, 0.0)));
        assert!(t.allows(1.5, at(&bins, 2, 50.0)));
        assert!(t.allows(2.3, at(&bins, 2, 90.0)));
        assert!(t.allows(2.5, at(&bins, 2, 100.0)));
    }
}
