//! The streaming observer.

use super::histogram::{STREAM_BINS, StreamHistogram};
use super::minmax::{ema_step, min_max};
use super::percentile::histogram_percentile;
use super::spec::{Calibration, QuantSpec, Range, evaluate_weighted};
use super::{Method, check_data, check_method, kl, kl_levels, mse};
use crate::{Error, Result};

/// Calibrates a range over a stream of batches (activations seen during calibration runs).
///
/// Every observer keeps the running extremes and a histogram of the values, 8192 bins per
/// sign over a range that doubles as needed (see the [module docs](super#streams)); a [`Method::MovingAverage`] observer also keeps the
/// moving averages of the batch extremes. Memory is constant (about 128 KiB) however long
/// the stream, and [`observe`](Self::observe) costs `O(batch)` plus, rarely, `O(bins)`.
///
/// [`finish`](Self::finish) reports the errors **over the histogram**: each non-empty bin's
/// count is placed at the middle of the bin (cut to the observed `[min, max]`). Bins are
/// much finer than the quantization step (at least 4096 span `[0, amax]` against at most
/// 255 steps), so the estimate is close but not exact; for exact numbers keep a sample and
/// call [`evaluate`](super::evaluate) with [`range`](Self::range).
///
/// # Example
///
/// ```
/// use quant::calibrate::{Method, Observer, QuantSpec, evaluate};
/// # fn main() -> Result<(), quant::Error> {
/// let spec = QuantSpec::symmetric(8)?;
/// let mut obs = Observer::new("percentile-99.9".parse::<Method>()?)?;
/// let batches = [vec![0.1f32, -0.4, 2.0], vec![0.3, -5.0, 0.2]];
/// for b in &batches {
///     obs.observe(b)?;
/// }
/// let approx = obs.finish(spec)?; // errors estimated from the histogram
/// let exact = evaluate(&batches.concat(), obs.range(spec)?, spec)?;
/// assert_eq!(approx.range, exact.range);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Observer {
    method: Method,
    batches: u64,
    min: f32,
    max: f32,
    /// Moving averages of the batch minima and maxima.
    ema: (f32, f32),
    hist: StreamHistogram,
}

impl Observer {
    /// An observer that will choose its range by `method`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if a parameter of `method` is out of range (the bound of
    /// [`Method::Kl`]'s bins that depends on the bit width is checked by
    /// [`range`](Self::range)).
    pub fn new(method: Method) -> Result<Self> {
        method.validate("Observer::new")?;
        Ok(Self {
            method,
            batches: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            ema: (0.0, 0.0),
            hist: StreamHistogram::new(STREAM_BINS),
        })
    }

    /// The method ranges are chosen by.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Batches observed so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// Values observed so far.
    pub fn count(&self) -> u64 {
        self.hist.count()
    }

    /// The extremes of everything observed, `None` before the first batch.
    pub fn min_max(&self) -> Option<Range> {
        (self.batches > 0).then_some(Range::new(self.min, self.max))
    }

    /// Adds a batch.
    ///
    /// # Errors
    ///
    /// [`Error::Empty`] for an empty batch; [`Error::NonFinite`] at the first NaN or
    /// infinity (its index within `batch`). A rejected batch leaves the observer unchanged.
    pub fn observe(&mut self, batch: &[f32]) -> Result<()> {
        check_data("Observer::observe", batch)?;
        let (lo, hi) = min_max(batch);
        self.ema = match self.method {
            Method::MovingAverage { averaging_constant } if self.batches > 0 => (
                ema_step(self.ema.0, lo, averaging_constant),
                ema_step(self.ema.1, hi, averaging_constant),
            ),
            _ => (lo, hi),
        };
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.hist.add(batch, (-lo).max(hi));
        self.batches += 1;
        Ok(())
    }

    /// Forgets everything observed.
    pub fn reset(&mut self) {
        *self = Self {
            hist: StreamHistogram::new(STREAM_BINS),
            ..Self::new(self.method).expect("the method was validated by new")
        };
    }

