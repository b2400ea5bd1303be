//! Flash attention on the CPU: the production dense attention path.
//!
//! Dao, Fu, Ermon, Rudra and Ré, *FlashAttention: Fast and Memory-Efficient Exact Attention
//! with IO-Awareness* (NeurIPS 2022, [arXiv:2205.14135](https://arxiv.org/abs/2205.14135)),
//! algorithm 1, with the online-softmax recurrences of Milakov and Gimelshein, *Online
//! normalizer calculation for softmax* (2018,
//! [arXiv:1805.02867](https://arxiv.org/abs/1805.02867)).
//!
//! # Algorithm
//!
//! Queries are cut into blocks of [`FlashParams::block_q`] rows and keys into blocks of
//! [`FlashParams::block_k`] rows. One task owns one (head, query block) pair and walks the
//! key blocks in order, holding per query row `i` a running maximum `m_i`, a running sum
//! `l_i` and an unnormalised output row `O_i`. For each key block it forms the score tile
//! `S = Q_blk·K_blkᵀ` (never more than `block_q × block_k` scores at once) and updates
//!
//! ```text
//! m'_i = max(m_i, max_j S_ij)        P_ij = 2^(S_ij − m'_i)       α_i = 2^(m_i − m'_i)
//! l_i ← α_i·l_i + Σ_j P_ij           O_i ← α_i·O_i + Σ_j P_ij·V_j
//! ```
//!
//! and finally writes `O_i / l_i` and `lse_i = ln 2 · (m_i + log₂ l_i)`. The scores are in
//! base 2: `Q` is multiplied by `scale · log₂ e` once when its block is loaded, so
//! `exp(scale·q·k) = 2^(S)` and every exponential is a `2^x`: a degree-6
//! polynomial with range reduction, maximum relative error [`EXP2_MAX_REL_ERROR`] on
//! `[−126, 0]`.
//!
//! Masking. Causal: a query block stops at the last key block its last row may see, and
//! scores past each row's limit inside the diagonal tiles are set to `−∞`; padding
//! (`key_valid`) sets the scores of invalid keys to `−∞`. A row that has seen only `−∞`
//! keeps `m = −∞`; its exponentials are taken against `0` instead (so `2^(−∞ − 0) = 0`,
//! never `−∞ − (−∞)`), and at the end `l = 0` gives a zero output row and `lse = −∞`.
//!
//! # Kernels and precision
//!
//! Three tile kernels do the arithmetic: `S = Q·Kᵀ` (a 6-row × 64-key register-blocked
//! microkernel over `K` transposed into 64-key panels: once per call for prefill, one key
//! block at a time inside each task for decoding, by 16×16 register transposes), the row
//! maximum and `P = 2^(S − m)` with its row sum, and `O ← α·O + P·V` (a 6-row × 64-column
//! microkernel over `d`, reading `V` in place when `d` is a multiple of 16). Everything
//! accumulates in `f32` with fused multiply-adds in a fixed order: each score is one FMA
//! chain over `c = 0..d`, each output element one FMA chain over the keys in order, each
//! row sum a fixed 16-lane tree. The kernels run at the best level the CPU has, detected
//! once per call: AVX-512F, else AVX2 + FMA, else portable scalar code (`fallback.rs`),
//! which *defines* each result: the SIMD levels reproduce it bit for bit, so the output
//! does not depend on the CPU's SIMD level, on [`FlashParams::parallel`] or on the number
//! of threads (it does depend on the block sizes, which change the order of the online
//! updates). A query row's result does not depend on the other rows either: decoding
//! query `n − 1` alone gives the bits of the last row of the full causal call.
//!
//! Performance: at `n = 4096`, `d = 64`, non-causal, one thread, about 185 GFLOP/s
//! (`4·n²·d` FLOPs) on a Zen 5 core, 75–78 % of its measured AVX-512 FMA peak; the
//! `attention/flash` benches print the ratio.
//!
//! Memory: besides the output, a packed copy of `K` (prefill; up to 16 times `K` for
//! `block_k < 16`, one key block per thread when decoding), `V` padded to a multiple of 16
//! columns when `d` is not one, and per thread `block_q × (d + block_k + d)` floats.
//!
//! Against the `f64` [reference](crate::reference) the error is that of `f32` dot products
//! of length `d` and `n_k`-term sums (a few `1e-7` relative to `max |v|` for the sizes the
//! tests cover). Inputs must be finite; non-finite inputs give unspecified (possibly NaN)
//! rows, never a panic.

