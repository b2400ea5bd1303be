//! x86-64 AVX2 and AVX-512 kernels. Each is the vector form of a scalar twin in
//! `arch/mod.rs` / `minifloat::encode_lane` and is tested against it bit for bit.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::minifloat::LaneParams;

/// AVX2 encoder: 8 lanes per step, scalar twin for the tail.
pub(super) fn encode_u8_avx2(p: &LaneParams, src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    // SAFETY: the caller (`arch::encode_u8`) checked that AVX2 is available.
    unsafe { encode_u8_avx2_impl(p, src, dst) }
}

#[target_feature(enable = "avx2")]
fn encode_u8_avx2_impl(p: &LaneParams, src: &[f32], dst: &mut [u8]) {
    let n = src.len().min(dst.len());
    let body = n - n % 8;
    let shift = _mm_cvtsi32_si128(p.shift as i32);
    let sign_shift = _mm_cvtsi32_si128(p.sign_shift as i32);
    let sign_mask = _mm256_set1_epi32(i32::MIN);
    let abs_mask = _mm256_set1_epi32(i32::MAX);
    let lsb_mask = _mm256_set1_epi32(p.lsb_mask as i32);
    let round = _mm256_set1_epi32(p.round as i32);
    let rebias = _mm256_set1_epi32(p.rebias as i32);
    let min_normal = _mm256_set1_epi32(p.min_normal_bits as i32);
    let magic_i = _mm256_set1_epi32(p.magic_bits as i32);
    let magic_f = _mm256_castsi256_ps(magic_i);
    let max_code = _mm256_set1_epi32(p.max_code as i32);
    let overflow_code = _mm256_set1_epi32(p.overflow_code as i32);
    let inf_bits = _mm256_set1_epi32(0x7F80_0000);
    let nan_code = _mm256_set1_epi32(p.nan_code as i32);
    let nan_flip = _mm256_set1_epi32(p.nan_sign_flip as i32);
    let unsigned_zero = _mm256_set1_epi32(p.unsigned_zero as i32);
    let zero = _mm256_setzero_si256();
    // Gathers byte 0 of each 32-bit lane into the low 4 bytes of each 128-bit half.
    let gather_low_bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= src.len(); unaligned load.
        let x = unsafe { _mm256_loadu_si256(src.as_ptr().add(i).cast::<__m256i>()) };
        let sign = _mm256_and_si256(x, sign_mask);
        let a = _mm256_and_si256(x, abs_mask);
        let lsb = _mm256_and_si256(_mm256_srl_epi32(a, shift), lsb_mask);
        let normal = _mm256_sub_epi32(
            _mm256_srl_epi32(_mm256_add_epi32(_mm256_add_epi32(a, round), lsb), shift),
            rebias,
        );
        let sub = _mm256_sub_epi32(
            _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), magic_f)),
            magic_i,
        );
        let is_sub = _mm256_cmpgt_epi32(min_normal, a);
        let code = _mm256_blendv_epi8(normal, sub, is_sub);
        let is_ovf = _mm256_cmpgt_epi32(code, max_code);
        let code = _mm256_blendv_epi8(code, overflow_code, is_ovf);
        let is_nan = _mm256_cmpgt_epi32(a, inf_bits);
        let code = _mm256_blendv_epi8(code, nan_code, is_nan);
        let sign = _mm256_xor_si256(sign, _mm256_and_si256(is_nan, nan_flip));
        let sign_bits = _mm256_srl_epi32(sign, sign_shift);
        let drop_sign = _mm256_and_si256(_mm256_cmpeq_epi32(code, zero), unsigned_zero);
        let out = _mm256_or_si256(code, _mm256_andnot_si256(drop_sign, sign_bits));
        let packed = _mm256_shuffle_epi8(out, gather_low_bytes);
        let lo = _mm256_castsi256_si128(packed);
        let hi = _mm256_extracti128_si256::<1>(packed);
        let eight = _mm_unpacklo_epi32(lo, hi);
        // SAFETY: i + 8 <= body <= dst.len(); 8-byte unaligned store.
        unsafe { _mm_storel_epi64(dst.as_mut_ptr().add(i).cast::<__m128i>(), eight) };
        i += 8;
    }
    super::encode_u8_fallback(p, &src[body..n], &mut dst[body..n]);
}

