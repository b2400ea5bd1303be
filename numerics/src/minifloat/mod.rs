//! The generic minifloat engine: one definition of an `ExMy` format drives encoding,
//! decoding, constants and the fast slice kernels of every small format in this crate.
//!
//! A [`MiniFloat`] is a sign bit (optional), `E` exponent bits with a bias, `M` mantissa bits,
//! and a [`Special`] convention that says what the all-ones exponent, negative zero and
//! overflow mean. Every value of a valid spec is an exact `f32`, so decoding is exact and
//! encoding is a single correctly rounded step from `f32`.
//!
//! Rounding (see [`MiniFloat::encode`]): round to nearest, ties to even on the integer code,
//! subnormals kept, then the convention's overflow rule. This is the plain cast of
//! ml_dtypes 0.6.0, which the conventions below were checked against code by code.
//! The scale convention ([`Special::UnsignedScale`], OCP MX E8M0) rounds differently;
//! its rule is documented on the variant.
//!
//! References: OCP 8-bit Floating Point Specification (OFP8) rev. 1.0 (2023); OCP Microscaling
//! Formats (MX) Specification v1.0 (2023); IEEE 754-2019 §4.3 for roundTiesToEven;
//! Graphcore/AMD "FNUZ" formats as defined by ml_dtypes; Croci et al. 2022, "Stochastic
//! rounding: implementation, error analysis and applications" for stochastic rounding.

mod decode;
mod encode;
#[cfg(any(test, feature = "testing"))]
pub mod reference;
#[cfg(test)]
mod tests;

use crate::{Error, Result};

/// What the special encodings of a format mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Special {
    /// IEEE 754 style: the all-ones exponent holds ±infinity (mantissa 0) and NaN (mantissa
    /// ≠ 0). Finite overflow rounds to ±infinity. Example: E5M2, FP16, BF16.
    Ieee,
    /// "FN" (finite + NaN): no infinity; the all-ones exponent with the all-ones mantissa is
    /// NaN (either sign), every other code is finite. Finite overflow and ±inf become NaN
    /// (sign kept). Example: E4M3FN.
    FiniteNan,
    /// "FNUZ" (finite, NaN, unsigned zero): no infinity and no negative zero; the code with
    /// only the sign bit set is the single NaN. Finite overflow, ±inf and NaN become that NaN;
    /// results that round to zero are +0 whatever their sign. Example: E4M3FNUZ, E5M2FNUZ.
    Fnuz,
    /// Finite only: no infinity and no NaN. Overflow and ±inf saturate to ±MAX. A NaN input
    /// has no encoding: the scalar cast maps it to a zero whose sign is the *opposite* of the
    /// NaN's sign bit (+NaN → −0, −NaN → +0), which is what ml_dtypes 0.6.0 does; slice and
    /// block APIs report NaN inputs as errors instead. Example: FP6 E2M3/E3M2, FP4 E2M1.
    Finite,
    /// The unsigned power-of-two scale of OCP MX (E8M0): no sign bit, no mantissa, no zero,
    /// code `c` is `2^(c − bias)`, the all-ones code is NaN.
    ///
    /// Encoding (ml_dtypes 0.6.0 semantics): NaN, ±inf, ±0 and negative inputs give NaN.
    /// A normal `f32` `2^k · 1.f` rounds to `2^k` if `1.f < 1.5`, else to `2^(k+1)` (ties
    /// round up, so 0.75 → 1, 1.5 → 2, 3 → 4). An `f32` subnormal `x` gives `2^-126` when
    /// `x > 2^-127` and `2^-127` otherwise (ml_dtypes rounds the subnormal range in units of
    /// `2^-126`). Results below the smallest code clamp to code 0 (no underflow to zero);
    /// results above the largest finite code become NaN (the saturating cast clamps them).
    UnsignedScale,
}

/// A minifloat format defined by its bit fields: the engine behind every small format here.
///
/// ```
/// use numerics::{MiniFloat, Special};
/// # fn main() -> Result<(), numerics::Error> {
/// // An E3M4 format with bias 3 and IEEE-style infinities, defined at run time.
/// let e3m4 = MiniFloat::new(3, 4, 3, Special::Ieee)?;
/// let code = e3m4.encode(1.3);
/// assert_eq!(e3m4.decode(code), 1.3125);
/// assert_eq!(e3m4.max_finite(), 15.5);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MiniFloat {
    exponent_bits: u32,
    mantissa_bits: u32,
    bias: i32,
    special: Special,
}

