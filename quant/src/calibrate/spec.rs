//! The quantizer a range is calibrated for ([`QuantSpec`]), ranges ([`Range`]), and the
//! error report of a range on data ([`Calibration`], [`evaluate`]).

use std::fmt;

use super::check_data;
use crate::{Error, Result};

/// The uniform integer quantizer a range is chosen for: a bit width in `2..=8` and whether
/// the grid is symmetric about zero.
///
/// - **Symmetric** (restricted range, as PyTorch's `qint8` with `quant_min = −127`): a range
///   `[−t, t]`, integer levels `−(2^(b−1) − 1) ..= 2^(b−1) − 1`, scale
///   `s = t / (2^(b−1) − 1)`, zero point 0; `q(x) = s · clamp(round(x / s), −L, L)`.
/// - **Asymmetric** (affine): a range `[lo, hi]` extended to contain 0, `2^b` levels
///   `0 ..= 2^b − 1`, scale `s = (hi − lo) / (2^b − 1)`, integer zero point
///   `z = clamp(round(−lo / s), 0, 2^b − 1)` so that 0 is exactly representable;
///   `q(x) = s · (clamp(round(x / s) + z, 0, 2^b − 1) − z)`.
///
/// Rounding is to nearest, ties to even, of the `f32` quotient `x / s`, as in
/// [`crate::uniform`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuantSpec {
    bits: u32,
    symmetric: bool,
}

impl QuantSpec {
    /// The narrowest bit width accepted.
    pub const MIN_BITS: u32 = 2;
    /// The widest bit width accepted.
    pub const MAX_BITS: u32 = 8;

    /// A quantizer of `bits` bits, symmetric or asymmetric.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `bits` is not in `2..=8`.
    pub fn new(bits: u32, symmetric: bool) -> Result<Self> {
        if !(Self::MIN_BITS..=Self::MAX_BITS).contains(&bits) {
            return Err(Error::InvalidParameter {
                op: "QuantSpec::new",
                name: "bits",
                value: bits.to_string(),
                reason: "must be in 2..=8",
            });
        }
        Ok(Self { bits, symmetric })
    }

    /// A symmetric quantizer of `bits` bits.
    ///
    /// # Errors
    ///
    /// As [`QuantSpec::new`].
    pub fn symmetric(bits: u32) -> Result<Self> {
        Self::new(bits, true)
    }

    /// An asymmetric (affine) quantizer of `bits` bits.
    ///
    /// # Errors
    ///
    /// As [`QuantSpec::new`].
    pub fn asymmetric(bits: u32) -> Result<Self> {
        Self::new(bits, false)
    }

    /// The bit width.
    pub const fn bits(self) -> u32 {
        self.bits
    }

    /// Whether the grid is symmetric about zero.
    pub const fn is_symmetric(self) -> bool {
        self.symmetric
    }

    /// The smallest integer level: `−(2^(b−1) − 1)` symmetric, 0 asymmetric.
    pub const fn qmin(self) -> i32 {
        if self.symmetric {
            1 - (1 << (self.bits - 1))
        } else {
            0
        }
    }

    /// The largest integer level: `2^(b−1) − 1` symmetric, `2^b − 1` asymmetric.
    pub const fn qmax(self) -> i32 {
        if self.symmetric {
            (1 << (self.bits - 1)) - 1
        } else {
            (1 << self.bits) - 1
        }
    }

    /// The range this quantizer actually uses for `range`: `[−t, t]` with
    /// `t = max(−lo, hi, 0)` when symmetric, `[min(lo, 0), max(hi, 0)]` when asymmetric.
    pub fn effective_range(self, range: Range) -> Range {
        if self.symmetric {
            Range::symmetric(range.amax())
        } else {
            Range {
                lo: positive_zero(range.lo.min(0.0)),
                hi: positive_zero(range.hi.max(0.0)),
            }
        }
    }

