//! The encoder's forward pass over packed batches, pooling and the public embedding API.

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

use super::config::{Activation, Pooling};
use super::{Dense, Encoder, Norm};
use crate::{Error, Result};

/// Most tokens [`Encoder::embed`] and [`Encoder::embed_ids`] pack into one forward pass.
pub const BATCH_TOKENS: usize = 4096;

/// Most sequences in one packed forward pass.
pub const BATCH_SEQUENCES: usize = 64;

impl Dense {
    /// `y = x·Wᵀ + b` for `n` rows.
    fn forward(&self, x: &[f32], n: usize, y: &mut Vec<f32>, par: numerics::Par) -> Result<()> {
        y.resize(n * self.lin.rows, 0.0);
        self.lin.forward(x, n, y, par)?;
        for row in y.chunks_exact_mut(self.lin.rows) {
            for (v, b) in row.iter_mut().zip(&self.bias) {
                *v += b;
            }
        }
        Ok(())
    }
}

impl Norm {
    /// LayerNorm of each row of `x` in place, statistics in `f64`.
    fn apply(&self, x: &mut [f32], eps: f64) {
        let h = self.gamma.len();
        x.par_chunks_mut(h).with_min_len(16).for_each(|row| {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / h as f64;
            let var = row
                .iter()
                .map(|&v| {
                    let d = f64::from(v) - mean;
                    d * d
                })
                .sum::<f64>()
                / h as f64;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = ((f64::from(*v) - mean) * inv * f64::from(*g) + f64::from(*b)) as f32;
            }
        });
    }
}

/// GELU, exact (`erf`) or tanh form, evaluated in `f64`.
pub(crate) fn gelu(act: Activation, x: f64) -> f64 {
    match act {
        Activation::GeluErf => 0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044_715 * x * x * x)).tanh())
        }
    }
}

/// Scratch buffers of one forward pass.
#[derive(Default)]
struct Buffers {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    up: Vec<f32>,
}

