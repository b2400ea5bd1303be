//! The slow, obviously-correct dense attention every variant is tested against.
//!
//! For each head `h`, query row `i`: `s_ij = scale · q_i·k_j` over the keys the mask allows,
//! `lse_i = ln Σ_j exp(s_ij)`, `o_i = Σ_j exp(s_ij − lse_i) v_j`; every product and sum in
//! `f64`, the output rounded to `f32` once. Fully-masked rows give zeros and `lse = −∞`.

use crate::Result;
use crate::shape::{Mask, Output, Shape, default_scale};

/// Dense attention in `f64`, row by row (see the module docs). `scale` defaults to
/// `1/sqrt(d)`.
///
/// # Errors
///
/// [`crate::Error::Shape`] for inconsistent shapes, slice lengths or mask length.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
) -> Result<Output> {
    mask.check(shape.n_k)?;
    attention_with(q, k, v, shape, scale, &|_, i, j| mask.allows(i, j))
}

/// [`attention`] with an arbitrary mask `allowed(head, i, j)` (the oracle of sparse
/// variants).
///
/// # Errors
///
/// [`crate::Error::Shape`] for inconsistent shapes or slice lengths.
pub fn attention_with(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    scale: Option<f32>,
    allowed: &dyn Fn(usize, usize, usize) -> bool,
) -> Result<Output> {
    shape.check(q, k, v)?;
    let Shape {
        heads, n_q, n_k, d, ..
    } = shape;
    let s = f64::from(scale.unwrap_or_else(|| default_scale(d)));
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; heads * n_q];
    let mut scores = vec![0.0f64; n_k];
    for h in 0..heads {
        let g = shape.kv_head(h);
        for i in 0..n_q {
            let qi = &q[(h * n_q + i) * d..][..d];
            let mut max = f64::NEG_INFINITY;
            for (j, sc) in scores.iter_mut().enumerate() {
                *sc = if allowed(h, i, j) {
                    let kj = &k[(g * n_k + j) * d..][..d];
                    s * qi
                        .iter()
                        .zip(kj)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                } else {
                    f64::NEG_INFINITY
                };
                max = max.max(*sc);
            }
            if max == f64::NEG_INFINITY {
                continue; // fully masked: zeros, lse −∞
            }
            let sum: f64 = scores.iter().map(|&x| (x - max).exp()).sum();
            let l = max + sum.ln();
            lse[h * n_q + i] = l;
            let oi = &mut out[(h * n_q + i) * d..][..d];
            for (c, o) in oi.iter_mut().enumerate() {
                let mut acc = 0.0f64;
                for (j, &sc) in scores.iter().enumerate() {
                    if sc > f64::NEG_INFINITY {
                        acc += (sc - l).exp() * f64::from(v[(g * n_k + j) * d + c]);
                    }
                }
                *o = acc as f32;
            }
        }
    }
    Ok(Output { out, lse })
}
