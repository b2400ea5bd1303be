//! Matrix–vector and matrix–matrix products with quantized weights: the inner loops of LLM
//! decoding.
//!
//! - [`matvec`]: `y = W·x`, with `W` `[rows, cols]` quantized (`rows` = output features,
//!   `cols` = the reduction axis), `x` `[cols]` and `y` `[rows]`;
//! - [`matmul`]: `Y = X·Wᵀ`, with `X` row-major `[n, cols]` and `Y` row-major `[n, rows]`;
//! - [`matvec_reference`], [`matmul_reference`]: slow `f64` oracles that decode each element
//!   straight from the layout definitions below.
//!
//! Activations and accumulators are `f32`. Decoding happens on the fly: the whole `f32`
//! weight matrix is never materialized (matmul decodes a block of rows into a scratch buffer
//! of at most [`MATMUL_SCRATCH_BYTES`] and reuses it for all `n` inputs).
//!
//! # Weight layouts
//!
//! `W` is stored row-major: row `r` (output feature `r`) is contiguous, and element `(r, c)`
//! has flat index `e = r·cols + c`. Every layout below states its slices' lengths; a
//! mismatch is a caller bug and panics (see [`matvec`]'s `# Panics`).
//!
//! | variant | slices (lengths) | value of element `(r, c)` |
//! |---|---|---|
//! | [`QWeight::U8`] | `codes` `[rows·cols]`; `scales: f32`, `zeros: u8` `[rows·cols/group]` | `scales[k]·(codes[e] − zeros[k])`, `k = e / group` |
//! | [`QWeight::U4`] | `packed` `[rows·cols/2]`; `scales: f32`, `zeros: u8` `[rows·cols/group]` | `scales[k]·(nib(e) − zeros[k])`, `k = e / group` |
//! | [`QWeight::Codebook4`] | `packed` `[rows·cols/2]`; `absmax: f32` `[rows·cols/block]`; `codebook: [f32; 16]` | `codebook[nib(e)]·absmax[e / block]` |
//! | [`QWeight::Q8_0`] | `[BlockQ8_0]` `[rows·cols/32]` | `d·qs[j]` |
//! | [`QWeight::Q4_0`] | `[BlockQ4_0]` `[rows·cols/32]` | `d·(nib_j − 8)` |
//! | [`QWeight::Q4_1`] | `[BlockQ4_1]` `[rows·cols/32]` | `d·nib_j + m` |
//! | [`QWeight::Fp8`] | `codes` `[rows·cols]`; `scales: f32` `[rows]` | `scales[r]·decode(codes[e])` |
//! | [`QWeight::F32`] | `[f32]` `[rows·cols]` | `w[e]` |
//!
//! Details:
//!
//! - **`U8`**: one byte per code. `group` divides `cols`, so groups never straddle rows;
//!   int8 per-channel is `group = cols`, and symmetric int8 stores its codes offset by 128
//!   with every zero point 128.
//! - **`U4`**: each row is packed on its own into `cols/2` bytes (so `cols` is even): byte
//!   `i` of row `r` (`packed[r·cols/2 + i]`) holds column `2i` in its **low** nibble and
//!   column `2i+1` in its **high** nibble — the order of [`crate::pack`]. `group` is even
//!   and divides `cols` (32, 64, 128, … in practice); zero points are nibbles, `0..=15`.
//! - **`Codebook4`** (NF4/FP4 in bitsandbytes' order): the row-major flattening is packed
//!   two elements a byte with element `2i` in the **high** nibble of byte `i` and `2i+1` in
//!   the **low** nibble; `cols` is even, so rows start on byte boundaries. `absmax` holds one
//!   scale per `block` consecutive elements; `block` divides `cols`, so blocks never
//!   straddle rows.
//! - **GGML** ([`crate::ggml`]): `cols` is a multiple of 32 and row `r` is the
//!   `cols/32` blocks starting at block `r·cols/32`. In Q4_0 and Q4_1 byte `qs[j]` holds
//!   element `j` of the block in its low nibble and element `j + 16` in its high nibble; the
//!   `f16` scale `d` and minimum `m` are widened to `f32` (exactly) once per block.
//! - **`Fp8`**: one OCP FP8 code per element ([`Fp8Kind::E4M3`] = E4M3FN or
//!   [`Fp8Kind::E5M2`]), decoded exactly as [`numerics::F8E4M3FN::to_f32`] /
//!   [`numerics::F8E5M2::to_f32`], and one `f32` scale per row.
//!
//! [`QWeight::weight_bytes`] counts every byte a product streams: codes, scales and zero
//! points.
//!
//! # Algorithm and accumulation
//!
//! For `U8` and `U4` the zero point is taken out of the inner loop:
//! `y_r = Σ_g s_g·(Σ_{c∈g} code_c·x_c) − Σ_g (s_g·z_g)·X_g`, where the group sums
//! `X_g = Σ_{c∈g} x_c` are computed once per call (in `f64`, rounded to `f32`). Q4_1 adds
//! `m·Σx` over each block the same way, from per-call partial sums of `x`. Every other layout
//! sums `w·x` with the decoded weight.
//!
//! The sums run over 16 `f32` lanes: inside a group (or GGML block) a chain of fused
//! multiply-adds over chunks of 16 (8-bit codes) or 32 (4-bit codes, one 16-byte load)
//! elements, then `acc = fma(scale, dot, acc)` once per group; elements left over at the
//! end of a group (a group that is not a multiple of the chunk) go through a sequential
//! scalar chain. The 16 lanes are reduced by a fixed pairwise tree. This summation order is
//! the *definition* of the result: the scalar fallback, AVX2 (two 8-lane registers per
//! logical 16-lane vector) and AVX-512 implement it identically, so all three give
//! bit-identical results, and so do [`Par::Seq`] and [`Par::Rayon`] (each row is computed
//! by one task with the same arithmetic). Results differ from the exact sum by ordinary
//! `f32` rounding (about `cols/16` roundings on the terms' magnitudes); for `U8`/`U4` the
//! zero-point split makes the error relative to `Σ|s·code·x|` rather than `Σ|w·x|`.
//!
//! SIMD is chosen at run time, once per call: AVX-512 F/BW/VL/VBMI (Ice Lake, Zen 4 and
//! later) with FMA and F16C, else AVX2 with FMA and F16C, else portable scalar code.
//!
//! # Performance
//!
//! Decoding a token is memory-bound: the figure of merit is weight bytes streamed per
//! second. With [`Par::Rayon`] each task owns a contiguous range of rows; the SIMD kernels
//! stream four rows at once (four accumulator chains, one `x` load for four rows) and
//! prefetch each row ahead, decode 4-bit codes with table permutes and FP8 through F16C, and
//! read misaligned GGML Q4_0 codes without splitting cache lines. The `qmatvec` benches
//! compare every layout with a memcpy of the same machine.
//!
//! # Example
//!
//! ```
//! use numerics::Par;
//! use quant::qmatvec::{QWeight, matvec};
//!
//! // A 2×4 int4 matrix, one group a row: row 0 is 1·([1, 2, 3, 4] − 0),
//! // row 1 is 0.5·([0, 1, 0, 1] − 1).
//! let packed = [0x21, 0x43, 0x10, 0x10];
//! let w = QWeight::U4 { packed: &packed, scales: &[1.0, 0.5], zeros: &[0, 1], group: 4 };
//! let x = [1.0, 1.0, 1.0, 2.0];
//! let mut y = [0.0; 2];
//! matvec(&w, 2, 4, &x, &mut y, Par::Seq);
//! assert_eq!(y, [14.0, -1.0]);
//! assert_eq!(w.weight_bytes(), 4 + 2 * 4 + 2);
//! ```