mod fallback;
mod isa;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::shape::{Mask, Output, Shape, default_scale};
use crate::{Error, Result};
use isa::Isa;

pub use fallback::EXP2_MAX_REL_ERROR;

/// The largest [`FlashParams::block_q`] and [`FlashParams::block_k`] accepted (a
/// `4096 × 4096` score tile is 64 MiB per thread).
pub const MAX_BLOCK: usize = 4096;

/// Keys per packed panel of `Kᵀ`: the width of the score microkernel (four 16-lane
/// vectors).
const PANEL: usize = 64;

/// Lanes of the logical vector the kernels work in.
const LANES: usize = 16;

/// Tunables of [`attention`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashParams {
    /// Query rows per task and per score tile (`1 ..= MAX_BLOCK`).
    pub block_q: usize,
    /// Keys per score tile (`1 ..= MAX_BLOCK`); multiples of 64 use the kernels fully.
    pub block_k: usize,
    /// Run the (head × query block) tasks on the current rayon pool (install your own
    /// pool to choose the threads); `false` runs them in order on the calling thread. The
    /// result is the same bit for bit.
    pub parallel: bool,
}

impl Default for FlashParams {
    /// `block_q = 96`, `block_k = 256`, `parallel = true`: among the fastest of
    /// `block_q ∈ {48, 64, 96, 128}` × `block_k ∈ {128, 256, 512}` at `n = 4096`, `d = 64`
    /// and `128` on one Zen 5 core (measured on a shared machine: the differences between
    /// the best few were within its noise).
    fn default() -> Self {
        Self {
            block_q: 96,
            block_k: 256,
            parallel: true,
        }
    }
}

impl FlashParams {
    /// Checks the block sizes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] when a block size is 0 or above [`MAX_BLOCK`].
    pub fn check(&self) -> Result<()> {
        for (what, b) in [("block_q", self.block_q), ("block_k", self.block_k)] {
            if b == 0 || b > MAX_BLOCK {
                return Err(Error::params(
                    what,
                    format!("{b} is outside 1 ..= {MAX_BLOCK}"),
                ));
            }
        }
        Ok(())
    }
}

/// Exact attention `softmax(scale·QKᵀ + M)·V` by flash attention (see the module docs),
/// with each row's log-sum-exp. `scale` defaults to `1/sqrt(d)`.
///
/// # Errors
///
/// - [`Error::InvalidParams`] for block sizes outside `1 ..= MAX_BLOCK` (`"block_q"`,
///   `"block_k"`), a non-finite `scale`, or one so large that `scale · log₂ e` overflows
///   (`"scale"`), or a `q_offset + n_q` that overflows (`"q_offset"`);
/// - [`Error::Shape`] for inconsistent shapes, slice lengths or mask length.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &FlashParams,
) -> Result<Output> {
    attention_at(Isa::detect(), q, k, v, shape, mask, scale, params)
}