    /// Scale and zero point for `range` (taken through [`effective_range`]); the zero point
    /// is 0 when symmetric. A zero-width range gives scale 0, which maps everything to 0.
    ///
    /// [`effective_range`]: Self::effective_range
    pub fn scale_and_zero_point(self, range: Range) -> (f32, i32) {
        let grid = Grid::new(self, self.effective_range(range));
        (grid.scale, grid.zero as i32)
    }
}

impl fmt::Display for QuantSpec {
    /// `int8-sym`, `int4-asym`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.symmetric { "sym" } else { "asym" };
        write!(f, "int{}-{kind}", self.bits)
    }
}

/// `v` with `−0.0` replaced by `+0.0`, so that ranges of zeros compare bit for bit.
const fn positive_zero(v: f32) -> f32 {
    if v == 0.0 { 0.0 } else { v }
}

/// A closed interval `[lo, hi]` of real values to quantize.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower end.
    pub lo: f32,
    /// Upper end.
    pub hi: f32,
}

impl Range {
    /// The interval `[lo, hi]`.
    pub const fn new(lo: f32, hi: f32) -> Self {
        Self { lo, hi }
    }

    /// The interval `[−t, t]` (for `t = ±0`, `[+0, +0]`).
    pub const fn symmetric(t: f32) -> Self {
        Self {
            lo: positive_zero(-t),
            hi: positive_zero(t),
        }
    }

    /// The largest magnitude in the interval, `max(−lo, hi, 0)`.
    pub fn amax(self) -> f32 {
        positive_zero((-self.lo).max(self.hi).max(0.0))
    }

    /// Whether `x` lies in `[lo, hi]`.
    pub fn contains(self, x: f32) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// Checks that both ends are finite and `lo ≤ hi`.
    pub(crate) fn validate(self, op: &'static str) -> Result<()> {
        if self.lo.is_finite() && self.hi.is_finite() && self.lo <= self.hi {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                op,
                name: "range",
                value: format!("[{}, {}]", self.lo, self.hi),
                reason: "ends must be finite with lo <= hi",
            })
        }
    }
}

/// A calibrated range and what it costs on some data.
///
/// The squared error of every value `x` (of `n`) is charged to exactly one of two parts:
///
/// - **clipping**: values the quantizer clamps, i.e. whose integer level `round(x / s) + z`
///   falls outside `qmin..=qmax`. They are decoded to the end of the grid, so their error is
///   `x − clamp(x)`, with `clamp` onto the representable interval `[s·(qmin − z),
///   s·(qmax − z)]`;
/// - **rounding**: all other values, whose error `x − q(x)` is at most half a step.
///
/// With an asymmetric spec, rounding the zero point to an integer moves the grid by up to
/// half a step against `[lo, hi]`, so even a range that contains every value can clamp the
/// largest or smallest of them, by at most half a step (only when `−lo / s` falls on a
/// rounding tie, up to `f32` rounding); that counts as clipping.
///
/// `clip_mse = Σ_clipped (x − q(x))² / n`, `round_mse = Σ_rest (x − q(x))² / n` and
/// `total_mse = Σ (x − q(x))² / n`, each accumulated separately in `f64`, so
/// `clip_mse + round_mse = total_mse` up to `f64` rounding. A range that is too narrow
/// shows up as clipping error, one that is too wide as rounding error (Banner et al. 2019,
/// "Post training 4-bit quantization of convolutional networks for rapid-deployment", §3,
/// splits the quantization MSE the same way).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Calibration {
    /// The quantizer the range was chosen for.
    pub spec: QuantSpec,
    /// The range used: symmetric `[−t, t]`, or asymmetric `[lo, hi]` containing 0 (see
    /// [`QuantSpec::effective_range`]).
    pub range: Range,
    /// The step between levels.
    pub scale: f32,
    /// The integer level that decodes to 0 (always 0 for a symmetric spec).
    pub zero_point: i32,
    /// Mean squared error of the clamped values (summed over them, divided by all `n`).
    pub clip_mse: f64,
    /// Mean squared error of the values that were not clamped (divided by all `n`).
    pub round_mse: f64,
    /// Mean squared error over all values.
    pub total_mse: f64,
    /// Fraction of the values that were clamped, in `[0, 1]`.
    pub clipped_fraction: f64,
}