/// The ways a value can be rounded to a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// Round to nearest, ties to even; overflow per the convention.
    NearestEven,
    /// Round to nearest, ties to even; finite overflow and ±inf clamp to ±MAX.
    Saturating,
    /// Stochastic rounding driven by the given random bits; overflow per the convention.
    Stochastic(u32),
}

impl MiniFloat {
    /// Defines a format, checking that every value it can hold is an exact `f32` and that
    /// the fast kernels can encode it.
    ///
    /// Rules: `1 ≤ exponent_bits ≤ 8`, `mantissa_bits ≤ 22`, at most 16 bits in all
    /// (sign included), `0 ≤ bias ≤ 127` (so the format's normal range starts inside the
    /// `f32` normal range), the largest finite value below `2^128`, and at least one positive
    /// finite value. [`Special::UnsignedScale`] needs `mantissa_bits == 0`; [`Special::Ieee`]
    /// needs `exponent_bits ≥ 2` and
    /// `mantissa_bits ≥ 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSpec`] naming the broken rule.
    pub fn new(
        exponent_bits: u32,
        mantissa_bits: u32,
        bias: i32,
        special: Special,
    ) -> Result<Self> {
        let spec = MiniFloat {
            exponent_bits,
            mantissa_bits,
            bias,
            special,
        };
        match spec.violation() {
            None => Ok(spec),
            Some(reason) => Err(Error::InvalidSpec {
                exponent_bits,
                mantissa_bits,
                bias,
                reason,
            }),
        }
    }

    /// Like [`MiniFloat::new`] but for specs known to be valid at compile time.
    ///
    /// # Panics
    ///
    /// If the spec is invalid (a compile error when used in a `const`).
    pub const fn new_const(
        exponent_bits: u32,
        mantissa_bits: u32,
        bias: i32,
        special: Special,
    ) -> Self {
        let spec = MiniFloat {
            exponent_bits,
            mantissa_bits,
            bias,
            special,
        };
        if spec.violation().is_some() {
            panic!("invalid MiniFloat spec");
        }
        spec
    }

