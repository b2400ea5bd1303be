//! GGML's block quantization formats, byte-compatible with GGUF files and bit-exact with
//! ggml's reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`,
//! `quantize_row_q4_1_ref` in ggml's `ggml-quants.c`).
//!
//! Every format packs [`QK`] = 32 consecutive values of a row into one block with an `f16`
//! scale (and, for Q4_1, an `f16` minimum):
//!
//! | block | bytes | bits/weight | value of element `j` |
//! |---|---:|---:|---|
//! | [`BlockQ8_0`] | 34 | 8.5 | `d · qs[j]` (`qs` are `i8`) |
//! | [`BlockQ4_0`] | 18 | 4.5 | `d · (nibble_j − 8)` |
//! | [`BlockQ4_1`] | 20 | 5.0 | `d · nibble_j + m` |
//!
//! Nibble order (Q4_0, Q4_1): byte `qs[j]` holds element `j` in its low nibble and element
//! `j + 16` in its high nibble.
//!
//! # Functions
//!
//! For each format `F` in `q8_0`, `q4_0`, `q4_1`:
//! - `quantize_row_F(&[f32]) -> Vec<BlockF>` and `quantize_row_F_into(&[f32], &mut [BlockF])`
//!   (ggml's `quantize_row_F_ref`);
//! - `dequantize_row_F(&[BlockF], &mut [f32])` (ggml's `dequantize_row_F`).
//!
//! They are slice-level kernels: a row whose length is not a multiple of [`QK`], or an
//! output of the wrong length, is a caller bug and panics (see each function's `# Panics`).
//! Values are never checked and never cause a panic: NaN, infinities and magnitudes that
//! overflow `f16` give the blocks described below.
//!
//! # Source and shared rules
//!
//! Source: ggml's `ggml/src/ggml-quants.c` (the functions above) and `ggml/src/ggml-impl.h`
//! (`GGML_FP32_TO_FP16`, `GGML_FP16_TO_FP32`, `MIN`, `MAX`), as in llama.cpp
//! (ggml-org/llama.cpp, and the copy vendored in llama-cpp-python 0.3.36). The arithmetic
//! is transcribed operation by operation, all in `f32` (C `float`: the integer constants
//! `127`, `-8` and `15` are converted to `float` before dividing; no `double` is involved):
//!
//! - **The scale is computed in `f32` and the codes use it unrounded.** `d` and
//!   `id = d ? 1/d : 0` are `f32`; the codes are computed with this `id`, and only the
//!   stored `d` (and Q4_1's `m`) are rounded to `f16`. Dequantization uses the rounded
//!   values, so that rounding adds to the error.
//! - **`f16` rounding** is ggml's `GGML_FP32_TO_FP16`: round to nearest, ties to even,
//!   subnormals kept, overflow to ±∞ (we checked it equal to the F16C instruction, which
//!   `half::f16::from_f32` matches, for all 2³² non-NaN `f32` inputs); any NaN becomes the
//!   quiet NaN `0x7E00` with its sign kept. `GGML_FP16_TO_FP32` is exact.
//! - **No fused multiply-add.** Every `*`, `+` and `-` rounds separately, as ggml's C
//!   does when compiled without FMA contraction (x86-64, where ggml-base is built without
//!   `-mfma`) and as gguf-py's numpy code does. This matters for the codes of Q4_0 and
//!   Q4_1: a build that contracts `x*id + 8.5f` or `(x - min)*id + 0.5f` into an FMA
//!   (GCC's default `-ffp-contract=fast` on aarch64, for instance) truncates some values
//!   near a code boundary to the other code, and we do not reproduce that (the fixture
//!   has rows of such values). Dequantization is unaffected: `code · D` is exact in `f32`,
//!   so Q4_1's `code · D + M` rounds once either way.
//! - **Float to code** is C's `(int8_t)v`: truncation toward zero. Where the value does
//!   not fit an `int8_t` C leaves the result undefined; we produce what x86-64 builds of
//!   ggml produce (checked against GCC 12 `-O3` output): convert to a 32-bit integer as
//!   `cvttss2si` does (NaN, ±∞ and values outside `[-2³¹, 2³¹)` give `0x80000000`) and
//!   keep the low byte. So **NaN and ±∞ give the code 0** and a finite out-of-range value
//!   wraps modulo 256. Out-of-range values arise only from non-finite inputs; when `1/d`
//!   overflows to ±∞ (`|d| ≤ 2⁻¹²⁸`: the block's largest magnitude, or Q4_1's range,
//!   below about `10⁻³⁶`), which makes every scaled value ±∞ or NaN; and in Q8_0 for
//!   elements before a NaN (see [Q8_0](#q8_0)). Otherwise the scaled values stay within
//!   a few `f32` ulps of the format's range, even when `d` is an `f32` subnormal.
//!
//! In the error bounds below, `fl` is rounding to `f32`, `d` is the exact (real-valued)
//! scale, `D` the stored `f16` scale, and the bounds hold for finite inputs whose stored
//! `D` (and Q4_1's `M`) are finite.
//!
//! # Q8_0
//!
//! Per block of 32 values `x`:
//! 1. `amax = 0`, then `amax = MAX(amax, |x_j|)` for each `j` in order, with C's
//!    `MAX(a, b) = a > b ? a : b`; for finite inputs, the largest magnitude.
//! 2. `d = amax / 127`, `id = d ? 1/d : 0`.
//! 3. `qs[j] = (int8_t) roundf(fl(x_j · id))`: halfway cases round away from zero.
//! 4. The block stores `D = f16(d)`.
//!
//! Dequantization: `y_j = qs[j] · D` (exact in `f32`).
//!
//! **Error bound:** `|x_j − y_j| ≤ d · (½ + 2⁻¹²) + 127 · |d − D|` with `d = amax/127`.
//! Half a step is the code's rounding; `127 · |d − D|` is the stored scale's rounding
//! (`|d − D| ≤ 2⁻¹¹ · d` while `d` is an `f16` normal, `amax ≥ 127 · 2⁻¹⁴`; at most `2⁻²⁵`
//! below that); `2⁻¹² · d` covers the `f32` roundings of `d`, `id` and `x_j · id`
//! (at most `127 · 2⁻²¹` in code units). When `1/d` overflows, every code is 0 and
//! `D = 0`, and the bound still holds: `|x_j| ≤ amax = 127 · |d − D|`.
//!
//! **Idempotence:** if `0 < D < ∞`, quantizing the dequantized block gives the block back
//! byte for byte: the element of largest magnitude has code ±127, so the dequantized
//! `amax` is `127 · D` exactly, its `d` is exactly `D`, and `fl(qs[j] · D · fl(1/D))` is
//! within `127 · 2⁻²³` of `qs[j]`. If `D` rounds to 0 (`amax ≤ 127 · 2⁻²⁵`, the codes
//! being computed anyway), the dequantized values are ±0 and re-quantize to the all-zero
//! block.
//!
//! **Non-finite inputs and overflow:**
//! - A NaN makes `amax` NaN, and the next element's magnitude replaces it (`NaN > a` is
//!   false). So `amax` is the largest magnitude *after the block's last NaN*, or NaN if
//!   the last element is NaN. In that last case `D` is NaN (`0x7E00`), every code is 0 and
//!   every dequantized value is NaN. Otherwise NaN elements get code 0, and elements
//!   before the NaN larger than `amax` scale beyond ±127 and wrap (for instance
//!   `[100, NaN, 2, …]` gives `d = 2/127` and `100 · 63.5 = 6350 = 0x18CE`, code `-50`).
//! - An infinity makes `amax = ∞`, `D = +∞` (`0x7C00`) and `id = 0`: every code is 0
//!   (finite elements scale to ±0, infinite ones to NaN), and every dequantized value is
//!   `0 · ∞ = NaN`.
//! - `amax ≥ 127 · 65520` (about `8.32 · 10⁶`): the codes are as usual, but `D` overflows
//!   to `+∞`; dequantization gives ±∞ for nonzero codes and NaN for zero codes.
//!
//! # Q4_0
//!
//! Per block:
//! 1. `amax = 0`, `max = 0`; for each `j` in order, if `amax < |x_j|` then
//!    `amax = |x_j|`, `max = x_j`. So `max` is the *signed* value of largest magnitude
//!    (the first one on ties, NaNs skipped), and `+0` for a block of zeros of any sign.
//! 2. `d = max / -8`, `id = d ? 1/d : 0`. The sign of `d` is opposite to `max`'s, so
//!    `max` itself gets code 0 (value `-8 · D = max`).
//! 3. `code_j = MIN(15, (int8_t) fl(fl(x_j · id) + 8.5))`; for finite inputs this is
//!    `⌊t_j + 8.5⌋` on the rounded `t_j = fl(x_j · id)`, i.e. round half up in units of
//!    `d`, clamped to 15. The `f32` addition itself can round onto the next integer (for
//!    `t = 6.5 − 2⁻²¹`, `t + 8.5` rounds to 15).
//! 4. The block stores `D = f16(d)` and the nibbles.
//!
//! Dequantization: `y_j = (code_j − 8) · D` (exact in `f32`).
//!
//! **Error bound:** with `d = max/−8` and `t_j = x_j/d ∈ [−8, 8]`,
//! `|x_j − y_j| ≤ |d| · (max(½, t_j − 7) + 2⁻¹²) + 8 · |d − D|`. Half a step everywhere
//! except for elements of the opposite sign to `max` with `|x_j| > 15/16 · amax`
//! (`t_j > 7.5`): code 16 would be needed and 15 is stored, so the error reaches one step,
//! `|d| = amax/8`, at `x_j = −max`. `8 · |d − D|` is the scale's `f16` rounding and
//! `2⁻¹² · |d|` covers the `f32` roundings (at most `2⁻¹⁷` in code units). When `1/d`
//! overflows every code is 0 and `D = ±0`, and the bound holds as for Q8_0.
//!
//! **Idempotence:** if `0 < |D| < ∞`, quantizing the dequantized block gives the block
//! back byte for byte: the dequantized values of largest magnitude are exactly the
//! `−8 · D` of code 0 (code 15 gives only `7 · D`), so the new `d` is exactly `D`, and
//! each `fl((code − 8) · D · fl(1/D)) + 8.5` lies within `2⁻¹⁹` of `code + ½`. If `D`
//! rounds to ±0 (`amax ≤ 2⁻²²`), the dequantized values are ±0 and re-quantize to the
//! block with `D = −0` (`0x8000`) and every code 8.
//!
//! **Non-finite inputs and overflow:**
//! - NaNs never become `max`; they get code 0 (value `−8 · D`). A block of only NaNs has
//!   `max = +0`, `D = −0` and codes 0.
//! - An infinity becomes `max` (the first one): `D = ∓∞`, `id = ∓0`. Finite elements get
//!   code 8 (dequantized `0 · ∞ = NaN`), infinite ones code 0 (dequantized `−8 · D`, an
//!   infinity of `max`'s sign).
//! - `amax ≥ 8 · 65520` (about `5.24 · 10⁵`): the codes are as usual, `D` is ±∞.
//!
//! # Q4_1
//!
//! Per block:
//! 1. `min = FLT_MAX`, `max = −FLT_MAX`; for each `j`: `if x_j < min { min = x_j }`,
//!    `if x_j > max { max = x_j }` (NaNs skipped; on ties the first is kept, which decides
//!    the sign of a zero `min`).
//! 2. `d = fl(max − min) / 15`, `id = d ? 1/d : 0`.
//! 3. `code_j = MIN(15, (int8_t) fl(fl(fl(x_j − min) · id) + 0.5))`: round half up in
//!    units of `d` from `min`.
//! 4. The block stores `D = f16(d)`, `M = f16(min)` and the nibbles.
//!
//! Dequantization: `y_j = fl(code_j · D + M)` (`code_j · D` is exact, the sum rounds once).
//!
//! **Error bound:** with `d = (max − min)/15`,
//! `|x_j − y_j| ≤ d · (½ + 2⁻¹²) + 15 · |d − D| + |min − M| + ½ ulp(y_j)`. Unlike Q8_0 and
//! Q4_0, the error has a term independent of the step: `M` rounds `min` to `f16`
//! (`|min − M| ≤ 2⁻¹¹ · |min|`), which for a block far from zero with a narrow range
//! dominates (a constant block of 1000.3 dequantizes to 1000.5).
//!
//! **Idempotence** holds only in part. If `0 < D < ∞`, `M` is finite and every
//! `code_j · D + M` is exact in `f32`, quantizing the dequantized block gives the block
//! back byte for byte, except that `M = −0` comes back as `+0` (`0 · D + (−0) = +0`): the
//! dequantized minimum is `M` and the maximum `15 · D + M`, so the new `d` is exactly `D`
//! and the codes reproduce. The sums are exact whenever `M = 0` or
//! `2⁻⁸ · D ≤ |M| ≤ 2¹² · D` (both are `f16` values, so their sum then needs at most 24
//! significant bits), which covers typical weight blocks. Beyond that, `fl(c · D + M)`
//! rounds to the `f32` grid around `M`: the re-quantized `D` can change in its last bits
//! (seen from `|M|/D` around `2¹⁶`), and once the grid spacing nears a step
//! (`|M|/D` around `2²²`) codes can change too. When `D` rounds to 0 but the codes were
//! not all 0, the dequantized block is constant and re-quantizes with all codes 0.
//!
//! **Non-finite inputs and overflow:**
//! - NaNs are skipped by `min` and `max` and get code 0 (value `M`). A block of only NaNs
//!   keeps `min = FLT_MAX`, `max = −FLT_MAX`: `D = −∞`, `M = +∞`, codes 0.
//! - `+∞` becomes `max` (so `d = +∞`, `id = 0`, every code 0, every value `0 · ∞ + M`,
//!   NaN); `−∞` becomes `min` (`M = −∞`, `d = +∞`, every value NaN). A block of only `+∞`
//!   keeps `min = FLT_MAX` (`M = +∞`), one of only `−∞` keeps `max = −FLT_MAX`; both get
//!   `d = +∞`, not the NaN of `∞ − ∞`.
//! - A range `max − min` beyond `f32` (about `3.4 · 10³⁸`) gives `d = +∞` as above; a
//!   range beyond `15 · 65520` gives `D = +∞`; `|min| ≥ 65520` gives `M = ±∞`.
//!
//! # Verification
//!
//! The integration test `tests/ggml.rs` compares all three quantizers byte for byte, and
//! the dequantizers bit for bit, with gguf-py 0.19.0 (the numpy reimplementation in the
//! `gguf` package) on a committed fixture (`tests/data/ggml_blocks.bin`, written by
//! `tests/data/gen_ggml_blocks.py`): ties and near-ties, signed zeros, constant rows,
//! `f16` overflow and underflow of the scale, `f32` subnormal scales, non-finite values.
//! The script also checked every expectation against ggml's C code compiled with GCC 12
//! `-O3` on x86-64. gguf-py departs from the C code for NaN inputs, all-zero Q4_0 blocks
//! and Q4_1 minima with negative zeros, and Q4_1 blocks of all `+∞` or all `−∞`; the
//! fixture carries the C results for those rows, and this module follows C.

