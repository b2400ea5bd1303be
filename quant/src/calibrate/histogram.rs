//! The histogram a streaming [`Observer`](super::Observer) keeps.
//!
//! Two histograms of magnitudes share one layout: `neg` counts values `< 0` by `|x|`,
//! `pos` counts values `≥ 0` (so `−0.0` and `0.0` count as non-negative). Each has
//! [`STREAM_BINS`] bins of width `w = upper / STREAM_BINS` over `[0, upper)`; bin `j` holds
//! `j·w ≤ |x| < (j+1)·w`, and the top bin also holds `|x| = upper`.
//!
//! `upper` is set to the first non-zero batch's `amax`, so a one-batch stream gets the full
//! resolution. When a later batch reaches beyond it, `upper` doubles until it covers the
//! batch, and each doubling merges bins `2k` and `2k+1` into bin `k`: the old bin edges are
//! new bin edges, so no count is ever split or moved across an edge, and the histogram
//! stays the one that would have been built with the final `upper` from the start (but for
//! values equal to an earlier `upper`, which stay in the bin whose closed top edge they are).
//! The price is resolution: after growth the data's `amax` lies in `(upper/2, upper]`, so
//! between `STREAM_BINS / 2` and `STREAM_BINS` bins span `[0, amax]`. (PyTorch's
//! `HistogramObserver` instead re-bins by interpolation; pytorch-quantization's
//! `HistogramCalibrator` appends bins of the first batch's width, which keeps the width but
//! lets the bin count grow without bound.)
//!
//! Consumers refine inside a bin by assuming its values are spread evenly over the part of
//! `[j·w, (j+1)·w]` that lies within the observed `[min, max]`.

/// Bins per sign in an observer's histogram: 8192, so that `[0, amax]` always spans at least
/// 4096 bins, twice TensorRT's 2048 that [`Method::Kl`](super::Method::Kl) re-bins to.
pub(crate) const STREAM_BINS: usize = 8192;

/// Counts of `|x|` for negative and non-negative values, over a doubling range.
#[derive(Clone, Debug)]
pub(crate) struct StreamHistogram {
    pos: Vec<u64>,
    neg: Vec<u64>,
    /// Upper edge of the top bin; 0 while only zeros have been seen.
    upper: f64,
    count: u64,
}

impl StreamHistogram {
    /// An empty histogram of `bins` bins per sign (a positive even number).
    pub(crate) fn new(bins: usize) -> Self {
        debug_assert!(bins >= 2 && bins.is_multiple_of(2));
        Self {
            pos: vec![0; bins],
            neg: vec![0; bins],
            upper: 0.0,
            count: 0,
        }
    }

