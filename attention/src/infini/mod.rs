//! Infini-attention: local causal softmax attention inside fixed-length segments plus a
//! compressive memory of every earlier segment, mixed by a learned per-head gate
//! (Munkhdalai, Faruqui and Gopal, *Leave No Context Behind: Efficient Infinite Context
//! Transformers with Infini-attention*, 2024,
//! [arXiv:2404.07143](https://arxiv.org/abs/2404.07143)).
//!
//! The sequence is cut into segments of `S` = [`InfiniParams::segment`] positions: segment
//! `s` covers positions `[s·S, (s+1)·S)`. Each key/value head `g` keeps a memory
//! `M_s` (`d×d`) and a normalizer `z_s` (`d`), the state after segments `0..s`, starting from
//! `M_0 = 0`, `z_0 = 0`. With `σ(x) = ELU(x) + 1` applied elementwise (paper §2.1):
//!
//! - **retrieval**, for a query `q` in segment `s`:
//!   `A_mem = σ(q)·M_s / (σ(q)·z_s)`;
//! - **local attention**: `A_dot` = softmax attention of `q` over the keys of its own segment
//!   up to its own position (causal), scaled by `scale` (default `1/sqrt(d)`);
//! - **gate**: `A = sigmoid(β_h)·A_mem + (1 − sigmoid(β_h))·A_dot`, one `β_h` per
//!   query head ([`InfiniParams::beta`]);
//! - **update** after segment `s`, over its keys `K` and values `V`:
//!   [`MemoryUpdate::Linear`] `M += σ(K)ᵀV`, or [`MemoryUpdate::Delta`]
//!   `M += σ(K)ᵀ(V − σ(K)M / (σ(K)z))`; then `z += Σ_t σ(k_t)`.
//!
//! **First-segment convention.** Before any complete segment `z = 0`, so `σ(q)·z = 0`; we
//! take the retrieved value to be **zero** wherever `σ(q)·z ≤ 0` (in retrieval and in the
//! delta rule's correction alike). Queries of segment 0 therefore get
//! `A = (1 − sigmoid(β_h))·A_dot`; the Delta rule's first write equals the Linear one.
//!
//! **Numerics.** The memory is `f32` always; retrieval and updates are `f32` matrix
//! products (`matrixmultiply`), `σ` uses a branch-free polynomial `eˣ` (about 2 ulps), and
//! the local attention is [`crate::flash`] (`128 × 128` tiles, one thread). [`reference()`]
//! recomputes everything in `f64`, the memory from scratch for every query. The fast path
//! stays within `5e-6` of it on the tests' random cases (values in `[−1, 1]`).
//!
//! **The `lse` of the [`Output`]** is the local attention's log-sum-exp (over the keys of the
//! query's own segment up to its position): it is *not* a softmax denominator over the
//! whole sequence and cannot be used to merge Infini-attention with other partial
//! attentions. A row whose local keys are all masked has `lse = −∞` and `A_dot = 0`, but
//! still receives the gated memory term.
//!
//! **Masks.** Infini-attention is causal: the [`Mask`] must have `causal = true` (an error
//! otherwise). A key-padding mask (`key_valid`) removes keys from the local attention *and*
//! from the memory updates. Queries sit at positions `q_offset + i` and the keys must cover
//! them (`q_offset + n_q ≤ n_k`); the memory a query sees is built from the complete
//! segments before its own, so a decode call (`q_offset = n_k − n_q`) returns the matching
//! rows of the full prefill.
//!
//! **Streaming.** [`InfiniStream`] processes a sequence incrementally with state independent
//! of its length: the memories, the normalizers and the current partial segment's keys and
//! values ([`InfiniStream::state_bytes`]).

mod memory;
mod reference;
mod stream;

pub use reference::reference;
pub use stream::InfiniStream;

use crate::flash::{self, FlashParams};
use crate::{Error, Mask, Output, Result, Shape, default_scale};
use memory::{Memory, sigma_into};

/// Largest accepted segment length (the stream buffers one segment of keys and values).
pub const MAX_SEGMENT: usize = 1 << 20;

/// Largest state one call or stream may hold, in bytes (memories, normalizers, segment
/// buffers): guards against absurd `d`, `kv_heads` or `segment`.
pub const MAX_STATE_BYTES: usize = 1 << 30;

/// How a finished segment is written into the memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MemoryUpdate {
    /// `M += σ(K)ᵀV` (the paper's linear update).
    #[default]
    Linear,
    /// `M += σ(K)ᵀ(V − σ(K)M / (σ(K)z))` (the paper's delta rule): only the part of each
    /// value the memory does not already return is added, so rewriting an association
    /// replaces it rather than averaging with it (exactly on the first rewrite of
    /// near-orthogonal keys; `z` keeps counting every write, so later rewrites leave a
    /// fraction of the older values).
    Delta,
}

