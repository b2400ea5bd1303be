//! AVX2 (+ FMA): a pair of `__m256` (lanes 0–7, 8–15) per logical 16-lane vector.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// Lanes 0–7 and 8–15.
#[derive(Clone, Copy)]
struct V(__m256, __m256);

/// Score register tile: 3 rows × 2 vectors (12 accumulators of 16 registers).
const QK_MR: usize = 3;
/// See [`QK_MR`].
const QK_NR: usize = 2;
/// Output register tile: 3 rows × 2 vectors.
const PV_MR: usize = 3;
/// See [`PV_MR`].
const PV_NV: usize = 2;

#[inline]
#[target_feature(enable = "avx2")]
fn zero() -> V {
    V(_mm256_setzero_ps(), _mm256_setzero_ps())
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(x: f32) -> V {
    V(_mm256_set1_ps(x), _mm256_set1_ps(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(a: &[f32; 16]) -> V {
    // SAFETY: `a` is 64 readable bytes; the loads are unaligned and in bounds.
    unsafe { loadp(a.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(a: &mut [f32; 16], x: V) {
    // SAFETY: `a` is 64 writable bytes; the stores are unaligned and in bounds.
    unsafe { storep(a.as_mut_ptr(), x) }
}

/// # Safety
///
/// `p` points at 16 readable floats.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn loadp(p: *const f32) -> V {
    // SAFETY: the caller's contract; the loads are unaligned.
    unsafe { V(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
}

/// # Safety
///
/// `p` points at 16 writable floats.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn storep(p: *mut f32, x: V) {
    // SAFETY: the caller's contract; the stores are unaligned.
    unsafe {
        _mm256_storeu_ps(p, x.0);
        _mm256_storeu_ps(p.add(8), x.1);
    }
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
fn add(a: V, b: V) -> V {
    V(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
}

#[inline]
#[target_feature(enable = "avx2")]
fn sub(a: V, b: V) -> V {
    V(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1))
}

/// `fallback::max` lane by lane (`vmaxps` returns its second operand on ties and NaNs).
#[inline]
#[target_feature(enable = "avx2")]
fn vmax(a: V, b: V) -> V {
    V(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1))
}

/// `2ⁿ` from `t = n + ROUND_MAGIC` (see `fallback::exp2`).
#[inline]
#[target_feature(enable = "avx2")]
fn pow2_of_rounded(t: V) -> V {
    V(pow2_half(t.0), pow2_half(t.1))
}

/// [`pow2_of_rounded`] on 8 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn pow2_half(t: __m256) -> __m256 {
    let bits = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127));
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits))
}

/// `fallback::hmax`: lanes `l + 8` onto `l`, `l + 4` onto `l`, then `(0, 2)` and `(1, 3)`.
#[inline]
#[target_feature(enable = "avx2")]
fn hmax(v: V) -> f32 {
    let s8 = _mm256_max_ps(v.0, v.1);
    let s4 = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)))
}

/// `fallback::hsum`: the same tree with additions.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: V) -> f32 {
    let s8 = _mm256_add_ps(v.0, v.1);
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
}

kernels!("avx2,fma");
