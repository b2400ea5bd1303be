//! Encoding `f32` to minifloat codes: the readable scalar engine, which is the oracle the
//! fast slice kernels are tested against bit for bit.

use super::{MiniFloat, Rounding, Special};

/// Encodes `x` with the given rounding. The result has only the format's low bits set.
pub(super) const fn encode(spec: &MiniFloat, x: f32, mode: Rounding) -> u16 {
    let bits = x.to_bits();
    let negative = bits >> 31 != 0;
    let a = bits & 0x7FFF_FFFF;
    if matches!(spec.special, Special::UnsignedScale) {
        return encode_scale(spec, a, negative, mode);
    }
    let sign = if negative { spec.sign_bit() } else { 0 };
    if a > 0x7F80_0000 {
        return match spec.nan_code() {
            Some(nan) => nan | sign,
            // No NaN: ml_dtypes 0.6.0 yields the zero of the opposite sign.
            None => {
                if negative {
                    0
                } else {
                    spec.sign_bit()
                }
            }
        };
    }
    let code = if a == 0x7F80_0000 {
        u32::MAX // infinity: always past the largest finite code
    } else {
        round_magnitude(spec, a, mode)
    };
    if code > spec.max_code() as u32 {
        let saturate = matches!(mode, Rounding::Saturating);
        return match spec.special {
            _ if saturate => spec.max_code() | sign,
            Special::Ieee => (spec.magnitude_mask() - ((1 << spec.mantissa_bits) - 1)) | sign,
            Special::FiniteNan => spec.magnitude_mask() | sign,
            Special::Fnuz => spec.sign_bit(),
            Special::Finite | Special::UnsignedScale => spec.max_code() | sign,
        };
    }
    if code == 0 && matches!(spec.special, Special::Fnuz) {
        return 0;
    }
    code as u16 | sign
}

/// Rounds a finite, non-negative `f32` (given as bits) to a magnitude code, which may exceed
/// the largest finite code (the caller applies the overflow rule).
///
/// The value is `sig · 2^lsb_exp`; the target quantum in its binade (or in the subnormal
/// range) is `2^q_exp`; the code is the binade's base code plus the rounded quotient, so a
/// carry out of the mantissa moves to the next binade by plain integer addition.
const fn round_magnitude(spec: &MiniFloat, a: u32, mode: Rounding) -> u32 {
    let m = spec.mantissa_bits as i32;
    let emin = 1 - spec.bias; // exponent of the smallest normal value
    let ef = (a >> 23) as i32;
    let mf = a & 0x007F_FFFF;
    let (sig, lsb_exp, exp) = if ef == 0 {
        // f32 subnormal: always below 2^emin because bias <= 127.
        (mf, -149, -127)
    } else {
        (mf | 0x0080_0000, ef - 150, ef - 127)
    };
    let binade = if exp > emin { exp } else { emin };
    let q_exp = binade - m;
    let shift = (q_exp - lsb_exp) as u32; // >= 1 because m <= 22
    let q = round_shift(sig, shift, mode);
    (((binade - emin) as u32) << m) + q
}

/// `sig / 2^shift` rounded per `mode` (`shift >= 1`).
const fn round_shift(sig: u32, shift: u32, mode: Rounding) -> u32 {
    let sig = sig as u64;
    let (q, rem) = if shift >= 64 {
        (0, sig)
    } else {
        (sig >> shift, sig & ((1u64 << shift) - 1))
    };
    let up = match mode {
        Rounding::NearestEven | Rounding::Saturating => {
            if shift >= 64 {
                false
            } else {
                let half = 1u64 << (shift - 1);
                rem > half || (rem == half && q & 1 == 1)
            }
        }
        Rounding::Stochastic(r) => {
            // Round up with probability rem / 2^shift, using 32 random bits.
            let r = r as u64;
            if shift <= 32 {
                (r & ((1u64 << shift) - 1)) < rem
            } else if shift - 32 >= 64 {
                false
            } else {
                r < (rem >> (shift - 32))
            }
        }
    };
    q as u32 + up as u32
}

/// The unsigned power-of-two scale (E8M0): rounding on the `f32` exponent.
const fn encode_scale(spec: &MiniFloat, a: u32, negative: bool, mode: Rounding) -> u16 {
    let nan = spec.magnitude_mask();
    let max = spec.max_code();
    let saturate = matches!(mode, Rounding::Saturating);
    if a > 0x7F80_0000 || negative || a == 0 {
        return nan;
    }
    if a == 0x7F80_0000 {
        return if saturate { max } else { nan };
    }
    let ef = (a >> 23) as i32;
    let mf = a & 0x007F_FFFF;
    let up = match mode {
        Rounding::NearestEven | Rounding::Saturating => {
            if ef == 0 {
                mf > 0x0040_0000
            } else {
                mf >= 0x0040_0000
            }
        }
        Rounding::Stochastic(r) => {
            if ef == 0 {
                // Between 2^-127 (exponent field 0 here) and 2^-126.
                mf > 0x0040_0000 && ((r >> 10) & 0x003F_FFFF) < mf - 0x0040_0000
            } else {
                (r >> 9) < mf
            }
        }
    };
    let code = ef + up as i32 - 127 + spec.bias;
    if code < 0 {
        0 // no underflow: the smallest scale
    } else if code > max as i32 {
        if saturate { max } else { nan }
    } else {
        code as u16
    }
}
