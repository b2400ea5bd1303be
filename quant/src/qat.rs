//! Quantization-aware training (QAT): fake quantization with PyTorch's exact semantics, its
//! straight-through gradient, and learned step size quantization ([`Lsq`]).
//!
//! # Fake quantization
//!
//! [`fake_quantize_per_tensor_affine`] and [`fake_quantize_per_channel_affine`] quantize and
//! immediately dequantize, so a network trained in `f32` sees the rounding and clamping it
//! will meet at inference. They reproduce `torch.fake_quantize_per_tensor_affine` and
//! `torch.fake_quantize_per_channel_affine` (with an `int32` zero point) **bit for bit**
//! on `f32` inputs: the unit tests replay outputs and masks recorded from PyTorch 2.15's CPU
//! kernels (`qat/torch_golden.txt`, written by `qat/gen_torch_golden.py`).
//!
//! What was read in PyTorch's source (`aten/src/ATen/native/quantized/`):
//! `FakeQuantPerTensorAffine.cpp` and `FakeQuantPerChannelAffine.cpp` (argument checks,
//! the `*_cachemask` forward ops and `dY * mask` backward ops) and, in
//! `cpu/kernels/QuantizedOpKernels.cpp`, `_fake_quantize_tensor_helper` (per tensor) and
//! `_fake_quant_per_channel_cachemask_cpu_helper` (per channel). For an `f32` input `x`,
//! scale `s` (an `f32`), zero point `z` and limits `[q_min, q_max]`, both compute
//!
//! 1. `inv_s = 1.0f32 / s`, once per tensor (per element in the per-channel kernel, same
//!    value): the input is **multiplied by the rounded reciprocal, not divided by `s`**, so
//!    for example `x = 2.35`, `s = 0.1` gives `x · inv_s = 23.5` exactly and the code 24,
//!    where a correctly rounded `x / s = 23.499998` would give 23;
//! 2. `r = nearbyint(x · inv_s)`: an `f32` product rounded to an integer, ties to even
//!    under the default rounding mode (2.5 → 2, 3.5 → 4, −2.5 → −2), still an `f32`;
//! 3. `q_f = z + r`, **in `f32`**: C++ converts the integer zero point to `float` and the
//!    sum is a float addition (both round once `|z|` or `|q_f|` exceeds 2²⁴). The zero point
//!    is added *after* rounding;
//! 4. per tensor: clamp with `fmin(fmax(q_f, q_min), q_max)` — the mixed float/integer
//!    overloads of `<cmath>` compute in `f64` — then cast to `int64`; the mask is
//!    `q_min <= q_f && q_f <= q_max` compared **as `f32`** (the limits are converted to
//!    `float`); the output is `float(q − z) · s` with `q − z` in `int64` and the product in
//!    `f32`;
//! 5. per channel: `q = (int64) q_f` first, the mask compares `q` with the limits **as
//!    `int64`**, the clamp is `fmin`/`fmax` of integers (so in `f64`), and the output is
//!    `((f64) q_c − z) · (f64) s` in `f64`, rounded to `f32` on return.
//!
//! Steps 4 and 5 give identical bits whenever `|q_min|, |q_max| ≤ 2²⁴` and
//! `q_max − q_min ≤ 2²⁴` (every integer format up to 24 bits): then the limits, the zero
//! point and every `q − z` are exact in `f32`, the two mask comparisons agree, and the
//! `f64` product of such an integer and an `f32` is exact, so rounding it to `f32` equals
//! the `f32` product. Outside that range the kernels can differ (the unit tests show a
//! mask that does); each is reproduced as PyTorch computes it, so both functions still
//! agree with PyTorch there.
//!
//! # The straight-through estimator
//!
//! The fake quantizer is piecewise constant, so its true derivative is zero almost
//! everywhere. PyTorch's `*_cachemask` ops save the mask
//! `q_min ≤ z + nearbyint(x · inv_s) ≤ q_max` (the *unclamped* code inside the limits) and
//! their backward is `dY * mask`: the gradient passes straight through where the input was
//! not clamped (Bengio et al. 2013, "Estimating or Propagating Gradients Through Stochastic
//! Neurons for Conditional Computation"). [`fake_quantize_per_tensor_affine_with_mask`]
//! returns that mask and [`ste_backward`] applies it. Like PyTorch it *multiplies*
//! `grad_out[i] · (mask[i] as f32)`, so a masked gradient becomes `±0.0` and a masked
//! NaN or infinite gradient becomes NaN.
//!
//! # Where this deviates from PyTorch
//!
//! - **NaN inputs** give a NaN output and a `false` mask. PyTorch's per-tensor kernel
//!   returns `(q_min − z) · s` (`fmax(NaN, q_min)` is `q_min`), and its per-channel
//!   kernel casts the NaN to `int64` before clamping, which is undefined behaviour in C++
//!   (on x86-64 it yields `i64::MIN` and so also `(q_min − z) · s`). Propagating the NaN
//!   keeps a diverged training run visible instead of silently clamping it.
//! - **Huge inputs in the per-channel op**: where `|z + nearbyint(x · inv_s)| ≥ 2⁶³`
//!   (including `±∞`) PyTorch's per-channel kernel again casts an out-of-range float to
//!   `int64` (undefined behaviour; x86-64 maps even `+∞` to `q_min`). Here the cast
//!   saturates, so `+∞` and huge positive values clamp to `q_max` and negative ones to
//!   `q_min`, the mask is `false`, and the result matches the per-tensor op (where PyTorch
//!   itself clamps in floating point and gets the same).
//! - **Argument checks**: PyTorch accepts any scale; these functions panic on a scale that
//!   is not finite and positive, or whose reciprocal overflows `f32` (`s < 2⁻¹²⁸`): with
//!   such a scale PyTorch multiplies `0 · ∞` and maps zero inputs to `q_min`. The
//!   zero-point and limit checks are PyTorch's (`q_min ≤ q_max`, `q_min ≤ z ≤ q_max`).
//!
//! # Properties (tested)
//!
//! - Every per-tensor output is `f32(q − z) · s` for an integer `q ∈ [q_min, q_max]`.
//! - For `x` in the representable range `[(q_min − z) · s, (q_max − z) · s]`, the output
//!   is within `s/2` of `x` (plus a few ulps: the reciprocal multiply can pick the other
//!   neighbour when `x / s` is within about an ulp of a half-integer).
//! - **Idempotence**: `fq(fq(x)) == fq(x)` bit for bit whenever `q_max − q_min ≤ 2²¹`,
//!   `|q_min|, |q_max| ≤ 2²⁴` and `s ≥ f32::MIN_POSITIVE` (normal): with `k = q − z`,
//!   `fl(fl(k · s) · fl(1/s)) = k (1 + δ)` with `|δ| ≤ 3 · 2⁻²⁴ (1 + 2⁻²³)`, so the
//!   second rounding recovers `k` while `|k| · 3 · 2⁻²⁴ < 1/2`, i.e. `|k| < 2²¹ · 4/3`, and
//!   adding `z` back is exact below 2²⁴. Every integer format up to 21 bits qualifies.
//!   For wider ranges it can fail: with `s = f32::from_bits(0x4008_2722)` (≈ 2.12739) and
//!   limits `±2³⁰`, PyTorch and this module map 24206812 to 24206814 and that to 24206816.
//!
//! # Learned step size quantization
//!
//! [`Lsq`] implements Esser et al. 2020, "Learned Step Size Quantization" (ICLR): the step
//! `s` is a trained parameter with its own gradient estimate and gradient scale. See its
//! docs for the formulas and how they relate to PyTorch's
//! `_fake_quantize_learnable_per_tensor_affine`.
//!
//! # Example: a tiny QAT loop
//!
//! Fit `y = w · x` with the 8 weights of `w` quantized to 3 bits by LSQ, training both the
//! latent weights and the step size by plain gradient descent:
//!
//! ```
//! use quant::qat::Lsq;
//!
//! # fn main() -> quant::Result<()> {
//! let lsq = Lsq::new(3, true)?; // codes −4..=3
//! let w_true = [0.9f32, -0.45, 0.3, -1.2, 0.6, 0.05, -0.75, 1.05];
//! let d = w_true.len();
//! // 32 deterministic pseudo-random samples in [−1, 1) (a multiplicative hash).
//! let xs: Vec<[f32; 8]> = (0..32u32)
//!     .map(|i| {
//!         std::array::from_fn(|j| {
//!             let h = (i * 8 + j as u32 + 1).wrapping_mul(2_654_435_761);
//!             (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
//!         })
//!     })
//!     .collect();
//! let ys: Vec<f32> = xs
//!     .iter()
//!     .map(|x| x.iter().zip(&w_true).map(|(a, b)| a * b).sum())
//!     .collect();
//!
//! // Forward pass and mean squared error; also returns dL/dŵ.
//! let loss_and_grad = |w_hat: &[f32]| {
//!     let mut loss = 0.0f32;
//!     let mut grad = vec![0.0f32; d];
//!     for (x, y) in xs.iter().zip(&ys) {
//!         let pred: f32 = x.iter().zip(w_hat).map(|(a, b)| a * b).sum();
//!         let err = pred - y;
//!         loss += err * err / xs.len() as f32;
//!         for (g, a) in grad.iter_mut().zip(x) {
//!             *g += 2.0 * err * a / xs.len() as f32;
//!         }
//!     }
//!     (loss, grad)
//! };
//!
//! let mut w = vec![0.1f32, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1];
//! let mut s = lsq.init_step(&w)?; // 2 · mean|w| / sqrt(Qp)
//! let (first_loss, _) = loss_and_grad(&lsq.forward(&w, s));
//! let mut loss = first_loss;
//! for _ in 0..50 {
//!     let w_hat = lsq.forward(&w, s);
//!     let (l, grad_w_hat) = loss_and_grad(&w_hat);
//!     loss = l;
//!     // STE for the weights, LSQ's scaled estimate for the step.
//!     let (grad_w, grad_s) = lsq.backward(&w, s, &grad_w_hat);
//!     for (wi, gi) in w.iter_mut().zip(&grad_w) {
//!         *wi -= 0.2 * gi;
//!     }
//!     s = (s - 0.05 * grad_s).max(1e-3);
//! }
//! assert!(loss < 0.25 * first_loss, "loss {first_loss} -> {loss}");
//! // The trained weights really are 3-bit: every ŵ is a code in −4..=3 times s.
//! for v in lsq.forward(&w, s) {
//!     let code = v / s;
//!     assert!((code - code.round()).abs() < 1e-5 && (-4.0..=3.0).contains(&code));
//! }
//! # Ok(())
//! # }
//! ```

