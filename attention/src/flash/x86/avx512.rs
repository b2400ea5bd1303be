//! AVX-512F (+ AVX2, FMA): one `__m512` per logical 16-lane vector.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

type V = __m512;

/// Score register tile: 6 rows × 4 vectors (24 accumulators of 32 registers).
const QK_MR: usize = 6;
/// See [`QK_MR`].
const QK_NR: usize = 4;
/// Output register tile: 6 rows × 4 vectors.
const PV_MR: usize = 6;
/// See [`PV_MR`].
const PV_NV: usize = 4;

#[inline]
#[target_feature(enable = "avx512f")]
fn zero() -> V {
    _mm512_setzero_ps()
}

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(x: f32) -> V {
    _mm512_set1_ps(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load(a: &[f32; 16]) -> V {
    // SAFETY: `a` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_ps(a.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store(a: &mut [f32; 16], x: V) {
    // SAFETY: `a` is 64 writable bytes; the store is unaligned.
    unsafe { _mm512_storeu_ps(a.as_mut_ptr(), x) }
}

/// # Safety
///
/// `p` points at 16 readable floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn loadp(p: *const f32) -> V {
    // SAFETY: the caller's contract; the load is unaligned.
    unsafe { _mm512_loadu_ps(p) }
}

/// # Safety
///
/// `p` points at 16 writable floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn storep(p: *mut f32, x: V) {
    // SAFETY: the caller's contract; the store is unaligned.
    unsafe { _mm512_storeu_ps(p, x) }
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
fn add(a: V, b: V) -> V {
    _mm512_add_ps(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sub(a: V, b: V) -> V {
    _mm512_sub_ps(a, b)
}

/// `fallback::max` lane by lane (`vmaxps` returns its second operand on ties and NaNs).
#[inline]
#[target_feature(enable = "avx512f")]
fn vmax(a: V, b: V) -> V {
    _mm512_max_ps(a, b)
}

/// `2ⁿ` from `t = n + ROUND_MAGIC` (see `fallback::exp2`).
#[inline]
#[target_feature(enable = "avx512f")]
fn pow2_of_rounded(t: V) -> V {
    let bits = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127));
    _mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits))
}

/// The upper 8 lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn high(v: V) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))
}

/// `fallback::hmax`: lanes `l + 8` onto `l`, `l + 4` onto `l`, then `(0, 2)` and `(1, 3)`.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn hmax(v: V) -> f32 {
    let s8 = _mm256_max_ps(_mm512_castps512_ps256(v), high(v));
    let s4 = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)))
}

/// `fallback::hsum`: the same tree with additions.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn hsum(v: V) -> f32 {
    let s8 = _mm256_add_ps(_mm512_castps512_ps256(v), high(v));
    let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
}

kernels!("avx512f,avx2,fma");

/// Transposes the 16×16 tile whose rows are `r`: lane `i` of output `c` is lane `c` of
/// `r[i]`. Three shuffle stages: pairs of rows inside 128-bit lanes (`unpack`), quads
/// (`shuffle_ps`), then whole 128-bit lanes (`shuffle_f32x4`, twice).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: &[V; 16]) -> [V; 16] {
    // t[2i], t[2i + 1], lane L: rows 2i, 2i + 1 at columns 4L, 4L + 1 and 4L + 2, 4L + 3.
    let mut t = [zero(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4b + e], lane L: rows 4b .. 4b + 4 at column 4L + e.
    let mut u = [zero(); 16];
    for b in 0..4 {
        let (lo0, hi0, lo1, hi1) = (t[4 * b], t[4 * b + 1], t[4 * b + 2], t[4 * b + 3]);
        u[4 * b] = _mm512_shuffle_ps::<0x44>(lo0, lo1);
        u[4 * b + 1] = _mm512_shuffle_ps::<0xEE>(lo0, lo1);
        u[4 * b + 2] = _mm512_shuffle_ps::<0x44>(hi0, hi1);
        u[4 * b + 3] = _mm512_shuffle_ps::<0xEE>(hi0, hi1);
    }
    // Output 4L + e gathers lane L of u[e], u[4 + e], u[8 + e], u[12 + e].
    let mut out = [zero(); 16];
    for e in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x44>(u[e], u[4 + e]);
        let v1 = _mm512_shuffle_f32x4::<0xEE>(u[e], u[4 + e]);
        let w0 = _mm512_shuffle_f32x4::<0x44>(u[8 + e], u[12 + e]);
        let w1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + e], u[12 + e]);
        out[e] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        out[4 + e] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
        out[8 + e] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        out[12 + e] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    out
}

/// `fallback::pack_k` by 16×16 register transposes (masked loads for the last columns,
/// zero rows for the padding keys).
///
/// # Safety
///
/// The operands must pass `fallback::check_pack_k`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pack_k(k: &[f32], keys: usize, d: usize, dst: &mut [f32]) {
    let width = keys.next_multiple_of(LANES);
    let (src, out) = (k.as_ptr(), dst.as_mut_ptr());
    for p0 in (0..width).step_by(PANEL) {
        let w = PANEL.min(width - p0);
        for g0 in (0..w).step_by(LANES) {
            let j0 = p0 + g0;
            let rows = (keys - j0).min(LANES);
            for c0 in (0..d).step_by(LANES) {
                let cols = (d - c0).min(LANES);
                let mask: __mmask16 = ((1u32 << cols) - 1) as u16;
                let mut r = [zero(); 16];
                for (i, ri) in r.iter_mut().enumerate().take(rows) {
                    // SAFETY: key j0 + i < keys, columns c0 .. c0 + cols ≤ d: in `k` (the
                    // contract); masked-off lanes are not read.
                    *ri = unsafe { _mm512_maskz_loadu_ps(mask, src.add((j0 + i) * d + c0)) };
                }
                let t = transpose16(&r);
                for (c, tc) in t.iter().enumerate().take(cols) {
                    // SAFETY: panel p0 (width w) row c0 + c < d, keys g0 .. g0 + 16 ≤ w:
                    // inside `dst[.. width·d]` (the contract).
                    unsafe { storep(out.add(p0 * d + (c0 + c) * w + g0), *tc) };
                }
            }
        }
    }
}