impl Encoder {
    /// Sentence embeddings of `texts`, in order: tokenized (truncated at
    /// [`EncoderConfig::max_seq_len`](super::EncoderConfig::max_seq_len)), sorted by
    /// length into packed batches of at most [`BATCH_TOKENS`] tokens, encoded, pooled and
    /// (if the model says so) L2-normalized. An empty text is valid (its `[CLS] [SEP]`).
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] if tokenizing fails; see [`embed_ids`](Self::embed_ids).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let ids = texts
            .iter()
            .map(|t| self.tokenizer.encode(t.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.embed_ids(&ids)
    }

    /// Sentence embeddings of already-tokenized sequences (special tokens included), in
    /// order. A sequence of zero tokens gets the zero vector (as sentence-transformers'
    /// clamped mean gives).
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary;
    /// [`Error::InvalidArgument`] for a sequence longer than the position table;
    /// [`Error::NonFinite`] if an embedding is not finite (a policy overflowed).
    pub fn embed_ids(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let mut out = vec![Vec::new(); seqs.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len()
                && end - start < BATCH_SEQUENCES
                && (end == start || tokens + seqs[order[end]].len() <= BATCH_TOKENS)
            {
                tokens += seqs[order[end]].len();
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&i| seqs[i].as_slice())
                .collect();
            let pooled = self.embed_packed(&batch)?;
            for (&i, e) in order[start..end].iter().zip(pooled) {
                out[i] = e;
            }
            start = end;
        }
        Ok(out)
    }

    /// Pooled (and normalized) embeddings of one packed batch.
    fn embed_packed(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.config.hidden;
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut ranges = Vec::with_capacity(batch.len());
        for s in batch {
            let start = ids.len();
            ids.extend_from_slice(s);
            positions.extend(0..s.len());
            ranges.push(start..ids.len());
        }
        let hidden = self.forward_packed(&ids, &positions, &ranges)?;
        ranges
            .iter()
            .enumerate()
            .map(|(b, r)| {
                let mut e = vec![0.0f64; h];
                if !r.is_empty() {
                    let rows = match self.config.pooling {
                        Pooling::Mean => r.clone(),
                        Pooling::Cls => r.start..r.start + 1,
                    };
                    for row in hidden[rows.start * h..rows.end * h].chunks_exact(h) {
                        for (a, &v) in e.iter_mut().zip(row) {
                            *a += f64::from(v);
                        }
                    }
                    let n = rows.len() as f64;
                    e.iter_mut().for_each(|a| *a /= n);
                }
                if self.config.normalize {
                    let norm = e.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
                    e.iter_mut().for_each(|a| *a /= norm);
                }
                let e: Vec<f32> = e.into_iter().map(|a| a as f32).collect();
                if e.iter().any(|v| !v.is_finite()) {
                    return Err(Error::NonFinite {
                        what: "sentence embedding",
                        position: b,
                    });
                }
                Ok(e)
            })
            .collect()
    }

    /// The last hidden state for Hugging Face's padded layout: `ids` and `attention_mask`
    /// are `[batch, seq_len]` row-major; a token attends to the tokens of its row whose
    /// mask is 1 and takes position id = its column (as `BertModel` does). Returns
    /// `[batch, seq_len, hidden]`, zero at masked positions (whose values `BertModel`
    /// computes but nothing downstream reads).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the lengths disagree, `seq_len` is 0 or exceeds the
    /// position table, or a mask value is not 0 or 1; [`Error::TokenOutOfRange`].
    pub fn forward(&self, ids: &[u32], attention_mask: &[u8], seq_len: usize) -> Result<Vec<f32>> {
        if seq_len == 0 || !ids.len().is_multiple_of(seq_len) || attention_mask.len() != ids.len() {
            return Err(Error::invalid(
                "padded batch",
                format!(
                    "{} ids and {} mask values are not a whole number of rows of {seq_len}",
                    ids.len(),
                    attention_mask.len()
                ),
            ));
        }
        if let Some(i) = attention_mask.iter().position(|&m| m > 1) {
            return Err(Error::invalid(
                "attention mask",
                format!("value {} at {i} (must be 0 or 1)", attention_mask[i]),
            ));
        }
        let (mut packed, mut positions, mut ranges, mut slots) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, (r_ids, r_mask)) in ids
            .chunks_exact(seq_len)
            .zip(attention_mask.chunks_exact(seq_len))
            .enumerate()
        {
            let start = packed.len();
            for (col, (&id, &m)) in r_ids.iter().zip(r_mask).enumerate() {
                if m == 1 {
                    packed.push(id);
                    positions.push(col);
                    slots.push(row * seq_len + col);
                }
            }
            ranges.push(start..packed.len());
        }
        let hidden = self.forward_packed(&packed, &positions, &ranges)?;
        let h = self.config.hidden;
        let mut out = vec![0.0; ids.len() * h];
        for (src, &slot) in hidden.chunks_exact(h).zip(&slots) {
            out[slot * h..(slot + 1) * h].copy_from_slice(src);
        }
        Ok(out)
    }

    /// The last hidden state `[ids.len(), hidden]` of packed sequences: token `i` has
    /// position id `positions[i]` and attends to the tokens of the range in `ranges` that
    /// holds it. The ranges must tile `0..ids.len()` in order.
    pub(crate) fn forward_packed(
        &self,
        ids: &[u32],
        positions: &[usize],
        ranges: &[Range<usize>],
    ) -> Result<Vec<f32>> {
        debug_assert_eq!(ids.len(), positions.len());
        let c = &self.config;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::TokenOutOfRange {
                id,
                vocab: c.vocab_size,
            });
        }
        if let Some(&p) = positions.iter().find(|&&p| p >= c.max_positions) {
            return Err(Error::invalid(
                "sequence length",
                format!(
                    "position {p} is past the position table ({} rows)",
                    c.max_positions
                ),
            ));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.pool
            .install(|| self.forward_inner(ids, positions, ranges))
    }

    fn forward_inner(
        &self,
        ids: &[u32],
        positions: &[usize],
        ranges: &[Range<usize>],
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let (n, h) = (ids.len(), c.hidden);
        let par = self.par();
        let eps = c.layer_norm_eps;
        let mut x = vec![0.0f32; n * h];
        let mut tt = vec![0.0f32; h];
        self.token_type.dequantize_row(0, &mut tt)?;
        let mut pos = vec![0.0f32; h];
        for ((row, &id), &p) in x.chunks_exact_mut(h).zip(ids).zip(positions) {
            self.word.dequantize_row(id as usize, row)?;
            self.position.dequantize_row(p, &mut pos)?;
            for ((v, a), b) in row.iter_mut().zip(&pos).zip(&tt) {
                *v = (*v + a) + b;
            }
        }
        self.emb_norm.apply(&mut x, eps);
        let mut b = Buffers::default();
        for layer in &self.layers {
            layer.q.forward(&x, n, &mut b.q, par)?;
            layer.k.forward(&x, n, &mut b.k, par)?;
            layer.v.forward(&x, n, &mut b.v, par)?;
            self.attention(&b.q, &b.k, &b.v, ranges, &mut b.ctx)?;
            layer.o.forward(&b.ctx, n, &mut b.tmp, par)?;
            for (t, &r) in b.tmp.iter_mut().zip(&x) {
                *t += r;
            }
            layer.attn_norm.apply(&mut b.tmp, eps);
            std::mem::swap(&mut x, &mut b.tmp);
            layer.up.forward(&x, n, &mut b.up, par)?;
            let act = c.activation;
            b.up.par_chunks_mut(1024).for_each(|chunk| {
                for v in chunk {
                    *v = gelu(act, f64::from(*v)) as f32;
                }
            });
            layer.down.forward(&b.up, n, &mut b.tmp, par)?;
            for (t, &r) in b.tmp.iter_mut().zip(&x) {
                *t += r;
            }
            layer.out_norm.apply(&mut b.tmp, eps);
            std::mem::swap(&mut x, &mut b.tmp);
        }
        Ok(x)
    }

    /// Bidirectional multi-head attention inside each range, into `ctx` `[n, hidden]`.
    fn attention(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        ranges: &[Range<usize>],
        ctx: &mut Vec<f32>,
    ) -> Result<()> {
        let c = &self.config;
        let (h, dh) = (c.hidden, c.head_dim());
        let n = q.len() / h;
        let shape = |e: ndarray::ShapeError| Error::invalid("attention", e.to_string());
        let (qv, kv, vv) = (
            ArrayView2::from_shape((n, h), q).map_err(shape)?,
            ArrayView2::from_shape((n, h), k).map_err(shape)?,
            ArrayView2::from_shape((n, h), v).map_err(shape)?,
        );
        let scale = 1.0 / (dh as f32).sqrt();
        let tasks: Vec<(usize, usize)> = (0..ranges.len())
            .flat_map(|s| (0..c.n_heads).map(move |hd| (s, hd)))
            .filter(|&(s, _)| !ranges[s].is_empty())
            .collect();
        let outs: Vec<Array2<f32>> = tasks
            .par_iter()
            .map(|&(s, hd)| {
                let r = ranges[s].clone();
                let cols = hd * dh..(hd + 1) * dh;
                let qh = qv.slice(s![r.clone(), cols.clone()]);
                let kh = kv.slice(s![r.clone(), cols.clone()]);
                let vh = vv.slice(s![r.clone(), cols]);
                let len = r.len();
                let mut scores = Array2::<f32>::zeros((len, len));
                general_mat_mul(scale, &qh, &kh.t(), 0.0, &mut scores);
                for mut row in scores.rows_mut() {
                    let max = row.fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let mut sum = 0.0f64;
                    row.mapv_inplace(|x| {
                        let e = (x - max).exp();
                        sum += f64::from(e);
                        e
                    });
                    let inv = (1.0 / sum) as f32;
                    row.mapv_inplace(|e| e * inv);
                }
                let mut out = Array2::<f32>::zeros((len, dh));
                general_mat_mul(1.0, &scores, &vh, 0.0, &mut out);
                out
            })
            .collect();
        ctx.clear();
        ctx.resize(n * h, 0.0);
        for (&(s, hd), out) in tasks.iter().zip(&outs) {
            for (i, row) in out.rows().into_iter().enumerate() {
                let at = (ranges[s].start + i) * h + hd * dh;
                for (d, &val) in ctx[at..at + dh].iter_mut().zip(row) {
                    *d = val;
                }
            }
        }
        Ok(())
    }
}