mod lsq;
#[cfg(test)]
mod tests;

pub use lsq::Lsq;

/// Checks PyTorch's per-tensor arguments plus ours on the scale; returns `1.0f32 / scale`.
#[track_caller]
fn checked_inv_scale(op: &str, scale: f32, zero_point: i32, quant_min: i32, quant_max: i32) -> f32 {
    check_limits(op, zero_point, quant_min, quant_max);
    checked_reciprocal(op, scale, None)
}

/// PyTorch's checks: `quant_min <= quant_max` and the zero point inside the limits.
#[track_caller]
fn check_limits(op: &str, zero_point: i32, quant_min: i32, quant_max: i32) {
    assert!(
        quant_min <= quant_max,
        "{op}: quant_min ({quant_min}) must not exceed quant_max ({quant_max})"
    );
    assert!(
        quant_min <= zero_point && zero_point <= quant_max,
        "{op}: zero_point ({zero_point}) must lie in [quant_min, quant_max] = \
         [{quant_min}, {quant_max}]"
    );
}

/// `1.0f32 / scale`, panicking unless `scale` is finite and positive with a finite
/// reciprocal (`scale` ≥ about 2.94e-39). `channel` names the scale in the message.
#[track_caller]
fn checked_reciprocal(op: &str, scale: f32, channel: Option<usize>) -> f32 {
    let inv = 1.0f32 / scale;
    if !(scale.is_finite() && scale > 0.0 && inv.is_finite()) {
        let what = match channel {
            Some(c) => format!("scales[{c}]"),
            None => "scale".to_owned(),
        };
        if scale.is_finite() && scale > 0.0 {
            panic!("{op}: {what} = {scale:e} is too small: its reciprocal overflows f32");
        }
        panic!("{op}: {what} must be finite and positive, got {scale:e}");
    }
    inv
}