/// Parameters of Infini-attention.
#[derive(Clone, Debug, PartialEq)]
pub struct InfiniParams {
    /// Segment length `S` (`1..=`[`MAX_SEGMENT`]).
    pub segment: usize,
    /// The memory update rule.
    pub update: MemoryUpdate,
    /// One gate logit `β_h` per query head; a single value applies to every head, and empty
    /// means all `0` (an even mix). `±∞` are allowed (`−∞`: local attention only, `+∞`:
    /// memory only); NaN is not.
    pub beta: Vec<f32>,
}

/// The segment length of [`InfiniParams::default`].
pub const DEFAULT_SEGMENT: usize = 2048;

impl Default for InfiniParams {
    /// Segments of [`DEFAULT_SEGMENT`] positions (the paper's long-context experiments use
    /// 2048), the linear update, all gates `β = 0`.
    fn default() -> Self {
        Self {
            segment: DEFAULT_SEGMENT,
            update: MemoryUpdate::Linear,
            beta: Vec::new(),
        }
    }
}

impl InfiniParams {
    /// Segment length `segment`, the given update rule, all gates `β = 0`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] if `segment` is zero or above [`MAX_SEGMENT`].
    pub fn new(segment: usize, update: MemoryUpdate) -> Result<Self> {
        let p = Self {
            segment,
            update,
            beta: Vec::new(),
        };
        p.check_segment()?;
        Ok(p)
    }

    fn check_segment(&self) -> Result<()> {
        if self.segment == 0 || self.segment > MAX_SEGMENT {
            return Err(Error::params(
                "segment",
                format!("must be in 1..={MAX_SEGMENT}, got {}", self.segment),
            ));
        }
        Ok(())
    }

    /// Checks the parameters for `heads` query heads and returns the gates
    /// `sigmoid(β_h)`.
    pub(crate) fn gates(&self, heads: usize) -> Result<Vec<f32>> {
        self.check_segment()?;
        if self.beta.is_empty() {
            return Ok(vec![0.5; heads]);
        }
        if self.beta.len() != heads && self.beta.len() != 1 {
            return Err(Error::params(
                "beta",
                format!(
                    "one gate logit per query head (or one for all): {} given for {heads} heads",
                    self.beta.len()
                ),
            ));
        }
        if let Some(h) = self.beta.iter().position(|b| b.is_nan()) {
            return Err(Error::params("beta", format!("beta[{h}] is NaN")));
        }
        let gate = |b: f32| 1.0 / (1.0 + (-b).exp());
        Ok((0..heads)
            .map(|h| gate(self.beta[h.min(self.beta.len() - 1)]))
            .collect())
    }
}

/// Checks that `kv_heads` memories of `d×d` plus `buffered` extra floats fit
/// [`MAX_STATE_BYTES`]; returns the byte count.
fn check_state(kv_heads: usize, d: usize, buffered: usize) -> Result<usize> {
    let bytes = d
        .checked_mul(d)
        .and_then(|x| x.checked_add(d))
        .and_then(|x| x.checked_add(buffered))
        .and_then(|x| x.checked_mul(kv_heads))
        .and_then(|x| x.checked_mul(size_of::<f32>()));
    match bytes {
        Some(b) if b <= MAX_STATE_BYTES => Ok(b),
        _ => Err(Error::params(
            "state",
            format!(
                "kv_heads {kv_heads}, d {d} and {buffered} buffered floats per head exceed \
                 {MAX_STATE_BYTES} bytes of memory state"
            ),
        )),
    }
}

/// The queries of one key/value head inside one segment.
struct SegmentQueries<'a> {
    /// `[group, rows, d]`: the rows of every query head reading this key/value head.
    q: &'a [f32],
    group: usize,
    rows: usize,
    /// Position of query row 0 relative to the segment start.
    pos0: usize,
    /// `sigmoid(β_h)` of each of the `group` heads.
    gates: &'a [f32],
}

/// The keys of one key/value head inside one segment, from the segment start on.
struct SegmentKeys<'a> {
    k: &'a [f32],
    v: &'a [f32],
    /// Validity of the keys from the segment start (at least up to the last query).
    valid: Option<&'a [bool]>,
}

/// Attends one segment's queries: local causal attention over the segment's keys up to the
/// last query mixed with the memory's retrieval by the gates. Returns the output
/// `[group, rows, d]` and the local log-sum-exps `[group, rows]`.
fn attend_segment(
    sq: &SegmentQueries<'_>,
    sk: &SegmentKeys<'_>,
    mem: &Memory,
    d: usize,
    scale: f32,
    phi_scratch: &mut Vec<f32>,
) -> Result<Output> {
    let n_k = sq.pos0 + sq.rows;
    let shape = Shape {
        heads: sq.group,
        kv_heads: 1,
        n_q: sq.rows,
        n_k,
        d,
    };
    let mask = Mask {
        causal: true,
        q_offset: sq.pos0,
        key_valid: sk.valid.map(|m| &m[..n_k]),
    };
    let (k, v) = (&sk.k[..n_k * d], &sk.v[..n_k * d]);
    let mut local = local_attention(sq.q, k, v, shape, mask, scale)?;
    sigma_into(sq.q, phi_scratch);
    let mut retrieved = vec![0.0f32; sq.q.len()];
    mem.retrieve(phi_scratch, sq.group * sq.rows, &mut retrieved);
    let per_head = sq.rows * d;
    for ((o, r), &g) in local
        .out
        .chunks_mut(per_head)
        .zip(retrieved.chunks(per_head))
        .zip(sq.gates)
    {
        for (o, &r) in o.iter_mut().zip(r) {
            *o = g * r + (1.0 - g) * *o;
        }
    }
    Ok(local)
}