/// [`attention`] at a given SIMD level (the tests run every level the CPU has).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_at(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &FlashParams,
) -> Result<Output> {
    params.check()?;
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    if mask.q_offset.checked_add(shape.n_q).is_none() {
        return Err(Error::params(
            "q_offset",
            format!("{} + n_q {} overflows", mask.q_offset, shape.n_q),
        ));
    }
    let scale = scale.unwrap_or_else(|| default_scale(shape.d));
    let q_scale = scale * std::f32::consts::LOG2_E;
    if !q_scale.is_finite() {
        return Err(Error::params(
            "scale",
            format!("{scale} is not finite or overflows once multiplied by log2(e)"),
        ));
    }
    let plan = Plan::new(shape, params);
    let kv = PackedKv::new(isa, k, v, shape, &plan, params.parallel);
    let key_blocks = KeyBlocks::new(mask, plan.bk);
    let ctx = Ctx {
        isa,
        q,
        shape,
        mask,
        q_scale,
        plan,
        kv: &kv,
        key_blocks: &key_blocks,
    };

    let Shape { heads, n_q, d, .. } = shape;
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; heads * n_q];
    if n_q == 0 {
        return Ok(Output { out, lse });
    }
    // One task per (head, query block); each owns its rows of `out` and `lse`.
    let tasks: Vec<(usize, usize, &mut [f32], &mut [f64])> = out
        .chunks_mut(n_q * d)
        .zip(lse.chunks_mut(n_q))
        .enumerate()
        .flat_map(|(h, (o, l))| {
            o.chunks_mut(plan.bq * d)
                .zip(l.chunks_mut(plan.bq))
                .enumerate()
                .map(move |(b, (o, l))| (h, b * plan.bq, o, l))
        })
        .collect();
    if params.parallel {
        tasks.into_par_iter().for_each_init(
            || Scratch::new(&plan, d, kv.packed.is_none()),
            |scratch, (h, i0, o, l)| ctx.task(h, i0, o, l, scratch),
        );
    } else {
        let mut scratch = Scratch::new(&plan, d, kv.packed.is_none());
        for (h, i0, o, l) in tasks {
            ctx.task(h, i0, o, l, &mut scratch);
        }
    }
    Ok(Output { out, lse })
}

/// Block sizes of one call.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Query rows per task (`block_q`, at most `n_q`, at least 1).
    bq: usize,
    /// Keys per tile (`block_k`, at most `n_k`, at least 1).
    bk: usize,
    /// `bk` rounded up to whole 16-lane vectors: the width of a full score tile.
    bk_pad: usize,
    /// `d` rounded up to whole 16-lane vectors: the width of the output accumulator.
    d_pad: usize,
}

impl Plan {
    fn new(shape: Shape, params: &FlashParams) -> Self {
        let bk = params.block_k.min(shape.n_k).max(1);
        Self {
            bq: params.block_q.min(shape.n_q).max(1),
            bk,
            bk_pad: bk.next_multiple_of(LANES),
            d_pad: shape.d.next_multiple_of(LANES),
        }
    }
}

/// `K` transposed into panels (see [`fallback::pack_k`]) and `V` padded to whole vectors,
/// per key/value head.
///
/// `K` is packed once per call when its key/value heads are read by more than two tasks
/// each (prefill); otherwise (decoding) every task packs each key block into its scratch
/// as it goes, which costs no more and needs no `K`-sized allocation. Either way the
/// kernels see the same panels, so the results are the same.
struct PackedKv<'a> {
    /// The call's `K` (row-major).
    k: &'a [f32],
    /// Packed `Kᵀ`, one `Vec` per key/value head, or `None` when the tasks pack it.
    /// Key block `b` of head `g` starts at `packed[g][b·bk_pad·d]`.
    packed: Option<Vec<Vec<f32>>>,
    /// `V` with rows of `d_pad` floats, when `d` is not a multiple of 16 (else `None` and
    /// the caller's `V` is read directly).
    v_padded: Option<Vec<Vec<f32>>>,
    /// The call's `V`.
    v: &'a [f32],
}

