//! Learned step size quantization (Esser et al. 2020, "Learned Step Size Quantization",
//! ICLR 2020, arXiv:1902.08153).

use super::{checked_reciprocal, fake_quantize_per_tensor_affine_into};
use crate::{Error, Result};

/// A learned-step-size quantizer (LSQ, Esser et al. 2020) of `bits` bits, signed or
/// unsigned, with the step size `s` a trained parameter.
///
/// With `Q_N` and `Q_P` the number of negative and positive levels — signed:
/// `Q_N = 2^(b−1)`, `Q_P = 2^(b−1) − 1`; unsigned: `Q_N = 0`, `Q_P = 2^b − 1` —
///
/// - **forward**: `v̂ = round(clamp(v/s, −Q_N, Q_P)) · s` (round half to even);
/// - **gradient with respect to `v`** (straight-through): `1` where `−Q_N < v/s < Q_P`,
///   else `0`;
/// - **gradient with respect to `s`** (the paper's equation 3): `round(v/s) − v/s` where
///   `−Q_N < v/s < Q_P`, `−Q_N` where `v/s ≤ −Q_N`, `Q_P` where `v/s ≥ Q_P`, multiplied by
///   the gradient scale `g = 1/sqrt(N · Q_P)` and summed over the elements with the
///   upstream gradient: `∂L/∂s = g · Σ_i ∂L/∂v̂_i · ∂v̂_i/∂s`. `N` is the number of
///   weights the step serves, or the number of features for an activation quantizer:
///   [`backward`](Self::backward) uses `v.len()`, [`backward_into`](Self::backward_into)
///   takes any `g` (see [`grad_scale`](Self::grad_scale));
/// - **initial step**: `2 · mean|v| / sqrt(Q_P)` ([`init_step`](Self::init_step)).
///
/// What the step gradient means: writing `u = v/s`, `v̂ = round(u) · s`, and the product
/// rule with the straight-through `d round(u)/du = 1` gives
/// `round(u) + s · (−v/s²) = round(u) − u`. The first term is the true derivative of the
/// piecewise-linear forward with the rounding held fixed; the second is what the
/// straight-through estimator adds, which makes the gradient grow as `v` nears a
/// transition between codes. Equivalently it is the exact derivative of the surrogate
/// `(round(u₀) + v/s − u₀) · s` (rounding linearised at the current `u₀`). Clamped
/// elements are `−Q_N · s` or `Q_P · s`, whose derivatives are exact. The unit tests check
/// each of these statements by finite differences.
///
/// Numerics: `v/s` is computed as PyTorch does, as the `f32` product `v · (1.0f32 / s)`,
/// so [`forward`](Self::forward) is bit for bit
/// [`fake_quantize_per_tensor_affine`](super::fake_quantize_per_tensor_affine)`(v, s, 0,
/// −Q_N, Q_P)` (clamping before or after rounding to an integer limit is the same). The
/// step gradient is accumulated in `f64`.
///
/// Relation to PyTorch: `torch._fake_quantize_learnable_per_tensor_affine` with a zero
/// point of 0 and `grad_factor = g` has the same forward and the same gradients except at
/// the clamp boundary: PyTorch classifies an element by its *rounded* code
/// (`q_min ≤ nearbyint(v/s) ≤ q_max` is "inside"), so for `Q_P < v/s < Q_P + 1/2` it passes
/// the gradient to `v` and uses `Q_P − v/s` for `s`, where this type follows the paper
/// (clamped: `0` and `Q_P`), which is the derivative of the forward written above.
/// The unit tests compare with gradients recorded from PyTorch away from that band.
///
/// # Example
///
/// ```
/// use quant::qat::Lsq;
///
/// # fn main() -> quant::Result<()> {
/// let lsq = Lsq::new(3, true)?; // Q_N = 4, Q_P = 3
/// let v = [0.26f32, 1.25, 10.0, -0.74];
/// assert_eq!(lsq.forward(&v, 0.5), [0.5, 1.0, 1.5, -0.5]);
/// // Per-element step gradients before scaling: 1 − 0.52, 2 − 2.5, Q_P, −1 + 1.48.
/// let mut grad_v = [0.0f32; 4];
/// let grad_s = lsq.backward_into(&v, 0.5, &[1.0; 4], 1.0, &mut grad_v);
/// assert_eq!(grad_v, [1.0, 1.0, 0.0, 1.0]);
/// assert!((grad_s - (0.48 - 0.5 + 3.0 + 0.48)).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lsq {
    bits: u32,
    signed: bool,
}

