//! Streaming Infini-attention: tokens arrive in chunks of any size; the state is the
//! memories plus the current partial segment, independent of the sequence length.

use super::memory::Memory;
use super::{InfiniParams, SegmentKeys, SegmentQueries, attend_segment, check_state};
use crate::{Error, Result, Shape, default_scale};

/// Infini-attention over a sequence fed incrementally (see the [module docs](super)).
///
/// Pushing a sequence in chunks of any sizes returns the same outputs as one stateless
/// [`super::attention`] call over the whole sequence (causal, `q_offset = 0`), up to `f32`
/// rounding. The stream holds, per key/value head, the memory `M` (`d×d`), the normalizer
/// `z` (`d`) and the keys and values of the current partial segment (at most `segment`
/// rows): [`state_bytes`](Self::state_bytes) does not grow with the number of tokens.
#[derive(Clone, Debug)]
pub struct InfiniStream {
    shape: Shape,
    scale: f32,
    params: InfiniParams,
    gates: Vec<f32>,
    mems: Vec<Memory>,
    /// `[kv_heads, segment, d]`: keys and values of the current segment so far.
    kbuf: Vec<f32>,
    vbuf: Vec<f32>,
    /// Rows of the current segment already in `kbuf`/`vbuf`.
    fill: usize,
    seen: u64,
    /// Scratch: gathered query rows, `σ(q)`.
    qbuf: Vec<f32>,
    phi: Vec<f32>,
}

impl InfiniStream {
    /// An empty stream for `heads` query heads reading `kv_heads` key/value heads of
    /// dimension `d`; `scale` (default `1/sqrt(d)`) applies to the local attention.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if `heads`, `kv_heads` or `d` is zero or `kv_heads` does not divide
    /// `heads`; [`Error::InvalidParams`] for bad [`InfiniParams`] (see
    /// [`super::attention`]), a non-finite `scale` or a state above
    /// [`super::MAX_STATE_BYTES`].
    pub fn new(
        heads: usize,
        kv_heads: usize,
        d: usize,
        scale: Option<f32>,
        params: InfiniParams,
    ) -> Result<Self> {
        let shape = Shape {
            heads,
            kv_heads,
            n_q: 0,
            n_k: 0,
            d,
        };
        shape.check(&[], &[], &[])?;
        let gates = params.gates(heads)?;
        if let Some(s) = scale.filter(|s| !s.is_finite()) {
            return Err(Error::params("scale", format!("{s} is not finite")));
        }
        let buffered = params
            .segment
            .checked_mul(d)
            .and_then(|x| x.checked_mul(2))
            .ok_or_else(|| Error::params("segment", "segment·d overflows"))?;
        check_state(kv_heads, d, buffered)?;
        Ok(Self {
            shape,
            scale: scale.unwrap_or_else(|| default_scale(d)),
            gates,
            mems: (0..kv_heads).map(|_| Memory::new(d)).collect(),
            kbuf: vec![0.0; kv_heads * params.segment * d],
            vbuf: vec![0.0; kv_heads * params.segment * d],
            params,
            fill: 0,
            seen: 0,
            qbuf: Vec::new(),
            phi: Vec::new(),
        })
    }

    /// Feeds `n` new tokens: `q` is `[heads, n, d]`, `k` and `v` are `[kv_heads, n, d]`.
    /// Returns their outputs, `[heads, n, d]`. Any `n` (including 0): tokens are buffered
    /// into segments internally, and each completed segment is written into the memory.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if a slice length does not match `n` (the stream is then unchanged).
    pub fn push(&mut self, q: &[f32], k: &[f32], v: &[f32], n: usize) -> Result<Vec<f32>> {
        let shape = Shape {
            n_q: n,
            n_k: n,
            ..self.shape
        };
        shape.check(q, k, v)?;
        let Shape {
            heads, kv_heads, d, ..
        } = shape;
        let group = shape.group();
        let seg = self.params.segment;
        let mut out = vec![0.0f32; shape.q_len()];
        let mut t = 0;
        while t < n {
            let rows = (n - t).min(seg - self.fill);
            for g in 0..kv_heads {
                let dst = (g * seg + self.fill) * d..(g * seg + self.fill + rows) * d;
                let src = (g * n + t) * d..(g * n + t + rows) * d;
                self.kbuf[dst.clone()].copy_from_slice(&k[src.clone()]);
                self.vbuf[dst].copy_from_slice(&v[src]);
            }
            for g in 0..kv_heads {
                let heads_g = g * group..(g + 1) * group;
                self.qbuf.clear();
                for h in heads_g.clone() {
                    self.qbuf
                        .extend_from_slice(&q[(h * n + t) * d..][..rows * d]);
                }
                let sq = SegmentQueries {
                    q: &self.qbuf,
                    group,
                    rows,
                    pos0: self.fill,
                    gates: &self.gates[heads_g.clone()],
                };
                let sk = SegmentKeys {
                    k: &self.kbuf[g * seg * d..][..seg * d],
                    v: &self.vbuf[g * seg * d..][..seg * d],
                    valid: None,
                };
                let o = attend_segment(&sq, &sk, &self.mems[g], d, self.scale, &mut self.phi)?;
                for (j, h) in heads_g.enumerate() {
                    out[(h * n + t) * d..][..rows * d]
                        .copy_from_slice(&o.out[j * rows * d..][..rows * d]);
                }
            }
            self.fill += rows;
            t += rows;
            self.seen += rows as u64;
            if self.fill == seg {
                for (g, mem) in self.mems.iter_mut().enumerate() {
                    mem.update(
                        &self.kbuf[g * seg * d..][..seg * d],
                        &self.vbuf[g * seg * d..][..seg * d],
                        seg,
                        None,
                        self.params.update,
                    );
                }
                self.fill = 0;
            }
        }
        debug_assert_eq!(out.len(), heads * n * d);
        Ok(out)
    }

    /// Tokens pushed since creation or the last [`reset`](Self::reset).
    pub fn tokens_seen(&self) -> u64 {
        self.seen
    }

    /// Bytes of state: per key/value head the memory `M` and normalizer `z` plus the
    /// current segment's key and value buffers (`kv_heads·(d² + d + 2·segment·d)·4`).
    /// Constant over the stream's life; per-call scratch and outputs are not counted.
    pub fn state_bytes(&self) -> usize {
        self.mems.len() * Memory::state_bytes(self.shape.d)
            + (self.kbuf.len() + self.vbuf.len()) * size_of::<f32>()
    }

    /// Forgets everything: empty memories, empty segment, `tokens_seen() == 0`.
    pub fn reset(&mut self) {
        for m in &mut self.mems {
            m.clear();
        }
        self.fill = 0;
        self.seen = 0;
    }
}