#[track_caller]
fn check_len(op: &str, what: &str, expected: usize, got: usize) {
    assert!(
        expected == got,
        "{op}: {what} has {got} elements, expected {expected}"
    );
}

/// One element of PyTorch's per-tensor kernel (`_fake_quantize_tensor_helper`): returns
/// the fake-quantized value and the STE mask. NaN gives `(NaN, false)` (see the module
/// docs for why this differs from PyTorch).
#[inline]
fn per_tensor_element(
    x: f32,
    scale: f32,
    inv_scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
) -> (f32, bool) {
    if x.is_nan() {
        return (f32::NAN, false);
    }
    // `z_point + std::nearbyint(x * inv_scale)`: int64 + float is a float addition.
    let q_f = zero_point as f32 + (x * inv_scale).round_ties_even();
    // `std::fmin(std::fmax(q_f, quant_min), quant_max)`: the double overloads; then
    // `static_cast<int64_t>`, exact here because the clamped value is an integer in i32.
    let q = f64::from(q_f)
        .max(f64::from(quant_min))
        .min(f64::from(quant_max)) as i64;
    // `(qval - z_point) * sc`: int64 subtraction, then int64 → float times float.
    let y = (q - i64::from(zero_point)) as f32 * scale;
    // `(quant_min <= qval_f) && (qval_f <= quant_max)`: the limits convert to float.
    let mask = quant_min as f32 <= q_f && q_f <= quant_max as f32;
    (y, mask)
}