impl Lsq {
    /// The widest quantizer accepted: 16 bits (the codes stay exact in `f32`).
    pub const MAX_BITS: u32 = 16;

    /// A quantizer of `bits` bits, signed (`Q_N = 2^(b−1)`, `Q_P = 2^(b−1) − 1`) or
    /// unsigned (`Q_N = 0`, `Q_P = 2^b − 1`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `bits` is in `2..=16` (signed) or `1..=16`
    /// (unsigned): `Q_P` must be positive.
    pub fn new(bits: u32, signed: bool) -> Result<Self> {
        let min = if signed { 2 } else { 1 };
        if !(min..=Self::MAX_BITS).contains(&bits) {
            return Err(Error::InvalidParameter {
                op: "Lsq::new",
                name: "bits",
                value: bits.to_string(),
                reason: if signed {
                    "signed LSQ needs 2..=16 bits"
                } else {
                    "unsigned LSQ needs 1..=16 bits"
                },
            });
        }
        Ok(Self { bits, signed })
    }

    /// The bit width.
    #[must_use]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Whether the codes are signed.
    #[must_use]
    pub fn signed(&self) -> bool {
        self.signed
    }

    /// `Q_N`, the number of negative levels: the lowest code is `−Q_N`.
    #[must_use]
    pub fn qn(&self) -> u32 {
        if self.signed { 1 << (self.bits - 1) } else { 0 }
    }

    /// `Q_P`, the number of positive levels: the highest code is `Q_P`.
    #[must_use]
    pub fn qp(&self) -> u32 {
        if self.signed {
            (1 << (self.bits - 1)) - 1
        } else {
            (1 << self.bits) - 1
        }
    }

    /// The code limits as `(quant_min, quant_max) = (−Q_N, Q_P)`.
    fn limits(&self) -> (i32, i32) {
        // Both fit in i32: bits ≤ 16.
        (-(self.qn() as i32), self.qp() as i32)
    }

    /// LSQ's gradient scale `g = 1/sqrt(n · Q_P)` for a step shared by `n` weights (or
    /// `n` features of an activation).
    ///
    /// # Panics
    ///
    /// If `n == 0`.
    #[must_use]
    #[track_caller]
    pub fn grad_scale(&self, n: usize) -> f32 {
        assert!(n > 0, "Lsq::grad_scale: n must be positive");
        (1.0 / (n as f64 * f64::from(self.qp())).sqrt()) as f32
    }

