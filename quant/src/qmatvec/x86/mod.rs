//! x86-64 AVX-512 and AVX2 forms of the scalar kernels in `cpu.rs`, bit for bit.
//!
//! The kernel bodies are written once, in `kernels!` (`kernels.rs`), over a handful of
//! 16-lane primitives (`zero`, `splat`, `load`, `fma`, `hsum`, byte/nibble/FP8 decoders)
//! that each level's module defines for its own vector type: one `__m512` for AVX-512
//! (`avx512.rs`), a pair of `__m256` for AVX2 (`avx2.rs`). Every primitive performs, lane by
//! lane, the operation its scalar twin performs, and every decoder is exact, so both levels
//! reproduce `cpu.rs` exactly.
//!
//! Kernels stream [`ROW_BLOCK`](super::ROW_BLOCK) = 4 rows at once (four independent
//! accumulator chains; each `x` chunk is loaded once for the four rows), then the remaining
//! rows one at a time, prefetching each row [`PREFETCH_BYTES`] ahead. Nibbles become `f32`
//! through `vpermps` from a 16-entry table (AVX-512: the table index is the dword's low 4
//! bits, so the low nibble needs no mask), or mask/shift/convert (AVX2); FP8 codes are
//! widened through `f16` with F16C (see [`E4M3_F16_MASK`]; no gathers: they are slow on the
//! Zen machines we measure on). The entry points check the CPU's features themselves, so
//! they are safe to call.
#![allow(unsafe_code)]

use super::{Prepared, QWeight};

#[macro_use]
mod kernels;
mod avx2;
mod avx512;

/// FP8 codes become `f32` through IEEE half precision and F16C's exact `vcvtph2ps`:
///
/// - E5M2 is the top byte of an `f16` (same exponent width and bias), so
///   `f16 bits = code << 8`, infinities, NaNs and subnormals included;
/// - E4M3FN (bias 7) shifted into an `f16` (bias 15) is the value times 2⁻⁸: with the code
///   sign-extended to 16 bits, `f16 bits = (code << 7) & 0xBF80` (sign to bit 15, exponent
///   and mantissa to bits 7–13); the two NaN codes (`S.1111.111`) get the `f16` exponent all
///   ones, and the widened value is multiplied by 2⁸ — exact, as every widened `f16` is a
///   normal `f32`.
///
/// No `f32` subnormal is ever produced or consumed, so no microcode assists either.
const E4M3_F16_MASK: i16 = 0xBF80_u16 as i16;

/// The exponent-and-mantissa bits of an E4M3 code placed in an `f16` (all set: NaN).
const E4M3_F16_NAN: i16 = 0x3F80;

/// The `f16` exponent field, all ones.
const F16_EXP: i16 = 0x7C00;

/// Table of the unsigned nibble values, for `nib_u`'s table form.
const IOTA: [f32; 16] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// Table of Q4_0's nibble values, `nibble − 8`.
const Q4_0_VALUES: [f32; 16] = [
    -8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
];

/// How far ahead of the element being read the kernels prefetch each weight row, in bytes.
/// Four interleaved row streams per thread are more than Zen's hardware prefetchers keep
/// ahead of on their own: measured on 16384×4096 int4, this took two threads from about
/// 40 to about 50 G weights/s.
const PREFETCH_BYTES: usize = 512;

/// Prefetches, into L1, the line `PREFETCH_BYTES` past element `i` of `s` (a hint: the
/// address may lie past the end of `s`; it is never dereferenced).
#[inline]
fn prefetch_ahead<T>(s: &[T], i: usize) {
    let p = s
        .as_ptr()
        .wrapping_add(i)
        .cast::<i8>()
        .wrapping_add(PREFETCH_BYTES);
    // SAFETY: SSE is part of x86-64, and a prefetch does not access memory architecturally,
    // so any address is allowed.
    unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p) }
}

/// Whether this CPU has what the AVX-512 kernels need (cached by `std` after the first call).
fn has_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx512f")
        && has!("avx512bw")
        && has!("avx512vl")
        && has!("avx512vbmi")
        && has!("fma")
        && has!("f16c")
}

/// Whether this CPU has what the AVX2 kernels need.
fn has_avx2() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx2") && has!("fma") && has!("f16c")
}

/// [`avx512::rows`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX-512F/BW/VL/VBMI, FMA or F16C.
pub(super) fn rows_avx512(k: &Prepared<'_>, r0: usize, y: &mut [f32]) {
    assert!(
        has_avx512(),
        "qmatvec: AVX-512 kernels on a CPU without AVX-512F/BW/VL/VBMI, FMA or F16C"
    );
    // SAFETY: the target features of `avx512::rows` were checked just above.
    unsafe { avx512::rows(k, r0, y) }
}

/// [`avx2::rows`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX2, FMA or F16C.
pub(super) fn rows_avx2(k: &Prepared<'_>, r0: usize, y: &mut [f32]) {
    assert!(
        has_avx2(),
        "qmatvec: AVX2 kernels on a CPU without AVX2/FMA/F16C"
    );
    // SAFETY: the target features of `avx2::rows` were checked just above.
    unsafe { avx2::rows(k, r0, y) }
}

/// [`avx512::decode_rows`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX-512F/BW/VL/VBMI, FMA or F16C.
pub(super) fn decode_rows_avx512(w: &QWeight<'_>, cols: usize, r0: usize, out: &mut [f32]) {
    assert!(
        has_avx512(),
        "qmatvec: AVX-512 kernels on a CPU without AVX-512F/BW/VL/VBMI, FMA or F16C"
    );
    // SAFETY: the target features of `avx512::decode_rows` were checked just above.
    unsafe { avx512::decode_rows(w, cols, r0, out) }
}

/// [`avx2::decode_rows`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX2, FMA or F16C.
pub(super) fn decode_rows_avx2(w: &QWeight<'_>, cols: usize, r0: usize, out: &mut [f32]) {
    assert!(
        has_avx2(),
        "qmatvec: AVX2 kernels on a CPU without AVX2/FMA/F16C"
    );
    // SAFETY: the target features of `avx2::decode_rows` were checked just above.
    unsafe { avx2::decode_rows(w, cols, r0, out) }
}

/// [`avx512::dots`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX-512F/BW/VL/VBMI, FMA or F16C.
pub(super) fn dots_avx512(w: &[f32], cols: usize, x: &[f32], n: usize, out: &mut [f32]) {
    assert!(
        has_avx512(),
        "qmatvec: AVX-512 kernels on a CPU without AVX-512F/BW/VL/VBMI, FMA or F16C"
    );
    // SAFETY: the target features of `avx512::dots` were checked just above.
    unsafe { avx512::dots(w, cols, x, n, out) }
}

/// [`avx2::dots`] behind a feature check.
///
/// # Panics
///
/// If the CPU lacks AVX2, FMA or F16C.
pub(super) fn dots_avx2(w: &[f32], cols: usize, x: &[f32], n: usize, out: &mut [f32]) {
    assert!(
        has_avx2(),
        "qmatvec: AVX2 kernels on a CPU without AVX2/FMA/F16C"
    );
    // SAFETY: the target features of `avx2::dots` were checked just above.
    unsafe { avx2::dots(w, cols, x, n, out) }
}

/// The two 16-element halves of a 32-element array.
#[inline]
fn halves<T>(a: &[T; 32]) -> (&[T; 16], &[T; 16]) {
    let (x, y) = a.split_at(16);
    (
        x.try_into().expect("16 elements"),
        y.try_into().expect("16 elements"),
    )
}