    /// The range the method chooses for `spec` from what was observed, as the quantizer
    /// uses it (see [`QuantSpec::effective_range`]).
    ///
    /// # Errors
    ///
    /// [`Error::Empty`] before the first batch; [`Error::InvalidParameter`] if
    /// [`Method::Kl`] has fewer bins than the `2^(bits−1)` levels of `spec`.
    pub fn range(&self, spec: QuantSpec) -> Result<Range> {
        const OP: &str = "Observer::range";
        if self.batches == 0 {
            return Err(Error::Empty { op: OP });
        }
        check_method(self.method, spec, OP)?;
        let (min, max) = (self.min, self.max);
        let (min64, max64) = (f64::from(min), f64::from(max));
        let amax = (-min).max(max);
        let raw = match self.method {
            Method::MinMax => Range::new(min, max),
            Method::MovingAverage { .. } => Range::new(self.ema.0, self.ema.1),
            Method::Percentile(p) => {
                let n = self.hist.count();
                if spec.is_symmetric() {
                    let t = if p >= 100.0 {
                        amax
                    } else {
                        histogram_percentile(self.hist.abs_bins(f64::from(amax)), n, p) as f32
                    };
                    Range::symmetric(t.clamp(0.0, amax))
                } else {
                    let at = |q: f64, end: f32| {
                        if q <= 0.0 || q >= 100.0 {
                            end
                        } else {
                            let bins = self.hist.signed_bins(min64, max64);
                            (histogram_percentile(bins, n, q) as f32).clamp(min, max)
                        }
                    };
                    Range::new(at(100.0 - p, min), at(p, max))
                }
            }
            Method::Mse { candidates } => {
                let full = spec.effective_range(Range::new(min, max));
                let points: Vec<(f32, f64)> = self.hist.points(min64, max64).collect();
                mse::search(full, candidates, |r| {
                    evaluate_weighted(points.iter().copied(), r, spec).total_mse
                })
            }
            Method::Kl { bins } => {
                let t = if amax > 0.0 {
                    let a = f64::from(amax);
                    let counts = self.hist.rebin_abs(bins, a);
                    kl::threshold(&counts, a / bins as f64, kl_levels(spec), a) as f32
                } else {
                    0.0
                };
                kl::range_from_threshold(t, min, max, spec.is_symmetric())
            }
        };
        Ok(spec.effective_range(raw))
    }

