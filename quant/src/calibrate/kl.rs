//! KL (entropy) calibration as in TensorRT: Migacz 2017, "8-bit Inference with TensorRT"
//! (GTC 2017 talk), slides 27–33.
//!
//! 1. Build a histogram `H` of `|x|` with `B` bins (TensorRT: 2048) of width `w = amax / B`
//!    over `[0, amax]`.
//! 2. For every candidate `i` from `L = 2^(bits−1)` (TensorRT: 128 for int8) up to `B`:
//!    - the reference `P` is the first `i` bins, with the count of all later bins (the
//!      outliers the threshold would clip) added to bin `i − 1`;
//!    - the candidate `Q` merges the first `i` bins of `H` (outliers not folded in) into `L`
//!      levels, bin `j` going to level `⌊j·L / i⌋` (an even split, as pytorch-quantization's
//!      `np.linspace` one), and spreads each level's total evenly back over the bins of
//!      that level that were non-empty in `H`; empty bins stay empty;
//!    - both are normalized and scored by `KL(P‖Q) = Σ pⱼ ln(pⱼ / qⱼ)` (terms with `pⱼ = 0`
//!      are 0; a `pⱼ > 0` with `qⱼ = 0`, which happens when bin `i − 1` is empty but there
//!      are outliers, makes the candidate infinitely bad).
//! 3. With `m` the candidate of least divergence (ties to the larger one), the threshold is
//!    `(m + 0.5) · w`, as on Migacz's slide 33, capped at `amax`.
//!
//! Two choices the slides leave open are fixed here: the loop includes `i = B` (no
//! clipping), so a finite candidate always exists and data without outliers can keep its
//! whole range; and the comparison is in exact `f64` arithmetic without the smoothing MXNet
//! adds. pytorch-quantization (`calib/histogram.py`, `_compute_amax_entropy`) differs in
//! returning the bin edge `i · w` rather than `(i + 0.5) · w`.
//!
//! The threshold is symmetric by construction. An asymmetric quantizer gets
//! `[max(min, −t), min(max, t)]` (then extended to contain 0). A tensor is histogrammed
//! exactly over its `[0, amax]`; a stream's histogram (see [`histogram`](super::histogram))
//! is re-binned to `B` bins over its `[0, amax]` first, sharing each fine bin's count among
//! the coarse bins it overlaps.

use super::spec::Range;

/// The histogram of `|x|` with `bins` equal bins over `[0, amax]` (`amax > 0` the largest
/// magnitude of `x`); values at `amax` go to the top bin.
pub(crate) fn abs_histogram(x: &[f32], bins: usize, amax: f32) -> Vec<f64> {
    let mut counts = vec![0.0f64; bins];
    let scale = bins as f64 / f64::from(amax);
    for &v in x {
        let j = ((f64::from(v.abs()) * scale) as usize).min(bins - 1);
        counts[j] += 1.0;
    }
    counts
}

/// The entropy-calibration threshold of the `|x|` histogram `counts` with bins of `width`,
/// quantizing to `levels ≤ counts.len()` levels, capped at `amax`.
pub(crate) fn threshold(counts: &[f64], width: f64, levels: usize, amax: f64) -> f64 {
    let bins = counts.len();
    debug_assert!((1..=bins).contains(&levels));
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || width <= 0.0 {
        return amax.max(0.0);
    }
    // outliers[i] = Σ counts[i..]
    let mut outliers = vec![0.0f64; bins + 1];
    for j in (0..bins).rev() {
        outliers[j] = outliers[j + 1] + counts[j];
    }
    let mut scratch = Scratch::new(levels);
    let mut best = (f64::INFINITY, bins);
    for i in levels..=bins {
        let d = divergence(&counts[..i], outliers[i], total, &mut scratch);
        if d <= best.0 {
            best = (d, i);
        }
    }
    ((best.1 as f64 + 0.5) * width).min(amax)
}

