//! Calibration: choosing the range a uniform integer quantizer covers, and reporting what
//! the choice costs.
//!
//! # Methods
//!
//! | [`Method`] | range | source |
//! |---|---|---|
//! | `minmax` | the data's extremes | PyTorch `MinMaxObserver` |
//! | `ema-c` | moving averages of batch extremes, first batch initializes | PyTorch `MovingAverageMinMaxObserver` |
//! | `percentile-p` | the `p`-th percentile of `\|x\|` (symmetric) or `[P(100−p), P(p)]` of `x` | Wu et al. 2020 §4 |
//! | `mse-K` | the clip ratio `k/K` of min-max with least fake-quant MSE | Nagel et al. 2021 §3.1 |
//! | `kl-B` | TensorRT's entropy calibration over a `B`-bin histogram of `\|x\|` | Migacz 2017 |
//!
//! Each variant of [`Method`] states its rule; the sources are listed under
//! [References](#references).
//!
//! The quantizer a range is chosen for is a [`QuantSpec`]: 2 to 8 bits, symmetric
//! (restricted `±(2^(b−1) − 1)` levels, scale `t / (2^(b−1) − 1)`) or asymmetric (`2^b`
//! levels over a range extended to contain 0, integer zero point), with the same rounding as
//! [`crate::uniform`].
//!
//! # What a calibration reports
//!
//! A [`Calibration`] carries the range, its scale and zero point, and the error of
//! fake-quantizing the data with it, split into a **clipping** part (values the clamp
//! acted on) and a **rounding** part (all others), plus the fraction clipped. Side by side
//! for several methods they show the trade: a narrow range pays in clipping, a wide one in
//! rounding. [`evaluate`] computes the same report for any range.
//!
//! # Granularity
//!
//! [`calibrate`] chooses one range for a whole tensor; [`calibrate_per_channel`] one per
//! row of a row-major `[rows, cols]` matrix (per output channel of a weight), each row
//! calibrated exactly as [`calibrate`] would calibrate it alone.
//!
//! # Streams
//!
//! An [`Observer`] takes batches one at a time in constant memory. Min-max and moving
//! averages need only the extremes. The other methods work from a histogram of the values:
//! 8192 bins per sign, `[0, upper)` with `upper` set by the first batch and doubled (merging
//! bin pairs, which is exact) whenever a batch exceeds it, so `[0, amax]` always spans 4096
//! to 8192 bins. Percentiles are refined inside their bin by assuming evenly spread values;
//! MSE scores candidates on the bins' middles; KL re-bins to its own `B` bins over
//! `[0, amax]`. [`Observer::finish`] reports errors estimated from the histogram; for exact
//! errors, [`evaluate`] a sample with [`Observer::range`].
//!
//! # Errors
//!
//! Everything here reads user data and returns typed errors: [`Error::Empty`] for empty
//! input, [`Error::NonFinite`] naming the index of the first NaN or infinity,
//! [`Error::InvalidParameter`] for a bit width outside `2..=8` or a method parameter out of
//! range, [`Error::ShapeMismatch`] when `rows × cols` is not the data's length, and
//! [`Error::Parse`] naming the bad token of a method string.
//!
//! # References
//!
//! - S. Migacz, "8-bit Inference with TensorRT", GTC 2017 (entropy calibration);
//! - H. Wu, P. Judd, X. Zhang, M. Isaev, P. Micikevicius, "Integer Quantization for Deep
//!   Learning Inference: Principles and Empirical Evaluation", arXiv:2004.09602, 2020
//!   (max, percentile, MSE and entropy calibration compared);
//! - M. Nagel et al., "A White Paper on Neural Network Quantization", arXiv:2106.08295,
//!   2021, §3.1 (range setting);
//! - R. Banner, Y. Nahshan, D. Soudry, "Post training 4-bit quantization of convolutional
//!   networks for rapid-deployment", NeurIPS 2019 (clipping vs rounding error);
//! - PyTorch `torch/ao/quantization/observer.py` (min-max and moving-average observers);
//! - R. J. Hyndman, Y. Fan, "Sample quantiles in statistical packages", The American
//!   Statistician 50(4), 1996 (the percentile definition).
//!
//! # Example
//!
//! ```
//! use quant::calibrate::{Method, QuantSpec, calibrate};
//! # fn main() -> Result<(), quant::Error> {
//! // 1000 values spread over [−2, 2), and one outlier.
//! let mut x: Vec<f32> = (0..1000).map(|i| ((i * 37 % 1000) as f32 - 500.0) / 250.0).collect();
//! x[10] = 20.0;
//! let spec = QuantSpec::symmetric(4)?;
//! let minmax = calibrate(&x, Method::MinMax, spec)?;
//! let mse = calibrate(&x, "mse".parse()?, spec)?;
//! assert_eq!(minmax.clip_mse, 0.0); // min-max never clips, so its 7 steps are 2.9 wide;
//! assert!(mse.clip_mse > 0.0); // MSE clips the outlier
//! assert!(mse.total_mse < minmax.total_mse / 2.0); // and rounds everything else finely.
//! # Ok(())
//! # }
//! ```