/// AVX-512F encoder: 16 lanes per step, scalar twin for the tail.
pub(super) fn encode_u8_avx512(p: &LaneParams, src: &[f32], dst: &mut [u8]) {
    debug_assert_eq!(src.len(), dst.len());
    // SAFETY: the caller (`arch::encode_u8`) checked that AVX-512F is available.
    unsafe { encode_u8_avx512_impl(p, src, dst) }
}

#[target_feature(enable = "avx512f")]
fn encode_u8_avx512_impl(p: &LaneParams, src: &[f32], dst: &mut [u8]) {
    let n = src.len().min(dst.len());
    let body = n - n % 16;
    let shift = _mm_cvtsi32_si128(p.shift as i32);
    let sign_shift = _mm_cvtsi32_si128(p.sign_shift as i32);
    let sign_mask = _mm512_set1_epi32(i32::MIN);
    let abs_mask = _mm512_set1_epi32(i32::MAX);
    let lsb_mask = _mm512_set1_epi32(p.lsb_mask as i32);
    let round = _mm512_set1_epi32(p.round as i32);
    let rebias = _mm512_set1_epi32(p.rebias as i32);
    let min_normal = _mm512_set1_epi32(p.min_normal_bits as i32);
    let magic_i = _mm512_set1_epi32(p.magic_bits as i32);
    let magic_f = _mm512_castsi512_ps(magic_i);
    let max_code = _mm512_set1_epi32(p.max_code as i32);
    let overflow_code = _mm512_set1_epi32(p.overflow_code as i32);
    let inf_bits = _mm512_set1_epi32(0x7F80_0000);
    let nan_code = _mm512_set1_epi32(p.nan_code as i32);
    let nan_flip = _mm512_set1_epi32(p.nan_sign_flip as i32);
    let unsigned_zero = p.unsigned_zero != 0;
    let zero = _mm512_setzero_si512();
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= body <= src.len(); unaligned load.
        let x = unsafe { _mm512_loadu_si512(src.as_ptr().add(i).cast::<__m512i>()) };
        let sign = _mm512_and_si512(x, sign_mask);
        let a = _mm512_and_si512(x, abs_mask);
        let lsb = _mm512_and_si512(_mm512_srl_epi32(a, shift), lsb_mask);
        let normal = _mm512_sub_epi32(
            _mm512_srl_epi32(_mm512_add_epi32(_mm512_add_epi32(a, round), lsb), shift),
            rebias,
        );
        let sub = _mm512_sub_epi32(
            _mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), magic_f)),
            magic_i,
        );
        let is_sub = _mm512_cmpgt_epi32_mask(min_normal, a);
        let code = _mm512_mask_blend_epi32(is_sub, normal, sub);
        let is_ovf = _mm512_cmpgt_epi32_mask(code, max_code);
        let code = _mm512_mask_blend_epi32(is_ovf, code, overflow_code);
        let is_nan = _mm512_cmpgt_epi32_mask(a, inf_bits);
        let code = _mm512_mask_blend_epi32(is_nan, code, nan_code);
        let sign = _mm512_mask_xor_epi32(sign, is_nan, sign, nan_flip);
        let sign_bits = _mm512_srl_epi32(sign, sign_shift);
        let keep_sign = if unsigned_zero {
            _mm512_cmpneq_epi32_mask(code, zero)
        } else {
            0xFFFF
        };
        let out = _mm512_mask_or_epi32(code, keep_sign, code, sign_bits);
        let bytes = _mm512_cvtepi32_epi8(out);
        // SAFETY: i + 16 <= body <= dst.len(); 16-byte unaligned store.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), bytes) };
        i += 16;
    }
    super::encode_u8_fallback(p, &src[body..n], &mut dst[body..n]);
}