/// Per-level sums and non-empty bin counts, reused across candidates.
struct Scratch {
    sums: Vec<f64>,
    nonzero: Vec<usize>,
}

impl Scratch {
    fn new(levels: usize) -> Self {
        Self {
            sums: vec![0.0; levels],
            nonzero: vec![0; levels],
        }
    }
}

/// `KL(P‖Q)` in nats for one candidate: `kept` the first `i` bins, `outliers` the count
/// beyond them, `total` all counts.
fn divergence(kept: &[f64], outliers: f64, total: f64, s: &mut Scratch) -> f64 {
    let i = kept.len();
    let levels = s.sums.len();
    s.sums.fill(0.0);
    s.nonzero.fill(0);
    for (j, &c) in kept.iter().enumerate() {
        let g = j * levels / i;
        s.sums[g] += c;
        if c > 0.0 {
            s.nonzero[g] += 1;
        }
    }
    let q_total: f64 = s.sums.iter().sum();
    if q_total <= 0.0 {
        return f64::INFINITY;
    }
    let mut d = 0.0f64;
    for (j, &c) in kept.iter().enumerate() {
        let p = if j + 1 == i { c + outliers } else { c };
        if p <= 0.0 {
            continue;
        }
        if c <= 0.0 {
            return f64::INFINITY;
        }
        let g = j * levels / i;
        let p = p / total;
        let q = s.sums[g] / s.nonzero[g] as f64 / q_total;
        d += p * (p / q).ln();
    }
    d.max(0.0)
}

