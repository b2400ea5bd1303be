//! x86-64 AVX-512 and AVX2 forms of the scalar tile kernels in `fallback.rs`, bit for bit.
//!
//! The kernel bodies are written once, in `kernels!` (`kernels.rs`), over a handful of
//! 16-lane primitives (`zero`, `splat`, loads and stores, `fma`, `mul`, `add`, `sub`,
//! `vmax`, the reduction trees `hmax`/`hsum` and `pow2_of_rounded`) that each level's
//! module defines for its own vector type: one `__m512` for AVX-512 (`avx512.rs`), a pair
//! of `__m256` for AVX2 (`avx2.rs`). Every primitive performs, lane by lane, the operation
//! its scalar twin performs, so both levels reproduce `fallback.rs` exactly.
//!
//! The entry points here check the operands' shapes (the kernels then read through raw
//! pointers inside those bounds) and the CPU's features, so they are safe to call.
#![allow(unsafe_code)]

#[macro_use]
mod kernels;
mod avx2;
mod avx512;

use super::fallback::{check_pack_k, check_pv, check_qk};

/// Whether this CPU has what the AVX-512 kernels need (cached by `std` after the first call).
pub(super) fn has_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx512f") && has!("avx2") && has!("fma")
}

/// Whether this CPU has what the AVX2 kernels need.
pub(super) fn has_avx2() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx2") && has!("fma")
}

/// Defines the checked, safe entry points of one level.
macro_rules! entry_points {
    ($level:ident, $has:ident, $what:literal, $qk:ident, $row_max:ident, $exp_row:ident, $pv:ident) => {
        #[doc = concat!("[`", stringify!($level), "::qk`] behind the shape and feature checks.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If the operands' shapes disagree, or the CPU lacks ", $what, ".")]
        pub(super) fn $qk(qs: &[f32], rows: usize, d: usize, kt: &[f32], width: usize, s: &mut [f32]) {
            check_qk(qs, rows, d, kt, width, s);
            assert!($has(), concat!("flash: kernels need ", $what));
            // SAFETY: the target features were checked just above; the shapes too, which
            // is what `qk` requires of its pointers.
            unsafe { $level::qk(qs, rows, d, kt, width, s) }
        }

        #[doc = concat!("[`", stringify!($level), "::row_max`] behind the feature check.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If the row's length is not a multiple of 16, or the CPU lacks ", $what, ".")]
        pub(super) fn $row_max(row: &[f32]) -> f32 {
            assert!($has(), concat!("flash: kernels need ", $what));
            // SAFETY: the target features were checked just above.
            unsafe { $level::row_max(row) }
        }

        #[doc = concat!("[`", stringify!($level), "::exp_row`] behind the feature check.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If the row's length is not a multiple of 16, or the CPU lacks ", $what, ".")]
        pub(super) fn $exp_row(row: &mut [f32], m: f32) -> f32 {
            assert!($has(), concat!("flash: kernels need ", $what));
            // SAFETY: the target features were checked just above.
            unsafe { $level::exp_row(row, m) }
        }

        #[doc = concat!("[`", stringify!($level), "::pv`] behind the shape and feature checks.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If the operands' shapes disagree, or the CPU lacks ", $what, ".")]
        #[allow(clippy::too_many_arguments)]
        pub(super) fn $pv(
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
            check_pv(p, rows, width, keys, v, v_stride, d_pad, alpha, o);
            assert!($has(), concat!("flash: kernels need ", $what));
            // SAFETY: the target features were checked just above; the shapes too, which
            // is what `pv` requires of its pointers.
            unsafe { $level::pv(p, rows, width, keys, v, v_stride, d_pad, alpha, o) }
        }
    };
}

entry_points!(
    avx512,
    has_avx512,
    "AVX-512F, AVX2 and FMA",
    qk_avx512,
    row_max_avx512,
    exp_row_avx512,
    pv_avx512
);
entry_points!(
    avx2,
    has_avx2,
    "AVX2 and FMA",
    qk_avx2,
    row_max_avx2,
    exp_row_avx2,
    pv_avx2
);

/// [`avx512::pack_k`] behind the shape and feature checks.
///
/// # Panics
///
/// If `keys` is 0, a slice is shorter than the shapes say, or the CPU lacks AVX-512F.
pub(super) fn pack_k_avx512(k: &[f32], keys: usize, d: usize, dst: &mut [f32]) {
    check_pack_k(k, keys, d, dst);
    assert!(has_avx512(), "flash: kernels need AVX-512F, AVX2 and FMA");
    // SAFETY: the target features were checked just above; the shapes too, which is what
    // `pack_k` requires of its pointers.
    unsafe { avx512::pack_k(k, keys, d, dst) }
}
