//! LongNet dilated attention (Ding et al., *LongNet: Scaling Transformers to 1,000,000,000
//! Tokens*, 2023, [arXiv:2307.02486](https://arxiv.org/abs/2307.02486), §2.2–2.3).
//!
//! A configuration is a list of pairs `(w_i, r_i)`: segment length and dilation. For one pair
//! `(w, r)` and query head `h`:
//!
//! - the positions are cut into segments `[s·w, (s+1)·w)` (the last one padded: positions
//!   past the sequence simply do not exist);
//! - inside each segment only the positions `p` with `(p − s·w) mod r = o_h` are kept, every
//!   `r`-th row starting at the head's offset `o_h` ([`head_offset`]);
//! - the kept rows of a segment attend densely to each other (with the [`Mask`]: causal in
//!   the sparse coordinates is causal in positions, and padded keys stay hidden), and the
//!   result is scattered back to those positions.
//!
//! **Head offsets** (paper §2.3, "different offsets for different heads"): the heads are
//! split into `r` contiguous groups of `⌈heads / r⌉`, group `j` using offset `j`, i.e.
//! `o_h = ⌊h / ⌈heads/r⌉⌋` — the rule of the authors' implementation (torchscale pads the
//! heads to a multiple of `r` and takes the diagonal of the `(position mod r, head group)`
//! grid). With fewer heads than `r`, offsets `heads..r` are used by no head.
//!
//! **Merging the pairs** (paper §2.2: weights proportional to the softmax denominators):
//! each pair `p` gives a row an output `o_p` and a log-sum-exp `lse_p` (the log of its
//! softmax denominator); a position covered by several pairs gets
//! `Σ_p exp(lse_p − lse)·o_p` with `lse = ln Σ_p exp(lse_p)`: exactly the dense softmax over
//! the union of the pairs' keys when the pairs' key sets are disjoint, LongNet's weighted mix
//! otherwise. The returned [`Output::lse`] is that `lse`.
//!
//! **Uncovered rows.** A query row that no pair keeps for its head (or whose kept keys are all
//! masked) is fully masked: zeros and `lse = −∞`. A configuration with `r = 1` in some pair
//! covers every row.
//!
//! **Decoding.** Query row `i` sits at position `q_offset + i`; keys are positions `0..n_k`.
//! With `q_offset = n_k − n_q` the result equals the matching rows of the full prefill, and
//! only the segments holding the queries are touched.
//!
//! **Cost.** Per pair `O(n·w/r²·d)` per head, linear in `n` for a fixed configuration; memory
//! is linear too (nothing `n×n` is ever formed). Each (segment, head group) block is one
//! dense [`crate::flash`] call on gathered rows; with `flash.parallel` the blocks of a pair
//! run on the rayon pool.
//!
//! [`oracle()`] is the slow check: per pair, a dense boolean mask over all `(query, key)` pairs
//! through [`crate::reference::attention_with`], merged the same way.

mod oracle;

pub use oracle::oracle;

use std::borrow::Cow;

use rayon::prelude::*;

use crate::flash::{self, FlashParams};
use crate::{Error, Mask, Output, Result, Shape, default_scale};

/// Largest number of `(segment, dilation)` pairs.
pub const MAX_PAIRS: usize = 64;

/// Largest segment length (about 10⁹ positions, LongNet's own scale).
pub const MAX_SEGMENT: usize = 1 << 30;

/// A dilated-attention configuration: `(segment length w_i, dilation r_i)` pairs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DilatedParams {
    /// The pairs `(w, r)`: `1 ≤ r ≤ w ≤` [`MAX_SEGMENT`], at most [`MAX_PAIRS`] of them.
    pub pairs: Vec<(usize, usize)>,
}

impl DilatedParams {
    /// Pairs `(segments[i], dilations[i])`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] if the lists are empty or of different lengths, there are
    /// more than [`MAX_PAIRS`], or some pair breaks `1 ≤ r ≤ w ≤ MAX_SEGMENT`.
    pub fn new(segments: &[usize], dilations: &[usize]) -> Result<Self> {
        if segments.len() != dilations.len() {
            return Err(Error::params(
                "dilated pairs",
                format!(
                    "{} segment lengths but {} dilations",
                    segments.len(),
                    dilations.len()
                ),
            ));
        }
        let p = Self {
            pairs: segments
                .iter()
                .copied()
                .zip(dilations.iter().copied())
                .collect(),
        };
        p.check()?;
        Ok(p)
    }