    /// Values counted so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    fn bins(&self) -> usize {
        self.pos.len()
    }

    /// Bin width (0 while only zeros have been seen).
    pub(crate) fn width(&self) -> f64 {
        self.upper / self.bins() as f64
    }

    /// Counts finite `x`, whose largest magnitude is `amax`.
    pub(crate) fn add(&mut self, x: &[f32], amax: f32) {
        let amax = f64::from(amax);
        if amax > self.upper {
            if self.upper > 0.0 {
                while self.upper < amax {
                    self.merge_pairs();
                    self.upper *= 2.0;
                }
            } else {
                self.upper = amax;
            }
        }
        let top = self.bins() - 1;
        let inv_w = if self.upper > 0.0 {
            self.bins() as f64 / self.upper
        } else {
            0.0
        };
        for &v in x {
            let j = ((f64::from(v).abs() * inv_w) as usize).min(top);
            if v < 0.0 {
                self.neg[j] += 1;
            } else {
                self.pos[j] += 1;
            }
        }
        self.count += x.len() as u64;
    }

    /// Halves the resolution in place: bin `k` becomes old bins `2k` and `2k+1`.
    fn merge_pairs(&mut self) {
        let half = self.bins() / 2;
        for h in [&mut self.pos, &mut self.neg] {
            for k in 0..half {
                h[k] = h[2 * k] + h[2 * k + 1];
            }
            h[half..].fill(0);
        }
    }

    /// The bins of `|x|` in ascending order as `(lo, hi, count)`, each interval cut at `amax`
    /// (the largest magnitude observed).
    pub(crate) fn abs_bins(&self, amax: f64) -> impl Iterator<Item = (f64, f64, u64)> + '_ {
        let w = self.width();
        (0..self.bins()).map(move |j| {
            let lo = j as f64 * w;
            let hi = ((j + 1) as f64 * w).min(amax).max(lo);
            (lo, hi, self.pos[j] + self.neg[j])
        })
    }

    /// The bins of `x` in ascending order as `(lo, hi, count)`, each interval cut to the
    /// observed `[min, max]`.
    pub(crate) fn signed_bins(
        &self,
        min: f64,
        max: f64,
    ) -> impl Iterator<Item = (f64, f64, u64)> + '_ {
        let w = self.width();
        let cut = move |lo: f64, hi: f64| {
            let lo = lo.max(min);
            (lo, hi.min(max).max(lo))
        };
        let neg = (0..self.bins()).rev().map(move |j| {
            let (lo, hi) = cut(-((j + 1) as f64) * w, -(j as f64) * w);
            (lo, hi, self.neg[j])
        });
        let pos = (0..self.bins()).map(move |j| {
            let (lo, hi) = cut(j as f64 * w, (j + 1) as f64 * w);
            (lo, hi, self.pos[j])
        });
        neg.chain(pos)
    }

    /// Each non-empty bin as one weighted point at the middle of its (cut) interval.
    pub(crate) fn points(&self, min: f64, max: f64) -> impl Iterator<Item = (f32, f64)> + '_ {
        self.signed_bins(min, max)
            .filter(|&(_, _, c)| c > 0)
            .map(|(lo, hi, c)| (((lo + hi) / 2.0) as f32, c as f64))
    }

    /// The counts of `|x|` re-binned to `bins` equal bins over `[0, amax]`, each source
    /// bin's count shared among the target bins in proportion to overlap.
    pub(crate) fn rebin_abs(&self, bins: usize, amax: f64) -> Vec<f64> {
        let mut out = vec![0.0f64; bins];
        if amax <= 0.0 {
            out[0] = self.count as f64;
            return out;
        }
        let wd = amax / bins as f64;
        // Target edge k; the last is amax exactly.
        let edge = |k: usize| if k >= bins { amax } else { k as f64 * wd };
        for (lo, hi, c) in self.abs_bins(amax) {
            if c == 0 {
                continue;
            }
            let c = c as f64;
            let mut k = ((lo / wd) as usize).min(bins - 1);
            if hi <= lo {
                out[k] += c;
                continue;
            }
            while k < bins && edge(k) < hi {
                let overlap = hi.min(edge(k + 1)) - lo.max(edge(k));
                if overlap > 0.0 {
                    out[k] += c * overlap / (hi - lo);
                }
                k += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numerics::testing::{Tolerance, rng};

    fn add(h: &mut StreamHistogram, x: &[f32]) {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        h.add(x, amax);
    }

    #[test]
    fn first_batch_sets_the_range_exactly() {
        let mut h = StreamHistogram::new(8);
        add(&mut h, &[0.0, -0.0, 1.0, -4.0, 3.99, 4.0]);
        assert_eq!(h.width().to_bits(), 0.5f64.to_bits());
        assert_eq!(h.pos, [2, 0, 1, 0, 0, 0, 0, 2]);
        assert_eq!(h.neg, [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(h.count(), 6);
    }

    #[test]
    fn growth_merges_pairs_exactly() {
        let mut r = rng::seeded(8);
        let a = rng::uniform_vec(&mut r, 1000, -1.0, 1.0);
        let b = rng::uniform_vec(&mut r, 1000, -5.0, 5.0);
        let a_max = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mut streamed = StreamHistogram::new(64);
        add(&mut streamed, &a);
        add(&mut streamed, &b);
        // Built at once over the final range, the same counts, but for the first batch's
        // amax: it was in the top bin then and stays in bin 7, not 8, the bin it now starts.
        let (top, rest): (Vec<f32>, Vec<f32>) = a
            .iter()
            .copied()
            .partition(|v| v.abs().to_bits() == a_max.to_bits());
        let mut direct = StreamHistogram::new(64);
        direct.upper = streamed.upper;
        direct.add(&rest, 0.0);
        direct.add(&b, 0.0);
        for v in top {
            if v < 0.0 {
                direct.neg[7] += 1
            } else {
                direct.pos[7] += 1
            }
        }
        assert_eq!(streamed.pos, direct.pos);
        assert_eq!(streamed.neg, direct.neg);
        assert_eq!(streamed.count(), 2000);
        // Three doublings: 1 → 8 covers 5 (the first amax is just under 1).
        assert_eq!(streamed.upper.to_bits(), (f64::from(a_max) * 8.0).to_bits());
    }

    #[test]
    fn only_zeros_then_data() {
        let mut h = StreamHistogram::new(4);
        add(&mut h, &[0.0, 0.0]);
        assert_eq!(h.width().to_bits(), 0);
        add(&mut h, &[2.0]);
        assert_eq!(h.pos, [2, 0, 0, 1]);
    }

    #[test]
    fn bins_and_points_are_ascending_and_cut_to_the_data() {
        let mut h = StreamHistogram::new(8);
        add(&mut h, &[-3.0, -1.0, 0.5, 4.0]);
        let bins: Vec<_> = h.signed_bins(-3.0, 4.0).filter(|b| b.2 > 0).collect();
        assert_eq!(bins.len(), 4);
        assert!(bins.windows(2).all(|w| w[0].1 <= w[1].0));
        // −3 lies in [−3.5, −3), cut to [−3, −3].
        assert_eq!(
            (bins[0].0.to_bits(), bins[0].1.to_bits()),
            ((-3.0f64).to_bits(), (-3.0f64).to_bits())
        );
        let pts: Vec<_> = h.points(-3.0, 4.0).collect();
        let t = Tolerance::EXACT;
        assert!(t.allows(-3.0, f64::from(pts[0].0)) && t.allows(-1.25, f64::from(pts[1].0)));
        assert!(t.allows(0.75, f64::from(pts[2].0)) && t.allows(3.75, f64::from(pts[3].0)));
        assert!(pts.iter().all(|p| Tolerance::EXACT.allows(1.0, p.1)));
    }

    #[test]
    fn rebinning_keeps_the_total_and_the_shape() {
        let x = rng::uniform_vec(&mut rng::seeded(4), 100_000, -3.0, 3.0);
        let mut h = StreamHistogram::new(STREAM_BINS);
        for chunk in x.chunks(7000) {
            add(&mut h, chunk);
        }
        let amax = f64::from(x.iter().fold(0.0f32, |m, v| m.max(v.abs())));
        let out = h.rebin_abs(2048, amax);
        let total: f64 = out.iter().sum();
        assert!(
            Tolerance::rel_abs(1e-12, 0.0).allows(100_000.0, total),
            "{total}"
        );
        // Uniform |x|: about 100000 / 2048 ≈ 49 per bin; 7 standard deviations.
        assert!(out.iter().all(|&c| (c - 48.8).abs() < 50.0), "{out:?}");
    }
}
