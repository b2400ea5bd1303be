//! Rounding `f32` operands to an [`OperandFormat`] through `numerics`' slice conversions,
//! with per-tensor scaling for the FP8 formats.

use numerics::{
    Element, F8E4M3FN, F8E5M2, Format, Par, bf16, decode_slice, encode_slice_saturating, f16,
};

use super::OperandFormat;
use crate::Result;

impl OperandFormat {
    /// The `numerics` format operands are rounded to (`None` for [`OperandFormat::F32`]).
    pub fn numerics_format(self) -> Option<Format> {
        match self {
            OperandFormat::F32 => None,
            OperandFormat::Bf16 => Some(Format::BF16),
            OperandFormat::F16 => Some(Format::F16),
            OperandFormat::E4M3 => Some(Format::F8E4M3FN),
            OperandFormat::E5M2 => Some(Format::F8E5M2),
        }
    }

    /// The largest finite value of the format (`f32::MAX` for `F32`).
    pub fn max_finite(self) -> f32 {
        self.numerics_format()
            .map_or(f32::MAX, |f| f.spec().max_finite())
    }

    /// The smallest positive normal value of the format.
    pub fn min_normal(self) -> f32 {
        self.numerics_format()
            .map_or(f32::MIN_POSITIVE, |f| f.spec().min_normal())
    }

    /// The unit roundoff `2^-(mantissa bits + 1)`: the largest relative error of rounding a
    /// value in the normal range to nearest.
    pub fn unit_roundoff(self) -> f64 {
        let eps = self
            .numerics_format()
            .map_or(f64::from(f32::EPSILON), |f| f64::from(f.spec().epsilon()));
        eps / 2.0
    }

    /// The normal range of the format in decibels, `20·log₁₀(max_finite / min_normal)`: the
    /// spread of magnitudes a per-tensor-scaled operand can hold at full relative precision.
    pub fn normal_range_db(self) -> f64 {
        20.0 * (f64::from(self.max_finite()) / f64::from(self.min_normal())).log10()
    }

    /// Whether probabilities in this format are scaled before rounding (the FP8 formats;
    /// operands: see the crate-private `operand_scale`).
    pub fn is_scaled(self) -> bool {
        matches!(self, OperandFormat::E4M3 | OperandFormat::E5M2)
    }
}

/// The per-tensor scale `σ` an operand with largest magnitude `amax` is multiplied by
/// before rounding to `format` (the rounded tensor is `round(σ·x)`, the computation divides
/// by `σ` afterwards):
///
/// - FP8 (E4M3, E5M2): `σ = max_finite / amax`, so the largest magnitude maps to the
///   format's largest finite value (the usual FP8 per-tensor recipe);
/// - FP16: the power of two `σ = 2^(14 − ⌊log₂ amax⌋)` that puts `amax` in `[2¹⁴, 2¹⁵)`,
///   just under FP16's largest finite value 65504: multiplying by a power of two is exact,
///   so in-range values round exactly as a plain cast would, while tensors beyond 65504 no
///   longer overflow and tiny tensors no longer fall into the subnormals;
/// - BF16 and F32: 1 (BF16 has `f32`'s exponent range).
///
/// An all-zero (or non-finite) tensor gets `σ = 1`.
pub(crate) fn operand_scale(format: OperandFormat, amax: f32) -> f32 {
    if !(amax.is_finite() && amax > 0.0) {
        return 1.0;
    }
    let s = match format {
        OperandFormat::E4M3 | OperandFormat::E5M2 => format.max_finite() / amax,
        OperandFormat::F16 => (14.0 - amax.log2().floor()).exp2(),
        OperandFormat::F32 | OperandFormat::Bf16 => 1.0,
    };
    // `amax · s` may round above the largest finite value by an ulp; saturating encoding
    // clamps it back.
    if s.is_finite() && s > 0.0 { s } else { 1.0 }
}

/// Largest finite magnitude of `x` (0 for empty input; non-finite entries are ignored).
pub(crate) fn amax(x: &[f32]) -> f32 {
    x.iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max)
}

/// Reusable code buffers for [`Rounder::round`].
#[derive(Default)]
pub(crate) struct Rounder {
    scaled: Vec<f32>,
    bf16: Vec<bf16>,
    f16: Vec<f16>,
    e4m3: Vec<F8E4M3FN>,
    e5m2: Vec<F8E5M2>,
}

/// `decode(encode_saturating(src))` through a reusable code buffer.
fn roundtrip<T: Element>(codes: &mut Vec<T>, zero: T, src: &[f32], dst: &mut [f32]) -> Result<()> {
    codes.resize(src.len(), zero);
    let c = &mut codes[..src.len()];
    encode_slice_saturating(src, c, Par::Seq)?;
    decode_slice(c, dst, Par::Seq)?;
    Ok(())
}

impl Rounder {
    /// Writes `decode(encode_saturating(scale · src))` into `dst` (still multiplied by
    /// `scale`: callers divide it out of the product). `F32` copies `scale · src`.
    ///
    /// # Errors
    ///
    /// Propagates `numerics` errors (none for equal lengths).
    pub(crate) fn round(
        &mut self,
        format: OperandFormat,
        src: &[f32],
        scale: f32,
        dst: &mut [f32],
    ) -> Result<()> {
        debug_assert_eq!(src.len(), dst.len());
        let src = if scale.to_bits() == 1.0f32.to_bits() {
            src
        } else {
            self.scaled.clear();
            self.scaled.extend(src.iter().map(|x| x * scale));
            &self.scaled[..]
        };
        match format {
            OperandFormat::F32 => dst.copy_from_slice(src),
            OperandFormat::Bf16 => roundtrip(&mut self.bf16, bf16::ZERO, src, dst)?,
            OperandFormat::F16 => roundtrip(&mut self.f16, f16::ZERO, src, dst)?,
            OperandFormat::E4M3 => roundtrip(&mut self.e4m3, F8E4M3FN::ZERO, src, dst)?,
            OperandFormat::E5M2 => roundtrip(&mut self.e5m2, F8E5M2::ZERO, src, dst)?,
        }
        Ok(())
    }
}