    /// The first rule of [`MiniFloat::new`] this spec breaks, if any.
    const fn violation(&self) -> Option<&'static str> {
        let (e, m, bias) = (self.exponent_bits, self.mantissa_bits, self.bias);
        if e < 1 || e > 8 {
            return Some("exponent_bits must be in 1..=8");
        }
        if m > 22 {
            return Some("mantissa_bits must be at most 22");
        }
        if self.bits() > 16 {
            return Some("at most 16 bits in all, sign included");
        }
        if bias < 0 || bias > 127 {
            return Some("bias must be in 0..=127");
        }
        match self.special {
            Special::UnsignedScale if m != 0 => {
                return Some("the unsigned scale convention has no mantissa bits");
            }
            Special::Ieee if e < 2 || m < 1 => {
                return Some("IEEE-style formats need at least 2 exponent bits and 1 mantissa bit");
            }
            _ => {}
        }
        if self.max_code() == 0 {
            return Some("the format has no positive finite value");
        }
        let max_exp_field = (self.max_code() >> m) as i32;
        if max_exp_field - bias > 127 {
            return Some("the largest finite value overflows f32");
        }
        None
    }

    /// Exponent field width.
    pub const fn exponent_bits(&self) -> u32 {
        self.exponent_bits
    }

    /// Mantissa (trailing significand) field width.
    pub const fn mantissa_bits(&self) -> u32 {
        self.mantissa_bits
    }

    /// Exponent bias: a normal code with exponent field `e` has value `2^(e − bias) · 1.m`.
    pub const fn bias(&self) -> i32 {
        self.bias
    }

    /// The special-value convention.
    pub const fn special(&self) -> Special {
        self.special
    }

    /// Whether the format has a sign bit.
    pub const fn is_signed(&self) -> bool {
        !matches!(self.special, Special::UnsignedScale)
    }

    /// Total storage bits (sign, exponent and mantissa).
    pub const fn bits(&self) -> u32 {
        self.is_signed() as u32 + self.exponent_bits + self.mantissa_bits
    }

    /// Mask of the valid code bits (`2^bits − 1`).
    pub const fn code_mask(&self) -> u16 {
        ((1u32 << self.bits()) - 1) as u16
    }

    /// The sign bit of a code (0 for unsigned formats).
    pub const fn sign_bit(&self) -> u16 {
        if self.is_signed() {
            1 << (self.exponent_bits + self.mantissa_bits)
        } else {
            0
        }
    }

    /// Mask of the magnitude bits (exponent and mantissa).
    pub const fn magnitude_mask(&self) -> u16 {
        ((1u32 << (self.exponent_bits + self.mantissa_bits)) - 1) as u16
    }

    /// Whether the format has infinities.
    pub const fn has_inf(&self) -> bool {
        matches!(self.special, Special::Ieee)
    }

    /// Whether the format has a NaN encoding.
    pub const fn has_nan(&self) -> bool {
        !matches!(self.special, Special::Finite)
    }

    /// Whether the format has subnormal numbers (codes with exponent field 0 and a non-zero
    /// mantissa).
    pub const fn has_subnormals(&self) -> bool {
        self.mantissa_bits > 0 && !matches!(self.special, Special::UnsignedScale)
    }

    /// Whether the format can represent zero.
    pub const fn has_zero(&self) -> bool {
        !matches!(self.special, Special::UnsignedScale)
    }

    /// Whether the format has a negative zero.
    pub const fn has_negative_zero(&self) -> bool {
        !matches!(self.special, Special::Fnuz | Special::UnsignedScale)
    }

    /// The largest finite magnitude code (the code of MAX).
    pub const fn max_code(&self) -> u16 {
        let mag = self.magnitude_mask();
        let m = self.mantissa_bits;
        match self.special {
            // All-ones exponent is reserved: max = exponent all-ones − 1, mantissa all-ones.
            Special::Ieee => mag - (1 << m),
            // All-ones exponent and mantissa is NaN.
            Special::FiniteNan | Special::UnsignedScale => mag - 1,
            Special::Fnuz | Special::Finite => mag,
        }
    }

    /// The canonical NaN code (positive sign where the format has one), if any.
    pub const fn nan_code(&self) -> Option<u16> {
        match self.special {
            // Quiet NaN: all-ones exponent with the top mantissa bit set, the canonical NaN
            // of numpy, ml_dtypes and `half`.
            Special::Ieee => Some(
                (self.magnitude_mask() - ((1 << self.mantissa_bits) - 1))
                    | (1 << (self.mantissa_bits - 1)),
            ),
            Special::FiniteNan | Special::UnsignedScale => Some(self.magnitude_mask()),
            Special::Fnuz => Some(self.sign_bit()),
            Special::Finite => None,
        }
    }

    /// The positive infinity code, if any.
    pub const fn inf_code(&self) -> Option<u16> {
        match self.special {
            Special::Ieee => Some(self.magnitude_mask() - ((1 << self.mantissa_bits) - 1)),
            _ => None,
        }
    }

    /// The code of the smallest positive normal value (`MIN_POSITIVE`).
    pub const fn min_normal_code(&self) -> u16 {
        match self.special {
            Special::UnsignedScale => 0,
            _ => 1 << self.mantissa_bits,
        }
    }

    /// The code of the smallest positive value (subnormal where the format has them).
    pub const fn min_positive_code(&self) -> u16 {
        match self.special {
            Special::UnsignedScale => 0,
            _ => 1,
        }
    }

    /// The code of 1.0.
    pub const fn one_code(&self) -> u16 {
        (self.bias as u16) << self.mantissa_bits
    }

    /// Whether `code` (masked to the format's width) is a NaN.
    pub const fn is_nan_code(&self, code: u16) -> bool {
        let code = code & self.code_mask();
        let mag = code & self.magnitude_mask();
        match self.special {
            Special::Ieee => {
                let exp_all_ones = self.magnitude_mask() - ((1 << self.mantissa_bits) - 1);
                mag > exp_all_ones
            }
            Special::FiniteNan | Special::UnsignedScale => mag == self.magnitude_mask(),
            Special::Fnuz => code == self.sign_bit(),
            Special::Finite => false,
        }
    }

    /// Whether `code` (masked to the format's width) is ±infinity.
    pub const fn is_inf_code(&self, code: u16) -> bool {
        match self.inf_code() {
            Some(inf) => code & self.magnitude_mask() == inf,
            None => false,
        }
    }

    /// The largest finite value.
    pub const fn max_finite(&self) -> f32 {
        self.decode(self.max_code())
    }

    /// The smallest positive normal value.
    pub const fn min_normal(&self) -> f32 {
        self.decode(self.min_normal_code())
    }

    /// The smallest positive value (subnormal where the format has subnormals).
    pub const fn min_positive(&self) -> f32 {
        self.decode(self.min_positive_code())
    }

    /// The distance from 1.0 to the next larger value (`2^-M`; 1.0 for the scale format).
    pub const fn epsilon(&self) -> f32 {
        self.decode(self.one_code() + 1) - 1.0
    }

    /// Dynamic range in binades: `log2(max_finite / min_positive)`.
    pub fn dynamic_range_binades(&self) -> f64 {
        (self.max_finite() as f64 / self.min_positive() as f64).log2()
    }

    /// Number of representable finite values (both signs; ±0 counted once each where both
    /// exist).
    pub fn finite_count(&self) -> u32 {
        (0..=self.code_mask() as u32)
            .filter(|&c| {
                let c = c as u16;
                !self.is_nan_code(c) && !self.is_inf_code(c)
            })
            .count() as u32
    }

    /// Distance in representable steps between two codes of this format, counting across
    /// zero (±0 are one point). `None` if either code is NaN or an infinity.
    ///
    /// This is the "ULP distance within a format" of the error metrics: the number of
    /// representable values one must step over to go from `a` to `b`.
    pub fn ulp_distance(&self, a: u16, b: u16) -> Option<u32> {
        let ia = self.ordinal(a)?;
        let ib = self.ordinal(b)?;
        Some(ia.abs_diff(ib))
    }

    /// Position of a finite code on the number line, with ±0 both at 0.
    fn ordinal(&self, code: u16) -> Option<i32> {
        let code = code & self.code_mask();
        if self.is_nan_code(code) || self.is_inf_code(code) {
            return None;
        }
        let mag = (code & self.magnitude_mask()) as i32;
        let neg = code & self.sign_bit() != 0;
        Some(if neg { -mag } else { mag })
    }

    /// A short name such as `E4M3` (the convention is not included).
    pub fn short_name(&self) -> String {
        format!("E{}M{}", self.exponent_bits, self.mantissa_bits)
    }
}

