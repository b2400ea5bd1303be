//! The slow `f64` oracle of Infini-attention: every query rebuilds its memory from scratch,
//! token by token, and computes its local attention row by row.

use super::{InfiniParams, MemoryUpdate, check_call};
use crate::{Mask, Output, Result, Shape, default_scale};

/// `σ(x) = ELU(x) + 1` in `f64`.
fn sigma(x: f32) -> f64 {
    let x = f64::from(x);
    if x > 0.0 { x + 1.0 } else { x.exp() }
}

/// Infini-attention in `f64` (same arguments, errors and conventions as
/// [`super::attention`]): for each query head and row, the memory `M`, `z` of its key/value
/// head is rebuilt from segment 0 by applying the update rule one complete segment at a time
/// (each segment's correction term uses the state before that segment), then
/// `A = sigmoid(β)·σ(q)M/(σ(q)z) + (1 − sigmoid(β))·A_dot` with the local softmax `A_dot`
/// over the keys of the query's segment up to its position. Products and sums in `f64`,
/// the output rounded to `f32` once. Cost `O(n_q·n_k·d²)` per head: tests only.
///
/// # Errors
///
/// As [`super::attention`].
pub fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &InfiniParams,
) -> Result<Output> {
    check_call(q, k, v, shape, mask, params)?;
    let Shape {
        heads, n_q, n_k, d, ..
    } = shape;
    let scale = f64::from(scale.unwrap_or_else(|| default_scale(d)));
    let seg = params.segment;
    let gate = |h: usize| {
        let b = match params.beta.len() {
            0 => 0.0,
            1 => f64::from(params.beta[0]),
            _ => f64::from(params.beta[h]),
        };
        1.0 / (1.0 + (-b).exp())
    };
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; heads * n_q];
    for h in 0..heads {
        let g = shape.kv_head(h);
        let key = |j: usize| &k[(g * n_k + j) * d..][..d];
        let val = |j: usize| &v[(g * n_k + j) * d..][..d];
        let valid = |j: usize| mask.key_valid.is_none_or(|m| m[j]);
        for i in 0..n_q {
            let p = mask.q_offset + i;
            let s = p / seg;
            // The memory after segments 0..s, from scratch.
            let mut m = vec![0.0f64; d * d];
            let mut z = vec![0.0f64; d];
            for t in 0..s {
                let keys: Vec<usize> = (t * seg..(t + 1) * seg).filter(|&j| valid(j)).collect();
                let mut writes: Vec<(Vec<f64>, Vec<f64>)> = Vec::with_capacity(keys.len());
                for &j in &keys {
                    let phi: Vec<f64> = key(j).iter().map(|&x| sigma(x)).collect();
                    let mut w: Vec<f64> = val(j).iter().map(|&x| f64::from(x)).collect();
                    if params.update == MemoryUpdate::Delta {
                        let den: f64 = phi.iter().zip(&z).map(|(a, b)| a * b).sum();
                        if den > 0.0 {
                            for (c, wc) in w.iter_mut().enumerate() {
                                let r: f64 = (0..d).map(|a| phi[a] * m[a * d + c]).sum();
                                *wc -= r / den;
                            }
                        }
                    }
                    writes.push((phi, w));
                }
                for (phi, w) in &writes {
                    for a in 0..d {
                        for c in 0..d {
                            m[a * d + c] += phi[a] * w[c];
                        }
                        z[a] += phi[a];
                    }
                }
            }
            let qi = &q[(h * n_q + i) * d..][..d];
            let phi_q: Vec<f64> = qi.iter().map(|&x| sigma(x)).collect();
            let den: f64 = phi_q.iter().zip(&z).map(|(a, b)| a * b).sum();
            let a_mem: Vec<f64> = (0..d)
                .map(|c| {
                    if den > 0.0 {
                        (0..d).map(|a| phi_q[a] * m[a * d + c]).sum::<f64>() / den
                    } else {
                        0.0
                    }
                })
                .collect();
            // Local causal softmax over [s·seg, p].
            let local: Vec<(usize, f64)> = (s * seg..=p)
                .filter(|&j| valid(j))
                .map(|j| {
                    let dot: f64 = qi
                        .iter()
                        .zip(key(j))
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    (j, scale * dot)
                })
                .collect();
            let mut a_dot = vec![0.0f64; d];
            if let Some(max) = local.iter().map(|x| x.1).reduce(f64::max) {
                let l = max + local.iter().map(|x| (x.1 - max).exp()).sum::<f64>().ln();
                lse[h * n_q + i] = l;
                for &(j, sc) in &local {
                    let w = (sc - l).exp();
                    for (a, &x) in a_dot.iter_mut().zip(val(j)) {
                        *a += w * f64::from(x);
                    }
                }
            }
            let gh = gate(h);
            for (c, o) in out[(h * n_q + i) * d..][..d].iter_mut().enumerate() {
                *o = (gh * a_mem[c] + (1.0 - gh) * a_dot[c]) as f32;
            }
        }
    }
    Ok(Output { out, lse })
}
