//! Sampled query rows: their exact attention rows, outputs and entropy statistics, and the
//! error metric.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::Mask;
use crate::adaptive_precision::exp::exp_shifted_sum;

/// Sampled rows processed per GEMM (bounds the score scratch to `64 × n_k`).
const CHUNK: usize = 64;

/// Draws `count` distinct rows of `0..n` (a partial Fisher–Yates shuffle), followed by up
/// to `count` more distinct rows (the holdout); returns `(sample, holdout)`, both sorted.
pub(crate) fn draw_rows(n: usize, count: usize, rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let s = count.min(n);
    let t = count.min(n - s);
    let mut idx: Vec<usize> = (0..n).collect();
    for a in 0..s + t {
        let b = rng.random_range(a..n);
        idx.swap(a, b);
    }
    let mut sample = idx[..s].to_vec();
    let mut holdout = idx[s..s + t].to_vec();
    sample.sort_unstable();
    holdout.sort_unstable();
    (sample, holdout)
}

/// The exact attention of some query rows of one head.
pub(crate) struct ExactRows {
    /// `[rows, d]`: exact outputs (`f32` GEMMs, `f64` softmax sums).
    pub(crate) out: Vec<f32>,
    /// Normalized entropy of each row that sees at least one key (`H / ln #visible`, 0
    /// for a single visible key).
    pub(crate) entropies: Vec<f64>,
    /// Sum over the rows of their attention distributions (`[n_k]`), for the global
    /// entropy.
    pub(crate) mean_dist: Vec<f64>,
}

/// Computes the exact attention rows `rows` of one head (`q` `[n_q, d]`, `k`, `v`
/// `[n_k, d]`): `O(rows · n_k · d)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn exact_rows(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d: usize,
    n_k: usize,
    mask: Mask<'_>,
    scale: f32,
    rows: &[usize],
) -> ExactRows {
    let mut out = vec![0.0f32; rows.len() * d];
    let mut entropies = Vec::with_capacity(rows.len());
    let mut mean_dist = vec![0.0f64; n_k];
    if n_k == 0 || rows.is_empty() {
        return ExactRows {
            out,
            entropies,
            mean_dist,
        };
    }
    let kv = ArrayView2::from_shape((n_k, d), k).expect("k");
    let vv = ArrayView2::from_shape((n_k, d), v).expect("v");
    for (c, chunk) in rows.chunks(CHUNK).enumerate() {
        let m = chunk.len();
        let mut qs = Array2::<f32>::zeros((m, d));
        for (r, &i) in chunk.iter().enumerate() {
            qs.row_mut(r)
                .as_slice_mut()
                .expect("contiguous")
                .copy_from_slice(&q[i * d..(i + 1) * d]);
        }
        let mut s = Array2::<f32>::zeros((m, n_k));
        general_mat_mul(scale, &qs, &kv.t(), 0.0, &mut s);
        for (r, &i) in chunk.iter().enumerate() {
            let mut row = s.row_mut(r);
            let row = row.as_slice_mut().expect("contiguous");
            let mut max = f32::NEG_INFINITY;
            let mut visible = 0usize;
            for (j, x) in row.iter_mut().enumerate() {
                if mask.allows(i, j) {
                    max = max.max(*x);
                    visible += 1;
                } else {
                    *x = f32::NEG_INFINITY;
                }
            }
            if visible == 0 {
                row.fill(0.0);
                continue;
            }
            let sum = f64::from(exp_shifted_sum(row, max));
            let mut h = 0.0f64;
            for (j, x) in row.iter_mut().enumerate() {
                let p = f64::from(*x) / sum;
                *x = p as f32;
                if p > 0.0 {
                    h -= p * p.ln();
                    mean_dist[j] += p;
                }
            }
            entropies.push(if visible > 1 {
                (h / (visible as f64).ln()).clamp(0.0, 1.0)
            } else {
                0.0
            });
        }
        let mut o = Array2::<f32>::zeros((m, d));
        general_mat_mul(1.0, &s, &vv, 0.0, &mut o);
        out[c * CHUNK * d..(c * CHUNK + m) * d].copy_from_slice(o.as_slice().expect("std"));
    }
    ExactRows {
        out,
        entropies,
        mean_dist,
    }
}

/// Entropy statistics of a head from its sampled rows.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EntropyStats {
    /// Normalized entropy of the mean attention distribution of the sampled rows.
    pub(crate) global: f64,
    /// Mean of the rows' normalized entropies.
    pub(crate) local_mean: f64,
    /// Population variance of the rows' normalized entropies.
    pub(crate) local_var: f64,
}

impl EntropyStats {
    /// Statistics of `rows`; all zero when no sampled row sees a key.
    pub(crate) fn of(rows: &ExactRows) -> Self {
        let m = rows.entropies.len();
        if m == 0 {
            return Self::default();
        }
        let mean = rows.entropies.iter().sum::<f64>() / m as f64;
        let var = rows
            .entropies
            .iter()
            .map(|h| (h - mean) * (h - mean))
            .sum::<f64>()
            / m as f64;
        let support = rows.mean_dist.iter().filter(|&&p| p > 0.0).count();
        let global = if support > 1 {
            let total: f64 = rows.mean_dist.iter().sum();
            let h: f64 = rows
                .mean_dist
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| {
                    let p = p / total;
                    -p * p.ln()
                })
                .sum();
            (h / (support as f64).ln()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            global,
            local_mean: mean,
            local_var: var,
        }
    }
}

/// The error metric of [`super`]: the relative Frobenius error of output rows,
/// `‖Õ − O‖_F / ‖O‖_F` (sums in `f64`); 0 when both are zero, `+∞` when only `O` is, and
/// `+∞` for non-finite approximations.
pub(crate) fn rel_frobenius(exact: &[f32], approx: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&e, &a) in exact.iter().zip(approx) {
        let diff = f64::from(a) - f64::from(e);
        num += diff * diff;
        den += f64::from(e) * f64::from(e);
    }
    if !num.is_finite() {
        f64::INFINITY
    } else if num == 0.0 {
        0.0
    } else if den == 0.0 {
        f64::INFINITY
    } else {
        (num / den).sqrt()
    }
}