impl MiniFloat {
    /// Rounds `x` to the nearest code, ties to even, with the convention's overflow rule (the
    /// plain cast). Returns the code in the low [`MiniFloat::bits`] bits.
    #[inline]
    pub const fn encode(&self, x: f32) -> u16 {
        encode::encode(self, x, Rounding::NearestEven)
    }

    /// Like [`MiniFloat::encode`], but finite overflow and ±inf clamp to ±MAX (CUDA's
    /// `satfinite`); NaN stays NaN where the format has one.
    #[inline]
    pub const fn encode_saturating(&self, x: f32) -> u16 {
        encode::encode(self, x, Rounding::Saturating)
    }

    /// Stochastic rounding: `x` rounds to one of its two neighbouring codes, up with
    /// probability equal to its distance from the lower neighbour over the gap (quantized to
    /// the caller's 32 random bits). Overflow follows the plain cast.
    ///
    /// For a uniformly random `random_bits`, the decoded result is unbiased for every `x`
    /// inside the finite range. Exactly representable values never move.
    #[inline]
    pub const fn encode_stochastic(&self, x: f32, random_bits: u32) -> u16 {
        encode::encode(self, x, Rounding::Stochastic(random_bits))
    }

    /// The exact `f32` value of `code` (masked to the format's width). NaN codes give an
    /// `f32` NaN with the code's sign, infinity codes give ±inf.
    #[inline]
    pub const fn decode(&self, code: u16) -> f32 {
        decode::decode(self, code)
    }
}