impl Calibration {
    /// Quantizes and dequantizes one value with this calibration's grid: the `f32` that
    /// the errors were measured against (they use its exact `f64` value, which differs only
    /// where it overflows `f32`, for a grid reaching past `f32::MAX`).
    pub fn fake_quantize(&self, x: f32) -> f32 {
        Grid::new(self.spec, self.range).quantize(x).0 as f32
    }
}

/// Measures what quantizing `x` to `spec` over `range` costs; see [`Calibration`].
///
/// `range` is taken through [`QuantSpec::effective_range`] first (covered symmetrically, or
/// extended to contain 0).
///
/// # Errors
///
/// - [`Error::Empty`] if `x` is empty;
/// - [`Error::NonFinite`] at the first NaN or infinity of `x`;
/// - [`Error::InvalidParameter`] unless `range` has finite ends with `lo ≤ hi`.
///
/// # Example
///
/// ```
/// use quant::calibrate::{QuantSpec, Range, evaluate};
/// # fn main() -> Result<(), quant::Error> {
/// // 2-bit symmetric over [−1, 1]: levels −1, 0, 1 with step 1.
/// let c = evaluate(&[0.5, 1.0, 3.0], Range::symmetric(1.0), QuantSpec::symmetric(2)?)?;
/// assert!((c.round_mse - 0.25 / 3.0).abs() < 1e-12); // 0.5 rounds (to even) to 0
/// assert!((c.clip_mse - 4.0 / 3.0).abs() < 1e-12); // 3 is clamped to 1
/// assert!((c.clipped_fraction - 1.0 / 3.0).abs() < 1e-12);
/// # Ok(())
/// # }
/// ```
pub fn evaluate(x: &[f32], range: Range, spec: QuantSpec) -> Result<Calibration> {
    const OP: &str = "evaluate";
    check_data(OP, x)?;
    range.validate(OP)?;
    Ok(evaluate_slice(x, spec.effective_range(range), spec))
}

/// [`evaluate`] on checked data with a range already through `effective_range`.
pub(crate) fn evaluate_slice(x: &[f32], range: Range, spec: QuantSpec) -> Calibration {
    let grid = Grid::new(spec, range);
    let mut sums = ErrorSums::default();
    for &v in x {
        sums.add(&grid, v, 1.0);
    }
    sums.finish(spec, range, &grid)
}

/// [`evaluate`] over weighted points `(value, weight)` (histogram bins), with a range
/// already through `effective_range`. Total weight must be positive.
pub(crate) fn evaluate_weighted(
    points: impl Iterator<Item = (f32, f64)>,
    range: Range,
    spec: QuantSpec,
) -> Calibration {
    let grid = Grid::new(spec, range);
    let mut sums = ErrorSums::default();
    for (v, w) in points {
        sums.add(&grid, v, w);
    }
    sums.finish(spec, range, &grid)
}

/// The arithmetic of one quantization grid, levels held as exact small `f32` integers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    scale: f32,
    zero: f32,
    qmin: f32,
    qmax: f32,
}

impl Grid {
    /// The grid of `spec` over `range`, which must already be its effective range.
    pub(crate) fn new(spec: QuantSpec, range: Range) -> Self {
        let qmax = spec.qmax() as f32;
        let qmin = spec.qmin() as f32;
        if spec.is_symmetric() {
            Self {
                scale: (f64::from(range.hi) / f64::from(qmax)) as f32,
                zero: 0.0,
                qmin,
                qmax,
            }
        } else {
            // In f64 so that `hi − lo` cannot overflow.
            let (lo, hi) = (f64::from(range.lo), f64::from(range.hi));
            let scale = ((hi - lo) / f64::from(qmax)) as f32;
            let zero = if scale > 0.0 {
                (-lo / f64::from(scale))
                    .round_ties_even()
                    .clamp(0.0, f64::from(qmax)) as f32
            } else {
                0.0
            };
            Self {
                scale,
                zero,
                qmin,
                qmax,
            }
        }
    }

