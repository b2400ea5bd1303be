//! The batched forward pass: prefill of many tokens and incremental decode of one share
//! this code; the KV cache holds the past.

use rayon::prelude::*;

use super::{KvCache, Model};
use crate::{Error, Result};

/// Statistics gathered during a forward pass (for token-importance and layer-importance
/// precision).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probe {
    /// For each position `j` of the cache: `Σ_l Σ_h Σ_i A[l, h, i, j]`, the attention that
    /// position received from every query `i` of every head `h` in every layer `l`, summed
    /// over all forward passes since the probe was created.
    pub attention_received: Vec<f64>,
    /// For each layer: the sum over processed tokens of the L2 norm of the block's output
    /// (the residual stream after the block).
    pub layer_output_norm: Vec<f64>,
    /// Tokens processed (the count behind `layer_output_norm`).
    pub tokens: usize,
    /// Layers × heads that contributed to `attention_received` per query.
    pub heads_per_query: usize,
}

impl Probe {
    /// Importance of each position: `mean_l mean_h Σ_i A[l, h, i, t]`.
    pub fn importance(&self) -> Vec<f64> {
        let n = self.heads_per_query.max(1) as f64;
        self.attention_received.iter().map(|a| a / n).collect()
    }

    /// Mean L2 norm of each layer's output over the processed tokens.
    pub fn layer_norms(&self) -> Vec<f64> {
        let n = self.tokens.max(1) as f64;
        self.layer_output_norm.iter().map(|a| a / n).collect()
    }
}

/// Logits of a forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardOutput {
    /// Row-major `[rows, vocab]`: row `r` is the next-token logits after input token
    /// `logits_from + r`.
    pub logits: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// Vocabulary size (row length).
    pub vocab: usize,
}

impl ForwardOutput {
    /// Row `r`.
    ///
    /// # Panics
    ///
    /// If `r >= self.rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.logits[r * self.vocab..(r + 1) * self.vocab]
    }
}

/// `Σ a·b` over 16 `f32` lanes (vectorizes; plain multiply-add, since `mul_add` is a libm call
/// on the baseline x86-64 target), lanes summed pairwise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