mod histogram;
mod kl;
mod method;
mod minmax;
mod mse;
mod observer;
mod percentile;
mod spec;

pub use method::Method;
pub use observer::Observer;
pub use spec::{Calibration, QuantSpec, Range, evaluate};

use crate::{Error, Result};
use spec::evaluate_slice;

/// Chooses a range for `x` by `method` and reports its errors on `x`.
///
/// [`Method::MovingAverage`] over a single tensor is one batch, so it equals
/// [`Method::MinMax`]; use an [`Observer`] for a stream.
///
/// # Errors
///
/// - [`Error::Empty`] if `x` is empty;
/// - [`Error::NonFinite`] at the first NaN or infinity;
/// - [`Error::InvalidParameter`] if a parameter of `method` is out of range, or
///   [`Method::Kl`] has fewer bins than the `2^(bits−1)` levels of `spec`.
pub fn calibrate(x: &[f32], method: Method, spec: QuantSpec) -> Result<Calibration> {
    const OP: &str = "calibrate";
    check_data(OP, x)?;
    check_method(method, spec, OP)?;
    Ok(evaluate_slice(x, choose_range(x, method, spec), spec))
}

/// [`calibrate`] for each row of the row-major `[rows, cols]` matrix `x`: one
/// [`Calibration`] per row, each equal to calibrating that row alone.
///
/// # Errors
///
/// - [`Error::ShapeMismatch`] unless `rows × cols == x.len()`;
/// - [`Error::Empty`] if `rows` or `cols` is 0;
/// - [`Error::NonFinite`] at the first NaN or infinity, with its index in `x`;
/// - [`Error::InvalidParameter`] as [`calibrate`].
pub fn calibrate_per_channel(
    x: &[f32],
    rows: usize,
    cols: usize,
    method: Method,
    spec: QuantSpec,
) -> Result<Vec<Calibration>> {
    const OP: &str = "calibrate_per_channel";
    if rows.checked_mul(cols) != Some(x.len()) {
        return Err(Error::ShapeMismatch {
            op: OP,
            expected: vec![rows, cols],
            got: vec![x.len()],
        });
    }
    check_data(OP, x)?;
    check_method(method, spec, OP)?;
    Ok(x.chunks_exact(cols)
        .map(|row| evaluate_slice(row, choose_range(row, method, spec), spec))
        .collect())
}

/// Checks that `x` is non-empty and finite.
pub(crate) fn check_data(op: &'static str, x: &[f32]) -> Result<()> {
    if x.is_empty() {
        return Err(Error::Empty { op });
    }
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            op,
            index,
            value: x[index],
        }),
        None => Ok(()),
    }
}