    /// The paper's initial step `2 · mean|v| / sqrt(Q_P)`, computed in `f64`.
    ///
    /// # Errors
    ///
    /// - [`Error::Empty`] if `v` is empty;
    /// - [`Error::NonFinite`] at the first NaN or infinite element;
    /// - [`Error::InvalidParameter`] if the step is not usable by
    ///   [`forward`](Self::forward): zero (all of `v` is zero), too small for its
    ///   reciprocal to be finite, or overflowing `f32`.
    pub fn init_step(&self, v: &[f32]) -> Result<f32> {
        const OP: &str = "Lsq::init_step";
        if v.is_empty() {
            return Err(Error::Empty { op: OP });
        }
        let mut sum = 0.0f64;
        for (index, &x) in v.iter().enumerate() {
            if !x.is_finite() {
                return Err(Error::NonFinite {
                    op: OP,
                    index,
                    value: x,
                });
            }
            sum += f64::from(x.abs());
        }
        let mean = sum / v.len() as f64;
        let s = (2.0 * mean / f64::from(self.qp()).sqrt()) as f32;
        if !(s.is_finite() && s > 0.0 && (1.0 / s).is_finite()) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "step",
                value: format!("{s:e}"),
                reason: "2·mean|v|/sqrt(Qp) must be a positive f32 with a finite reciprocal \
                         (v all zero, or too small or too large)",
            });
        }
        Ok(s)
    }

    /// The fake-quantized values `v̂ = round(clamp(v/s, −Q_N, Q_P)) · s`.
    ///
    /// NaN elements stay NaN.
    ///
    /// # Panics
    ///
    /// If `s` is not finite and positive or its reciprocal overflows `f32`.
    #[must_use]
    #[track_caller]
    pub fn forward(&self, v: &[f32], s: f32) -> Vec<f32> {
        let mut out = vec![0.0; v.len()];
        self.forward_into(v, s, &mut out);
        out
    }

    /// [`forward`](Self::forward) writing into `out`.
    ///
    /// # Panics
    ///
    /// As [`forward`](Self::forward), and if `out.len() != v.len()`.
    #[track_caller]
    pub fn forward_into(&self, v: &[f32], s: f32, out: &mut [f32]) {
        let (quant_min, quant_max) = self.limits();
        checked_reciprocal("Lsq::forward", s, None);
        fake_quantize_per_tensor_affine_into(v, s, 0, quant_min, quant_max, out);
    }

    /// Gradients of a loss `L` with respect to `v` and `s`, given `grad_out = ∂L/∂v̂`, with
    /// the gradient scale `g = 1/sqrt(v.len() · Q_P)` (the weight-quantizer case).
    ///
    /// Returns `(∂L/∂v, ∂L/∂s)` as defined on [`Lsq`]. An empty `v` gives `([], 0.0)`.
    ///
    /// # Panics
    ///
    /// As [`backward_into`](Self::backward_into).
    #[must_use]
    #[track_caller]
    pub fn backward(&self, v: &[f32], s: f32, grad_out: &[f32]) -> (Vec<f32>, f32) {
        let mut grad_v = vec![0.0; v.len()];
        if v.is_empty() {
            checked_reciprocal("Lsq::backward", s, None);
            assert!(
                grad_out.is_empty(),
                "Lsq::backward: grad_out has {} elements, expected 0",
                grad_out.len()
            );
            return (grad_v, 0.0);
        }
        let g = self.grad_scale(v.len());
        let grad_s = self.backward_into(v, s, grad_out, g, &mut grad_v);
        (grad_v, grad_s)
    }

    /// [`backward`](Self::backward) with an explicit gradient scale `grad_scale` (use
    /// [`grad_scale`](Self::grad_scale)`(n_features)` for activations, or `1.0` for the
    /// unscaled gradient), writing `∂L/∂v` into `grad_v` and returning `∂L/∂s`.
    ///
    /// `∂L/∂v[i]` is `grad_out[i] · 1.0` inside the clamp range and `grad_out[i] · 0.0`
    /// outside (a product, as in PyTorch, so a NaN upstream gradient stays NaN). A NaN in
    /// `v` gets a zero `∂L/∂v` and makes `∂L/∂s` NaN.
    ///
    /// # Panics
    ///
    /// If `s` is not finite and positive or its reciprocal overflows `f32`, or if
    /// `grad_out` or `grad_v` is not as long as `v`.
    #[track_caller]
    pub fn backward_into(
        &self,
        v: &[f32],
        s: f32,
        grad_out: &[f32],
        grad_scale: f32,
        grad_v: &mut [f32],
    ) -> f32 {
        const OP: &str = "Lsq::backward";
        let inv_s = checked_reciprocal(OP, s, None);
        super::check_len(OP, "grad_out", v.len(), grad_out.len());
        super::check_len(OP, "grad_v", v.len(), grad_v.len());
        let qn = -(self.qn() as f32);
        let qp = self.qp() as f32;
        let mut sum = 0.0f64;
        for ((gv, &x), &go) in grad_v.iter_mut().zip(v).zip(grad_out) {
            // The same f32 quotient the forward pass rounds.
            let u = x * inv_s;
            let (pass, ds) = if qn < u && u < qp {
                (1.0f32, f64::from(u.round_ties_even()) - f64::from(u))
            } else if u <= qn {
                (0.0, f64::from(qn))
            } else if u >= qp {
                (0.0, f64::from(qp))
            } else {
                (0.0, f64::NAN) // u is NaN
            };
            *gv = go * pass;
            sum += f64::from(go) * ds;
        }
        (f64::from(grad_scale) * sum) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qat::fake_quantize_per_tensor_affine;
    use numerics::testing::rng::{seeded, uniform_vec};
    use numerics::testing::{Tolerance, assert_close};
    use proptest::prelude::*;

    fn bits_of(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn levels_for_signed_and_unsigned() {
        let cases = [
            (2, true, 2, 1),
            (3, true, 4, 3),
            (4, true, 8, 7),
            (8, true, 128, 127),
            (16, true, 32768, 32767),
            (1, false, 0, 1),
            (3, false, 0, 7),
            (8, false, 0, 255),
            (16, false, 0, 65535),
        ];
        for (bits, signed, qn, qp) in cases {
            let q = Lsq::new(bits, signed).unwrap();
            assert_eq!(
                (q.bits(), q.signed(), q.qn(), q.qp()),
                (bits, signed, qn, qp)
            );
        }
    }

    #[test]
    fn new_rejects_bit_widths_without_positive_levels_or_too_wide() {
        for (bits, signed) in [(0, false), (0, true), (1, true), (17, true), (17, false)] {
            let err = Lsq::new(bits, signed).unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { name: "bits", .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn grad_scale_is_inverse_sqrt_of_n_times_qp() {
        let q = Lsq::new(3, true).unwrap(); // Q_P = 3
        assert_eq!(q.grad_scale(12).to_bits(), (1.0f32 / 6.0).to_bits());
        let q = Lsq::new(2, false).unwrap(); // Q_P = 3
        assert_eq!(q.grad_scale(3).to_bits(), (1.0f32 / 3.0).to_bits());
    }

    #[test]
    #[should_panic(expected = "n must be positive")]
    fn grad_scale_panics_on_zero() {
        let _ = Lsq::new(4, true).unwrap().grad_scale(0);
    }

    #[test]
    fn init_step_is_twice_mean_abs_over_sqrt_qp() {
        let q = Lsq::new(3, false).unwrap(); // Q_P = 7
        let v = [1.0f32, -2.0, 3.0, -6.0]; // mean |v| = 3
        let expected = (6.0 / 7.0f64.sqrt()) as f32;
        assert_eq!(q.init_step(&v).unwrap().to_bits(), expected.to_bits());
        let q = Lsq::new(3, true).unwrap(); // Q_P = 3
        let expected = (6.0 / 3.0f64.sqrt()) as f32;
        assert_eq!(q.init_step(&v).unwrap().to_bits(), expected.to_bits());
    }

    #[test]
    fn init_step_errors() {
        let q = Lsq::new(4, true).unwrap();
        assert!(matches!(q.init_step(&[]), Err(Error::Empty { .. })));
        assert!(matches!(
            q.init_step(&[1.0, f32::NAN]),
            Err(Error::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            q.init_step(&[f32::NEG_INFINITY]),
            Err(Error::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            q.init_step(&[0.0, -0.0]),
            Err(Error::InvalidParameter { name: "step", .. })
        ));
        // 2·1e-45/sqrt(7): a subnormal step whose reciprocal overflows.
        assert!(matches!(
            q.init_step(&[1e-45]),
            Err(Error::InvalidParameter { name: "step", .. })
        ));
        // Unsigned 1 bit (Q_P = 1) doubles f32::MAX.
        let q1 = Lsq::new(1, false).unwrap();
        assert!(matches!(
            q1.init_step(&[f32::MAX]),
            Err(Error::InvalidParameter { name: "step", .. })
        ));
    }

    #[test]
    fn forward_hand_computed() {
        let q = Lsq::new(3, true).unwrap(); // codes −4..=3
        let v = [0.26f32, 1.25, 10.0, -0.74, -1.25, -1.75, -2.0, -3.0, 0.0];
        // v/s = 0.52, 2.5 (tie → 2), 20 (→ 3), −1.48, −2.5 (tie → −2), −3.5 (tie → −4),
        // −4, −6 (→ −4), 0.
        let expected = [0.5f32, 1.0, 1.5, -0.5, -1.0, -2.0, -2.0, -2.0, 0.0];
        assert_eq!(bits_of(&q.forward(&v, 0.5)), bits_of(&expected));
        let u = Lsq::new(2, false).unwrap(); // codes 0..=3
        let expected = [0.5f32, 1.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(bits_of(&u.forward(&v, 0.5)), bits_of(&expected));
    }

    #[test]
    fn forward_propagates_nan() {
        let q = Lsq::new(4, true).unwrap();
        let y = q.forward(&[f32::NAN, 1.0], 0.5);
        assert!(y[0].is_nan());
        assert_eq!(y[1].to_bits(), 1.0f32.to_bits());
    }

    #[test]
    fn backward_hand_computed() {
        let q = Lsq::new(3, true).unwrap(); // Q_N = 4, Q_P = 3
        let s = 0.5f32;
        // u = v/s:      0.52   2.5   20    −1.48  −8     3 (= Q_P)  −4 (= −Q_N)  −3.9
        let v = [0.26f32, 1.25, 10.0, -0.74, -4.0, 1.5, -2.0, -1.95];
        let g_out = [1.0f32, 2.0, 3.0, -1.0, 0.5, -2.0, 1.5, 4.0];
        let mut grad_v = [0.0f32; 8];
        let grad_s = q.backward_into(&v, s, &g_out, 1.0, &mut grad_v);
        // Inside is strict (the paper's −Q_N < v/s < Q_P): both limits count as clamped.
        let pass = [1.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let expected_v: Vec<f32> = g_out.iter().zip(&pass).map(|(g, p)| g * p).collect();
        assert_eq!(bits_of(&grad_v), bits_of(&expected_v));
        // round(u) − u inside, −Q_N below, Q_P above (u computed as the f32 v·(1/s)).
        let ds = [
            1.0 - 0.52f64,
            2.0 - 2.5,
            3.0,
            -1.0 + 1.48,
            -4.0,
            3.0,
            -4.0,
            -4.0 + 3.9,
        ];
        let expected_s: f64 = g_out.iter().zip(&ds).map(|(&g, d)| f64::from(g) * d).sum();
        assert_close_f64s(expected_s, f64::from(grad_s), Tolerance::F32);

        // backward() applies g = 1/sqrt(N · Q_P) = 1/sqrt(24).
        let (grad_v2, grad_s2) = q.backward(&v, s, &g_out);
        assert_eq!(bits_of(&grad_v2), bits_of(&expected_v));
        let g = 1.0 / 24.0f64.sqrt();
        assert_close_f64s(expected_s * g, f64::from(grad_s2), Tolerance::F32);
    }

    fn assert_close_f64s(expected: f64, got: f64, tol: Tolerance) {
        assert!(
            tol.allows(expected, got),
            "expected {expected}, got {got} (tolerance {tol:?})"
        );
    }

    #[test]
    fn backward_nan_and_empty() {
        let q = Lsq::new(4, true).unwrap();
        let mut grad_v = [7.0f32; 2];
        let gs = q.backward_into(&[f32::NAN, 0.3], 0.25, &[1.0, 1.0], 1.0, &mut grad_v);
        assert!(gs.is_nan());
        assert_eq!(bits_of(&grad_v), bits_of(&[0.0, 1.0]));
        let (gv, gs) = q.backward(&[], 0.25, &[]);
        assert!(gv.is_empty());
        assert_eq!(gs.to_bits(), 0.0f32.to_bits());
    }

    #[test]
    #[should_panic(expected = "Lsq::forward: scale must be finite and positive")]
    fn forward_panics_on_zero_step() {
        let _ = Lsq::new(4, true).unwrap().forward(&[1.0], 0.0);
    }

    #[test]
    #[should_panic(expected = "Lsq::backward: scale must be finite and positive")]
    fn backward_panics_on_negative_step() {
        let _ = Lsq::new(4, true).unwrap().backward(&[1.0], -0.5, &[1.0]);
    }

    #[test]
    #[should_panic(expected = "Lsq::backward: scale must be finite and positive")]
    fn backward_panics_on_nan_step_with_empty_input() {
        let _ = Lsq::new(4, true).unwrap().backward(&[], f32::NAN, &[]);
    }

    #[test]
    #[should_panic(expected = "Lsq::backward: grad_out has 1 elements, expected 2")]
    fn backward_panics_on_length_mismatch() {
        let _ = Lsq::new(4, true)
            .unwrap()
            .backward(&[1.0, 2.0], 0.5, &[1.0]);
    }

    #[test]
    #[should_panic(expected = "Lsq::backward: grad_v has 1 elements, expected 2")]
    fn backward_into_panics_on_output_length_mismatch() {
        let mut grad_v = [0.0f32; 1];
        let _ = Lsq::new(4, true).unwrap().backward_into(
            &[1.0, 2.0],
            0.5,
            &[1.0, 1.0],
            1.0,
            &mut grad_v,
        );
    }

    // ---- Finite-difference checks -------------------------------------------------------
    //
    // The forward v̂(v, s) = round(clamp(v/s, −Q_N, Q_P)) · s is piecewise linear in s and
    // piecewise constant in v, with jumps where v/s crosses a half-integer and kinks where
    // it crosses −Q_N or Q_P. Away from those points (elements within EPS of them, in
    // units of v/s, are dropped) central differences in f64 give the true derivatives
    // exactly up to rounding, and we check precisely what is true of LSQ's estimators:
    //
    // - for clamped elements, LSQ's ∂v̂/∂s (−Q_N or Q_P) *is* the true derivative;
    // - for inside elements, the true derivative is round(v/s) and LSQ's estimate is that
    //   plus the straight-through term −v/s;
    // - the true ∂v̂/∂v is 0 everywhere off the jumps, so the STE gradient (1 inside) is
    //   not a derivative of the forward at all: it is the derivative of the surrogate with
    //   the rounding linearised, round(u) ≈ round(u₀) + (u − u₀), and both of LSQ's
    //   gradients are exact derivatives of that surrogate.

    const EPS: f64 = 0.02;
    const N: usize = 400;

    /// The forward in f64 with exact division (the f32 product only moves u by ~1e-7).
    fn fq64(q: &Lsq, v: f64, s: f64) -> f64 {
        let u = (v / s).clamp(-f64::from(q.qn()), f64::from(q.qp()));
        u.round_ties_even() * s
    }

    /// The surrogate at the linearisation point `u0`: rounding replaced by its first-order
    /// straight-through approximation, clamping kept.
    fn surrogate64(q: &Lsq, v: f64, s: f64, u0: f64) -> f64 {
        let (lo, hi) = (-f64::from(q.qn()), f64::from(q.qp()));
        let u = v / s;
        if u <= lo {
            lo * s
        } else if u >= hi {
            hi * s
        } else {
            (u0.round_ties_even() + u - u0) * s
        }
    }

    /// Random (v, c) with v/s away from half-integers and from the clamp limits, spread
    /// over the clamp range and a quarter of its width (at least 3 steps) past each end.
    fn smooth_points(q: &Lsq, s: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = seeded(seed);
        let (lo, hi) = (-f64::from(q.qn()), f64::from(q.qp()));
        let margin = 3.0 + (hi - lo) / 4.0;
        let (a, b) = ((lo - margin) as f32 * s, (hi + margin) as f32 * s);
        let v: Vec<f32> = uniform_vec(&mut rng, 4 * N, a, b)
            .into_iter()
            .filter(|&x| {
                let u = f64::from(x) / f64::from(s);
                let frac = u - u.floor();
                (frac - 0.5).abs() > EPS && (u - lo).abs() > EPS && (u - hi).abs() > EPS
            })
            .take(N)
            .collect();
        assert_eq!(v.len(), N);
        let c = uniform_vec(&mut rng, N, -1.0, 1.0);
        (v, c)
    }

    fn central_diff(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    fn quantizers() -> [Lsq; 3] {
        [
            Lsq::new(3, true).unwrap(),
            Lsq::new(4, false).unwrap(),
            Lsq::new(8, true).unwrap(),
        ]
    }

    /// Step of the differences: moves u = v/s by at most (Q_P + 3) · 1e-6 ≪ EPS.
    const REL_STEP: f64 = 1e-6;

    #[test]
    fn lsq_step_gradient_is_exact_for_clamped_elements() {
        for (k, q) in quantizers().into_iter().enumerate() {
            let s = 0.37f32;
            let (v, c) = smooth_points(&q, s, 10 + k as u64);
            let (lo, hi) = (-f64::from(q.qn()), f64::from(q.qp()));
            let clamped: Vec<usize> = (0..N)
                .filter(|&i| {
                    let u = f64::from(v[i]) / f64::from(s);
                    u < lo || u > hi
                })
                .collect();
            assert!(clamped.len() > 20, "too few clamped points");
            let vc: Vec<f32> = clamped.iter().map(|&i| v[i]).collect();
            let cc: Vec<f32> = clamped.iter().map(|&i| c[i]).collect();
            let loss = |s: f64| -> f64 {
                vc.iter()
                    .zip(&cc)
                    .map(|(&x, &w)| f64::from(w) * fq64(&q, f64::from(x), s))
                    .sum()
            };
            let fd = central_diff(loss, f64::from(s), REL_STEP * f64::from(s));
            let mut grad_v = vec![0.0; vc.len()];
            let lsq = q.backward_into(&vc, s, &cc, 1.0, &mut grad_v);
            let tol = Tolerance::rel_abs(1e-6, 1e-6).scaled_abs(vc.len());
            assert!(
                tol.allows(fd, f64::from(lsq)),
                "{q:?}: fd {fd} vs LSQ {lsq}"
            );
            assert!(
                grad_v.iter().all(|&g| g == 0.0),
                "clamped elements get no gradient"
            );
        }
    }

    #[test]
    fn lsq_step_gradient_inside_is_true_derivative_plus_ste_term() {
        for (k, q) in quantizers().into_iter().enumerate() {
            let s = 0.37f32;
            let (v, c) = smooth_points(&q, s, 20 + k as u64);
            let (lo, hi) = (-f64::from(q.qn()), f64::from(q.qp()));
            let inside: Vec<usize> = (0..N)
                .filter(|&i| {
                    let u = f64::from(v[i]) / f64::from(s);
                    lo < u && u < hi
                })
                .collect();
            assert!(inside.len() > 20, "too few inside points");
            let vi: Vec<f32> = inside.iter().map(|&i| v[i]).collect();
            let ci: Vec<f32> = inside.iter().map(|&i| c[i]).collect();
            let loss = |s: f64| -> f64 {
                vi.iter()
                    .zip(&ci)
                    .map(|(&x, &w)| f64::from(w) * fq64(&q, f64::from(x), s))
                    .sum()
            };
            let s64 = f64::from(s);
            let fd = central_diff(loss, s64, REL_STEP * s64);
            // The true derivative with the rounding held: Σ c · round(v/s).
            let exact: f64 = vi
                .iter()
                .zip(&ci)
                .map(|(&x, &w)| f64::from(w) * (f64::from(x) / s64).round_ties_even())
                .sum();
            let tol = Tolerance::rel_abs(1e-6, 1e-6).scaled_abs(vi.len());
            assert!(
                tol.allows(exact, fd),
                "{q:?}: fd {fd} vs Σ c·round(v/s) {exact}"
            );
            // LSQ adds the straight-through term Σ c · (−v/s).
            let ste_term: f64 = vi
                .iter()
                .zip(&ci)
                .map(|(&x, &w)| -f64::from(w) * f64::from(x) / s64)
                .sum();
            let mut grad_v = vec![0.0; vi.len()];
            let lsq = q.backward_into(&vi, s, &ci, 1.0, &mut grad_v);
            assert!(
                tol.allows(fd + ste_term, f64::from(lsq)),
                "{q:?}: LSQ {lsq} vs fd + ste term {}",
                fd + ste_term
            );
            assert_eq!(
                bits_of(&grad_v),
                bits_of(&ci),
                "inside elements pass grad_out"
            );
        }
    }

    #[test]
    fn lsq_gradients_are_exact_derivatives_of_the_ste_surrogate() {
        for (k, q) in quantizers().into_iter().enumerate() {
            let s = 0.37f32;
            let s64 = f64::from(s);
            let (v, c) = smooth_points(&q, s, 30 + k as u64);
            let u0: Vec<f64> = v.iter().map(|&x| f64::from(x) / s64).collect();
            let loss = |v: &[f64], s: f64| -> f64 {
                (0..N)
                    .map(|i| f64::from(c[i]) * surrogate64(&q, v[i], s, u0[i]))
                    .sum()
            };
            let v64: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
            let g = 0.125f32; // any gradient scale: it multiplies the step gradient only
            let mut grad_v = vec![0.0; N];
            let lsq_s = q.backward_into(&v, s, &c, g, &mut grad_v);
            let fd_s = central_diff(|s| loss(&v64, s), s64, REL_STEP * s64);
            let tol = Tolerance::rel_abs(1e-6, 1e-6).scaled_abs(N);
            assert!(
                tol.allows(f64::from(g) * fd_s, f64::from(lsq_s)),
                "{q:?}: ∂L̃/∂s: fd {} vs LSQ {lsq_s}",
                f64::from(g) * fd_s
            );
            let mut fd_v = vec![0.0f32; N];
            for i in 0..N {
                let h = REL_STEP * s64;
                let mut vp = v64.clone();
                vp[i] += h;
                let mut vm = v64.clone();
                vm[i] -= h;
                fd_v[i] = ((loss(&vp, s64) - loss(&vm, s64)) / (2.0 * h)) as f32;
            }
            assert_close(
                "∂L̃/∂v: STE vs fd",
                &fd_v,
                &grad_v,
                Tolerance::rel_abs(1e-5, 1e-5),
            );
        }
    }

    #[test]
    fn true_derivative_wrt_v_is_zero_off_the_jumps() {
        // Why the STE gradient is an estimator: off the rounding jumps v̂ does not depend on
        // v at all, yet the STE passes grad_out through for inside elements.
        let q = Lsq::new(4, true).unwrap();
        let s = 0.37f32;
        let s64 = f64::from(s);
        let (v, c) = smooth_points(&q, s, 40);
        let mut grad_v = vec![0.0; N];
        let _ = q.backward_into(&v, s, &c, 1.0, &mut grad_v);
        let mut passed = 0;
        for i in 0..N {
            let x = f64::from(v[i]);
            let h = REL_STEP * s64;
            let fd = (fq64(&q, x + h, s64) - fq64(&q, x - h, s64)) / (2.0 * h);
            assert_eq!(fd.to_bits(), 0.0f64.to_bits(), "v̂ is locally constant in v");
            passed += usize::from(grad_v[i] != 0.0);
        }
        assert!(passed > N / 2, "the STE still passes most gradients");
    }

    proptest! {
        #![proptest_config(crate::qat::tests::proptest_config(64))]

        #[test]
        fn forward_is_fake_quantize_with_zero_point_zero(
            bits in 2u32..=8,
            signed in any::<bool>(),
            s in 1e-3f32..10.0,
            v in proptest::collection::vec(-1e3f32..1e3, 0..64),
        ) {
            let q = Lsq::new(bits, signed).unwrap();
            let (lo, hi) = (-(q.qn() as i32), q.qp() as i32);
            let expected = fake_quantize_per_tensor_affine(&v, s, 0, lo, hi);
            prop_assert_eq!(bits_of(&q.forward(&v, s)), bits_of(&expected));
        }

        #[test]
        fn grad_v_is_grad_out_inside_and_zero_outside(
            s in 1e-2f32..10.0,
            v in proptest::collection::vec(-100f32..100.0, 1..64),
        ) {
            let q = Lsq::new(4, true).unwrap();
            let g_out: Vec<f32> = (0..v.len()).map(|i| i as f32 - 7.5).collect();
            let (grad_v, _) = q.backward(&v, s, &g_out);
            let inv = 1.0 / s;
            for i in 0..v.len() {
                let u = v[i] * inv;
                let inside = -8.0 < u && u < 7.0;
                if inside {
                    prop_assert_eq!(grad_v[i].to_bits(), g_out[i].to_bits());
                } else {
                    prop_assert_eq!(grad_v[i].abs().to_bits(), 0);
                }
            }
        }
    }
}