mod cpu;
mod reference;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use numerics::Par;
use rayon::prelude::*;

use crate::fp8::Fp8Kind;
use crate::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

pub use reference::{matmul_reference, matvec_reference, weight_reference};

/// A quantized weight matrix `W` `[rows, cols]`, borrowed in one of the layouts of the
/// [module documentation](self). The shape is passed separately to [`matvec`] / [`matmul`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum QWeight<'a> {
    /// 8-bit unsigned codes with per-group `f32` scales and `u8` zero points:
    /// `w = scale·(code − zero)`.
    U8 {
        /// Codes, `[rows·cols]`.
        codes: &'a [u8],
        /// Scales, `[rows·cols/group]`.
        scales: &'a [f32],
        /// Zero points, `[rows·cols/group]`.
        zeros: &'a [u8],
        /// Elements per group (divides `cols`; `cols` for per-channel).
        group: usize,
    },
    /// 4-bit unsigned codes, two a byte (low nibble first), with per-group `f32` scales and
    /// nibble zero points: `w = scale·(nibble − zero)`.
    U4 {
        /// Packed codes, `[rows·cols/2]`.
        packed: &'a [u8],
        /// Scales, `[rows·cols/group]`.
        scales: &'a [f32],
        /// Zero points (`0..=15`), `[rows·cols/group]`.
        zeros: &'a [u8],
        /// Elements per group (even, divides `cols`).
        group: usize,
    },
    /// 4-bit indices into a 16-entry codebook (NF4, FP4), two a byte (high nibble first),
    /// with one `f32` absmax per block: `w = codebook[nibble]·absmax`.
    Codebook4 {
        /// Packed indices, `[rows·cols/2]`.
        packed: &'a [u8],
        /// Block scales, `[rows·cols/block]`.
        absmax: &'a [f32],
        /// Elements per block (divides `cols`).
        block: usize,
        /// The 16 code values.
        codebook: &'a [f32; 16],
    },
    /// GGML Q8_0 blocks, `[rows·cols/32]`.
    Q8_0(&'a [BlockQ8_0]),
    /// GGML Q4_0 blocks, `[rows·cols/32]`.
    Q4_0(&'a [BlockQ4_0]),
    /// GGML Q4_1 blocks, `[rows·cols/32]`.
    Q4_1(&'a [BlockQ4_1]),
    /// OCP FP8 codes with one `f32` scale per row: `w = scale·decode(code)`.
    Fp8 {
        /// Codes, `[rows·cols]`.
        codes: &'a [u8],
        /// Row scales, `[rows]`.
        scales: &'a [f32],
        /// The element format.
        kind: Fp8Kind,
    },
    /// Plain `f32` weights, `[rows·cols]` (the baseline).
    F32(&'a [f32]),
}

impl QWeight<'_> {
    /// The bytes a product reads from the weight: codes plus scales, zero points, absmax
    /// values and GGML block headers (the codebook's 64 bytes are not counted).
    ///
    /// ```
    /// # use quant::qmatvec::QWeight;
    /// let codes = vec![0u8; 8 * 64];
    /// let w = QWeight::U8 { codes: &codes, scales: &[1.0; 8], zeros: &[0; 8], group: 64 };
    /// assert_eq!(w.weight_bytes(), 8 * 64 + 8 * 4 + 8);
    /// ```
    pub fn weight_bytes(&self) -> usize {
        use core::mem::size_of_val;
        match *self {
            QWeight::U8 {
                codes,
                scales,
                zeros,
                ..
            } => codes.len() + size_of_val(scales) + zeros.len(),
            QWeight::U4 {
                packed,
                scales,
                zeros,
                ..
            } => packed.len() + size_of_val(scales) + zeros.len(),
            QWeight::Codebook4 { packed, absmax, .. } => packed.len() + size_of_val(absmax),
            QWeight::Q8_0(b) => size_of_val(b),
            QWeight::Q4_0(b) => size_of_val(b),
            QWeight::Q4_1(b) => size_of_val(b),
            QWeight::Fp8 { codes, scales, .. } => codes.len() + size_of_val(scales),
            QWeight::F32(w) => size_of_val(w),
        }
    }

    /// A short name of the layout and its parameters, e.g. `u4-g32`, `codebook4-b64`,
    /// `q4_0`, `fp8-e4m3` (for benchmark ids and messages).
    pub fn layout_name(&self) -> String {
        match *self {
            QWeight::U8 { group, .. } => format!("u8-g{group}"),
            QWeight::U4 { group, .. } => format!("u4-g{group}"),
            QWeight::Codebook4 { block, .. } => format!("codebook4-b{block}"),
            QWeight::Q8_0(_) => "q8_0".into(),
            QWeight::Q4_0(_) => "q4_0".into(),
            QWeight::Q4_1(_) => "q4_1".into(),
            QWeight::Fp8 { kind, .. } => match kind {
                Fp8Kind::E4M3 => "fp8-e4m3".into(),
                Fp8Kind::E5M2 => "fp8-e5m2".into(),
            },
            QWeight::F32(_) => "f32".into(),
        }
    }
}

/// Up to this many inputs, [`matmul`] of a quantized weight runs one [`matvec`] per input:
/// streaming the compressed weight again costs less than decoding it to `f32` (4096×4096
/// int4, two threads: two inputs took 0.97 ms through decoding, 0.46 ms as two matvecs;
/// eight inputs 1.27 ms against 1.69 ms).
pub const MATVEC_MAX_N: usize = 3;

/// The largest scratch buffer (in bytes) [`matmul`] decodes a block of rows into, per task.
pub const MATMUL_SCRATCH_BYTES: usize = 256 << 10;

/// Rows are handed to the kernels in blocks of this many (they stream that many rows at
/// once); task boundaries are aligned to it.
const ROW_BLOCK: usize = 4;

/// Task and scratch sizes; tests shrink them so that small shapes split and block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Below this many weights per task a [`Par::Rayon`] call uses fewer tasks.
    pub(crate) min_task_weights: usize,
    /// The matmul scratch budget per task, in bytes ([`MATMUL_SCRATCH_BYTES`]).
    pub(crate) scratch_bytes: usize,
}

impl Tuning {
    /// What the public entry points use.
    pub(crate) const DEFAULT: Tuning = Tuning {
        min_task_weights: 1 << 16,
        scratch_bytes: MATMUL_SCRATCH_BYTES,
    };
}

/// `y = W·x`: `y[r] = Σ_c W[r, c]·x[c]` for `W` `[rows, cols]` in any [`QWeight`] layout,
/// accumulated in `f32` in the fixed order described in the [module docs](self).
///
/// With [`Par::Rayon`] the rows are split into at most `n` contiguous ranges, one task each;
/// the result is bit-identical to [`Par::Seq`] and to every SIMD level.
///
/// # Panics
///
/// If `x.len() != cols`, `y.len() != rows`, or the weight does not fit `[rows, cols]`: a
/// slice length differs from the layout's (module docs), `group`/`block` is zero or does not
/// divide `cols`, a `U4` group is odd, `cols` is odd for the 4-bit layouts, or `cols` is not a
/// multiple of 32 for the GGML blocks.
pub fn matvec(w: &QWeight<'_>, rows: usize, cols: usize, x: &[f32], y: &mut [f32], par: Par) {
    matvec_with(Isa::detect(), Tuning::DEFAULT, w, rows, cols, x, y, par);
}

/// `Y = X·Wᵀ`: `Y[i, r] = Σ_c W[r, c]·X[i, c]` for `n` inputs, `X` row-major `[n, cols]` and
/// `Y` row-major `[n, rows]`.
///
/// For `n == 1`, and for quantized layouts up to [`MATVEC_MAX_N`] inputs, each row of `Y` is
/// [`matvec`] of the corresponding input, bit for bit. Otherwise each task decodes a block of
/// its rows to `f32` once (exactly: one rounding per element, or none) and reuses it for all
/// `n` inputs, each output summed over 16 lanes in chunk order as for [`QWeight::F32`], in
/// register tiles of 4 rows × 4 inputs (AVX-512). Results are bit-identical across [`Par`]
/// settings and SIMD levels.
///
/// # Panics
///
/// If `x.len() != n·cols`, `y.len() != n·rows`, or the weight does not fit `[rows, cols]`
/// (as for [`matvec`]).
pub fn matmul(
    w: &QWeight<'_>,
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    par: Par,
) {
    matmul_with(Isa::detect(), Tuning::DEFAULT, w, rows, cols, x, n, y, par);
}

/// An instruction-set level the kernels can run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Portable scalar code (the twin every SIMD level is tested against bit for bit).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// x86-64 AVX-512 F/BW/VL/VBMI (Ice Lake, Zen 4 and later) + FMA + F16C.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

impl Isa {
    /// The best level this CPU supports.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let base = has!("fma") && has!("f16c");
            let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512vl");
            if base && avx512 && has!("avx512vbmi") {
                return Isa::Avx512;
            }
            if base && has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Every level this CPU supports.
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
}

/// The shape checks shared by [`matvec`] and [`matmul`].
fn check_weight(w: &QWeight<'_>, rows: usize, cols: usize) {
    let len = |what: &str, got: usize, want: usize| {
        assert!(
            got == want,
            "qmatvec: {} {what} has length {got}, expected {want} for [{rows}, {cols}]",
            w.layout_name()
        );
    };
    let divides = |what: &str, d: usize| {
        assert!(
            d > 0 && cols.is_multiple_of(d),
            "qmatvec: {what} = {d} must be positive and divide cols = {cols}"
        );
    };
    let even_cols = || {
        assert!(
            cols.is_multiple_of(2),
            "qmatvec: {} needs an even cols (got {cols})",
            w.layout_name()
        );
    };
    let ggml = |blocks: usize| {
        assert!(
            cols.is_multiple_of(QK),
            "qmatvec: {} needs cols to be a multiple of {QK} (got {cols})",
            w.layout_name()
        );
        len("blocks", blocks, rows * cols / QK);
    };
    match *w {
        QWeight::U8 {
            codes,
            scales,
            zeros,
            group,
        } => {
            divides("group", group);
            len("codes", codes.len(), rows * cols);
            len("scales", scales.len(), rows * (cols / group));
            len("zeros", zeros.len(), rows * (cols / group));
        }
        QWeight::U4 {
            packed,
            scales,
            zeros,
            group,
        } => {
            even_cols();
            divides("group", group);
            assert!(
                group.is_multiple_of(2),
                "qmatvec: u4 group = {group} must be even"
            );
            len("packed", packed.len(), rows * cols / 2);
            len("scales", scales.len(), rows * (cols / group));
            len("zeros", zeros.len(), rows * (cols / group));
        }
        QWeight::Codebook4 {
            packed,
            absmax,
            block,
            ..
        } => {
            even_cols();
            divides("block", block);
            len("packed", packed.len(), rows * cols / 2);
            len("absmax", absmax.len(), rows * (cols / block));
        }
        QWeight::Q8_0(b) => ggml(b.len()),
        QWeight::Q4_0(b) => ggml(b.len()),
        QWeight::Q4_1(b) => ggml(b.len()),
        QWeight::Fp8 { codes, scales, .. } => {
            len("codes", codes.len(), rows * cols);
            len("scales", scales.len(), rows);
        }
        QWeight::F32(v) => len("weights", v.len(), rows * cols),
    }
}

/// Per-group (U8/U4) inputs of the kernels: codes (packed for U4), scales, zero points,
/// and the call's `x` (permuted for U4, see [`permute_x_for_nibbles`]) with its group sums.
pub(super) struct GroupedCtx<'a> {
    pub(super) codes: &'a [u8],
    pub(super) scales: &'a [f32],
    pub(super) zeros: &'a [u8],
    pub(super) group: usize,
    pub(super) cols: usize,
    pub(super) x: &'a [f32],
    pub(super) xsum: &'a [f32],
}

