//! Min-max and moving-average min-max ranges.
//!
//! Min-max takes the extremes of everything seen. The moving-average variant follows
//! PyTorch's `MovingAverageMinMaxObserver` (`torch/ao/quantization/observer.py`): the first
//! batch initializes `min`/`max` to its own extremes, and every later batch updates
//! `min ← min + c · (batch_min − min)` and `max ← max + c · (batch_max − max)` in `f32`, with
//! `c` the averaging constant (PyTorch's default 0.01). A single tensor is a single batch,
//! so there both give the same range.

/// The extremes `(min, max)` of non-empty, finite data.
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    debug_assert!(!x.is_empty());
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// One step of the moving average: `current + c · (batch − current)`.
#[inline]
pub(crate) fn ema_step(current: f32, batch: f32, c: f32) -> f32 {
    current + c * (batch - current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::testutil::bits;
    use crate::calibrate::{Method, Observer, QuantSpec, Range, calibrate};
    use numerics::testing::{Tolerance, rng};

    #[test]
    fn min_max_is_exact() {
        let mut x = rng::normal_vec(&mut rng::seeded(1), 1001);
        x[17] = -7.25;
        x[900] = 9.5;
        let (lo, hi) = min_max(&x);
        assert_eq!(
            (lo.to_bits(), hi.to_bits()),
            ((-7.25f32).to_bits(), 9.5f32.to_bits())
        );

        let asym = calibrate(&x, Method::MinMax, QuantSpec::asymmetric(8).unwrap()).unwrap();
        assert_eq!(bits(asym.range), bits(Range::new(-7.25, 9.5)));
        let sym = calibrate(&x, Method::MinMax, QuantSpec::symmetric(8).unwrap()).unwrap();
        assert_eq!(bits(sym.range), bits(Range::symmetric(9.5)));
        assert_eq!(sym.scale.to_bits(), (9.5f32 / 127.0).to_bits());
        // Symmetric min-max never clips; asymmetric only at a zero-point tie, which these
        // data do not hit (−lo / s = 7.25 · 255 / 16.75 ≈ 110.4).
        for c in [asym, sym] {
            assert!(Tolerance::EXACT.allows(0.0, c.clipped_fraction), "{c:?}");
            assert!(Tolerance::EXACT.allows(0.0, c.clip_mse), "{c:?}");
        }
    }

    #[test]
    fn min_max_of_one_sided_data_is_extended_to_zero() {
        let x = [2.0f32, 3.0, 5.0];
        let c = calibrate(&x, Method::MinMax, QuantSpec::asymmetric(4).unwrap()).unwrap();
        assert_eq!(bits(c.range), bits(Range::new(0.0, 5.0)));
        assert_eq!(c.zero_point, 0);
        let y = [-2.0f32, -3.0];
        let c = calibrate(&y, Method::MinMax, QuantSpec::asymmetric(4).unwrap()).unwrap();
        assert_eq!(bits(c.range), bits(Range::new(-3.0, 0.0)));
        assert_eq!(c.zero_point, 15);
    }

    #[test]
    fn moving_average_recurrence_by_hand() {
        let c = 0.01f32;
        let mut obs = Observer::new(Method::MovingAverage {
            averaging_constant: c,
        })
        .unwrap();
        // First batch: extremes −1 and 2 are taken as they are.
        obs.observe(&[0.5, -1.0, 2.0, 0.0]).unwrap();
        let spec = QuantSpec::asymmetric(8).unwrap();
        assert_eq!(bits(obs.range(spec).unwrap()), bits(Range::new(-1.0, 2.0)));
        // Second batch: extremes −3 and 4 move the averages by 1% of the gap.
        obs.observe(&[4.0, -3.0, 1.0]).unwrap();
        let r = obs.range(spec).unwrap();
        let lo = -1.0f32 + c * (-3.0 - -1.0);
        let hi = 2.0f32 + c * (4.0 - 2.0);
        assert_eq!(bits(r), bits(Range::new(lo, hi)));
        let t = Tolerance::F32;
        assert!(
            t.allows(-1.02, f64::from(r.lo)) && t.allows(2.02, f64::from(r.hi)),
            "{r:?}"
        );
        // The symmetric range covers the larger magnitude.
        let s = obs.range(QuantSpec::symmetric(8).unwrap()).unwrap();
        assert_eq!(bits(s), bits(Range::symmetric(hi)));
        // Over a single tensor it is min-max.
        let x = rng::normal_vec(&mut rng::seeded(2), 300);
        let ema = calibrate(
            &x,
            Method::MovingAverage {
                averaging_constant: c,
            },
            spec,
        )
        .unwrap();
        let mm = calibrate(&x, Method::MinMax, spec).unwrap();
        assert_eq!(bits(ema.range), bits(mm.range));
    }

    #[test]
    fn ema_step_is_pytorch_formula() {
        assert_eq!(ema_step(1.0, 3.0, 0.5).to_bits(), 2.0f32.to_bits());
        assert_eq!(ema_step(1.0, 3.0, 1.0).to_bits(), 3.0f32.to_bits());
        assert_eq!(ema_step(-2.0, -2.0, 0.01).to_bits(), (-2.0f32).to_bits());
    }
}