/// One element of PyTorch's per-channel kernel with an `int32` zero point
/// (`_fake_quant_per_channel_cachemask_cpu_helper`). NaN gives `(NaN, false)`; the float
/// to `int64` cast saturates where PyTorch's is undefined (see the module docs).
#[inline]
fn per_channel_element(
    x: f32,
    scale: f32,
    inv_scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
) -> (f32, bool) {
    if x.is_nan() {
        return (f32::NAN, false);
    }
    // `static_cast<int64_t>(zero_point + std::nearbyint(self * inv_scale))`: int32 + float
    // is a float addition, then the cast.
    let q = (zero_point as f32 + (x * inv_scale).round_ties_even()) as i64;
    let mask = i64::from(quant_min) <= q && q <= i64::from(quant_max);
    // `(std::fmin(std::fmax(q, quant_min), quant_max) - zero_point) * scale`: fmin/fmax of
    // integers use the double overloads, so the subtraction and product are in double and
    // the result is rounded to float on return.
    let q_c = (q as f64)
        .max(f64::from(quant_min))
        .min(f64::from(quant_max));
    let y = ((q_c - f64::from(zero_point)) * f64::from(scale)) as f32;
    (y, mask)
}

/// Fake-quantizes `x` with one scale and zero point: `torch.fake_quantize_per_tensor_affine`.
///
/// Each element becomes `f32(q − zero_point) · scale` with
/// `q = clamp(zero_point + nearbyint(x · (1/scale)), quant_min, quant_max)`, computed with
/// exactly PyTorch's types and operation order (see the [module docs](self)). NaN inputs
/// give NaN; `±∞` clamp to the limits.
///
/// # Panics
///
/// If `quant_min > quant_max`, if `zero_point` is outside `[quant_min, quant_max]`, or if
/// `scale` is not finite and positive or its reciprocal overflows `f32`.
///
/// # Example
///
/// ```
/// use quant::qat::fake_quantize_per_tensor_affine;
///
/// // uint8-style: zero point 128, step 0.5.
/// let y = fake_quantize_per_tensor_affine(&[0.2, 0.25, 0.75, -70.0, 1e9], 0.5, 128, 0, 255);
/// // 0.2·2 = 0.4 → 0; 0.5 → 0 and 1.5 → 2 (ties to even); the last two clamp to codes 0
/// // and 255.
/// assert_eq!(y, [0.0, 0.0, 1.0, -64.0, 63.5]);
/// ```
#[must_use]
#[track_caller]
pub fn fake_quantize_per_tensor_affine(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    fake_quantize_per_tensor_affine_into(x, scale, zero_point, quant_min, quant_max, &mut out);
    out
}

