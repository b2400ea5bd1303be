//! AVX-512 F/BW/VL/VBMI (+ FMA, F16C): one `__m512` per logical 16-lane vector.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::super::cpu::codebook4_chunks;
use super::super::{BlocksCtx, Codebook4Ctx, Fp8Ctx, GroupedCtx, Prepared, QWeight};
use super::{E4M3_F16_MASK, E4M3_F16_NAN, F16_EXP, IOTA, Q4_0_VALUES, halves, prefetch_ahead};
use crate::fp8::Fp8Kind;
use crate::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

type V = __m512;
/// A 16-entry `f32` table for `nib_lut`.
type Lut = __m512;

#[inline]
#[target_feature(enable = "avx512f")]
fn zero() -> V {
    _mm512_setzero_ps()
}

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(v: f32) -> V {
    _mm512_set1_ps(v)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load(a: &[f32; 16]) -> V {
    // SAFETY: `a` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_ps(a.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store(o: &mut [f32; 16], v: V) {
    // SAFETY: `o` is 64 writable bytes; the store is unaligned.
    unsafe { _mm512_storeu_ps(o.as_mut_ptr(), v) }
}

/// `o[2l] = a[l]`, `o[2l + 1] = b[l]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_interleaved(o: &mut [f32; 32], a: V, b: V) {
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let (o0, o1) = o.split_at_mut(16);
    store(o0.try_into().expect("16"), _mm512_permutex2var_ps(a, lo, b));
    store(o1.try_into().expect("16"), _mm512_permutex2var_ps(a, hi, b));
}

/// `a·b + c`, fused.
#[inline]
#[target_feature(enable = "avx512f")]
fn fma(a: V, b: V, c: V) -> V {
    _mm512_fmadd_ps(a, b, c)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn mul(a: V, b: V) -> V {
    _mm512_mul_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sub(a: V, b: V) -> V {
    _mm512_sub_ps(a, b)
}

/// `cpu::hsum`: lanes `l + 8` onto `l`, then `l + 4`, then `(0 + 2) + (1 + 3)`.
#[inline]
#[target_feature(enable = "avx512f")]
fn hsum(v: V) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let s8 = _mm256_add_ps(lo, hi);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn bytes16(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// `[0, 1, …, 31]`, 64-byte aligned so that any 16 consecutive entries sit in one line.
#[repr(C, align(64))]
struct Iota32([u8; 32]);

static IOTA32: Iota32 = Iota32([
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
]);

/// The 16 bytes at `p`, read as the two aligned 16-byte pieces around them and joined
/// with `vpermt2b`, so the read never splits across a cache line.
///
/// GGML blocks are 18, 20 or 34 bytes long, so about a fifth of their 16-byte code loads
/// straddle two cache lines. Streamed from DRAM, those split loads cost Q4_0 a quarter of
/// its throughput on Zen 5 (16384×4096, two threads: 1.70 ms with direct loads, 1.28 ms
/// with this), while for Q4_1 and Q8_0 the extra permute cost more than it saved (1.48
/// → 1.56 ms and 2.26 → 2.78 ms), so only Q4_0 uses it.
///
/// # Safety
///
/// The 32 bytes starting at `p` rounded down to a multiple of 16 must be readable
/// through `p`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
unsafe fn bytes16_spanning(p: *const u8) -> __m128i {
    let s = p as usize & 15;
    let a = p.wrapping_sub(s).cast::<__m128i>();
    // SAFETY: the caller guarantees `a .. a + 32` readable; `a` is 16-byte aligned;
    // `IOTA32[s .. s + 16]` is in bounds (s < 16).
    unsafe {
        let idx = _mm_loadu_si128(IOTA32.0.as_ptr().add(s).cast());
        _mm_permutex2var_epi8(_mm_load_si128(a), idx, _mm_load_si128(a.add(1)))
    }
}

/// 16 unsigned bytes as `f32`.
#[inline]
#[target_feature(enable = "avx512f")]
fn u8x16(b: &[u8; 16]) -> V {
    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes16(b)))
}

/// 16 signed bytes (in a register) as `f32`.
#[inline]
#[target_feature(enable = "avx512f")]
fn i8x16(v: __m128i) -> V {
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn lut(t: &[f32; 16]) -> Lut {
    load(t)
}

/// `(t[b & 15], t[b >> 4])` for 16 bytes `b` (in a register): `vpermps` reads only the
/// index's low 4 bits.
#[inline]
#[target_feature(enable = "avx512f")]
fn nib_lut(v: __m128i, t: Lut) -> (V, V) {
    let d = _mm512_cvtepu8_epi32(v);
    (
        _mm512_permutexvar_ps(d, t),
        _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(d), t),
    )
}

/// The low and high nibbles of 16 bytes (in a register) as `f32`.
#[inline]
#[target_feature(enable = "avx512f")]
fn nib_u(v: __m128i) -> (V, V) {
    nib_lut(v, lut(&IOTA))
}

/// An `f16` (given by its bits) widened to `f32` in every lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn f16_splat(bits: u16) -> V {
    _mm512_cvtph_ps(_mm256_set1_epi16(bits as i16))
}

/// Two `f16`s (given by their bits) widened to `f32`, each in every lane: one conversion of
/// the pair broadcast as a dword, then the even and the odd lanes duplicated.
#[inline]
#[target_feature(enable = "avx512f")]
fn f16_pair_splat(a: u16, b: u16) -> (V, V) {
    let pair = u32::from(a) | (u32::from(b) << 16);
    let v = _mm512_cvtph_ps(_mm256_set1_epi32(pair as i32));
    (_mm512_moveldup_ps(v), _mm512_movehdup_ps(v))
}

/// 16 FP8 codes (E4M3FN if `E4M3`, else E5M2) decoded exactly (see [`E4M3_F16_MASK`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn fp8x16<const E4M3: bool>(b: &[u8; 16]) -> V {
    let v = bytes16(b);
    if E4M3 {
        let h = _mm256_and_si256(
            _mm256_slli_epi16::<7>(_mm256_cvtepi8_epi16(v)),
            _mm256_set1_epi16(E4M3_F16_MASK),
        );
        let nan_bits = _mm256_set1_epi16(E4M3_F16_NAN);
        let nan = _mm256_cmpeq_epi16(_mm256_and_si256(h, nan_bits), nan_bits);
        let h = _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi16(F16_EXP)));
        _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0))
    } else {
        _mm512_cvtph_ps(_mm256_slli_epi16::<8>(_mm256_cvtepu8_epi16(v)))
    }
}

/// Inputs per matmul tile: 4 rows × 4 inputs = 16 accumulators of the 32 `zmm` registers.
const MATMUL_INPUTS: usize = 4;

kernels!("avx512f,avx512bw,avx512vl,avx512vbmi,fma,f16c");