    /// LongNet's geometric configuration: `count` pairs `(w0·ratioⁱ, r0·ratioⁱ)` for
    /// `i = 0..count` (the paper uses `w = {2048, 4096, …}`, `r = {1, 2, …}`, ratio 2).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] if `count` is 0 or above [`MAX_PAIRS`], `ratio` is 0, a term
    /// overflows or some pair breaks `1 ≤ r ≤ w ≤ MAX_SEGMENT`.
    pub fn geometric(w0: usize, r0: usize, ratio: usize, count: usize) -> Result<Self> {
        if ratio == 0 {
            return Err(Error::params("ratio", "must be at least 1"));
        }
        if count == 0 || count > MAX_PAIRS {
            return Err(Error::params(
                "count",
                format!("must be in 1..={MAX_PAIRS}, got {count}"),
            ));
        }
        let mut pairs = Vec::with_capacity(count);
        let (mut w, mut r) = (w0, r0);
        for i in 0..count {
            if i > 0 {
                let next = w.checked_mul(ratio).zip(r.checked_mul(ratio));
                let Some((nw, nr)) = next.filter(|&(nw, _)| nw <= MAX_SEGMENT) else {
                    return Err(Error::params(
                        "geometric pairs",
                        format!("segment {w0}·{ratio}^{i} exceeds {MAX_SEGMENT}"),
                    ));
                };
                (w, r) = (nw, nr);
            }
            pairs.push((w, r));
        }
        let p = Self { pairs };
        p.check()?;
        Ok(p)
    }

    /// Checks the invariants (the fields are public, so every call re-checks).
    pub(crate) fn check(&self) -> Result<()> {
        if self.pairs.is_empty() || self.pairs.len() > MAX_PAIRS {
            return Err(Error::params(
                "dilated pairs",
                format!("need 1..={MAX_PAIRS} pairs, got {}", self.pairs.len()),
            ));
        }
        for &(w, r) in &self.pairs {
            if w == 0 || w > MAX_SEGMENT || r == 0 || r > w {
                return Err(Error::params(
                    "dilated pairs",
                    format!("pair (w {w}, r {r}) breaks 1 ≤ r ≤ w ≤ {MAX_SEGMENT}"),
                ));
            }
        }
        Ok(())
    }
}

/// The position offset `o_h ∈ 0..r` query head `head` (of `heads`) uses under dilation `r`:
/// `⌊head / ⌈heads/r⌉⌋` (see the module docs).
pub fn head_offset(head: usize, heads: usize, dilation: usize) -> usize {
    head / heads.div_ceil(dilation.max(1)).max(1)
}

/// Running merge of partial attentions by their log-sum-exps.
struct Merge {
    out: Vec<f32>,
    lse: Vec<f64>,
    d: usize,
}

impl Merge {
    fn new(shape: Shape) -> Self {
        Self {
            out: vec![0.0; shape.q_len()],
            lse: vec![f64::NEG_INFINITY; shape.heads * shape.n_q],
            d: shape.d,
        }
    }

    /// Merges one partial result `(o, l)` into global row `row`.
    #[inline]
    fn add(&mut self, row: usize, o: &[f32], l: f64) {
        if l == f64::NEG_INFINITY {
            return;
        }
        let acc = &mut self.out[row * self.d..][..self.d];
        let la = self.lse[row];
        if la == f64::NEG_INFINITY {
            acc.copy_from_slice(o);
            self.lse[row] = l;
            return;
        }
        let m = la.max(l);
        let total = m + ((la - m).exp() + (l - m).exp()).ln();
        let (wa, wb) = ((la - total).exp() as f32, (l - total).exp() as f32);
        for (a, &b) in acc.iter_mut().zip(o) {
            *a = wa * *a + wb * b;
        }
        self.lse[row] = total;
    }
}

/// One dense block: query heads `heads` (same key/value head `g`, same offset `o`) in
/// segment `seg`, sparse query rows `u0..u0 + nq`, sparse key rows `0..nk`.
#[derive(Clone, Copy, Debug)]
struct Block {
    heads: (usize, usize),
    g: usize,
    /// Position of sparse row 0: `seg·w + o`.
    base: usize,
    u0: usize,
    nq: usize,
    nk: usize,
}

/// The blocks of one pair `(w, r)`.
fn blocks(shape: Shape, mask: Mask<'_>, w: usize, r: usize) -> Vec<Block> {
    let mut out = Vec::new();
    if shape.n_q == 0 {
        return out;
    }
    let q_start = mask.q_offset;
    let q_end = mask.q_offset + shape.n_q;
    let mut h0 = 0;
    while h0 < shape.heads {
        let key = |h: usize| (shape.kv_head(h), head_offset(h, shape.heads, r));
        let mut h1 = h0 + 1;
        while h1 < shape.heads && key(h1) == key(h0) {
            h1 += 1;
        }
        let (g, o) = key(h0);
        for seg in q_start / w..=(q_end - 1) / w {
            let start = seg * w;
            let base = start + o;
            let seg_end = start.saturating_add(w);
            let lo = q_start.max(start);
            let hi = q_end.min(seg_end);
            let u0 = (lo.saturating_sub(base)).div_ceil(r);
            let first = base + r * u0;
            if first >= hi {
                continue;
            }
            let nq = (hi - 1 - first) / r + 1;
            let k_end = seg_end.min(shape.n_k);
            if base >= k_end {
                continue;
            }
            let mut nk = (k_end - 1 - base) / r + 1;
            if mask.causal {
                nk = nk.min(u0 + nq); // later keys are hidden from every query of the block
            }
            out.push(Block {
                heads: (h0, h1),
                g,
                base,
                u0,
                nq,
                nk,
            });
        }
        h0 = h1;
    }
    out
}

