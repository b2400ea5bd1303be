//! Portable scalar twins of the SIMD tile kernels in `x86/`.
//!
//! These functions *define* every result bit for bit: a 16-lane logical vector, one fused
//! multiply-add chain per score (over `c = 0..d`) and per output element (over the keys in
//! order), the `max` of x86's `maxps` ([`max`]), a fixed lane-reduction tree ([`hmax`],
//! [`hsum`]) and the polynomial [`exp2`]. The SIMD levels perform exactly these operations
//! on the same operands; the tests hold them to bit equality. `f32::mul_add` is the fused
//! operation (an FMA instruction where the target has one, a correctly rounded library call
//! otherwise).
//!
//! The shape checks here are the contracts of every level: the SIMD kernels read through
//! raw pointers only after them.

use super::{LANES, PANEL};

/// Maximum relative error of the kernels' `2^x` against `f64` for `x ∈ [−126, 0]`: 8.44·10⁻⁸
/// (under one `f32` ulp), measured on every `f32` in that range (the worst case is at
/// `x = −0.48984`); the unit tests check it on a grid of step `2⁻¹⁶`. The polynomial's own
/// error is 2.6·10⁻⁹; the rest is the `f32` rounding of its coefficients and Horner steps.
pub const EXP2_MAX_REL_ERROR: f64 = 8.5e-8;

/// Inputs below this give `0` (`2^−127` flushes to zero; `−∞` too).
pub(super) const EXP2_MIN: f32 = -127.0;

/// `1.5·2²³`: adding and subtracting it rounds an `f32` of magnitude below `2²²` to the
/// nearest integer (ties to even).
pub(super) const ROUND_MAGIC: f32 = 12_582_912.0;

/// `2^f ≈ 1 + f·(c₁ + f·(c₂ + … + f·c₆))` on `f ∈ [−½, ½]`: the coefficients `c₁ … c₆` of a
/// degree-6 minimax fit of the relative error with the constant term pinned to 1 (so that
/// `2⁰ = 1` exactly), from a Remez exchange in `f64`, rounded to `f32`. Maximum relative
/// error of the polynomial itself 2.57·10⁻⁹.
pub(super) const EXP2_POLY: [f32; 6] = [
    0.693_147_24,
    0.240_226_52,
    0.055_503_104,
    0.009_617_693,
    0.001_340_664_3,
    0.000_155_946_78,
];

/// `if a > b { a } else { b }`: x86's `maxps(a, b)` (the second operand when they are equal
/// or either is NaN), so that every level picks the same zero sign.
#[inline]
pub(super) fn max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// `2^x` for `x ≤ 0`: clamp to [`EXP2_MIN`], split `x = n + f` with `n` the nearest
/// integer, evaluate [`EXP2_POLY`] at `f` by Horner's rule with fused multiply-adds and
/// multiply by `2ⁿ` built in the exponent field (`2⁻¹²⁷` is built as `+0`, so `−∞` and
/// anything below −126.5 give 0). Relative error at most [`EXP2_MAX_REL_ERROR`] on
/// `[−126, 0]`; results below `2⁻¹²⁶` may be subnormal. Positive `x` is outside the domain
/// (the kernels only take `s − max(s) ≤ 0`).
#[inline]
pub(super) fn exp2(x: f32) -> f32 {
    let x = max(x, EXP2_MIN);
    let t = x + ROUND_MAGIC;
    let f = x - (t - ROUND_MAGIC);
    let mut p = EXP2_POLY[5];
    for &c in EXP2_POLY[..5].iter().rev() {
        p = p.mul_add(f, c);
    }
    p = p.mul_add(f, 1.0);
    // `t`'s low mantissa bits hold `n` in two's complement; shifted into the exponent
    // field with the bias added, the higher bits of `t` fall off the top.
    let scale = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    p * scale
}

/// The lane-reduction tree of [`hmax`] and [`hsum`]: lanes `l + 8` onto `l`, then `l + 4`,
/// then `(0 ∘ 2) ∘ (1 ∘ 3)`.
#[inline]
fn tree(a: &[f32; LANES], op: impl Fn(f32, f32) -> f32) -> f32 {
    let s8: [f32; 8] = core::array::from_fn(|l| op(a[l], a[l + 8]));
    let s4: [f32; 4] = core::array::from_fn(|l| op(s8[l], s8[l + 4]));
    op(op(s4[0], s4[2]), op(s4[1], s4[3]))
}

/// The maximum of 16 lanes by [`tree`] with [`max`].
#[inline]
pub(super) fn hmax(a: &[f32; LANES]) -> f32 {
    tree(a, max)
}

/// The sum of 16 lanes by [`tree`].
#[inline]
pub(super) fn hsum(a: &[f32; LANES]) -> f32 {
    tree(a, |x, y| x + y)
}

/// Checks the operands of `qk`.
///
/// # Panics
///
/// If `width` is not a positive multiple of 16, or a slice is shorter than the shapes say.
#[inline]
pub(super) fn check_qk(qs: &[f32], rows: usize, d: usize, kt: &[f32], width: usize, s: &[f32]) {
    assert!(
        width > 0 && width.is_multiple_of(LANES),
        "flash: tile width {width} is not a positive multiple of {LANES}"
    );
    assert!(
        qs.len() >= rows * d && kt.len() >= width * d && s.len() >= rows * width,
        "flash: qk operands too short"
    );
}