mod q4_0;
mod q4_1;
mod q8_0;

pub use q4_0::*;
pub use q4_1::*;
pub use q8_0::*;

use half::f16;

/// Elements per block, for every format here.
pub const QK: usize = 32;

/// ggml's `GGML_FP32_TO_FP16`: round to nearest even; NaN → `sign | 0x7E00`.
#[inline]
fn fp32_to_fp16(v: f32) -> f16 {
    if v.is_nan() {
        // The sign is bit 31 of the f32; 0x7E00 is the f16 quiet NaN ggml writes.
        let sign = ((v.to_bits() >> 16) & 0x8000) as u16;
        f16::from_bits(sign | 0x7E00)
    } else {
        f16::from_f32(v)
    }
}

/// ggml's `id = d ? 1.0f/d : 0.0f` (NaN counts as nonzero).
#[inline]
fn inverse_or_zero(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

/// C's `(int8_t)v` as x86-64 evaluates it: truncate toward zero to a 32-bit integer
/// (`cvttss2si`: NaN, ±∞ and values outside `[-2³¹, 2³¹)` give `i32::MIN`), then keep
/// the low byte.
#[inline]
fn float_to_code(v: f32) -> i8 {
    const LIMIT: f32 = 2_147_483_648.0; // 2^31
    let wide = if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) {
        i32::MIN
    } else {
        v as i32
    };
    wide as i8
}