/// Rows `base + r·t` for `t in 0..n` of the `[rows, d]` matrix `m`, borrowed when
/// contiguous.
fn gather(m: &[f32], d: usize, base: usize, r: usize, n: usize) -> Cow<'_, [f32]> {
    if r == 1 || n == 1 {
        Cow::Borrowed(&m[base * d..][..n * d])
    } else {
        let mut buf = Vec::with_capacity(n * d);
        for t in 0..n {
            buf.extend_from_slice(&m[(base + r * t) * d..][..d]);
        }
        Cow::Owned(buf)
    }
}

/// Runs one block through the dense kernel.
#[allow(clippy::too_many_arguments)]
fn run_block(
    b: &Block,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    r: usize,
    scale: f32,
    flash_params: &FlashParams,
) -> Result<Output> {
    let Shape { n_q, n_k, d, .. } = shape;
    let (h0, h1) = b.heads;
    // Query row of sparse index u: position base + r·u, row base + r·u − q_offset.
    let first_row = b.base + r * b.u0 - mask.q_offset;
    let qs: Cow<'_, [f32]> = if h1 - h0 == 1 {
        gather(&q[h0 * n_q * d..][..n_q * d], d, first_row, r, b.nq)
    } else {
        let mut buf = Vec::with_capacity((h1 - h0) * b.nq * d);
        for h in h0..h1 {
            buf.extend_from_slice(&gather(&q[h * n_q * d..][..n_q * d], d, first_row, r, b.nq));
        }
        Cow::Owned(buf)
    };
    let kg = &k[b.g * n_k * d..][..n_k * d];
    let vg = &v[b.g * n_k * d..][..n_k * d];
    let ks = gather(kg, d, b.base, r, b.nk);
    let vs = gather(vg, d, b.base, r, b.nk);
    let valid: Option<Vec<bool>> = mask
        .key_valid
        .map(|m| (0..b.nk).map(|t| m[b.base + r * t]).collect());
    let sub_shape = Shape {
        heads: h1 - h0,
        kv_heads: 1,
        n_q: b.nq,
        n_k: b.nk,
        d,
    };
    let sub_mask = Mask {
        causal: mask.causal,
        q_offset: b.u0,
        key_valid: valid.as_deref(),
    };
    flash::attention(
        &qs,
        &ks,
        &vs,
        sub_shape,
        sub_mask,
        Some(scale),
        flash_params,
    )
}

/// Scatters a block's result into the running merge.
fn merge_block(acc: &mut Merge, b: &Block, o: &Output, shape: Shape, q_offset: usize, r: usize) {
    let d = shape.d;
    let (h0, h1) = b.heads;
    for (j, h) in (h0..h1).enumerate() {
        for u in 0..b.nq {
            let row = h * shape.n_q + b.base + r * (b.u0 + u) - q_offset;
            let src = j * b.nq + u;
            acc.add(row, &o.out[src * d..][..d], o.lse[src]);
        }
    }
}

/// LongNet dilated attention (see the module docs): every pair's sparse blocks through the
/// dense kernel [`crate::flash::attention`] (`flash` sets its blocking; with
/// `flash.parallel` the blocks of each pair run in parallel), merged by log-sum-exp.
/// `scale` defaults to `1/sqrt(d)`.
///
/// # Errors
///
/// [`Error::Shape`] for inconsistent shapes, slice lengths or mask length;
/// [`Error::InvalidParams`] for bad pairs (see [`DilatedParams::new`]) or errors of the
/// dense kernel's parameters.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &DilatedParams,
    flash: &FlashParams,
) -> Result<Output> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    params.check()?;
    flash.check()?;
    mask.q_offset
        .checked_add(shape.n_q)
        .ok_or_else(|| Error::shape("q_offset + n_q overflows"))?;
    let scale = scale.unwrap_or_else(|| default_scale(shape.d));
    let mut acc = Merge::new(shape);
    for &(w, r) in &params.pairs {
        let bl = blocks(shape, mask, w, r);
        if flash.parallel && bl.len() > 1 {
            let inner = FlashParams {
                parallel: false,
                ..*flash
            };
            let results: Vec<Result<Output>> = bl
                .par_iter()
                .map(|b| run_block(b, q, k, v, shape, mask, r, scale, &inner))
                .collect();
            for (b, o) in bl.iter().zip(results) {
                merge_block(&mut acc, b, &o?, shape, mask.q_offset, r);
            }
        } else {
            for b in &bl {
                let o = run_block(b, q, k, v, shape, mask, r, scale, flash)?;
                merge_block(&mut acc, b, &o, shape, mask.q_offset, r);
            }
        }
    }
    Ok(Output {
        out: acc.out,
        lse: acc.lse,
    })
}