/// Checks the operands of `pv`.
///
/// # Panics
///
/// If `width` or `d_pad` is not a multiple of 16, `keys > width`, `d_pad > v_stride` (when
/// `keys > 0`), or a slice is shorter than the shapes say.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn check_pv(
    p: &[f32],
    rows: usize,
    width: usize,
    keys: usize,
    v: &[f32],
    v_stride: usize,
    d_pad: usize,
    alpha: &[f32],
    o: &[f32],
) {
    assert!(
        width.is_multiple_of(LANES) && d_pad.is_multiple_of(LANES) && keys <= width,
        "flash: pv tile shape"
    );
    assert!(
        p.len() >= rows * width && alpha.len() >= rows && o.len() >= rows * d_pad,
        "flash: pv operands too short"
    );
    assert!(
        keys == 0 || (d_pad <= v_stride && v.len() >= (keys - 1) * v_stride + d_pad),
        "flash: pv value rows too short"
    );
}

/// Packs `keys ≥ 1` rows of `K` (row-major, `keys × d`) as the panels [`qk`] reads,
/// writing all of `dst[.. width·d]` (`width = keys` rounded up to 16; the padding keys are
/// zeros): panel `p` starts at `p·PANEL·d` and, with its width `w = min(PANEL, width −
/// p·PANEL)`, holds key `p·PANEL + jj`'s element `c` at `c·w + jj`.
///
/// # Panics
///
/// If `keys` is 0 or a slice is shorter than the shapes say.
pub(super) fn pack_k(k: &[f32], keys: usize, d: usize, dst: &mut [f32]) {
    let width = check_pack_k(k, keys, d, dst);
    for p0 in (0..width).step_by(PANEL) {
        let w = PANEL.min(width - p0);
        let panel = &mut dst[p0 * d..][..w * d];
        for (c, out) in panel.chunks_exact_mut(w).enumerate() {
            for (jj, y) in out.iter_mut().enumerate() {
                *y = if p0 + jj < keys {
                    k[(p0 + jj) * d + c]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Checks the operands of `pack_k` and returns the packed width.
///
/// # Panics
///
/// If `keys` is 0 or a slice is shorter than the shapes say.
#[inline]
pub(super) fn check_pack_k(k: &[f32], keys: usize, d: usize, dst: &[f32]) -> usize {
    let width = keys.next_multiple_of(LANES);
    assert!(
        keys > 0 && k.len() >= keys * d && dst.len() >= width * d,
        "flash: pack_k operands"
    );
    width
}

/// The score tile `s[r·width + j] = Σ_c qs[r·d + c]·kᵀ(c, j)`, each score one FMA chain
/// over `c = 0..d` from `0`. `kt` holds the keys as panels of [`PANEL`] (the last one
/// narrower, a multiple of 16): panel `p` starts at `p·PANEL·d`, and with its width `w` key
/// `p·PANEL + jj`'s element `c` sits at `c·w + jj`.
///
/// # Panics
///
/// See [`check_qk`].
pub(super) fn qk(qs: &[f32], rows: usize, d: usize, kt: &[f32], width: usize, s: &mut [f32]) {
    check_qk(qs, rows, d, kt, width, s);
    for p0 in (0..width).step_by(PANEL) {
        let w = PANEL.min(width - p0);
        let panel = &kt[p0 * d..][..w * d];
        for r in 0..rows {
            let q = &qs[r * d..][..d];
            for jj in 0..w {
                let mut acc = 0.0f32;
                for (c, &x) in q.iter().enumerate() {
                    acc = x.mul_add(panel[c * w + jj], acc);
                }
                s[r * width + p0 + jj] = acc;
            }
        }
    }
}

/// The maximum of `row` (length a multiple of 16): 16 lanes, `lane ← max(x, lane)` from
/// `−∞`, then [`hmax`].
///
/// # Panics
///
/// If the length is not a multiple of 16.
pub(super) fn row_max(row: &[f32]) -> f32 {
    assert!(row.len().is_multiple_of(LANES), "flash: row length");
    let mut acc = [f32::NEG_INFINITY; LANES];
    for chunk in row.as_chunks::<LANES>().0 {
        for l in 0..LANES {
            acc[l] = max(chunk[l], acc[l]);
        }
    }
    hmax(&acc)
}

/// `row[j] ← exp2(row[j] − m)` (length a multiple of 16), returning the sum: 16 lanes,
/// `lane ← lane + p` from `0`, then [`hsum`].
///
/// # Panics
///
/// If the length is not a multiple of 16.
pub(super) fn exp_row(row: &mut [f32], m: f32) -> f32 {
    assert!(row.len().is_multiple_of(LANES), "flash: row length");
    let mut acc = [0.0f32; LANES];
    for chunk in row.as_chunks_mut::<LANES>().0 {
        for l in 0..LANES {
            let p = exp2(chunk[l] - m);
            chunk[l] = p;
            acc[l] += p;
        }
    }
    hsum(&acc)
}

/// `o[r·d_pad + x] ← α_r·o[r·d_pad + x]`, then `+ p[r·width + j]·v[j·v_stride + x]` for
/// `j = 0..keys` in order, each a fused multiply-add, for `r < rows`, `x < d_pad`.
///
/// # Panics
///
/// See [`check_pv`].
#[allow(clippy::too_many_arguments)]
pub(super) fn pv(
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
    for r in 0..rows {
        let pr = &p[r * width..][..keys];
        let or = &mut o[r * d_pad..][..d_pad];
        for (x, y) in or.iter_mut().enumerate() {
            let mut acc = *y * alpha[r];
            for (j, &pj) in pr.iter().enumerate() {
                acc = pj.mul_add(v[j * v_stride + x], acc);
            }
            *y = acc;
        }
    }
}