/// Checks `method`'s parameters, and its bins against `spec` for [`Method::Kl`].
pub(crate) fn check_method(method: Method, spec: QuantSpec, op: &'static str) -> Result<()> {
    method.validate(op)?;
    if let Method::Kl { bins } = method {
        Method::validate_kl_bins(bins, kl_levels(spec), op)?;
    }
    Ok(())
}

/// The levels KL calibration quantizes `|x|` to: `2^(bits−1)` (TensorRT's 128 for int8).
pub(crate) fn kl_levels(spec: QuantSpec) -> usize {
    1 << (spec.bits() - 1)
}

/// The range `method` chooses for checked `x`, through [`QuantSpec::effective_range`].
fn choose_range(x: &[f32], method: Method, spec: QuantSpec) -> Range {
    let (min, max) = minmax::min_max(x);
    let raw = match method {
        Method::MinMax | Method::MovingAverage { .. } => Range::new(min, max),
        Method::Percentile(p) => percentile::exact_range(x, p, spec.is_symmetric()),
        Method::Mse { candidates } => {
            let full = spec.effective_range(Range::new(min, max));
            mse::search(full, candidates, |r| evaluate_slice(x, r, spec).total_mse)
        }
        Method::Kl { bins } => {
            let amax = (-min).max(max);
            let t = if amax > 0.0 {
                let counts = kl::abs_histogram(x, bins, amax);
                let a = f64::from(amax);
                kl::threshold(&counts, a / bins as f64, kl_levels(spec), a) as f32
            } else {
                0.0
            };
            kl::range_from_threshold(t, min, max, spec.is_symmetric())
        }
    };
    spec.effective_range(raw)
}

/// Helpers shared by the tests of this module's files.
#[cfg(test)]
pub(crate) mod testutil {
    use super::{Calibration, Range};
    use numerics::testing::Tolerance;
    use numerics::testing::rng::{self, StdRng};
    use rand::RngExt;

    /// `clip + round` against `total`: the same non-negative terms summed in two orders,
    /// so they agree to a few `f64` ulps relative to the total.
    pub(crate) const DECOMPOSITION: Tolerance = Tolerance::rel_abs(1e-12, 0.0);

    /// Whether every clamped value was clamped by at most half a step, up to `f32`
    /// rounding (a few ulps of the range's magnitude).
    pub(crate) fn within_half_a_step(c: &Calibration) -> bool {
        let ulps = 4.0 * f64::from(f32::EPSILON) * f64::from(c.range.amax());
        let half = f64::from(c.scale) / 2.0 + ulps;
        c.clip_mse <= c.clipped_fraction * half * half
    }

    /// A range's ends as bits, for exact comparisons.
    pub(crate) fn bits(r: Range) -> (u32, u32) {
        (r.lo.to_bits(), r.hi.to_bits())
    }