/// [`fake_quantize_per_tensor_affine`] writing into `out`.
///
/// # Panics
///
/// As [`fake_quantize_per_tensor_affine`], and if `out.len() != x.len()`.
#[track_caller]
pub fn fake_quantize_per_tensor_affine_into(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
    out: &mut [f32],
) {
    const OP: &str = "fake_quantize_per_tensor_affine";
    let inv_scale = checked_inv_scale(OP, scale, zero_point, quant_min, quant_max);
    check_len(OP, "out", x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = per_tensor_element(v, scale, inv_scale, zero_point, quant_min, quant_max).0;
    }
}

/// [`fake_quantize_per_tensor_affine`] plus the STE mask of PyTorch's
/// `fake_quantize_per_tensor_affine_cachemask`:
/// `mask[i] = quant_min ≤ zero_point + nearbyint(x[i] · (1/scale)) ≤ quant_max`, the
/// unclamped code inside the limits (`false` for NaN and `±∞`). Feed it to
/// [`ste_backward`].
///
/// # Panics
///
/// As [`fake_quantize_per_tensor_affine`].
///
/// # Example
///
/// ```
/// use quant::qat::{fake_quantize_per_tensor_affine_with_mask, ste_backward};
///
/// // Codes 0..=15, zero point 3, step 0.5: representable range [−1.5, 6].
/// let x = [-1.75, -1.8, 6.25, 6.75];
/// let (y, mask) = fake_quantize_per_tensor_affine_with_mask(&x, 0.5, 3, 0, 15);
/// assert_eq!(y, [-1.5, -1.5, 6.0, 6.0]);
/// // −1.75·2 = −3.5 → −4 (ties to even) → code −1: clamped; −3.6 → −4 too.
/// // 12.5 → 12 → code 15: inside; 13.5 → 14 → code 17: clamped.
/// assert_eq!(mask, [false, false, true, false]);
/// assert_eq!(ste_backward(&[1.0, 2.0, 3.0, 4.0], &mask), [0.0, 0.0, 3.0, 0.0]);
/// ```
#[must_use]
#[track_caller]
pub fn fake_quantize_per_tensor_affine_with_mask(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
) -> (Vec<f32>, Vec<bool>) {
    let mut out = vec![0.0; x.len()];
    let mut mask = vec![false; x.len()];
    fake_quantize_per_tensor_affine_with_mask_into(
        x, scale, zero_point, quant_min, quant_max, &mut out, &mut mask,
    );
    (out, mask)
}

/// [`fake_quantize_per_tensor_affine_with_mask`] writing into `out` and `mask`.
///
/// # Panics
///
/// As [`fake_quantize_per_tensor_affine`], and if `out` or `mask` is not as long as `x`.
#[track_caller]
pub fn fake_quantize_per_tensor_affine_with_mask_into(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    quant_min: i32,
    quant_max: i32,
    out: &mut [f32],
    mask: &mut [bool],
) {
    const OP: &str = "fake_quantize_per_tensor_affine_with_mask";
    let inv_scale = checked_inv_scale(OP, scale, zero_point, quant_min, quant_max);
    check_len(OP, "out", x.len(), out.len());
    check_len(OP, "mask", x.len(), mask.len());
    for ((o, m), &v) in out.iter_mut().zip(mask.iter_mut()).zip(x) {
        (*o, *m) = per_tensor_element(v, scale, inv_scale, zero_point, quant_min, quant_max);
    }
}