/// `out = x / sqrt(mean(x²) + ε) · w`, the mean accumulated in `f64`.
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let mean = (ss / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// `(cos, sin)` of `pos·θ^(−2i/rope_dim)` for `i < rope_dim/2`, computed in `f64`.
pub(crate) fn rope_table(rope_dim: usize, theta: f32, pos: usize) -> Vec<(f32, f32)> {
    (0..rope_dim / 2)
        .map(|i| {
            let freq = f64::from(theta).powf(-2.0 * i as f64 / rope_dim as f64);
            let (s, c) = (pos as f64 * freq).sin_cos();
            (c as f32, s as f32)
        })
        .collect()
}

/// Rotates dimension pairs `(2i, 2i+1)` of every head in `x` (`[n_heads·head_dim]`) by the
/// angles of `table` ([`rope_table`]).
pub(crate) fn rope(x: &mut [f32], head_dim: usize, table: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in table.iter().enumerate() {
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

/// An input of the products: the activations, and (when emulating llama.cpp's arithmetic)
/// the same rounded as llama.cpp rounds activations for a Q4_0/Q4_1/Q8_0 product (Q8_0/Q8_1
/// blocks: 32 values, scale `amax/127` stored in f16) — rounded once, shared by every
/// product that reads this input.
struct Input<'a> {
    x: &'a [f32],
    rounded: Option<Vec<f32>>,
}

impl<'a> Input<'a> {
    fn new(emulate: bool, x: &'a [f32]) -> Self {
        let rounded = (emulate && x.len().is_multiple_of(quant::ggml::QK)).then(|| {
            let mut r = vec![0.0; x.len()];
            quant::ggml::dequantize_row_q8_0(&quant::ggml::quantize_row_q8_0(x), &mut r);
            r
        });
        Self { x, rounded }
    }

    /// What the product with `w` reads: the rounded activations for a GGML weight whose rows
    /// are whole blocks, the activations themselves otherwise.
    fn for_weight(&self, w: &super::Linear) -> &[f32] {
        use quant::QuantizedTensor as Q;
        let ggml = matches!(w.w, Q::Q4_0 { .. } | Q::Q4_1 { .. } | Q::Q8_0 { .. });
        match &self.rounded {
            Some(r) if ggml && w.cols.is_multiple_of(quant::ggml::QK) => r,
            _ => self.x,
        }
    }
}

/// Scratch activations for `t` tokens.
struct Buffers {
    x: Vec<f32>,
    n: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

impl Model {
    /// Runs `tokens` at positions `cache.len()..cache.len() + tokens.len()`, appends their
    /// keys and values to `cache`, and returns the logits of the inputs from index
    /// `logits_from` on (pass `tokens.len() - 1` for the last only, `tokens.len()` for none).
    /// With a `probe`, also accumulates the attention each position receives and the
    /// layers' output norms.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary,
    /// [`Error::InvalidArgument`] for an empty input, `logits_from > tokens.len()` or a full
    /// cache, [`Error::NonFinite`] if the logits are not finite.
    pub fn forward(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        logits_from: usize,
        probe: Option<&mut Probe>,
    ) -> Result<ForwardOutput> {
        if tokens.is_empty() {
            return Err(Error::invalid("tokens", "empty input"));
        }
        if logits_from > tokens.len() {
            return Err(Error::invalid(
                "logits_from",
                format!("{logits_from} > {} tokens", tokens.len()),
            ));
        }
        cache.check_room(tokens.len())?;
        let vocab = self.config.vocab_size;
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::TokenOutOfRange { id, vocab });
        }
        self.pool
            .install(|| self.forward_inner(cache, tokens, logits_from, probe))
    }

    fn forward_inner(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        logits_from: usize,
        mut probe: Option<&mut Probe>,
    ) -> Result<ForwardOutput> {
        let c = &self.config;
        let par = self.par();
        let (t, d, kv, ff) = (tokens.len(), c.d_model, c.kv_dim(), c.ffn_dim);
        let pos0 = cache.len();
        let emu = self.llama_cpp_arithmetic;
        // The rotation angles depend only on the position: computed once, used by every layer.
        let rope_tables: Vec<_> = (0..t)
            .map(|i| rope_table(c.rope_dim, c.rope_theta, pos0 + i))
            .collect();
        let mut b = Buffers {
            x: vec![0.0; t * d],
            n: vec![0.0; t * d],
            q: vec![0.0; t * d],
            k: vec![0.0; t * kv],
            v: vec![0.0; t * kv],
            att: vec![0.0; t * d],
            tmp: vec![0.0; t * d],
            gate: vec![0.0; t * ff],
            up: vec![0.0; t * ff],
        };
        for (row, &id) in b.x.chunks_exact_mut(d).zip(tokens) {
            self.embed.w.dequantize_row(id as usize, row)?;
        }
        if let Some(p) = probe.as_deref_mut() {
            if p.attention_received.len() < pos0 + t {
                p.attention_received.resize(pos0 + t, 0.0);
            }
            p.layer_output_norm.resize(c.n_layers, 0.0);
            p.tokens += t;
            p.heads_per_query = c.n_layers * c.n_heads;
        }
        for (l, blk) in self.blocks.iter().enumerate() {
            // Attention.
            for (xr, nr) in b.x.chunks_exact(d).zip(b.n.chunks_exact_mut(d)) {
                rms_norm(xr, &blk.attn_norm, c.rms_eps, nr);
            }
            let input = Input::new(emu, &b.n);
            blk.wq
                .forward(input.for_weight(&blk.wq), t, &mut b.q, par)?;
            blk.wk
                .forward(input.for_weight(&blk.wk), t, &mut b.k, par)?;
            blk.wv
                .forward(input.for_weight(&blk.wv), t, &mut b.v, par)?;
            for (i, table) in rope_tables.iter().enumerate() {
                rope(&mut b.q[i * d..][..d], c.head_dim, table);
                rope(&mut b.k[i * kv..][..kv], c.head_dim, table);
            }
            if emu {
                b.q.iter_mut()
                    .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
            }
            cache.write(l, &b.k, &b.v, t)?;
            let received = match &self.attention_variants[l] {
                Some(var) => {
                    self.variant_attention(var, cache, l, pos0, &b.q, &mut b.att)?;
                    None
                }
                None => self.attention(cache, l, pos0, &b.q, &mut b.att, probe.is_some()),
            };
            if let (Some(p), Some(r)) = (probe.as_deref_mut(), received) {
                for (a, r) in p.attention_received.iter_mut().zip(r) {
                    *a += r;
                }
            }
            let input = Input::new(emu, &b.att);
            blk.wo
                .forward(input.for_weight(&blk.wo), t, &mut b.tmp, par)?;
            b.x.iter_mut().zip(&b.tmp).for_each(|(x, y)| *x += y);
            // Feed-forward.
            for (xr, nr) in b.x.chunks_exact(d).zip(b.n.chunks_exact_mut(d)) {
                rms_norm(xr, &blk.ffn_norm, c.rms_eps, nr);
            }
            let input = Input::new(emu, &b.n);
            blk.gate
                .forward(input.for_weight(&blk.gate), t, &mut b.gate, par)?;
            blk.up
                .forward(input.for_weight(&blk.up), t, &mut b.up, par)?;
            for (g, u) in b.gate.iter_mut().zip(&b.up) {
                *g = *g / (1.0 + (-*g).exp()) * u;
            }
            let input = Input::new(emu, &b.gate);
            blk.down
                .forward(input.for_weight(&blk.down), t, &mut b.tmp, par)?;
            b.x.iter_mut().zip(&b.tmp).for_each(|(x, y)| *x += y);
            if let Some(p) = probe.as_deref_mut() {
                p.layer_output_norm[l] +=
                    b.x.chunks_exact(d)
                        .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
                        .sum::<f64>();
            }
        }
        cache.advance(t);
        let rows = t - logits_from;
        let mut logits = vec![0.0f32; rows * c.vocab_size];
        if rows > 0 {
            let xs = &b.x[logits_from * d..];
            let ns = &mut b.n[..rows * d];
            for (xr, nr) in xs.chunks_exact(d).zip(ns.chunks_exact_mut(d)) {
                rms_norm(xr, &self.output_norm, c.rms_eps, nr);
            }
            let head = self.head();
            let input = Input::new(emu, ns);
            head.forward(input.for_weight(head), rows, &mut logits, par)?;
            if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: "logits",
                    position: pos0 + logits_from + i / c.vocab_size,
                });
            }
        }
        Ok(ForwardOutput {
            logits,
            rows,
            vocab: c.vocab_size,
        })
    }

    /// Causal attention of the `t` queries in `q` (`[t, n_heads·head_dim]`, positions
    /// `pos0..`) over the cache of layer `l`, into `att`. With `probe`, returns the
    /// attention each cache position received, summed over heads and queries.
    fn attention(
        &self,
        cache: &KvCache,
        l: usize,
        pos0: usize,
        q: &[f32],
        att: &mut [f32],
        probe: bool,
    ) -> Option<Vec<f64>> {
        let c = &self.config;
        let (hd, nh, group) = (c.head_dim, c.n_heads, c.group_size());
        let scale = 1.0 / (hd as f32).sqrt();
        let (keys, values, stride) = (cache.keys(l), cache.values(l), cache.head_stride());
        let total = pos0 + att.len() / (nh * hd);
        // One work item per (query, head): output chunk `att[(i·nh + h)·hd..][..hd]`.
        let item = |idx: usize, out: &mut [f32], scores: &mut Vec<f32>| {
            let (i, h) = (idx / nh, idx % nh);
            let n = pos0 + i + 1;
            let g = h / group;
            let qh = &q[i * nh * hd + h * hd..][..hd];
            let kh = &keys[g * stride..][..n * hd];
            let vh = &values[g * stride..][..n * hd];
            scores.clear();
            scores.extend(kh.chunks_exact(hd).map(|k| dot(qh, k) * scale));
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f64;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += f64::from(*s);
            }
            let inv = (1.0 / sum) as f32;
            out.fill(0.0);
            for (s, v) in scores.iter_mut().zip(vh.chunks_exact(hd)) {
                *s *= inv;
                let p = *s;
                for (o, &vv) in out.iter_mut().zip(v) {
                    *o += p * vv;
                }
            }
        };
        if probe {
            let received = att
                .par_chunks_mut(hd)
                .enumerate()
                .fold(
                    || (vec![0.0f64; total], Vec::new()),
                    |(mut acc, mut scores), (idx, out)| {
                        item(idx, out, &mut scores);
                        for (a, &s) in acc.iter_mut().zip(scores.iter()) {
                            *a += f64::from(s);
                        }
                        (acc, scores)
                    },
                )
                .map(|(acc, _)| acc)
                .reduce(
                    || vec![0.0f64; total],
                    |mut a, b| {
                        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                        a
                    },
                );
            Some(received)
        } else {
            att.par_chunks_mut(hd)
                .enumerate()
                .for_each_init(Vec::new, |scores, (idx, out)| item(idx, out, scores));
            None
        }
    }
}
