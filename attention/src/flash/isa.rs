//! The SIMD level the tile kernels run at, chosen once per call.

use super::fallback;
#[cfg(target_arch = "x86_64")]
use super::x86;

/// An instruction-set level of the tile kernels. Every level computes the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Portable scalar code ([`fallback`]): the twin the SIMD levels are tested against.
    Scalar,
    /// x86-64 AVX2 + FMA: a pair of 8-lane registers per 16-lane vector.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// x86-64 AVX-512F (+ FMA): one register per 16-lane vector.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

impl Isa {
    /// The best level this CPU supports (`std` caches the detection).
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_avx512() {
                return Isa::Avx512;
            }
            if x86::has_avx2() {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Every level this CPU supports, scalar first.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|&i| match best {
                Isa::Scalar => i == Isa::Scalar,
                Isa::Avx2 => i != Isa::Avx512,
                Isa::Avx512 => true,
            })
            .collect()
    }

    /// Packs `keys` rows of `K` as the panels [`Isa::qk`] reads (see
    /// [`fallback::pack_k`]; data movement only, so every level gives the same bits).
    #[inline]
    pub(crate) fn pack_k(self, k: &[f32], keys: usize, d: usize, dst: &mut [f32]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::pack_k_avx512(k, keys, d, dst),
            _ => fallback::pack_k(k, keys, d, dst),
        }
    }

    /// `s[r·width + j] = Σ_c qs[r·d + c]·kᵀ[c, j]` for `r < rows`, `j < width` (see
    /// [`fallback::qk`]).
    #[inline]
    pub(crate) fn qk(
        self,
        qs: &[f32],
        rows: usize,
        d: usize,
        kt: &[f32],
        width: usize,
        s: &mut [f32],
    ) {
        match self {
            Isa::Scalar => fallback::qk(qs, rows, d, kt, width, s),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::qk_avx2(qs, rows, d, kt, width, s),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::qk_avx512(qs, rows, d, kt, width, s),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD levels on this architecture"),
        }
    }

    /// The maximum of a row whose length is a multiple of 16 (see [`fallback::row_max`]).
    #[inline]
    pub(crate) fn row_max(self, row: &[f32]) -> f32 {
        match self {
            Isa::Scalar => fallback::row_max(row),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::row_max_avx2(row),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::row_max_avx512(row),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD levels on this architecture"),
        }
    }

    /// `row[j] ← 2^(row[j] − m)`, returning the row's sum (see [`fallback::exp_row`]).
    #[inline]
    pub(crate) fn exp_row(self, row: &mut [f32], m: f32) -> f32 {
        match self {
            Isa::Scalar => fallback::exp_row(row, m),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::exp_row_avx2(row, m),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::exp_row_avx512(row, m),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD levels on this architecture"),
        }
    }

    /// `o[r] ← α_r·o[r] + Σ_{j < keys} p[r·width + j]·v[j·v_stride ..]` over `d_pad`
    /// columns (see [`fallback::pv`]).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn pv(
        self,
        p: &[f32],
        rows: usize,
        width: usize,
        keys: usize,
        v: &[f32],
        v_stride: usize,
        d_pad: usize,
        alpha: &[f32],
        o: &mut [f32],
    ) {
        match self {
            Isa::Scalar => fallback::pv(p, rows, width, keys, v, v_stride, d_pad, alpha, o),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::pv_avx2(p, rows, width, keys, v, v_stride, d_pad, alpha, o),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::pv_avx512(p, rows, width, keys, v, v_stride, d_pad, alpha, o),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD levels on this architecture"),
        }
    }
}
