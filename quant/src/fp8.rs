//! FP8 quantization with amax scaling, and the OCP MX block formats.
//!
//! FP8 (OCP OFP8 E4M3FN / E5M2, from `numerics`): a tensor, or each row of a `[rows, …]`
//! tensor, gets the scale `s = amax / max_fp8` (448 for E4M3, 57344 for E5M2), so its largest
//! magnitude lands on the format's largest value; elements are stored as
//! `encode_saturating(x / s)` and decode to `s · decode(code)`. An all-zero tensor or row gets
//! `s = 1`. The division `x / s` is one `f32` rounding before the FP8 rounding; inside the
//! normal range the error is within half an FP8 ulp of `x` plus that one `f32` rounding.
//! This is the "delayed-free" current scaling of Micikevicius et al. 2022, "FP8 Formats for
//! Deep Learning" (§4), with per-tensor or per-output-channel granularity.
//!
//! MX block formats (OCP MX v1.0) come straight from [`numerics::mx`]: blocks of 32
//! consecutive elements in row-major order with a shared E8M0 scale; they are exposed through
//! the same interface by [`crate::format`].

use numerics::{F8E4M3FN, F8E5M2, Par, encode_slice_saturating};

use crate::{Error, Result};

pub use numerics::mx::{BLOCK_SIZE as MX_BLOCK_SIZE, MxTensor};
pub use numerics::{MxFormat, NonFinite};

/// The FP8 element format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fp8Kind {
    /// OCP E4M3FN: max 448, 3 mantissa bits.
    E4M3,
    /// OCP E5M2: max 57344, 2 mantissa bits.
    E5M2,
}

impl Fp8Kind {
    /// Largest finite value.
    pub fn max(self) -> f32 {
        match self {
            Fp8Kind::E4M3 => F8E4M3FN::MAX.to_f32(),
            Fp8Kind::E5M2 => F8E5M2::MAX.to_f32(),
        }
    }

    /// Decodes one code.
    #[inline]
    pub fn decode(self, code: u8) -> f32 {
        match self {
            Fp8Kind::E4M3 => F8E4M3FN::from_bits(code).to_f32(),
            Fp8Kind::E5M2 => F8E5M2::from_bits(code).to_f32(),
        }
    }

    /// The 256-entry decode table.
    pub fn table(self) -> [f32; 256] {
        core::array::from_fn(|c| self.decode(c as u8))
    }
}

/// Scale granularity of an FP8 tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fp8Scaling {
    /// One scale for the tensor.
    PerTensor,
    /// One scale per index of the first axis (per output channel of a `[rows, cols]` weight).
    PerChannel,
}

/// A tensor stored as FP8 codes with amax scales.
#[derive(Clone, Debug, PartialEq)]
pub struct Fp8Tensor {
    kind: Fp8Kind,
    scaling: Fp8Scaling,
    shape: Vec<usize>,
    codes: Vec<u8>,
    scales: Vec<f32>,
}