/// The layout of a per-channel call: `(outer, channels, inner)` with `x` viewed as a
/// row-major `[outer, channels, inner]` array, after checking every argument.
#[track_caller]
fn per_channel_layout(
    op: &str,
    x_len: usize,
    shape: &[usize],
    axis: usize,
    scales: &[f32],
    zero_points: &[i32],
    (quant_min, quant_max): (i32, i32),
) -> (usize, usize, usize) {
    assert!(
        axis < shape.len(),
        "{op}: axis {axis} is out of range for a {}-dimensional shape {shape:?}",
        shape.len()
    );
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or_else(|| panic!("{op}: the element count of shape {shape:?} overflows usize"));
    assert!(
        numel == x_len,
        "{op}: shape {shape:?} holds {numel} elements but x has {x_len}"
    );
    let channels = shape[axis];
    check_len(op, "scales", channels, scales.len());
    check_len(op, "zero_points", channels, zero_points.len());
    assert!(
        quant_min <= quant_max,
        "{op}: quant_min ({quant_min}) must not exceed quant_max ({quant_max})"
    );
    for (c, (&s, &z)) in scales.iter().zip(zero_points).enumerate() {
        assert!(
            quant_min <= z && z <= quant_max,
            "{op}: zero_points[{c}] = {z} must lie in [quant_min, quant_max] = \
             [{quant_min}, {quant_max}]"
        );
        checked_reciprocal(op, s, Some(c));
    }
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, channels, inner)
}

/// Runs `f(out_index, x, scale, inv_scale, zero_point)` over a per-channel layout.
fn for_each_per_channel(
    x: &[f32],
    (outer, channels, inner): (usize, usize, usize),
    scales: &[f32],
    zero_points: &[i32],
    mut f: impl FnMut(usize, f32, f32, f32, i32),
) {
    let mut i = 0;
    for _ in 0..outer {
        for c in 0..channels {
            let (s, z) = (scales[c], zero_points[c]);
            let inv = 1.0f32 / s;
            for &v in &x[i..i + inner] {
                f(i, v, s, inv, z);
                i += 1;
            }
        }
    }
}

/// Fake-quantizes a row-major tensor of shape `shape` with one scale and zero point per
/// index along `axis`: `torch.fake_quantize_per_channel_affine` with an `int32` zero-point
/// tensor.
///
/// Element `x[i]` with index `c` along `axis` becomes
/// `clamp(zero_points[c] + nearbyint(x[i] · (1/scales[c])), quant_min, quant_max)
/// − zero_points[c]`, times `scales[c]`, with PyTorch's per-channel types and operation order
/// (see the [module docs](self); the last product is computed in `f64` and rounded to
/// `f32`). NaN inputs give NaN; `±∞` and values beyond `i64` clamp to the limits.
///
/// # Panics
///
/// If `axis >= shape.len()`, if the product of `shape` is not `x.len()`, if `scales` or
/// `zero_points` does not have `shape[axis]` elements, if `quant_min > quant_max`, if a
/// zero point is outside `[quant_min, quant_max]`, or if a scale is not finite and
/// positive or its reciprocal overflows `f32`.
///
/// # Example
///
/// ```
/// use quant::qat::fake_quantize_per_channel_affine;
///
/// // A [2, 3] weight, one scale per row (axis 0), int4 codes −8..=7.
/// let w = [0.26, -0.3, 5.0, 0.26, -0.3, 5.0];
/// let y = fake_quantize_per_channel_affine(&w, &[2, 3], 0, &[0.25, 1.0], &[0, 0], -8, 7);
/// assert_eq!(y, [0.25, -0.25, 1.75, 0.0, 0.0, 5.0]);
/// ```
#[must_use]
#[track_caller]
pub fn fake_quantize_per_channel_affine(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    scales: &[f32],
    zero_points: &[i32],
    quant_min: i32,
    quant_max: i32,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    fake_quantize_per_channel_affine_into(
        x,
        shape,
        axis,
        scales,
        zero_points,
        quant_min,
        quant_max,
        &mut out,
    );
    out
}