/// The parameters of the branch-free kernel shared by the scalar fast path and the SIMD
/// paths of [`crate::encode_slice`] (formats of at most 8 bits, not the scale convention).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaneParams {
    /// `23 − M`: how far the f32 mantissa shifts down.
    pub(crate) shift: u32,
    /// `2^(shift−1) − 1`: the round-half-down increment; the kept LSB is added for ties
    /// (for `M = 0`, `2^(shift−1)`: ties round up, as the engine's significand parity says).
    pub(crate) round: u32,
    /// 1 when the kept LSB decides ties (ties to even), 0 when ties round up (`M = 0`).
    pub(crate) lsb_mask: u32,
    /// `(127 − bias) << M`: re-biases a shifted f32 code to the target exponent.
    pub(crate) rebias: u32,
    /// f32 bits of the smallest normal value of the target.
    pub(crate) min_normal_bits: u32,
    /// f32 bits of `2^(1 − bias − M + 23)`: adding it rounds a subnormal to the target
    /// quantum in one hardware RNE addition.
    pub(crate) magic_bits: u32,
    /// Largest finite magnitude code.
    pub(crate) max_code: u32,
    /// Magnitude code written on overflow (inf, NaN or MAX).
    pub(crate) overflow_code: u32,
    /// Magnitude code written for NaN input.
    pub(crate) nan_code: u32,
    /// XORed into the sign of NaN lanes (ml_dtypes' flipped-sign zero for finite formats).
    pub(crate) nan_sign_flip: u32,
    /// Right shift that moves the f32 sign bit to the target's sign bit.
    pub(crate) sign_shift: u32,
    /// All-ones when zero results drop their sign (FNUZ), else 0.
    pub(crate) unsigned_zero: u32,
}

impl MiniFloat {
    /// Kernel parameters for the fast slice path, or `None` where it does not apply (wider
    /// than 8 bits, or the scale convention).
    pub(crate) const fn lane_params(&self, saturating: bool) -> Option<LaneParams> {
        if self.bits() > 8 || matches!(self.special, Special::UnsignedScale) {
            return None;
        }
        let m = self.mantissa_bits;
        let shift = 23 - m;
        let max_code = self.max_code() as u32;
        let (overflow_code, nan_code, nan_sign_flip) = match self.special {
            Special::Ieee => (
                self.inf_code().unwrap() as u32,
                self.nan_code().unwrap() as u32,
                0,
            ),
            Special::FiniteNan => (
                self.magnitude_mask() as u32,
                self.magnitude_mask() as u32,
                0,
            ),
            Special::Fnuz => (self.sign_bit() as u32, self.sign_bit() as u32, 0),
            Special::Finite => (max_code, 0, 0x8000_0000),
            Special::UnsignedScale => unreachable!(),
        };
        Some(LaneParams {
            shift,
            round: if m == 0 {
                1 << (shift - 1)
            } else {
                (1 << (shift - 1)) - 1
            },
            lsb_mask: if m == 0 { 0 } else { 1 },
            rebias: ((127 - self.bias) as u32) << m,
            min_normal_bits: ((128 - self.bias) as u32) << 23,
            magic_bits: ((151 - self.bias - m as i32) as u32) << 23,
            max_code,
            overflow_code: if saturating { max_code } else { overflow_code },
            nan_code,
            nan_sign_flip,
            sign_shift: 31 - (self.exponent_bits + m),
            unsigned_zero: if matches!(self.special, Special::Fnuz) {
                u32::MAX
            } else {
                0
            },
        })
    }
}

/// One lane of the branch-free fast kernel: the scalar twin of the SIMD paths in `arch`.
///
/// Normal results round by integer addition on the f32 bits; subnormal results round by one
/// hardware addition of a power of two (exact RNE), then overflow, NaN and sign are blended
/// in without branches.
#[inline(always)]
pub(crate) fn encode_lane(p: &LaneParams, x: u32) -> u8 {
    let sign = x & 0x8000_0000;
    let a = x & 0x7FFF_FFFF;
    let lsb = (a >> p.shift) & p.lsb_mask;
    let normal = (a.wrapping_add(p.round).wrapping_add(lsb) >> p.shift).wrapping_sub(p.rebias);
    let magic = f32::from_bits(p.magic_bits);
    let sub = (f32::from_bits(a) + magic)
        .to_bits()
        .wrapping_sub(p.magic_bits);
    let mut code = if a < p.min_normal_bits { sub } else { normal };
    // `normal` is below 2^31 for every non-NaN input (shift >= 15), so a signed compare is
    // what the SIMD paths use; unsigned is equivalent here.
    if (code as i32) > (p.max_code as i32) {
        code = p.overflow_code;
    }
    let is_nan = a > 0x7F80_0000;
    let mut sign = sign;
    if is_nan {
        code = p.nan_code;
        sign ^= p.nan_sign_flip;
    }
    let mut sign_bits = sign >> p.sign_shift;
    if code == 0 {
        sign_bits &= !p.unsigned_zero;
    }
    (code | sign_bits) as u8
}