impl<'a> PackedKv<'a> {
    fn new(
        isa: Isa,
        k: &'a [f32],
        v: &'a [f32],
        shape: Shape,
        plan: &Plan,
        parallel: bool,
    ) -> Self {
        let Shape {
            heads,
            kv_heads,
            n_q,
            n_k,
            d,
        } = shape;
        let n_blocks = n_k.div_ceil(plan.bk);
        let pack_k = |g: usize| {
            let mut packed = vec![0.0f32; n_blocks * plan.bk_pad * d];
            for (b, dst) in packed.chunks_mut(plan.bk_pad * d).enumerate() {
                let j0 = b * plan.bk;
                let keys = plan.bk.min(n_k - j0);
                isa.pack_k(&k[(g * n_k + j0) * d..][..keys * d], keys, d, dst);
            }
            packed
        };
        let pad_v = |g: usize| {
            let mut padded = vec![0.0f32; n_k * plan.d_pad];
            for (dst, src) in padded
                .chunks_mut(plan.d_pad)
                .zip(v[g * n_k * d..][..n_k * d].chunks(d))
            {
                dst[..d].copy_from_slice(src);
            }
            padded
        };
        let prepack = heads * n_q.div_ceil(plan.bq) > 2 * kv_heads;
        let needs_pad = plan.d_pad != d;
        let (packed, v_padded) = if parallel {
            (
                prepack.then(|| (0..kv_heads).into_par_iter().map(pack_k).collect()),
                needs_pad.then(|| (0..kv_heads).into_par_iter().map(pad_v).collect()),
            )
        } else {
            (
                prepack.then(|| (0..kv_heads).map(pack_k).collect()),
                needs_pad.then(|| (0..kv_heads).map(pad_v).collect()),
            )
        };
        Self {
            k,
            packed,
            v_padded,
            v,
        }
    }

    /// Rows `j0 ..` of head `g`'s `V` and their stride.
    fn v_rows(&self, g: usize, j0: usize, n_k: usize, d: usize) -> (&[f32], usize) {
        match &self.v_padded {
            Some(p) => {
                let stride = d.next_multiple_of(LANES);
                (&p[g][j0 * stride..], stride)
            }
            None => (&self.v[(g * n_k + j0) * d..(g + 1) * n_k * d], d),
        }
    }
}

/// Which key blocks contain padding (`key_valid` false) keys.
struct KeyBlocks<'a> {
    valid: Option<&'a [bool]>,
    /// Per key block: some key in it is invalid.
    has_invalid: Vec<bool>,
}

impl<'a> KeyBlocks<'a> {
    fn new(mask: Mask<'a>, bk: usize) -> Self {
        let has_invalid = match mask.key_valid {
            Some(valid) => valid.chunks(bk).map(|c| c.contains(&false)).collect(),
            None => Vec::new(),
        };
        Self {
            valid: mask.key_valid,
            has_invalid,
        }
    }
}

/// Per-task working memory, reused across the tasks one thread runs.
struct Scratch {
    /// Scaled query block, `bq × d`.
    qs: Vec<f32>,
    /// Score / probability tile, `bq × bk_pad`.
    s: Vec<f32>,
    /// One packed key block, `bk_pad × d`, when the tasks pack `K` themselves.
    kt: Vec<f32>,
    /// Unnormalised output rows, `bq × d_pad`.
    o: Vec<f32>,
    /// Running maxima (base-2 scores).
    m: Vec<f32>,
    /// Running sums.
    l: Vec<f32>,
    /// This tile's rescaling factors `2^(m_old − m_new)`.
    alpha: Vec<f32>,
}

impl Scratch {
    fn new(plan: &Plan, d: usize, packs_k: bool) -> Self {
        Self {
            qs: vec![0.0; plan.bq * d],
            s: vec![0.0; plan.bq * plan.bk_pad],
            kt: if packs_k {
                vec![0.0; plan.bk_pad * d]
            } else {
                Vec::new()
            },
            o: vec![0.0; plan.bq * plan.d_pad],
            m: vec![0.0; plan.bq],
            l: vec![0.0; plan.bq],
            alpha: vec![0.0; plan.bq],
        }
    }
}

/// Everything a task reads.
struct Ctx<'a> {
    isa: Isa,
    q: &'a [f32],
    shape: Shape,
    mask: Mask<'a>,
    q_scale: f32,
    plan: Plan,
    kv: &'a PackedKv<'a>,
    key_blocks: &'a KeyBlocks<'a>,
}