/// Checks a quantizer's arguments: `n` values into `blocks` blocks.
#[track_caller]
fn check_quantize_lengths(op: &str, n: usize, blocks: usize) {
    assert!(
        n.is_multiple_of(QK),
        "{op}: row length {n} is not a multiple of the block size {QK}"
    );
    assert!(
        blocks == n / QK,
        "{op}: output has {blocks} blocks, but a row of {n} values needs {}",
        n / QK
    );
}

/// Checks a dequantizer's arguments: `blocks` blocks into `n` values.
#[track_caller]
fn check_dequantize_lengths(op: &str, blocks: usize, n: usize) {
    assert!(
        blocks.checked_mul(QK) == Some(n),
        "{op}: output has {n} values, but {blocks} blocks hold {}",
        blocks.saturating_mul(QK)
    );
}

/// Packs 32 codes (each `< 16`) in ggml's nibble order: byte `j` holds code `j` in its low
/// nibble and code `j + 16` in its high nibble.
#[inline]
fn pack_nibbles(codes: &[u8; QK]) -> [u8; QK / 2] {
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = codes[j] | (codes[j + QK / 2] << 4);
    }
    qs
}

/// The nibble of element `j` (`0..32`) in ggml's order; see [`pack_nibbles`].
#[inline]
fn nibble(qs: &[u8; QK / 2], j: usize) -> u8 {
    if j < QK / 2 {
        qs[j] & 0x0F
    } else {
        qs[j - QK / 2] >> 4
    }
}