/// [`fake_quantize_per_channel_affine`] writing into `out`.
///
/// # Panics
///
/// As [`fake_quantize_per_channel_affine`], and if `out.len() != x.len()`.
#[allow(clippy::too_many_arguments)] // PyTorch's argument list plus the output
#[track_caller]
pub fn fake_quantize_per_channel_affine_into(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    scales: &[f32],
    zero_points: &[i32],
    quant_min: i32,
    quant_max: i32,
    out: &mut [f32],
) {
    const OP: &str = "fake_quantize_per_channel_affine";
    let layout = per_channel_layout(
        OP,
        x.len(),
        shape,
        axis,
        scales,
        zero_points,
        (quant_min, quant_max),
    );
    check_len(OP, "out", x.len(), out.len());
    for_each_per_channel(x, layout, scales, zero_points, |i, v, s, inv, z| {
        out[i] = per_channel_element(v, s, inv, z, quant_min, quant_max).0;
    });
}

/// [`fake_quantize_per_channel_affine`] plus the STE mask of PyTorch's
/// `fake_quantize_per_channel_affine_cachemask`:
/// `mask[i] = quant_min ≤ zero_points[c] + nearbyint(x[i] · (1/scales[c])) ≤ quant_max`
/// (`false` for NaN and values beyond the limits, `±∞` included). Feed it to
/// [`ste_backward`].
///
/// # Panics
///
/// As [`fake_quantize_per_channel_affine`].
#[must_use]
#[track_caller]
pub fn fake_quantize_per_channel_affine_with_mask(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    scales: &[f32],
    zero_points: &[i32],
    quant_min: i32,
    quant_max: i32,
) -> (Vec<f32>, Vec<bool>) {
    let mut out = vec![0.0; x.len()];
    let mut mask = vec![false; x.len()];
    fake_quantize_per_channel_affine_with_mask_into(
        x,
        shape,
        axis,
        scales,
        zero_points,
        quant_min,
        quant_max,
        &mut out,
        &mut mask,
    );
    (out, mask)
}

/// [`fake_quantize_per_channel_affine_with_mask`] writing into `out` and `mask`.
///
/// # Panics
///
/// As [`fake_quantize_per_channel_affine`], and if `out` or `mask` is not as long as `x`.
#[allow(clippy::too_many_arguments)] // PyTorch's argument list plus the outputs
#[track_caller]
pub fn fake_quantize_per_channel_affine_with_mask_into(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    scales: &[f32],
    zero_points: &[i32],
    quant_min: i32,
    quant_max: i32,
    out: &mut [f32],
    mask: &mut [bool],
) {
    const OP: &str = "fake_quantize_per_channel_affine_with_mask";
    let layout = per_channel_layout(
        OP,
        x.len(),
        shape,
        axis,
        scales,
        zero_points,
        (quant_min, quant_max),
    );
    check_len(OP, "out", x.len(), out.len());
    check_len(OP, "mask", x.len(), mask.len());
    for_each_per_channel(x, layout, scales, zero_points, |i, v, s, inv, z| {
        (out[i], mask[i]) = per_channel_element(v, s, inv, z, quant_min, quant_max);
    });
}

/// The straight-through backward of fake quantization: `grad_out[i] · mask[i]`, as
/// PyTorch's `fake_quantize_per_{tensor,channel}_affine_cachemask_backward` (`dY * mask`).
///
/// It multiplies rather than selects, as PyTorch does: where the mask is `false` a finite
/// gradient becomes `+0.0` or `−0.0` (its sign kept) and a NaN or infinite one becomes NaN.
///
/// # Panics
///
/// If `mask.len() != grad_out.len()`.
#[must_use]
#[track_caller]
pub fn ste_backward(grad_out: &[f32], mask: &[bool]) -> Vec<f32> {
    let mut grad_in = vec![0.0; grad_out.len()];
    ste_backward_into(grad_out, mask, &mut grad_in);
    grad_in
}

/// [`ste_backward`] writing into `grad_in`.
///
/// # Panics
///
/// If `mask` or `grad_in` is not as long as `grad_out`.
#[track_caller]
pub fn ste_backward_into(grad_out: &[f32], mask: &[bool], grad_in: &mut [f32]) {
    const OP: &str = "ste_backward";
    check_len(OP, "mask", grad_out.len(), mask.len());
    check_len(OP, "grad_in", grad_out.len(), grad_in.len());
    for ((gi, &g), &m) in grad_in.iter_mut().zip(grad_out).zip(mask) {
        *gi = g * f32::from(u8::from(m));
    }
}
