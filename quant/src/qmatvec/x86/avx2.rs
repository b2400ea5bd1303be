//! AVX2 (+ FMA, F16C): a pair of `__m256` (lanes 0–7, 8–15) per logical 16-lane vector.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::super::cpu::codebook4_chunks;
use super::super::{BlocksCtx, Codebook4Ctx, Fp8Ctx, GroupedCtx, Prepared, QWeight};
use super::{E4M3_F16_MASK, E4M3_F16_NAN, F16_EXP, Q4_0_VALUES, halves, prefetch_ahead};
use crate::fp8::Fp8Kind;
use crate::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

/// Lanes 0–7 and 8–15.
#[derive(Clone, Copy)]
struct V(__m256, __m256);

/// A 16-entry `f32` table for `nib_lut`: entries 0–7 and 8–15.
#[derive(Clone, Copy)]
struct Lut(__m256, __m256);

#[inline]
#[target_feature(enable = "avx2")]
fn zero() -> V {
    V(_mm256_setzero_ps(), _mm256_setzero_ps())
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(v: f32) -> V {
    V(_mm256_set1_ps(v), _mm256_set1_ps(v))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(a: &[f32; 16]) -> V {
    // SAFETY: `a` is 64 readable bytes; the loads are unaligned and in bounds.
    unsafe {
        V(
            _mm256_loadu_ps(a.as_ptr()),
            _mm256_loadu_ps(a.as_ptr().add(8)),
        )
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(o: &mut [f32; 16], v: V) {
    // SAFETY: `o` is 64 writable bytes; the stores are unaligned and in bounds.
    unsafe {
        _mm256_storeu_ps(o.as_mut_ptr(), v.0);
        _mm256_storeu_ps(o.as_mut_ptr().add(8), v.1);
    }
}

/// Interleaves 8 lanes of `a` and `b`: `([a0 b0 a1 b1 a2 b2 a3 b3], [a4 b4 … a7 b7])`.
#[inline]
#[target_feature(enable = "avx2")]
fn zip8(a: __m256, b: __m256) -> (__m256, __m256) {
    // [a0 b0 a1 b1 | a4 b4 a5 b5] and [a2 b2 a3 b3 | a6 b6 a7 b7]
    let lo = _mm256_unpacklo_ps(a, b);
    let hi = _mm256_unpackhi_ps(a, b);
    (
        _mm256_permute2f128_ps::<0x20>(lo, hi),
        _mm256_permute2f128_ps::<0x31>(lo, hi),
    )
}

/// `o[2l] = a[l]`, `o[2l + 1] = b[l]`.
#[inline]
#[target_feature(enable = "avx2")]
fn store_interleaved(o: &mut [f32; 32], a: V, b: V) {
    let (o0, o1) = zip8(a.0, b.0);
    let (o2, o3) = zip8(a.1, b.1);
    let (first, second) = o.split_at_mut(16);
    store(first.try_into().expect("16"), V(o0, o1));
    store(second.try_into().expect("16"), V(o2, o3));
}

/// `a·b + c`, fused.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn fma(a: V, b: V, c: V) -> V {
    V(
        _mm256_fmadd_ps(a.0, b.0, c.0),
        _mm256_fmadd_ps(a.1, b.1, c.1),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn mul(a: V, b: V) -> V {
    V(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1))
}

#[inline]
#[target_feature(enable = "avx2")]
fn sub(a: V, b: V) -> V {
    V(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1))
}

/// `cpu::hsum`: lanes `l + 8` onto `l`, then `l + 4`, then `(0 + 2) + (1 + 3)`.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: V) -> f32 {
    let s8 = _mm256_add_ps(v.0, v.1);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn bytes16(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// The 16 bytes at `p` (a plain unaligned load at this level).
///
/// # Safety
///
/// The 16 bytes at `p` must be readable through `p`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn bytes16_spanning(p: *const u8) -> __m128i {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm_loadu_si128(p.cast()) }
}

/// 16 bytes (in a register) as two vectors of 8 zero-extended dwords.
#[inline]
#[target_feature(enable = "avx2")]
fn dwords_u(v: __m128i) -> (__m256i, __m256i) {
    (
        _mm256_cvtepu8_epi32(v),
        _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v)),
    )
}

/// 16 unsigned bytes as `f32`.
#[inline]
#[target_feature(enable = "avx2")]
fn u8x16(b: &[u8; 16]) -> V {
    let (d0, d1) = dwords_u(bytes16(b));
    V(_mm256_cvtepi32_ps(d0), _mm256_cvtepi32_ps(d1))
}

/// 16 signed bytes (in a register) as `f32`.
#[inline]
#[target_feature(enable = "avx2")]
fn i8x16(v: __m128i) -> V {
    V(
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)),
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(v))),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn lut(t: &[f32; 16]) -> Lut {
    let v = load(t);
    Lut(v.0, v.1)
}