impl Ctx<'_> {
    /// Query rows `i0 .. i0 + lse.len()` of head `h`, written to `out` and `lse`.
    fn task(&self, h: usize, i0: usize, out: &mut [f32], lse: &mut [f64], sc: &mut Scratch) {
        let Shape { n_q, n_k, d, .. } = self.shape;
        let Plan {
            bk, bk_pad, d_pad, ..
        } = self.plan;
        let isa = self.isa;
        let rows = lse.len();
        let g = self.shape.kv_head(h);

        let qs = &mut sc.qs[..rows * d];
        for (dst, &x) in qs.iter_mut().zip(&self.q[(h * n_q + i0) * d..][..rows * d]) {
            *dst = x * self.q_scale;
        }
        let o = &mut sc.o[..rows * d_pad];
        o.fill(0.0);
        let m = &mut sc.m[..rows];
        m.fill(f32::NEG_INFINITY);
        let l = &mut sc.l[..rows];
        l.fill(0.0);
        let alpha = &mut sc.alpha[..rows];

        // The last row sees the most keys under the causal mask.
        let key_end = self.mask.key_end(i0 + rows - 1, n_k);
        for b in 0..key_end.div_ceil(bk) {
            let j0 = b * bk;
            let keys = bk.min(n_k - j0);
            let width = keys.next_multiple_of(LANES);
            let s = &mut sc.s[..rows * width];
            let kt: &[f32] = match &self.kv.packed {
                Some(packed) => &packed[g][b * bk_pad * d..][..width * d],
                None => {
                    let kt = &mut sc.kt[..width * d];
                    isa.pack_k(&self.kv.k[(g * n_k + j0) * d..][..keys * d], keys, d, kt);
                    kt
                }
            };
            isa.qk(qs, rows, d, kt, width, s);
            self.mask_tile(s, rows, width, i0, b, j0, keys);
            for r in 0..rows {
                let row = &mut s[r * width..][..width];
                let mx = isa.row_max(row);
                let m_new = fallback::max(mx, m[r]);
                // A row that has seen no key yet keeps m = −∞; take its exponentials
                // against 0 so that 2^(−∞ − 0) = 0 instead of 2^(−∞ + ∞) = NaN.
                let m_ref = if m_new == f32::NEG_INFINITY {
                    0.0
                } else {
                    m_new
                };
                alpha[r] = fallback::exp2(m[r] - m_ref);
                let sum = isa.exp_row(row, m_ref);
                l[r] = l[r] * alpha[r] + sum;
                m[r] = m_new;
            }
            let (v_rows, v_stride) = self.kv.v_rows(g, j0, n_k, d);
            isa.pv(s, rows, width, keys, v_rows, v_stride, d_pad, alpha, o);
        }

        for r in 0..rows {
            let dst = &mut out[r * d..][..d];
            if l[r] > 0.0 {
                for (y, &x) in dst.iter_mut().zip(&o[r * d_pad..][..d]) {
                    *y = x / l[r];
                }
                lse[r] = (f64::from(m[r]) + f64::from(l[r]).log2()) * std::f64::consts::LN_2;
            } else {
                dst.fill(0.0);
                lse[r] = f64::NEG_INFINITY;
            }
        }
    }

    /// Sets to `−∞` the scores of tile `b` (keys `j0 .. j0 + keys`, padded to `width`) that
    /// the mask hides from query rows `i0 .. i0 + rows`, and those of the padding keys.
    #[allow(clippy::too_many_arguments)]
    fn mask_tile(
        &self,
        s: &mut [f32],
        rows: usize,
        width: usize,
        i0: usize,
        b: usize,
        j0: usize,
        keys: usize,
    ) {
        let invalid = self.key_blocks.has_invalid.get(b).copied().unwrap_or(false);
        for r in 0..rows {
            let row = &mut s[r * width..][..width];
            // Keys at or past `end` are hidden by causality or padding.
            let end = if self.mask.causal {
                (self.mask.q_offset + i0 + r + 1)
                    .saturating_sub(j0)
                    .min(keys)
            } else {
                keys
            };
            row[end..].fill(f32::NEG_INFINITY);
            if invalid && let Some(valid) = self.key_blocks.valid {
                for (x, &ok) in row[..end].iter_mut().zip(&valid[j0..]) {
                    if !ok {
                        *x = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
}