    /// `(q(x), clamped)`: the dequantized value and whether the clamp acted.
    ///
    /// The level is computed in `f32` as a deployed quantizer does; the product
    /// `(level − z) · s` is exact in `f64` (24-bit by 24-bit significands), so it is the
    /// `f32` product before rounding, and cannot overflow when the grid's far end lies past
    /// `f32::MAX` (an asymmetric grid over `±f32::MAX` shifted by its zero point).
    #[inline]
    pub(crate) fn quantize(self, x: f32) -> (f64, bool) {
        if self.scale > 0.0 {
            let level = (x / self.scale).round_ties_even() + self.zero;
            let clamped = !(self.qmin..=self.qmax).contains(&level);
            let level = level.clamp(self.qmin, self.qmax);
            (
                f64::from(level - self.zero) * f64::from(self.scale),
                clamped,
            )
        } else {
            // Zero-width range: everything decodes to 0, and any non-zero value is clamped.
            (0.0, x != 0.0)
        }
    }
}

/// Weighted sums of squared errors, split by whether the clamp acted.
#[derive(Default)]
struct ErrorSums {
    weight: f64,
    clipped: f64,
    clip: f64,
    round: f64,
    total: f64,
}

impl ErrorSums {
    #[inline]
    fn add(&mut self, grid: &Grid, x: f32, weight: f64) {
        let (q, clamped) = grid.quantize(x);
        let e = f64::from(x) - q;
        let e2 = e * e * weight;
        self.weight += weight;
        self.total += e2;
        if clamped {
            self.clipped += weight;
            self.clip += e2;
        } else {
            self.round += e2;
        }
    }