/// Test helpers shared by the format modules.
#[cfg(test)]
mod test_support {
    use numerics::testing::rng;

    /// The error bounds' allowance, in steps `d`, for the `f32` roundings made before a
    /// code is chosen: the `2⁻¹²` of the bounds in the module docs (derived there; the
    /// roundings reach at most `2⁻¹⁴` of a step).
    pub(super) const ROUNDING_SLACK: f64 = 1.0 / 4096.0;

    /// A row of `blocks` blocks of `N(0, 1)` values, each block scaled by its own factor
    /// `10^e` with `e` in `[exp − 1, exp + 1]`, seeded.
    pub(super) fn magnitude_row(seed: u64, blocks: usize, exp: i32) -> Vec<f32> {
        let mut r = rng::seeded(seed);
        let mut x = rng::normal_vec(&mut r, blocks * super::QK);
        let e = rng::uniform_vec(&mut r, blocks, -1.0, 1.0);
        for (b, &eb) in x.chunks_exact_mut(super::QK).zip(&e) {
            let s = 10f64.powf(f64::from(exp) + f64::from(eb));
            for v in b {
                *v = (f64::from(*v) * s) as f32;
            }
        }
        x
    }

    /// The bytes of a slice of blocks.
    pub(super) fn blocks_bytes<T: bytemuck::Pod>(b: &[T]) -> &[u8] {
        bytemuck::cast_slice(b)
    }

