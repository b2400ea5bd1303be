//! Exact decoding of minifloat codes to `f32`, by bit construction (no float arithmetic,
//! so it is a `const fn` and builds the decode tables at compile time).

use super::{MiniFloat, Special};

/// Decodes `code` (masked to the format's width) exactly.
pub(super) const fn decode(spec: &MiniFloat, code: u16) -> f32 {
    let code = code & spec.code_mask();
    let sign = if code & spec.sign_bit() != 0 {
        0x8000_0000u32
    } else {
        0
    };
    if spec.is_nan_code(code) {
        // FNUZ's single NaN is the "negative zero" code; it carries no sign.
        let sign = if matches!(spec.special, Special::Fnuz) {
            0
        } else {
            sign
        };
        return f32::from_bits(sign | 0x7FC0_0000);
    }
    if spec.is_inf_code(code) {
        return f32::from_bits(sign | 0x7F80_0000);
    }
    let mag = (code & spec.magnitude_mask()) as u32;
    let m = spec.mantissa_bits;
    let magnitude_bits = if matches!(spec.special, Special::UnsignedScale) {
        pow2_times(1, mag as i32 - spec.bias)
    } else {
        let e = mag >> m;
        let f = mag & ((1 << m) - 1);
        if e == 0 {
            pow2_times(f, 1 - spec.bias - m as i32)
        } else {
            pow2_times((1 << m) | f, e as i32 - spec.bias - m as i32)
        }
    };
    f32::from_bits(sign | magnitude_bits)
}

/// The `f32` bits of `f · 2^k`, for `f < 2^24` and a product that is exactly representable
/// (which [`MiniFloat::new`] guarantees for every code of a valid spec).
const fn pow2_times(f: u32, k: i32) -> u32 {
    if f == 0 {
        return 0;
    }
    let p = 31 - f.leading_zeros() as i32; // position of the leading one, p <= 23
    let e = k + p; // unbiased exponent of the value
    if e >= -126 {
        (((e + 127) as u32) << 23) | ((f << (23 - p)) & 0x007F_FFFF)
    } else {
        // f32 subnormal: value = f · 2^k = (f << (k + 149)) · 2^-149.
        f << (k + 149)
    }
}