/// `t[idx & 15]` per lane: two 8-entry permutes, selected by bit 3 of the index.
#[inline]
#[target_feature(enable = "avx2")]
fn lookup(idx: __m256i, t: Lut) -> __m256 {
    _mm256_blendv_ps(
        _mm256_permutevar8x32_ps(t.0, idx),
        _mm256_permutevar8x32_ps(t.1, idx),
        _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx)),
    )
}

/// `(t[b & 15], t[b >> 4])` for 16 bytes `b` (in a register).
#[inline]
#[target_feature(enable = "avx2")]
fn nib_lut(v: __m128i, t: Lut) -> (V, V) {
    let (d0, d1) = dwords_u(v);
    let (h0, h1) = (_mm256_srli_epi32::<4>(d0), _mm256_srli_epi32::<4>(d1));
    (
        V(lookup(d0, t), lookup(d1, t)),
        V(lookup(h0, t), lookup(h1, t)),
    )
}

/// The low and high nibbles of 16 bytes (in a register) as `f32`.
#[inline]
#[target_feature(enable = "avx2")]
fn nib_u(v: __m128i) -> (V, V) {
    let (d0, d1) = dwords_u(v);
    let m = _mm256_set1_epi32(15);
    let lo = V(
        _mm256_cvtepi32_ps(_mm256_and_si256(d0, m)),
        _mm256_cvtepi32_ps(_mm256_and_si256(d1, m)),
    );
    let hi = V(
        _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(d0)),
        _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(d1)),
    );
    (lo, hi)
}

/// An `f16` (given by its bits) widened to `f32` in every lane.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16_splat(bits: u16) -> V {
    let v = _mm256_cvtph_ps(_mm_set1_epi16(bits as i16));
    V(v, v)
}

/// Two `f16`s (given by their bits) widened to `f32`, each in every lane: one conversion of
/// the pair broadcast as a dword, then the even and the odd lanes duplicated.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16_pair_splat(a: u16, b: u16) -> (V, V) {
    let pair = u32::from(a) | (u32::from(b) << 16);
    let v = _mm256_cvtph_ps(_mm_set1_epi32(pair as i32));
    let (a, b) = (_mm256_moveldup_ps(v), _mm256_movehdup_ps(v));
    (V(a, a), V(b, b))
}

/// 16 FP8 codes (E4M3FN if `E4M3`, else E5M2) decoded exactly (see [`E4M3_F16_MASK`]).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn fp8x16<const E4M3: bool>(b: &[u8; 16]) -> V {
    // SAFETY: `b` is 16 readable bytes; the load is unaligned.
    let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
    let h = if E4M3 {
        let h = _mm256_and_si256(
            _mm256_slli_epi16::<7>(_mm256_cvtepi8_epi16(v)),
            _mm256_set1_epi16(E4M3_F16_MASK),
        );
        let nan_bits = _mm256_set1_epi16(E4M3_F16_NAN);
        let nan = _mm256_cmpeq_epi16(_mm256_and_si256(h, nan_bits), nan_bits);
        _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi16(F16_EXP)))
    } else {
        _mm256_slli_epi16::<8>(_mm256_cvtepu8_epi16(v))
    };
    let lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    let hi = _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(h));
    if E4M3 {
        let m = _mm256_set1_ps(256.0);
        V(_mm256_mul_ps(lo, m), _mm256_mul_ps(hi, m))
    } else {
        V(lo, hi)
    }
}

/// Inputs per matmul tile: with two `ymm` per vector, 4 rows × 1 input already take 12 of
/// the 16 registers.
const MATMUL_INPUTS: usize = 1;

kernels!("avx2,fma,f16c");
