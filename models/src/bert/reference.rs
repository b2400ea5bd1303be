//! A slow, obviously-correct `f64` forward pass of one sequence, to test the fast path.
//!
//! Every weight is decoded from its held format (so the reference and the fast path see
//! the same numbers) and widened to `f64`; every sum, product, LayerNorm, softmax and GELU
//! is an `f64` loop that follows the formulas in the [module docs](super) line by line.

use super::forward::gelu;
use super::{Dense, Encoder, Norm};
use crate::bert::Pooling;
use crate::{Error, Result};

fn row(t: &quant::QuantizedTensor, r: usize, cols: usize) -> Result<Vec<f64>> {
    let mut v = vec![0.0f32; cols];
    t.dequantize_row(r, &mut v)?;
    Ok(v.into_iter().map(f64::from).collect())
}

fn dense(d: &Dense, x: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
    let w: Vec<Vec<f64>> = (0..d.lin.rows)
        .map(|r| row(&d.lin.w, r, d.lin.cols))
        .collect::<Result<_>>()?;
    Ok(x.iter()
        .map(|xi| {
            w.iter()
                .zip(&d.bias)
                .map(|(wr, &b)| wr.iter().zip(xi).map(|(a, c)| a * c).sum::<f64>() + f64::from(b))
                .collect()
        })
        .collect())
}

fn layer_norm(n: &Norm, x: &mut [Vec<f64>], eps: f64) {
    for v in x {
        let h = v.len() as f64;
        let mean = v.iter().sum::<f64>() / h;
        let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / h;
        for ((a, &g), &b) in v.iter_mut().zip(&n.gamma).zip(&n.beta) {
            *a = (*a - mean) / (var + eps).sqrt() * f64::from(g) + f64::from(b);
        }
    }
}

/// The last hidden state `[ids.len()][hidden]` of one sequence (positions `0..len`).
///
/// # Errors
///
/// [`Error::TokenOutOfRange`], or [`Error::InvalidArgument`] for a sequence longer than
/// the position table.
pub fn hidden_states(enc: &Encoder, ids: &[u32]) -> Result<Vec<Vec<f64>>> {
    let c = enc.config();
    let h = c.hidden;
    if ids.len() > c.max_positions {
        return Err(Error::invalid("sequence length", "past the position table"));
    }
    let tt = row(&enc.token_type, 0, h)?;
    let mut x = Vec::with_capacity(ids.len());
    for (p, &id) in ids.iter().enumerate() {
        if id as usize >= c.vocab_size {
            return Err(Error::TokenOutOfRange {
                id,
                vocab: c.vocab_size,
            });
        }
        let w = row(&enc.word, id as usize, h)?;
        let pe = row(&enc.position, p, h)?;
        x.push((0..h).map(|j| w[j] + pe[j] + tt[j]).collect::<Vec<f64>>());
    }
    layer_norm(&enc.emb_norm, &mut x, c.layer_norm_eps);
    let (nh, dh) = (c.n_heads, c.head_dim());
    let scale = 1.0 / (dh as f64).sqrt();
    for l in &enc.layers {
        let (q, k, v) = (dense(&l.q, &x)?, dense(&l.k, &x)?, dense(&l.v, &x)?);
        let mut ctx = vec![vec![0.0f64; h]; x.len()];
        for hd in 0..nh {
            let cols = hd * dh..(hd + 1) * dh;
            for i in 0..x.len() {
                let scores: Vec<f64> = (0..x.len())
                    .map(|j| cols.clone().map(|d| q[i][d] * k[j][d]).sum::<f64>() * scale)
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in cols.clone() {
                    ctx[i][d] = (0..x.len()).map(|j| e[j] / sum * v[j][d]).sum();
                }
            }
        }
        let mut a = dense(&l.o, &ctx)?;
        for (ai, xi) in a.iter_mut().zip(&x) {
            ai.iter_mut().zip(xi).for_each(|(p, r)| *p += r);
        }
        layer_norm(&l.attn_norm, &mut a, c.layer_norm_eps);
        let mut up = dense(&l.up, &a)?;
        up.iter_mut()
            .flatten()
            .for_each(|u| *u = gelu(c.activation, *u));
        let mut out = dense(&l.down, &up)?;
        for (oi, ai) in out.iter_mut().zip(&a) {
            oi.iter_mut().zip(ai).for_each(|(p, r)| *p += r);
        }
        layer_norm(&l.out_norm, &mut out, c.layer_norm_eps);
        x = out;
    }
    Ok(x)
}

/// The sentence embedding of one sequence: pooled and, if the model says so, normalized.
///
/// # Errors
///
/// As [`hidden_states`].
pub fn embed_ids(enc: &Encoder, ids: &[u32]) -> Result<Vec<f64>> {
    let x = hidden_states(enc, ids)?;
    let c = enc.config();
    let mut e = vec![0.0f64; c.hidden];
    let rows = match c.pooling {
        Pooling::Mean => &x[..],
        Pooling::Cls => &x[..x.len().min(1)],
    };
    for r in rows {
        e.iter_mut().zip(r).for_each(|(a, v)| *a += v);
    }
    if !rows.is_empty() {
        e.iter_mut().for_each(|a| *a /= rows.len() as f64);
    }
    if c.normalize {
        let n = e.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
        e.iter_mut().for_each(|a| *a /= n);
    }
    Ok(e)
}