    /// Asserts `|x_j − y_j| ≤ bound_j` for all `j`, reporting the worst element.
    #[track_caller]
    pub(super) fn assert_within(name: &str, x: &[f32], y: &[f32], bound: impl Fn(usize) -> f64) {
        let mut worst: Option<(usize, f64, f64)> = None;
        for (j, (&a, &b)) in x.iter().zip(y).enumerate() {
            let err = (f64::from(a) - f64::from(b)).abs();
            let lim = bound(j);
            let within = err <= lim;
            if !within && worst.is_none_or(|(_, e, l)| err - lim > e - l) {
                worst = Some((j, err, lim));
            }
        }
        if let Some((j, err, lim)) = worst {
            panic!(
                "{name}: element {j}: x = {:e}, dequantized {:e}, |error| = {err:e} > bound {lim:e}",
                x[j], y[j]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp16_conversion_rounds_to_nearest_even_and_canonicalises_nan() {
        // 1 + 2^-11 is halfway between 1 and the next f16 (1 + 2^-10): ties go to even (1).
        assert_eq!(fp32_to_fp16(1.0 + 2f32.powi(-11)).to_bits(), 0x3C00);
        assert_eq!(fp32_to_fp16(1.0 + 3.0 * 2f32.powi(-11)).to_bits(), 0x3C02);
        // Largest finite f16, and the overflow threshold (65520 rounds to +inf).
        assert_eq!(fp32_to_fp16(65504.0).to_bits(), 0x7BFF);
        assert_eq!(fp32_to_fp16(65519.996).to_bits(), 0x7BFF);
        assert_eq!(fp32_to_fp16(65520.0).to_bits(), 0x7C00);
        assert_eq!(fp32_to_fp16(-f32::INFINITY).to_bits(), 0xFC00);
        // Subnormals: 2^-24 is the least, 2^-25 is a tie that rounds to even (zero).
        assert_eq!(fp32_to_fp16(2f32.powi(-24)).to_bits(), 0x0001);
        assert_eq!(fp32_to_fp16(2f32.powi(-25)).to_bits(), 0x0000);
        assert_eq!(fp32_to_fp16(-2f32.powi(-25)).to_bits(), 0x8000);
        // Every NaN, whatever its payload, becomes sign | 0x7E00.
        for bits in [0x7FC0_0000u32, 0x7F80_0001, 0x7FFF_FFFF, 0x7FE0_0000] {
            assert_eq!(fp32_to_fp16(f32::from_bits(bits)).to_bits(), 0x7E00);
            assert_eq!(
                fp32_to_fp16(f32::from_bits(bits | 0x8000_0000)).to_bits(),
                0xFE00
            );
        }
    }

    #[test]
    fn inverse_treats_only_zero_as_zero() {
        assert_eq!(inverse_or_zero(0.0).to_bits(), 0);
        assert_eq!(inverse_or_zero(-0.0).to_bits(), 0);
        assert_eq!(inverse_or_zero(4.0).to_bits(), 0.25f32.to_bits());
        assert!(inverse_or_zero(f32::NAN).is_nan());
        assert_eq!(inverse_or_zero(f32::INFINITY).to_bits(), 0);
        assert_eq!(
            inverse_or_zero(f32::NEG_INFINITY).to_bits(),
            (-0.0f32).to_bits()
        );
        // 1/d overflows for d <= 2^-128 (f32 bits 0x0020_0000), not above.
        assert_eq!(
            inverse_or_zero(f32::from_bits(0x0020_0000)).to_bits(),
            f32::INFINITY.to_bits()
        );
        assert!(inverse_or_zero(f32::from_bits(0x0020_0001)).is_finite());
    }

    #[test]
    fn float_to_code_truncates_like_x86() {
        assert_eq!(float_to_code(14.999), 14);
        assert_eq!(float_to_code(-0.99), 0);
        assert_eq!(float_to_code(-127.0), -127);
        assert_eq!(float_to_code(127.4), 127);
        assert_eq!(float_to_code(f32::NAN), 0);
        assert_eq!(float_to_code(f32::INFINITY), 0);
        assert_eq!(float_to_code(f32::NEG_INFINITY), 0);
        // Out of i8 range: the low byte of the i32 (6350 = 0x18CE).
        assert_eq!(float_to_code(6350.0), -50);
        assert_eq!(float_to_code(-6350.0), 50);
        assert_eq!(float_to_code(159.0), -97);
        assert_eq!(float_to_code(-2_147_483_648.0), 0);
        assert_eq!(float_to_code(-2_147_483_392.0), 0); // -(2^31 - 256): low byte 0
        assert_eq!(float_to_code(2_147_483_520.0), -128); // 2^31 - 128 = 0x7FFF_FF80
        assert_eq!(float_to_code(2_147_483_648.0), 0); // 2^31 is out of i32 range
        assert_eq!(float_to_code(1e30), 0);
    }

    #[test]
    fn nibbles_pack_low_then_high_half() {
        let codes: [u8; QK] = core::array::from_fn(|j| (j % 16) as u8);
        let qs = pack_nibbles(&codes);
        assert_eq!(qs[0], 0x00);
        assert_eq!(qs[1], 0x11);
        assert_eq!(qs[15], 0xFF);
        let back: Vec<u8> = (0..QK).map(|j| nibble(&qs, j)).collect();
        assert_eq!(back, codes.to_vec());
        let codes2: [u8; QK] = core::array::from_fn(|j| if j < 16 { 3 } else { 12 });
        assert_eq!(pack_nibbles(&codes2), [0xC3; 16]);
    }
}
