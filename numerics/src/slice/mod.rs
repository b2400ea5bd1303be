//! Bulk conversion between `f32` slices and every format of the crate.
//!
//! - 8-bit-or-smaller formats encode with the branch-free lane kernel of the minifloat
//!   engine, on AVX-512F or AVX2 when the CPU has them (detected once per call) and in
//!   portable scalar code otherwise; every path is bit-identical to
//!   [`crate::MiniFloat::encode`], subnormals included. They decode through a 256-entry
//!   table (a scalar loop: it beat AVX2/AVX-512 gathers on our machines).
//! - FP16 and BF16 use `half`'s slice conversions (F16C for FP16 on x86-64).
//! - The E8M0 scale format goes through the scalar engine (it is a per-block scale, never
//!   bulk data).
//!
//! Large slices can be split over rayon with [`Par::Rayon`].

#[cfg(test)]
mod tests;

use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::arch::{self, Isa};
use crate::formats::{
    DECODE_TABLES, F4E2M1FN, F6E2M3FN, F6E3M2FN, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ,
    F8E8M0FNU, Format,
};
use crate::{Error, Par, Result};

/// Below this many elements a [`Par::Rayon`] call runs on one thread anyway.
const PAR_MIN_CHUNK: usize = 1 << 16;

mod sealed {
    /// The conversions behind [`super::Element`]; private, so the trait stays sealed.
    pub trait Sealed: Sized {
        fn encode_chunk(src: &[f32], dst: &mut [Self], saturating: bool);
        fn decode_chunk(src: &[Self], dst: &mut [f32]);
    }
}

/// A storage element type that slices of `f32` convert to and from: `f16`, `bf16` and the
/// eight minifloat newtypes. Sealed: the conversions are this crate's to define.
pub trait Element: sealed::Sealed + bytemuck::Pod + Send + Sync + 'static {
    /// The run-time name of this type's format.
    const FORMAT: Format;
}

macro_rules! small_element {
    ($t:ident) => {
        impl Element for $t {
            const FORMAT: Format = Format::$t;
        }
        impl sealed::Sealed for $t {
            fn encode_chunk(src: &[f32], dst: &mut [Self], saturating: bool) {
                let out: &mut [u8] = bytemuck::cast_slice_mut(dst);
                match $t::SPEC.lane_params(saturating) {
                    Some(p) => arch::encode_u8(Isa::detect(), &p, src, out),
                    None => {
                        for (d, &x) in out.iter_mut().zip(src) {
                            *d = if saturating {
                                $t::SPEC.encode_saturating(x)
                            } else {
                                $t::SPEC.encode(x)
                            } as u8;
                        }
                    }
                }
            }

            fn decode_chunk(src: &[Self], dst: &mut [f32]) {
                let codes: &[u8] = bytemuck::cast_slice(src);
                arch::decode_u8(DECODE_TABLES.get(Format::$t), codes, dst);
            }
        }
    };
}

small_element!(F8E4M3FN);
small_element!(F8E5M2);
small_element!(F8E4M3FNUZ);
small_element!(F8E5M2FNUZ);
small_element!(F8E8M0FNU);
small_element!(F6E2M3FN);
small_element!(F6E3M2FN);
small_element!(F4E2M1FN);

macro_rules! half_element {
    ($t:ty, $fmt:ident) => {
        impl Element for $t {
            const FORMAT: Format = Format::$fmt;
        }
        impl sealed::Sealed for $t {
            fn encode_chunk(src: &[f32], dst: &mut [Self], saturating: bool) {
                dst.convert_from_f32_slice(src);
                if saturating {
                    for (d, &x) in dst.iter_mut().zip(src) {
                        if d.is_infinite() && !x.is_nan() {
                            *d = if x < 0.0 { <$t>::MIN } else { <$t>::MAX };
                        }
                    }
                }
            }

            fn decode_chunk(src: &[Self], dst: &mut [f32]) {
                src.convert_to_f32_slice(dst);
            }
        }
    };
}

half_element!(half::f16, F16);
half_element!(half::bf16, BF16);

/// Encodes `src` into `dst` with each format's plain cast ([`crate::F8E4M3FN::from_f32`] and
/// friends, `half`'s `from_f32` for FP16/BF16), bit for bit.
///
/// ```
/// use numerics::{encode_slice, Par, F8E5M2};
/// # fn main() -> Result<(), numerics::Error> {
/// let mut out = [F8E5M2::ZERO; 3];
/// encode_slice(&[1.0, 1e6, -0.0], &mut out, Par::Seq)?;
/// assert_eq!(out.map(|c| c.to_bits()), [0x3C, 0x7C, 0x80]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// - [`Error::LengthMismatch`] if the slices differ in length.
/// - [`Error::NanNotRepresentable`] if the target format has no NaN (FP6, FP4) and `src`
///   holds a NaN: the scalar cast would silently turn it into a zero. Nothing is written.
pub fn encode_slice<T: Element>(src: &[f32], dst: &mut [T], par: Par) -> Result<()> {
    encode_impl(src, dst, par, false)
}

/// Like [`encode_slice`], but finite overflow and ±inf clamp to ±MAX (`satfinite`).
///
/// # Errors
///
/// As [`encode_slice`].
pub fn encode_slice_saturating<T: Element>(src: &[f32], dst: &mut [T], par: Par) -> Result<()> {
    encode_impl(src, dst, par, true)
}

/// Decodes `src` into `dst` exactly.
///
/// # Errors
///
/// [`Error::LengthMismatch`] if the slices differ in length.
pub fn decode_slice<T: Element>(src: &[T], dst: &mut [f32], par: Par) -> Result<()> {
    check_len("decode_slice", src.len(), dst.len())?;
    let chunk = par.chunk_len(src.len(), 64, PAR_MIN_CHUNK);
    if chunk >= src.len() {
        T::decode_chunk(src, dst);
    } else {
        src.par_chunks(chunk)
            .zip(dst.par_chunks_mut(chunk))
            .for_each(|(s, d)| T::decode_chunk(s, d));
    }
    Ok(())
}

fn check_len(op: &'static str, left: usize, right: usize) -> Result<()> {
    if left == right {
        Ok(())
    } else {
        Err(Error::LengthMismatch { op, left, right })
    }
}

/// Index of the first NaN, for formats that cannot encode one.
pub(crate) fn first_nan(src: &[f32]) -> Option<usize> {
    src.iter().position(|x| x.is_nan())
}

fn encode_impl<T: Element>(src: &[f32], dst: &mut [T], par: Par, saturating: bool) -> Result<()> {
    check_len("encode_slice", src.len(), dst.len())?;
    if !T::FORMAT.spec().has_nan()
        && let Some(index) = first_nan(src)
    {
        return Err(Error::NanNotRepresentable {
            format: T::FORMAT.name(),
            index,
        });
    }
    let chunk = par.chunk_len(src.len(), 64, PAR_MIN_CHUNK);
    if chunk >= src.len() {
        T::encode_chunk(src, dst, saturating);
    } else {
        src.par_chunks(chunk)
            .zip(dst.par_chunks_mut(chunk))
            .for_each(|(s, d)| T::encode_chunk(s, d, saturating));
    }
    Ok(())
}