    /// Heavy-tailed data: standard normals, one in 500 of them scaled by 20 (a scale
    /// mixture, Student-t-like tails).
    pub(crate) fn heavy_tailed(r: &mut StdRng, n: usize) -> Vec<f32> {
        let mut x = rng::normal_vec(r, n);
        for v in &mut x {
            if r.random::<f64>() < 0.002 {
                *v *= 20.0;
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{DECOMPOSITION, bits, heavy_tailed, within_half_a_step};
    use super::*;
    use numerics::testing::rng;
    use proptest::prelude::*;

    fn methods() -> [Method; 6] {
        [
            Method::MinMax,
            Method::MovingAverage {
                averaging_constant: 0.01,
            },
            Method::Percentile(99.9),
            Method::Percentile(99.99),
            Method::Mse { candidates: 100 },
            Method::Kl { bins: 2048 },
        ]
    }

    fn specs() -> Vec<QuantSpec> {
        (2..=8)
            .flat_map(|b| {
                [
                    QuantSpec::symmetric(b).unwrap(),
                    QuantSpec::asymmetric(b).unwrap(),
                ]
            })
            .collect()
    }

    fn same(a: &Calibration, b: &Calibration) -> bool {
        a.spec == b.spec
            && bits(a.range) == bits(b.range)
            && a.scale.to_bits() == b.scale.to_bits()
            && a.zero_point == b.zero_point
            && a.clip_mse.to_bits() == b.clip_mse.to_bits()
            && a.round_mse.to_bits() == b.round_mse.to_bits()
            && a.total_mse.to_bits() == b.total_mse.to_bits()
            && a.clipped_fraction.to_bits() == b.clipped_fraction.to_bits()
    }

    #[test]
    fn per_channel_is_per_tensor_on_each_row() {
        let (rows, cols) = (5, 700);
        let mut x = heavy_tailed(&mut rng::seeded(61), rows * cols);
        // Rows of different character: shifted, scaled, all zero, one-signed.
        x[cols..2 * cols]
            .iter_mut()
            .for_each(|v| *v = *v * 0.01 + 3.0);
        x[2 * cols..3 * cols].fill(0.0);
        x[3 * cols..4 * cols].iter_mut().for_each(|v| *v = -v.abs());
        for spec in [
            QuantSpec::symmetric(8).unwrap(),
            QuantSpec::asymmetric(4).unwrap(),
        ] {
            for m in methods() {
                let per = calibrate_per_channel(&x, rows, cols, m, spec).unwrap();
                assert_eq!(per.len(), rows);
                for (r, c) in per.iter().enumerate() {
                    let alone = calibrate(&x[r * cols..(r + 1) * cols], m, spec).unwrap();
                    assert!(same(c, &alone), "{m} {spec} row {r}: {c:?} vs {alone:?}");
                }
            }
        }
    }

    #[test]
    fn per_channel_errors() {
        let spec = QuantSpec::symmetric(8).unwrap();
        let x = [1.0f32, 2.0, 3.0, f32::NAN, 5.0, 6.0];
        assert!(matches!(
            calibrate_per_channel(&x, 2, 3, Method::MinMax, spec),
            Err(Error::NonFinite {
                op: "calibrate_per_channel",
                index: 3,
                ..
            })
        ));
        assert_eq!(
            calibrate_per_channel(&x[..5], 2, 3, Method::MinMax, spec),
            Err(Error::ShapeMismatch {
                op: "calibrate_per_channel",
                expected: vec![2, 3],
                got: vec![5]
            })
        );
        assert!(matches!(
            calibrate_per_channel(&x, usize::MAX, 2, Method::MinMax, spec),
            Err(Error::ShapeMismatch { .. })
        ));
        assert_eq!(
            calibrate_per_channel(&[], 0, 3, Method::MinMax, spec),
            Err(Error::Empty {
                op: "calibrate_per_channel"
            })
        );
        assert!(matches!(
            calibrate_per_channel(&x[..3], 1, 3, Method::Kl { bins: 16 }, spec),
            Err(Error::InvalidParameter { name: "bins", .. })
        ));
    }

    #[test]
    fn calibrate_errors() {
        let spec = QuantSpec::asymmetric(8).unwrap();
        assert_eq!(
            calibrate(&[], Method::MinMax, spec),
            Err(Error::Empty { op: "calibrate" })
        );
        match calibrate(
            &[0.0, 1.0, -2.0, f32::NAN],
            Method::Mse { candidates: 10 },
            spec,
        ) {
            Err(Error::NonFinite { op, index, value }) => {
                assert_eq!((op, index), ("calibrate", 3));
                assert!(value.is_nan());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            calibrate(&[f32::INFINITY], Method::MinMax, spec),
            Err(Error::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            calibrate(&[1.0], Method::Mse { candidates: 0 }, spec),
            Err(Error::InvalidParameter {
                op: "calibrate",
                name: "candidates",
                ..
            })
        ));
        assert!(matches!(
            calibrate(
                &[1.0],
                Method::MovingAverage {
                    averaging_constant: 2.0
                },
                spec
            ),
            Err(Error::InvalidParameter {
                name: "averaging_constant",
                ..
            })
        ));
    }

    #[test]
    fn decomposition_sums_to_total_for_every_method_and_spec() {
        let x = heavy_tailed(&mut rng::seeded(62), 10_000);
        for spec in specs() {
            for m in methods() {
                let c = calibrate(&x, m, spec).unwrap();
                assert!(
                    DECOMPOSITION.allows(c.total_mse, c.clip_mse + c.round_mse),
                    "{m} {spec}: {c:?}"
                );
                let direct = evaluate(&x, c.range, spec).unwrap();
                assert!(same(&c, &direct), "{m} {spec}: {c:?} vs {direct:?}");
            }
        }
    }

    #[test]
    fn method_table_on_heavy_tails() {
        // The trade the report exists to show, at 4 bits on heavy-tailed data: min-max
        // never clips and pays in rounding; the clipping methods trade a little clipping
        // error for much less rounding error.
        let x = heavy_tailed(&mut rng::seeded(63), 50_000);
        let spec = QuantSpec::symmetric(4).unwrap();
        let mm = calibrate(&x, Method::MinMax, spec).unwrap();
        assert!(mm.clip_mse.to_bits() == 0 && mm.clipped_fraction.to_bits() == 0);
        for m in [
            Method::Percentile(99.9),
            Method::Mse { candidates: 100 },
            Method::Kl { bins: 2048 },
        ] {
            let c = calibrate(&x, m, spec).unwrap();
            assert!(
                c.clip_mse > 0.0 && c.round_mse < mm.round_mse,
                "{m}: {c:?} vs {mm:?}"
            );
            assert!(c.total_mse < mm.total_mse, "{m}: {c:?} vs {mm:?}");
        }
    }

    #[test]
    fn all_zero_tensor() {
        for spec in specs() {
            for m in methods() {
                let c = calibrate(&[0.0, -0.0, 0.0], m, spec).unwrap();
                assert_eq!(bits(c.range), (0, 0), "{m} {spec}: {c:?}");
                assert_eq!((c.scale.to_bits(), c.zero_point), (0, 0));
                assert_eq!(c.total_mse.to_bits(), 0);
            }
        }
    }

    #[test]
    fn extreme_magnitudes_stay_finite() {
        let tiny = f32::from_bits(1); // the least subnormal
        let cases: [&[f32]; 4] = [
            &[f32::MAX, -f32::MAX, 1.0],
            &[f32::MAX, 0.0],
            &[tiny, -tiny, 0.0],
            &[f32::MIN_POSITIVE, 3.0 * tiny],
        ];
        // KL with fewer bins: the search is quadratic in them, and 128 cover 8 bits.
        let mut methods = methods();
        methods[5] = Method::Kl { bins: 128 };
        for x in cases {
            for spec in specs() {
                for m in methods {
                    let c = calibrate(x, m, spec).unwrap();
                    assert!(
                        c.total_mse.is_finite() && c.scale.is_finite(),
                        "{x:?} {m} {spec}: {c:?}"
                    );
                    assert!(DECOMPOSITION.allows(c.total_mse, c.clip_mse + c.round_mse));
                    let mut obs = Observer::new(m).unwrap();
                    obs.observe(x).unwrap();
                    obs.observe(x).unwrap();
                    let c = obs.finish(spec).unwrap();
                    assert!(c.total_mse.is_finite(), "stream {x:?} {m} {spec}: {c:?}");
                }
            }
        }
    }

    fn data() -> impl Strategy<Value = Vec<f32>> {
        prop_oneof![
            prop::collection::vec(-100.0f32..100.0, 1..200),
            prop::collection::vec(0.0f32..5.0, 1..50),
            prop::collection::vec(-5.0f32..-1e-3, 1..50),
            prop::collection::vec(prop::sample::select(vec![0.0f32, -0.0, 1.0, -3.0]), 1..20),
            prop::collection::vec(numerics::testing::strategies::finite_f32(), 1..20),
        ]
    }

    fn any_method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::MinMax),
            (1e-3f32..=1.0).prop_map(|c| Method::MovingAverage {
                averaging_constant: c
            }),
            (50.0f64..=100.0).prop_map(Method::Percentile),
            (1usize..40).prop_map(|candidates| Method::Mse { candidates }),
            (128usize..300).prop_map(|bins| Method::Kl { bins }),
        ]
    }

    proptest! {
        #[test]
        fn prop_range_invariants(
            x in data(),
            method in any_method(),
            b in 2u32..=8,
            symmetric in any::<bool>(),
        ) {
            let spec = QuantSpec::new(b, symmetric).unwrap();
            let c = calibrate(&x, method, spec).unwrap();
            let (min, max) = minmax::min_max(&x);
            let r = c.range;
            prop_assert!(r.lo <= 0.0 && 0.0 <= r.hi, "{:?}", c);
            if symmetric {
                prop_assert_eq!(bits(r), bits(Range::symmetric(r.hi)));
                prop_assert!(r.hi <= (-min).max(max));
                prop_assert_eq!(c.zero_point, 0);
            } else {
                // Within the data's extremes, extended to 0 only.
                prop_assert!(min.min(0.0) <= r.lo && r.hi <= max.max(0.0), "{:?}", c);
                prop_assert!((0..=spec.qmax()).contains(&c.zero_point));
                prop_assert_eq!(c.fake_quantize(0.0).to_bits(), 0.0f32.to_bits());
            }
            prop_assert!(c.scale >= 0.0 && c.scale.is_finite());
            prop_assert!(c.clip_mse >= 0.0 && c.round_mse >= 0.0 && c.total_mse >= 0.0);
            prop_assert!(c.total_mse.is_finite(), "{:?}", c);
            prop_assert!((0.0..=1.0).contains(&c.clipped_fraction));
            prop_assert!(DECOMPOSITION.allows(c.total_mse, c.clip_mse + c.round_mse));
            if matches!(method, Method::MinMax) {
                // Min-max clips nothing, except by half a step at a zero-point tie.
                if symmetric {
                    prop_assert_eq!(c.clipped_fraction.to_bits(), 0);
                } else {
                    prop_assert!(within_half_a_step(&c), "{:?}", c);
                }
            }
        }

        #[test]
        fn prop_observer_range_invariants(
            batches in prop::collection::vec(data(), 1..4),
            method in any_method(),
            b in 2u32..=8,
            symmetric in any::<bool>(),
        ) {
            let spec = QuantSpec::new(b, symmetric).unwrap();
            let mut obs = Observer::new(method).unwrap();
            for b in &batches {
                obs.observe(b).unwrap();
            }
            let all = batches.concat();
            let (min, max) = minmax::min_max(&all);
            let c = obs.finish(spec).unwrap();
            let r = c.range;
            prop_assert!(r.lo <= 0.0 && 0.0 <= r.hi, "{:?}", c);
            if !symmetric {
                prop_assert!(min.min(0.0) <= r.lo && r.hi <= max.max(0.0), "{:?}", c);
            }
            prop_assert!(r.amax() <= (-min).max(max), "{:?}", c);
            prop_assert!(c.clip_mse >= 0.0 && c.round_mse >= 0.0 && c.total_mse >= 0.0);
            prop_assert!(c.total_mse.is_finite(), "{:?}", c);
            prop_assert!((0.0..=1.0).contains(&c.clipped_fraction));
            let exact = evaluate(&all, r, spec).unwrap();
            prop_assert!(exact.clip_mse >= 0.0 && exact.round_mse >= 0.0);
        }
    }
}