/// Codebook4 inputs; `x` is permuted as for U4.
pub(super) struct Codebook4Ctx<'a> {
    pub(super) packed: &'a [u8],
    pub(super) absmax: &'a [f32],
    pub(super) block: usize,
    pub(super) cols: usize,
    pub(super) codebook: &'a [f32; 16],
    pub(super) x: &'a [f32],
}

/// GGML inputs; `xv` (Q4_1 only) holds `x[32b + l] + x[32b + 16 + l]` at `16b + l`.
pub(super) struct BlocksCtx<'a, B> {
    pub(super) blocks: &'a [B],
    pub(super) cols: usize,
    pub(super) x: &'a [f32],
    pub(super) xv: &'a [f32],
}

/// FP8 inputs, with the decode table for scalar tails.
pub(super) struct Fp8Ctx<'a> {
    pub(super) codes: &'a [u8],
    pub(super) scales: &'a [f32],
    pub(super) kind: Fp8Kind,
    pub(super) table: &'a [f32; 256],
    pub(super) cols: usize,
    pub(super) x: &'a [f32],
}

/// A weight matrix together with what the kernels precompute from `x` once per call.
pub(super) enum Prepared<'a> {
    U8(GroupedCtx<'a>),
    U4(GroupedCtx<'a>),
    Codebook4(Codebook4Ctx<'a>),
    Q8_0(BlocksCtx<'a, BlockQ8_0>),
    Q4_0(BlocksCtx<'a, BlockQ4_0>),
    Q4_1(BlocksCtx<'a, BlockQ4_1>),
    Fp8(Fp8Ctx<'a>),
    F32 {
        w: &'a [f32],
        cols: usize,
        x: &'a [f32],
    },
}

/// Buffers derived from `x` once per [`matvec`] call.
#[derive(Default)]
struct XAux {
    /// `x` reordered for the 4-bit layouts.
    xp: Vec<f32>,
    /// Per-group sums (U8/U4) or per-block lane sums (Q4_1).
    sums: Vec<f32>,
    /// FP8 decode table.
    table: Option<Box<[f32; 256]>>,
}

/// `x` reordered so that the 4-bit kernels can pair a 16-byte load's low and high nibbles
/// with two contiguous runs of `x`: within each group of `group` elements, each full chunk
/// of 32 elements `[x0, x1, …, x31]` becomes `[x0, x2, …, x30, x1, x3, …, x31]`; the
/// elements after the last full chunk of a group keep their order, and so do odd groups
/// (only a Codebook4 block can be odd; see [`cpu::codebook4_chunks`]).
fn permute_x_for_nibbles(x: &[f32], group: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    if !group.is_multiple_of(2) {
        return out;
    }
    for (g, o) in x.chunks_exact(group).zip(out.chunks_exact_mut(group)) {
        for (c, oc) in g.as_chunks::<32>().0.iter().zip(o.as_chunks_mut::<32>().0) {
            for l in 0..16 {
                oc[l] = c[2 * l];
                oc[16 + l] = c[2 * l + 1];
            }
        }
    }
    out
}

/// `Σ x` over each group of `group` elements, summed in `f64` and rounded once.
fn group_sums(x: &[f32], group: usize) -> Vec<f32> {
    x.chunks_exact(group)
        .map(|g| g.iter().map(|&v| f64::from(v)).sum::<f64>() as f32)
        .collect()
}

impl XAux {
    fn new(w: &QWeight<'_>, cols: usize, x: &[f32]) -> XAux {
        let mut aux = XAux::default();
        match *w {
            QWeight::U8 { group, .. } if cols > 0 => aux.sums = group_sums(x, group),
            QWeight::U4 { group, .. } if cols > 0 => {
                aux.xp = permute_x_for_nibbles(x, group);
                aux.sums = group_sums(x, group);
            }
            QWeight::Codebook4 { block, .. } if cols > 0 => {
                aux.xp = permute_x_for_nibbles(x, block);
            }
            QWeight::Q4_1(_) => {
                aux.sums = x
                    .as_chunks::<32>()
                    .0
                    .iter()
                    .flat_map(|b| (0..16).map(move |l| b[l] + b[l + 16]))
                    .collect();
            }
            QWeight::Fp8 { kind, .. } => aux.table = Some(Box::new(kind.table())),
            _ => {}
        }
        aux
    }
}

impl<'a> Prepared<'a> {
    fn new(w: &QWeight<'a>, cols: usize, x: &'a [f32], aux: &'a XAux) -> Prepared<'a> {
        match *w {
            QWeight::U8 {
                codes,
                scales,
                zeros,
                group,
            } => Prepared::U8(GroupedCtx {
                codes,
                scales,
                zeros,
                group,
                cols,
                x,
                xsum: &aux.sums,
            }),
            QWeight::U4 {
                packed,
                scales,
                zeros,
                group,
            } => Prepared::U4(GroupedCtx {
                codes: packed,
                scales,
                zeros,
                group,
                cols,
                x: &aux.xp,
                xsum: &aux.sums,
            }),
            QWeight::Codebook4 {
                packed,
                absmax,
                block,
                codebook,
            } => Prepared::Codebook4(Codebook4Ctx {
                packed,
                absmax,
                block,
                cols,
                codebook,
                x: &aux.xp,
            }),
            QWeight::Q8_0(blocks) => Prepared::Q8_0(BlocksCtx {
                blocks,
                cols,
                x,
                xv: &[],
            }),
            QWeight::Q4_0(blocks) => Prepared::Q4_0(BlocksCtx {
                blocks,
                cols,
                x,
                xv: &[],
            }),
            QWeight::Q4_1(blocks) => Prepared::Q4_1(BlocksCtx {
                blocks,
                cols,
                x,
                xv: &aux.sums,
            }),
            QWeight::Fp8 {
                codes,
                scales,
                kind,
            } => Prepared::Fp8(Fp8Ctx {
                codes,
                scales,
                kind,
                table: aux.table.as_deref().expect("built for Fp8"),
                cols,
                x,
            }),
            QWeight::F32(w) => Prepared::F32 { w, cols, x },
        }
    }
}

/// Rows `r0 .. r0 + y.len()` of a matvec at the given level.
fn rows_at(isa: Isa, k: &Prepared<'_>, r0: usize, y: &mut [f32]) {
    match isa {
        Isa::Scalar => cpu::rows_fallback(k, r0, y),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::rows_avx2(k, r0, y),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::rows_avx512(k, r0, y),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no SIMD levels on this architecture"),
    }
}

/// Decodes rows `r0 .. r0 + out.len()/cols` of `w` into `out` at the given level.
fn decode_rows_at(isa: Isa, w: &QWeight<'_>, cols: usize, r0: usize, out: &mut [f32]) {
    match isa {
        Isa::Scalar => cpu::decode_rows_fallback(w, cols, r0, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::decode_rows_avx2(w, cols, r0, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::decode_rows_avx512(w, cols, r0, out),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no SIMD levels on this architecture"),
    }
}

/// `out[j·n + i] = Σ_c w[j·cols + c]·x[i·cols + c]` for the `out.len()/n` rows of `w` and
/// the `n` inputs of `x`, each summed as a [`QWeight::F32`] matvec row.
fn dots_at(isa: Isa, w: &[f32], cols: usize, x: &[f32], n: usize, out: &mut [f32]) {
    match isa {
        Isa::Scalar => cpu::dots_fallback(w, cols, x, n, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::dots_avx2(w, cols, x, n, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::dots_avx512(w, cols, x, n, out),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("no SIMD levels on this architecture"),
    }
}

/// Rows per task: `rows` split into at most `par.degree()` ranges of whole row blocks, each
/// with at least `min_task_weights` weights.
fn task_rows(par: Par, rows: usize, cols: usize, tuning: Tuning) -> usize {
    let min_rows = (tuning.min_task_weights / cols.max(1)).max(1);
    par.chunk_len(rows, ROW_BLOCK, min_rows)
}

/// [`matvec`] at a given SIMD level and task granularity (tests force both).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matvec_with(
    isa: Isa,
    tuning: Tuning,
    w: &QWeight<'_>,
    rows: usize,
    cols: usize,
    x: &[f32],
    y: &mut [f32],
    par: Par,
) {
    check_weight(w, rows, cols);
    assert!(
        x.len() == cols,
        "matvec: x has length {}, expected cols = {cols}",
        x.len()
    );
    assert!(
        y.len() == rows,
        "matvec: y has length {}, expected rows = {rows}",
        y.len()
    );
    if rows == 0 {
        return;
    }
    if cols == 0 {
        y.fill(0.0);
        return;
    }
    let aux = XAux::new(w, cols, x);
    let k = Prepared::new(w, cols, x, &aux);
    let chunk = task_rows(par, rows, cols, tuning);
    if chunk >= rows {
        rows_at(isa, &k, 0, y);
    } else {
        y.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, yc)| rows_at(isa, &k, i * chunk, yc));
    }
}

/// [`matmul`] at a given SIMD level and task granularity.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_with(
    isa: Isa,
    tuning: Tuning,
    w: &QWeight<'_>,
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    par: Par,
) {
    check_weight(w, rows, cols);
    assert!(
        Some(x.len()) == n.checked_mul(cols),
        "matmul: x has length {}, expected n·cols = {n}·{cols}",
        x.len()
    );
    assert!(
        Some(y.len()) == n.checked_mul(rows),
        "matmul: y has length {}, expected n·rows = {n}·{rows}",
        y.len()
    );
    if rows == 0 || n == 0 {
        return;
    }
    if cols == 0 {
        y.fill(0.0);
        return;
    }
    if n == 1 || (n <= MATVEC_MAX_N && !matches!(w, QWeight::F32(_))) {
        for (xi, yi) in x.chunks_exact(cols).zip(y.chunks_exact_mut(rows)) {
            matvec_with(isa, tuning, w, rows, cols, xi, yi, par);
        }
        return;
    }
    let chunk = task_rows(par, rows, cols, tuning);
    // Each task computes Yᵀ for its rows ([rows in the task, n]); Y is written at the end.
    let task = |r0: usize, yt: &mut [f32]| matmul_task(isa, tuning, w, cols, x, n, r0, yt);
    let mut yt = vec![0.0f32; rows * n];
    if chunk >= rows {
        task(0, &mut yt);
    } else {
        yt.par_chunks_mut(chunk * n)
            .enumerate()
            .for_each(|(i, c)| task(i * chunk, c));
    }
    for (r, yr) in yt.chunks_exact(n).enumerate() {
        for (i, &v) in yr.iter().enumerate() {
            y[i * rows + r] = v;
        }
    }
}

/// Rows `r0 .. r0 + yt.len()/n` of a matmul, written transposed: `yt[(r − r0)·n + i]`.
#[allow(clippy::too_many_arguments)]
fn matmul_task(
    isa: Isa,
    tuning: Tuning,
    w: &QWeight<'_>,
    cols: usize,
    x: &[f32],
    n: usize,
    r0: usize,
    yt: &mut [f32],
) {
    let block = (tuning.scratch_bytes / (4 * cols))
        .max(1)
        .next_multiple_of(ROW_BLOCK);
    let mut scratch = Vec::new();
    for (b, yb) in yt.chunks_mut(block * n).enumerate() {
        let (rb, nb) = (r0 + b * block, yb.len() / n);
        let wrows: &[f32] = match *w {
            QWeight::F32(v) => &v[rb * cols..(rb + nb) * cols],
            _ => {
                scratch.resize(nb * cols, 0.0);
                decode_rows_at(isa, w, cols, rb, &mut scratch[..nb * cols]);
                &scratch[..nb * cols]
            }
        };
        dots_at(isa, wrows, cols, x, n, yb);
    }
}
