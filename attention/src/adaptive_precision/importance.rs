//! Token importance: the attention each key receives.
//!
//! `importance_j = (1/H) Σ_h Σ_i A[h,i,j]` with `A[h,i,·]` the softmax row of query `i` in
//! head `h` — the accumulated attention score H2O (Zhang et al. 2023, "H₂O: Heavy-Hitter
//! Oracle for Efficient Generative Inference of Large Language Models", arXiv:2306.14048)
//! uses to find heavy-hitter tokens, and the per-token score `models` uses to keep
//! important tokens in a wider format. Each row sums to one, so `Σ_j importance_j` is the
//! number of query rows that see at least one key, averaged over heads (`n_q` without
//! fully-masked rows).

use super::kernel::{Rows, block_rows, softmax_rows};
use crate::Result;
use crate::shape::{Mask, Shape, default_scale};

/// The attention received by each key (`[n_k]`): `Σ_i A[h,i,j]` averaged over the query
/// heads (module docs). Scores by `f32` GEMMs in blocks of query rows, softmax in `f32`,
/// column sums accumulated in `f64`. Fully-masked rows contribute nothing. `scale`
/// defaults to `1/sqrt(d)`.
///
/// # Errors
///
/// [`crate::Error::Shape`] for inconsistent shapes, slice or mask lengths.
pub fn attention_received(
    q: &[f32],
    k: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
) -> Result<Vec<f32>> {
    shape.check(q, k, k)?;
    mask.check(shape.n_k)?;
    let Shape {
        heads, n_q, n_k, d, ..
    } = shape;
    let s = scale.unwrap_or_else(|| default_scale(d));
    let mut acc = vec![0.0f64; n_k];
    let bq = block_rows(n_k);
    let mut p = Vec::new();
    let mut lse = vec![0.0f64; bq];
    for h in 0..heads {
        let g = shape.kv_head(h);
        let qh = &q[h * n_q * d..(h + 1) * n_q * d];
        let kh = &k[g * n_k * d..(g + 1) * n_k * d];
        let mut i0 = 0;
        while i0 < n_q {
            let rows = bq.min(n_q - i0);
            let block = Rows::Range {
                start: i0,
                len: rows,
            };
            let qb = &qh[i0 * d..(i0 + rows) * d];
            let kend = softmax_rows(qb, block, kh, s, d, n_k, mask, &mut p, &mut lse);
            if kend > 0 {
                for row in p.chunks_exact(kend) {
                    for (a, &x) in acc.iter_mut().zip(row) {
                        *a += f64::from(x);
                    }
                }
            }
            i0 += rows;
        }
    }
    let inv = 1.0 / heads as f64;
    Ok(acc.into_iter().map(|a| (a * inv) as f32).collect())
}