/// Quantizes `x` (row-major with `shape`) to FP8.
///
/// ```
/// use quant::fp8::{quantize, Fp8Kind, Fp8Scaling};
/// # fn main() -> Result<(), quant::Error> {
/// let w = [0.1f32, -4.0, 2.0, 1000.0];
/// let q = quantize(&w, &[2, 2], Fp8Kind::E4M3, Fp8Scaling::PerChannel)?;
/// assert_eq!(q.scales()[0], 4.0 / 448.0);
/// let back = q.dequantize();
/// assert!((back[3] - 1000.0).abs() < 1e-3); // each row's amax maps to the format's max
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::ShapeMismatch`] if `x.len()` is not the product of `shape` (or `shape` is empty
/// with per-channel scaling); [`Error::NonFinite`] for NaN or infinite inputs.
pub fn quantize(
    x: &[f32],
    shape: &[usize],
    kind: Fp8Kind,
    scaling: Fp8Scaling,
) -> Result<Fp8Tensor> {
    let n: usize = shape.iter().product();
    if n != x.len() || (scaling == Fp8Scaling::PerChannel && shape.is_empty()) {
        return Err(Error::ShapeMismatch {
            op: "fp8::quantize",
            expected: shape.to_vec(),
            got: vec![x.len()],
        });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            op: "fp8::quantize",
            index,
            value: x[index],
        });
    }
    let rows = match scaling {
        Fp8Scaling::PerTensor => 1,
        Fp8Scaling::PerChannel => shape[0],
    };
    let row_len = n.checked_div(rows).unwrap_or(0);
    let mut codes = vec![0u8; n];
    let mut scales = Vec::with_capacity(rows);
    let mut scaled = vec![0.0f32; row_len];
    for r in 0..rows {
        let src = &x[r * row_len..(r + 1) * row_len];
        let amax = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = if amax == 0.0 { 1.0 } else { amax / kind.max() };
        scales.push(s);
        for (t, &v) in scaled.iter_mut().zip(src) {
            *t = v / s;
        }
        let out = &mut codes[r * row_len..(r + 1) * row_len];
        match kind {
            Fp8Kind::E4M3 => encode_slice_saturating::<F8E4M3FN>(
                &scaled,
                bytemuck::cast_slice_mut(out),
                Par::Seq,
            )?,
            Fp8Kind::E5M2 => {
                encode_slice_saturating::<F8E5M2>(&scaled, bytemuck::cast_slice_mut(out), Par::Seq)?
            }
        }
    }
    Ok(Fp8Tensor {
        kind,
        scaling,
        shape: shape.to_vec(),
        codes,
        scales,
    })
}

impl Fp8Tensor {
    /// The element format.
    pub fn kind(&self) -> Fp8Kind {
        self.kind
    }

    /// The scale granularity.
    pub fn scaling(&self) -> Fp8Scaling {
        self.scaling
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The FP8 codes, row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// One scale per tensor or per first-axis index.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// A scale per row of the tensor seen as `[shape[0], rest]` (repeated for per-tensor).
    pub fn row_scales(&self) -> Vec<f32> {
        let rows = self.shape.first().copied().unwrap_or(1);
        match self.scaling {
            Fp8Scaling::PerTensor => vec![self.scales[0]; rows],
            Fp8Scaling::PerChannel => self.scales.clone(),
        }
    }

    /// Exact storage: one byte per element and four per scale.
    pub fn storage_bytes(&self) -> usize {
        self.codes.len() + 4 * self.scales.len()
    }

    /// Decodes elements `start..start + out.len()` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the range leaves the tensor.
    pub fn dequantize_range_into(&self, start: usize, out: &mut [f32]) -> Result<()> {
        if start + out.len() > self.len() {
            return Err(Error::ShapeMismatch {
                op: "Fp8Tensor::dequantize_range_into",
                expected: vec![self.len()],
                got: vec![start, out.len()],
            });
        }
        let row_len = self.len() / self.scales.len().max(1);
        let table = self.kind.table();
        for (k, o) in out.iter_mut().enumerate() {
            let i = start + k;
            let s = self.scales[i.checked_div(row_len).unwrap_or(0)];
            *o = s * table[self.codes[i] as usize];
        }
        Ok(())
    }

    /// Decodes into a new vector.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        self.dequantize_range_into(0, &mut out)
            .expect("output has the tensor's length");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numerics::testing::rng;

    #[test]
    fn amax_lands_on_max_and_error_is_within_half_an_ulp() {
        let mut r = rng::seeded(11);
        let x = rng::normal_vec(&mut r, 4 * 256);
        for kind in [Fp8Kind::E4M3, Fp8Kind::E5M2] {
            for scaling in [Fp8Scaling::PerTensor, Fp8Scaling::PerChannel] {
                let q = quantize(&x, &[4, 256], kind, scaling).unwrap();
                let y = q.dequantize();
                let m = match kind {
                    Fp8Kind::E4M3 => 3,
                    Fp8Kind::E5M2 => 2,
                };
                let rs = q.row_scales();
                for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
                    let s = rs[i / 256] as f64;
                    // relative half-ulp in the normal range, absolute half the subnormal
                    // step below it, plus one f32 rounding of x / s
                    let min_normal = match kind {
                        Fp8Kind::E4M3 => 2f64.powi(-6),
                        Fp8Kind::E5M2 => 2f64.powi(-14),
                    };
                    let t = (a as f64 / s).abs();
                    let bound = if t >= min_normal {
                        (a as f64).abs() * 2f64.powi(-(m + 1))
                    } else {
                        s * min_normal * 2f64.powi(-(m + 1))
                    };
                    let err = (a as f64 - b as f64).abs();
                    assert!(err <= bound * (1.0 + 1e-6), "{kind:?} {i}: {a} -> {b}");
                }
            }
        }
    }

    #[test]
    fn zero_rows_decode_to_zero_and_errors_are_typed() {
        let x = [0.0f32; 8];
        let q = quantize(&x, &[2, 4], Fp8Kind::E4M3, Fp8Scaling::PerChannel).unwrap();
        assert!(q.dequantize().iter().all(|v| v.to_bits() == 0));
        assert_eq!(q.storage_bytes(), 8 + 8);
        assert!(quantize(&[f32::NAN], &[1], Fp8Kind::E5M2, Fp8Scaling::PerTensor).is_err());
        assert!(quantize(&[1.0; 3], &[2, 2], Fp8Kind::E5M2, Fp8Scaling::PerTensor).is_err());
    }
}