    fn finish(self, spec: QuantSpec, range: Range, grid: &Grid) -> Calibration {
        let n = self.weight;
        Calibration {
            spec,
            range,
            scale: grid.scale,
            zero_point: grid.zero as i32,
            clip_mse: self.clip / n,
            round_mse: self.round / n,
            total_mse: self.total / n,
            clipped_fraction: (self.clipped / n).clamp(0.0, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::testutil::{DECOMPOSITION, bits, within_half_a_step};
    use numerics::testing::{Tolerance, rng};

    fn spec(bits: u32, symmetric: bool) -> QuantSpec {
        QuantSpec::new(bits, symmetric).unwrap()
    }

    #[test]
    fn spec_levels_and_bounds() {
        assert_eq!((spec(8, true).qmin(), spec(8, true).qmax()), (-127, 127));
        assert_eq!((spec(8, false).qmin(), spec(8, false).qmax()), (0, 255));
        assert_eq!((spec(2, true).qmin(), spec(2, true).qmax()), (-1, 1));
        assert_eq!((spec(4, false).qmin(), spec(4, false).qmax()), (0, 15));
        for bad in [0, 1, 9, 32] {
            let e = QuantSpec::new(bad, true).unwrap_err();
            assert!(
                matches!(e, Error::InvalidParameter { name: "bits", ref value, .. } if *value == bad.to_string()),
                "{e:?}"
            );
        }
        assert_eq!(spec(8, true).to_string(), "int8-sym");
        assert_eq!(spec(4, false).to_string(), "int4-asym");
    }

    #[test]
    fn effective_ranges() {
        let s = spec(8, true);
        let eff = |s: QuantSpec, lo, hi| bits(s.effective_range(Range::new(lo, hi)));
        assert_eq!(eff(s, -1.0, 3.0), bits(Range::symmetric(3.0)));
        assert_eq!(eff(s, -5.0, 3.0), bits(Range::symmetric(5.0)));
        let a = spec(8, false);
        assert_eq!(eff(a, 1.0, 3.0), bits(Range::new(0.0, 3.0)));
        assert_eq!(eff(a, -3.0, -1.0), bits(Range::new(-3.0, 0.0)));
    }

    #[test]
    fn scale_and_zero_point() {
        let (s, z) = spec(8, true).scale_and_zero_point(Range::symmetric(127.0));
        assert_eq!((s.to_bits(), z), (1.0f32.to_bits(), 0));
        // [−1, 254] over 255 steps: scale 1, zero point 1.
        let (s, z) = spec(8, false).scale_and_zero_point(Range::new(-1.0, 254.0));
        assert_eq!((s.to_bits(), z), (1.0f32.to_bits(), 1));
        let (s, z) = spec(4, false).scale_and_zero_point(Range::new(0.0, 0.0));
        assert_eq!((s.to_bits(), z), (0, 0));
    }

    #[test]
    fn hand_computed_symmetric() {
        // 2-bit symmetric over [−1, 1]: levels −1, 0, 1, step 1.
        let c = evaluate(
            &[0.5, 1.0, 3.0, -0.75],
            Range::symmetric(1.0),
            spec(2, true),
        )
        .unwrap();
        assert_eq!(c.scale.to_bits(), 1.0f32.to_bits());
        // 0.5 → 0 (tie to even), 1 → 1, 3 → clamped to 1, −0.75 → −1.
        let t = Tolerance::rel_abs(1e-15, 0.0);
        assert!(t.allows(4.0 / 4.0, c.clip_mse), "{c:?}");
        assert!(t.allows((0.25 + 0.0625) / 4.0, c.round_mse), "{c:?}");
        assert!(t.allows((4.0 + 0.25 + 0.0625) / 4.0, c.total_mse), "{c:?}");
        assert!(t.allows(0.25, c.clipped_fraction), "{c:?}");
    }

    #[test]
    fn hand_computed_asymmetric() {
        // 2-bit asymmetric over [−1, 2]: step 1, zero point 1, levels decode to −1, 0, 1, 2.
        let c = evaluate(
            &[-3.0, -1.0, 0.4, 2.6, 2.2],
            Range::new(-1.0, 2.0),
            spec(2, false),
        )
        .unwrap();
        assert_eq!((c.scale.to_bits(), c.zero_point), (1.0f32.to_bits(), 1));
        // −3 → clamped to −1 (error 2); 2.6 → level round(2.6)+1 = 4 > 3, clamped to 2
        // (error 0.6); 2.2 → level 3, not clamped (error 0.2); 0.4 → 0 (error 0.4).
        let t = Tolerance::rel_abs(1e-6, 0.0); // the inputs are f32 roundings of decimals
        assert!(t.allows((4.0 + 0.36) / 5.0, c.clip_mse), "{c:?}");
        assert!(t.allows((0.16 + 0.04) / 5.0, c.round_mse), "{c:?}");
        assert!(t.allows(0.4, c.clipped_fraction), "{c:?}");
        for (x, q) in [(-3.0f32, -1.0f32), (0.4, 0.0), (2.6, 2.0), (-0.6, -1.0)] {
            assert_eq!(c.fake_quantize(x).to_bits(), q.to_bits(), "q({x})");
        }
    }

    #[test]
    fn zero_is_exact_for_asymmetric() {
        let mut r = rng::seeded(5);
        for bits in 2..=8 {
            for _ in 0..50 {
                let v = rng::uniform_vec(&mut r, 2, -10.0, 10.0);
                let range = Range::new(v[0].min(v[1]), v[0].max(v[1]));
                let c = evaluate(&[0.0], range, spec(bits, false)).unwrap();
                assert_eq!(c.fake_quantize(0.0).to_bits(), 0.0f32.to_bits(), "{c:?}");
                assert!(c.range.contains(0.0));
                assert!((0..=spec(bits, false).qmax()).contains(&c.zero_point));
            }
        }
    }

    #[test]
    fn zero_width_range_maps_everything_to_zero() {
        for symmetric in [true, false] {
            let c = evaluate(
                &[0.0, 0.0, 2.0, -1.0],
                Range::new(0.0, 0.0),
                spec(4, symmetric),
            )
            .unwrap();
            assert_eq!(c.scale.to_bits(), 0);
            assert!(Tolerance::EXACT.allows(0.5, c.clipped_fraction));
            assert!(Tolerance::EXACT.allows(5.0 / 4.0, c.clip_mse));
            assert!(Tolerance::EXACT.allows(0.0, c.round_mse));
        }
    }

    #[test]
    fn decomposition_and_the_clip_round_trade() {
        let x = rng::normal_vec(&mut rng::seeded(17), 20_000);
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for spec in [spec(8, true), spec(4, true), spec(4, false), spec(2, false)] {
            let mut last: Option<Calibration> = None;
            // From a tight range to the full one: clipping falls, rounding rises.
            for frac in [0.05f32, 0.1, 0.2, 0.4, 0.7, 1.0] {
                let t = amax * frac;
                let c = evaluate(&x, Range::symmetric(t), spec).unwrap();
                assert!(
                    DECOMPOSITION.allows(c.total_mse, c.clip_mse + c.round_mse),
                    "{c:?}"
                );
                assert!(c.clip_mse >= 0.0 && c.round_mse >= 0.0);
                if let Some(p) = last {
                    assert!(c.clip_mse < p.clip_mse, "{spec}: {p:?} -> {c:?}");
                    assert!(c.clipped_fraction < p.clipped_fraction);
                    assert!(c.round_mse > p.round_mse, "{spec}: {p:?} -> {c:?}");
                }
                last = Some(c);
            }
            let full = last.unwrap();
            if spec.is_symmetric() {
                assert!(Tolerance::EXACT.allows(0.0, full.clip_mse), "{full:?}");
                assert!(Tolerance::EXACT.allows(0.0, full.clipped_fraction));
            } else {
                // [−t, t] puts the zero point on a tie (t / s = 7.5 levels for 4 bits), which
                // rounds up and moves the grid half a step down: amax is clamped by s / 2.
                assert!(full.clipped_fraction > 0.0);
                assert!(within_half_a_step(&full), "{full:?}");
            }
        }
    }

    #[test]
    fn rounding_error_is_at_most_half_a_step() {
        let x = rng::uniform_vec(&mut rng::seeded(3), 5000, -4.0, 6.0);
        for bits in 2..=8 {
            for symmetric in [true, false] {
                let c = evaluate(&x, Range::new(-4.0, 6.0), spec(bits, symmetric)).unwrap();
                let half = f64::from(c.scale) / 2.0;
                assert!(c.round_mse <= half * half * (1.0 + 1e-6), "{c:?}");
                assert!(Tolerance::EXACT.allows(0.0, c.clipped_fraction), "{c:?}");
            }
        }
    }

    #[test]
    fn evaluate_rejects_bad_input() {
        let s = spec(8, true);
        let r = Range::symmetric(1.0);
        assert_eq!(evaluate(&[], r, s), Err(Error::Empty { op: "evaluate" }));
        assert!(matches!(
            evaluate(&[1.0, f32::NAN], r, s),
            Err(Error::NonFinite {
                op: "evaluate",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            evaluate(&[f32::NEG_INFINITY], r, s),
            Err(Error::NonFinite { index: 0, value, .. }) if value.to_bits() == f32::NEG_INFINITY.to_bits()
        ));
        for bad in [
            Range::new(1.0, -1.0),
            Range::new(f32::NAN, 1.0),
            Range::new(0.0, f32::INFINITY),
        ] {
            assert!(matches!(
                evaluate(&[1.0], bad, s),
                Err(Error::InvalidParameter { name: "range", .. })
            ));
        }
    }
}