/// The range of threshold `t` for data with extremes `min`, `max`.
pub(crate) fn range_from_threshold(t: f32, min: f32, max: f32, symmetric: bool) -> Range {
    if symmetric {
        Range::symmetric(t)
    } else {
        Range::new(min.max(-t), max.min(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::testutil::heavy_tailed;
    use crate::calibrate::{Method, Observer, QuantSpec, calibrate};
    use numerics::entropy::kl_divergence_nats;
    use numerics::testing::{Tolerance, rng};

    fn amax(x: &[f32]) -> f32 {
        x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }

    #[test]
    fn divergence_matches_numerics() {
        // 8 bins, 4 kept, 2 levels: P = [3, 0, 1, 2 + 5], Q from [3, 0, 1, 2]:
        // level 0 = bins 0–1 (sum 3 over 1 non-empty bin), level 1 = bins 2–3 (sum 3 over 2).
        let counts = [3.0, 0.0, 1.0, 2.0, 4.0, 0.0, 1.0, 0.0];
        let total: f64 = counts.iter().sum();
        let d = divergence(&counts[..4], 5.0, total, &mut Scratch::new(2));
        let p = [3.0f32 / 11.0, 0.0, 1.0 / 11.0, 7.0 / 11.0];
        let q = [3.0f32 / 6.0, 0.0, 1.5 / 6.0, 1.5 / 6.0];
        let expected = kl_divergence_nats(&p, &q).unwrap();
        assert!(Tolerance::F32.allows(expected, d), "{expected} vs {d}");
        // Bin i − 1 empty with outliers beyond: Q cannot cover P.
        let d = divergence(&counts[..6], 1.0, total, &mut Scratch::new(2));
        assert!(d.is_infinite());
        // Nothing clipped and every level a single bin: Q = P.
        let d = divergence(&counts[..4], 0.0, 6.0, &mut Scratch::new(4));
        assert!(Tolerance::EXACT.allows(0.0, d));
    }

    #[test]
    fn clips_outliers_of_a_gaussian() {
        let x = heavy_tailed(&mut rng::seeded(41), 100_000);
        let a = amax(&x);
        let c = calibrate(
            &x,
            Method::Kl { bins: 2048 },
            QuantSpec::symmetric(8).unwrap(),
        )
        .unwrap();
        let t = c.range.hi;
        // The outliers (×20) reach about 20 · 3.5σ; the threshold (about a third of amax
        // here) must clip them. Bounds: below half of amax, above 2σ of the bulk.
        assert!(t < 0.5 * a && t > 2.0, "threshold {t}, amax {a}");
        assert!(
            c.clipped_fraction > 0.0 && c.clipped_fraction < 0.01,
            "{c:?}"
        );
        // TensorRT's threshold is a bin middle.
        let w = f64::from(a) / 2048.0;
        let m = f64::from(t) / w - 0.5;
        assert!((m - m.round()).abs() < 1e-3, "{m}");
    }

    #[test]
    fn keeps_the_range_of_uniform_data() {
        let x = rng::uniform_vec(&mut rng::seeded(42), 200_000, -1.0, 1.0);
        let a = amax(&x);
        for bits in [8, 6, 4] {
            let c = calibrate(
                &x,
                Method::Kl { bins: 2048 },
                QuantSpec::symmetric(bits).unwrap(),
            )
            .unwrap();
            // Clipping uniform data only loses information: within 2% of amax.
            assert!(
                c.range.hi >= 0.98 * a && c.range.hi <= a,
                "{bits}: {c:?}, amax {a}"
            );
        }
    }

    #[test]
    fn asymmetric_range_is_cut_to_the_data() {
        let x: Vec<f32> = heavy_tailed(&mut rng::seeded(43), 50_000)
            .into_iter()
            .map(|v| v.abs() + 1.0)
            .collect();
        let sym = calibrate(
            &x,
            Method::Kl { bins: 2048 },
            QuantSpec::symmetric(8).unwrap(),
        )
        .unwrap();
        let asym = calibrate(
            &x,
            Method::Kl { bins: 2048 },
            QuantSpec::asymmetric(8).unwrap(),
        )
        .unwrap();
        assert_eq!(asym.range.lo.to_bits(), 0.0f32.to_bits());
        assert_eq!(asym.range.hi.to_bits(), sym.range.hi.to_bits());
    }

    #[test]
    fn stream_is_close_to_one_shot() {
        let spec = QuantSpec::symmetric(8).unwrap();
        for seed in [44, 45, 46] {
            let x = rng::normal_vec(&mut rng::seeded(seed), 100_000);
            let exact = calibrate(&x, Method::Kl { bins: 2048 }, spec).unwrap();
            let mut obs = Observer::new(Method::Kl { bins: 2048 }).unwrap();
            for chunk in x.chunks(25_000) {
                obs.observe(chunk).unwrap();
            }
            let streamed = obs.range(spec).unwrap();
            // Re-binning the stream's finer histogram shifts counts by less than a bin, which
            // can move the argmin a little: within 5% of the one-shot threshold. (On heavy
            // tails KL's objective can have separate near-equal minima, and a stream may
            // land in the other one; Gaussian data has one.)
            assert!(
                Tolerance::rel_abs(0.05, 0.0)
                    .allows(f64::from(exact.range.hi), f64::from(streamed.hi)),
                "seed {seed}: {exact:?} vs {streamed:?}"
            );
        }
    }

    #[test]
    fn bins_must_cover_the_levels() {
        let x = [1.0f32, -2.0, 3.0];
        let e = calibrate(
            &x,
            Method::Kl { bins: 64 },
            QuantSpec::symmetric(8).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(e, crate::Error::InvalidParameter { name: "bins", .. }),
            "{e:?}"
        );
        assert!(
            calibrate(
                &x,
                Method::Kl { bins: 64 },
                QuantSpec::symmetric(7).unwrap()
            )
            .is_ok()
        );
        assert!(calibrate(&x, Method::Kl { bins: 2 }, QuantSpec::symmetric(2).unwrap()).is_ok());
    }

    #[test]
    fn all_zero_data_has_zero_threshold() {
        let c = calibrate(
            &[0.0; 10],
            Method::Kl { bins: 2048 },
            QuantSpec::symmetric(8).unwrap(),
        )
        .unwrap();
        assert_eq!(c.range.hi.to_bits(), 0.0f32.to_bits());
        assert!(Tolerance::EXACT.allows(0.0, c.total_mse));
    }
}
