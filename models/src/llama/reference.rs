//! The slow, obviously-correct forward pass: plain `f64` loops over the decoded weights,
//! no cache, no threads. [`Model::forward`](super::Model::forward) is tested against it.

use super::Model;
use crate::{Error, Result};

/// `x / sqrt(mean(x²) + ε) · w` in `f64`.
fn rms_norm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let mean = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (mean + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| v * s * g).collect()
}

/// `W·x` for `W` `[rows, cols]` row-major.
fn matvec(w: &[f64], rows: usize, x: &[f64]) -> Vec<f64> {
    let cols = x.len();
    (0..rows)
        .map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum())
        .collect()
}

/// RoPE in "normal" mode on every head of `x`.
fn rope(x: &mut [f64], head_dim: usize, rope_dim: usize, theta: f64, pos: usize) {
    for head in x.chunks_exact_mut(head_dim) {
        for i in 0..rope_dim / 2 {
            let angle = pos as f64 * theta.powf(-2.0 * i as f64 / rope_dim as f64);
            let (s, c) = angle.sin_cos();
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

/// Logits `[tokens.len()][vocab]` of `tokens` (positions `0..`), computed from scratch in
/// `f64` from the model's held weights, decoded.
///
/// # Errors
///
/// [`Error::TokenOutOfRange`] for an id outside the vocabulary, [`Error::InvalidArgument`]
/// for an empty input.
pub fn forward(model: &Model, tokens: &[u32]) -> Result<Vec<Vec<f64>>> {
    let c = model.config();
    if tokens.is_empty() {
        return Err(Error::invalid("tokens", "empty input"));
    }
    let dec = |t: &quant::QuantizedTensor| -> Vec<f64> {
        t.dequantize().into_iter().map(f64::from).collect()
    };
    let to64 = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| f64::from(x)).collect() };
    let (d, hd, eps) = (c.d_model, c.head_dim, f64::from(c.rms_eps));
    let embed = dec(&model.embed.w);
    let mut xs: Vec<Vec<f64>> = Vec::with_capacity(tokens.len());
    for &id in tokens {
        if id as usize >= c.vocab_size {
            return Err(Error::TokenOutOfRange {
                id,
                vocab: c.vocab_size,
            });
        }
        xs.push(embed[id as usize * d..][..d].to_vec());
    }
    for blk in &model.blocks {
        let (wq, wk, wv, wo) = (
            dec(&blk.wq.w),
            dec(&blk.wk.w),
            dec(&blk.wv.w),
            dec(&blk.wo.w),
        );
        let (wg, wu, wd) = (dec(&blk.gate.w), dec(&blk.up.w), dec(&blk.down.w));
        let (an, fnorm) = (to64(&blk.attn_norm), to64(&blk.ffn_norm));
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let n = rms_norm(x, &an, eps);
            let mut q = matvec(&wq, d, &n);
            let mut k = matvec(&wk, c.kv_dim(), &n);
            rope(&mut q, hd, c.rope_dim, f64::from(c.rope_theta), pos);
            rope(&mut k, hd, c.rope_dim, f64::from(c.rope_theta), pos);
            qs.push(q);
            ks.push(k);
            vs.push(matvec(&wv, c.kv_dim(), &n));
        }
        for (i, x) in xs.iter_mut().enumerate() {
            let mut att = vec![0.0; d];
            for h in 0..c.n_heads {
                let g = h / c.group_size();
                let q = &qs[i][h * hd..][..hd];
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        let k = &ks[j][g * hd..][..hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, p) in e.iter().enumerate() {
                    for u in 0..hd {
                        att[h * hd + u] += p / z * vs[j][g * hd + u];
                    }
                }
            }
            let o = matvec(&wo, d, &att);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let n = rms_norm(x, &fnorm, eps);
            let g = matvec(&wg, c.ffn_dim, &n);
            let u = matvec(&wu, c.ffn_dim, &n);
            let a: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let down = matvec(&wd, d, &a);
            x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        }
    }
    let on = to64(&model.output_norm);
    let head = dec(&model.head().w);
    Ok(xs
        .iter()
        .map(|x| matvec(&head, c.vocab_size, &rms_norm(x, &on, eps)))
        .collect())
}