/// Flash tiles for the local attention: `128 × 128` lets the causal mask skip the tiles
/// above the diagonal of a segment (the dilated benches' segments have the same shape and
/// found it the fastest of `{32, 64, 96, 128, 256}²` at `d = 64`).
const LOCAL_FLASH: FlashParams = FlashParams {
    block_q: 128,
    block_k: 128,
    parallel: false,
};

/// The local (within-segment, causal) softmax attention.
fn local_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: f32,
) -> Result<Output> {
    flash::attention(q, k, v, shape, mask, Some(scale), &LOCAL_FLASH)
}

/// Checks everything [`attention`] and [`reference()`] need; returns the gates.
fn check_call(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    params: &InfiniParams,
) -> Result<Vec<f32>> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    if !mask.causal {
        return Err(Error::params(
            "mask",
            "Infini-attention is causal: the mask must have causal = true",
        ));
    }
    if mask
        .q_offset
        .checked_add(shape.n_q)
        .is_none_or(|end| end > shape.n_k)
    {
        return Err(Error::shape(format!(
            "queries at positions {}..{}+{} need keys up to there, only {} given",
            mask.q_offset, mask.q_offset, shape.n_q, shape.n_k
        )));
    }
    check_state(1, shape.d, 0)?;
    params.gates(shape.heads)
}

/// Infini-attention over a whole (prefix of a) sequence, statelessly: query row `i` at
/// position `mask.q_offset + i` retrieves from the memory of every complete segment before
/// its own and attends causally inside its own segment (see the module docs for the
/// formulas, the first-segment convention and the meaning of `lse`). Keys `0..n_k` are the
/// sequence's positions. `scale` (default `1/sqrt(d)`) applies to the local attention only.
///
/// Cost: `O(n_k·d²)` per key/value head for the memory, plus the local attention
/// (`O(n_q·S·d)` per query head). Sequential.
///
/// # Errors
///
/// [`Error::Shape`] for inconsistent shapes, slice or mask lengths, or queries past the keys
/// (`q_offset + n_q > n_k`); [`Error::InvalidParams`] for a non-causal mask, a bad segment
/// length, `beta` of the wrong length (neither 0, 1 nor `heads`) or with a NaN, or `d` so
/// large that a `d×d` memory exceeds [`MAX_STATE_BYTES`].
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &InfiniParams,
) -> Result<Output> {
    let gates = check_call(q, k, v, shape, mask, params)?;
    let Shape {
        heads, n_q, n_k, d, ..
    } = shape;
    let scale = scale.unwrap_or_else(|| default_scale(d));
    let seg = params.segment;
    let group = shape.group();
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; heads * n_q];
    if n_q == 0 {
        return Ok(Output { out, lse });
    }
    let first = mask.q_offset;
    let last = first + n_q - 1;
    let mut mem = Memory::new(d);
    let mut qbuf = Vec::new();
    let mut phi = Vec::new();
    for g in 0..shape.kv_heads {
        mem.clear();
        let kg = &k[g * n_k * d..][..n_k * d];
        let vg = &v[g * n_k * d..][..n_k * d];
        let heads_g = g * group..(g + 1) * group;
        for s in 0..=last / seg {
            let start = s * seg;
            if start + seg > first {
                // Queries in this segment: positions [lo, hi).
                let lo = first.max(start);
                let hi = (last + 1).min(start + seg);
                let rows = hi - lo;
                qbuf.clear();
                for h in heads_g.clone() {
                    qbuf.extend_from_slice(&q[(h * n_q + lo - first) * d..][..rows * d]);
                }
                let sq = SegmentQueries {
                    q: &qbuf,
                    group,
                    rows,
                    pos0: lo - start,
                    gates: &gates[heads_g.clone()],
                };
                let sk = SegmentKeys {
                    k: &kg[start * d..],
                    v: &vg[start * d..],
                    valid: mask.key_valid.map(|m| &m[start..hi]),
                };
                let o = attend_segment(&sq, &sk, &mem, d, scale, &mut phi)?;
                for (j, h) in heads_g.clone().enumerate() {
                    let row0 = h * n_q + lo - first;
                    out[row0 * d..][..rows * d].copy_from_slice(&o.out[j * rows * d..][..rows * d]);
                    lse[row0..][..rows].copy_from_slice(&o.lse[j * rows..][..rows]);
                }
            }
            if start + seg <= last {
                // A complete segment before the last query's: write it.
                let valid = mask.key_valid.map(|m| &m[start..start + seg]);
                mem.update(
                    &kg[start * d..][..seg * d],
                    &vg[start * d..][..seg * d],
                    seg,
                    valid,
                    params.update,
                );
            }
        }
    }
    Ok(Output { out, lse })
}