    /// The calibration for `spec`: [`range`](Self::range) and its errors estimated over
    /// the histogram (see the type's docs).
    ///
    /// # Errors
    ///
    /// As [`range`](Self::range).
    pub fn finish(&self, spec: QuantSpec) -> Result<Calibration> {
        let range = self.range(spec)?;
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        Ok(evaluate_weighted(self.hist.points(min, max), range, spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::testutil::{DECOMPOSITION, bits, heavy_tailed};
    use crate::calibrate::{calibrate, evaluate};
    use numerics::testing::{Tolerance, rng};

    fn methods() -> [Method; 5] {
        [
            Method::MinMax,
            Method::MovingAverage {
                averaging_constant: 0.01,
            },
            Method::Percentile(99.9),
            Method::Mse { candidates: 50 },
            Method::Kl { bins: 512 },
        ]
    }

    fn specs() -> [QuantSpec; 3] {
        [
            QuantSpec::symmetric(8).unwrap(),
            QuantSpec::asymmetric(8).unwrap(),
            QuantSpec::asymmetric(3).unwrap(),
        ]
    }

    #[test]
    fn one_batch_min_max_matches_one_shot() {
        let x = heavy_tailed(&mut rng::seeded(51), 10_000);
        for spec in specs() {
            for m in [
                Method::MinMax,
                Method::MovingAverage {
                    averaging_constant: 0.5,
                },
            ] {
                let mut obs = Observer::new(m).unwrap();
                obs.observe(&x).unwrap();
                let one = calibrate(&x, m, spec).unwrap();
                assert_eq!(
                    bits(obs.range(spec).unwrap()),
                    bits(one.range),
                    "{m} {spec}"
                );
            }
        }
    }

    #[test]
    fn min_max_over_batches() {
        let mut obs = Observer::new(Method::MinMax).unwrap();
        assert_eq!(obs.min_max(), None);
        obs.observe(&[1.0, 2.0]).unwrap();
        obs.observe(&[-3.0, 0.5]).unwrap();
        obs.observe(&[0.0]).unwrap();
        assert_eq!(obs.min_max().map(bits), Some(bits(Range::new(-3.0, 2.0))));
        assert_eq!((obs.batches(), obs.count()), (3, 5));
        let spec = QuantSpec::asymmetric(8).unwrap();
        assert_eq!(bits(obs.range(spec).unwrap()), bits(Range::new(-3.0, 2.0)));
        obs.reset();
        assert_eq!((obs.batches(), obs.count(), obs.min_max()), (0, 0, None));
        assert!(matches!(obs.range(spec), Err(Error::Empty { .. })));
    }

    #[test]
    fn finish_estimates_the_exact_errors() {
        let x = heavy_tailed(&mut rng::seeded(52), 40_000);
        for spec in specs() {
            for m in methods() {
                let mut obs = Observer::new(m).unwrap();
                for chunk in x.chunks(9_000) {
                    obs.observe(chunk).unwrap();
                }
                let est = obs.finish(spec).unwrap();
                let exact = evaluate(&x, est.range, spec).unwrap();
                assert_eq!(bits(est.range), bits(exact.range));
                assert_eq!(
                    (est.scale.to_bits(), est.zero_point),
                    (exact.scale.to_bits(), exact.zero_point)
                );
                assert!(DECOMPOSITION.allows(est.total_mse, est.clip_mse + est.round_mse));
                // Bin middles instead of values: 10% on the total, and on the clipping
                // error where it is not negligible.
                let t = Tolerance::rel_abs(0.1, 1e-3 * exact.total_mse);
                assert!(
                    t.allows(exact.total_mse, est.total_mse),
                    "{m} {spec}: {est:?} vs {exact:?}"
                );
                assert!(
                    t.allows(exact.clip_mse, est.clip_mse),
                    "{m} {spec}: {est:?} vs {exact:?}"
                );
                assert!(
                    Tolerance::rel_abs(0.1, 1e-4)
                        .allows(exact.clipped_fraction, est.clipped_fraction),
                    "{m} {spec}: {est:?} vs {exact:?}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_batches_without_changing_state() {
        let mut obs = Observer::new(Method::MovingAverage {
            averaging_constant: 0.1,
        })
        .unwrap();
        obs.observe(&[1.0, -1.0]).unwrap();
        let before = (obs.batches(), obs.count(), obs.min_max().map(bits));
        assert_eq!(
            obs.observe(&[]),
            Err(Error::Empty {
                op: "Observer::observe"
            })
        );
        assert!(matches!(
            obs.observe(&[0.0, 5.0, f32::INFINITY]),
            Err(Error::NonFinite {
                op: "Observer::observe",
                index: 2,
                ..
            })
        ));
        assert!(matches!(
            obs.observe(&[f32::NAN]),
            Err(Error::NonFinite { index: 0, .. })
        ));
        assert_eq!(
            before,
            (obs.batches(), obs.count(), obs.min_max().map(bits))
        );
        let spec = QuantSpec::symmetric(8).unwrap();
        assert_eq!(bits(obs.range(spec).unwrap()), bits(Range::symmetric(1.0)));
    }

    #[test]
    fn rejects_bad_methods() {
        assert!(matches!(
            Observer::new(Method::Percentile(10.0)),
            Err(Error::InvalidParameter {
                op: "Observer::new",
                name: "percentile",
                ..
            })
        ));
        let mut obs = Observer::new(Method::Kl { bins: 100 }).unwrap();
        obs.observe(&[1.0]).unwrap();
        assert!(obs.range(QuantSpec::symmetric(7).unwrap()).is_ok());
        assert!(matches!(
            obs.finish(QuantSpec::symmetric(8).unwrap()),
            Err(Error::InvalidParameter { name: "bins", .. })
        ));
    }

    #[test]
    fn all_zero_stream() {
        for m in methods() {
            let mut obs = Observer::new(m).unwrap();
            obs.observe(&[0.0; 5]).unwrap();
            obs.observe(&[-0.0; 3]).unwrap();
            for spec in specs() {
                let c = obs.finish(spec).unwrap();
                assert_eq!(bits(c.range), bits(Range::new(0.0, 0.0)), "{m} {spec}");
                assert!(Tolerance::EXACT.allows(0.0, c.total_mse));
            }
        }
    }
}
