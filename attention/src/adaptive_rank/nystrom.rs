//! The Nyström low-rank path (Xiong et al. 2021, Nyströmformer, arXiv:2102.03902).
//!
//! With `r` landmarks `Q̃`, `K̃` (means of `r` consecutive segments of the rows of `Q` and
//! `K`), the softmax matrix is approximated by
//!
//! ```text
//! softmax(s·QKᵀ) V  ≈  F · A⁺ · (B V),   F = softmax(s·Q K̃ᵀ)  [n_q, r]
//!                                        A = softmax(s·Q̃ K̃ᵀ)  [r, r]
//!                                        B = softmax(s·Q̃ Kᵀ)  [r, n_k]
//! ```
//!
//! where `A⁺` is the paper's iterative Moore–Penrose pseudo-inverse (its eq. 14, from
//! Razavi et al. 2014): `Z₀ = Aᵀ / (‖A‖₁‖A‖∞)`,
//! `Z_{j+1} = ¼ Z_j (13I − A Z_j (15I − A Z_j (7I − A Z_j)))`.
//!
//! **Two pseudo-inverses.** A singular direction of `A` with `x = σ²/(‖A‖₁‖A‖∞)` small
//! grows by only about `13/4` per step, so the paper's [`PINV_ITERATIONS`] = 6 steps invert
//! the dominant directions alone — a strong regularizer: for near-uniform attention, whose
//! `A` is close to rank one, that is essentially the mean of `V`. A rank-`r` approximation
//! with `r` above the rank of the score matrix needs the other directions too, which the
//! iteration reaches only after a few dozen `O(r³)` steps. So the builder also forms
//! the exact Moore–Penrose pseudo-inverse from an SVD (LAPACK `gesdd` through
//! ndarray-linalg), dropping singular values below [`PINV_RCOND`]`·σ₁`, and returns both
//! approximations; the rank search of [`super`] keeps whichever has the smaller error on
//! the sampled rows.
//!
//! `B V` is computed by one streaming pass over key blocks (never the `r × n_k` matrix),
//! `F` in blocks of query rows: `O(n·r·d + r³)` time and
//! `O(n·d + r·(r + d))` memory besides the output.
//!
//! **Log-sum-exp (approximate).** The same landmarks give the Nyström approximation of the
//! unnormalized kernel, `exp(s·QKᵀ) ≈ exp(s·QK̃ᵀ) exp(s·Q̃K̃ᵀ)⁺ exp(s·Q̃Kᵀ)`, whose row sums
//! are `ρ_i = e^{lseF_i} · F_i · A⁺ · exp(lseB − lseA)` (`lseA`, `lseB`, `lseF` the rows'
//! log-sum-exps; `exp(s·Q̃K̃ᵀ)⁺ = A⁺ diag(e^{−lseA})` for invertible `A`); `lse_i = ln ρ_i`.
//! Where that sum is not positive, the segment quadrature
//! `ln Σ_c |segment_c| · exp(s·q_i·k̃_c)` (each landmark key standing for its segment) is
//! used instead.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, s};
use ndarray_linalg::{JobSvd, SVDDC};

use super::landmarks::{ROW_BLOCK, landmark_exp, landmark_pass, segment_means, segments};

/// Iterations of the paper's pseudo-inverse (Xiong et al. use 6).
pub const PINV_ITERATIONS: usize = 6;

/// Singular values of `A` below this fraction of the largest are dropped from the exact
/// pseudo-inverse (the inputs are `f32`).
pub const PINV_RCOND: f64 = 1e-6;

/// A built Nyström approximation of one head.
pub(crate) struct Nystrom {
    /// Landmark keys `K̃` `[r, d]`.
    k_land: Array2<f32>,
    /// `A⁺ (B V)` `[r, d]`.
    w: Array2<f64>,
    /// `A⁺ exp(lseB − lseA − shift)` `[r]`.
    w_lse: Array1<f64>,
    /// The `shift` of `w_lse`.
    shift: f64,
    /// `ln |segment_c|` of the key segments.
    ln_seg: Vec<f64>,
    scale: f32,
}

/// Row-wise softmax of an `f64` matrix in place; returns the rows' log-sum-exps.
fn softmax_rows(x: &mut Array2<f64>) -> Vec<f64> {
    x.rows_mut()
        .into_iter()
        .map(|mut row| {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|v| (v - m).exp());
            let sum = row.sum();
            row.mapv_inplace(|v| v / sum);
            m + sum.ln()
        })
        .collect()
}

/// The paper's iterative pseudo-inverse ([`PINV_ITERATIONS`] steps, module docs); zero for
/// a zero or non-finite matrix.
pub(crate) fn iterative_pinv(a: &Array2<f64>) -> Array2<f64> {
    let r = a.nrows();
    let norm1 = a
        .columns()
        .into_iter()
        .map(|c| c.iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0f64, f64::max);
    let norm_inf = a
        .rows()
        .into_iter()
        .map(|c| c.iter().map(|x| x.abs()).sum::<f64>())
        .fold(0.0f64, f64::max);
    let denom = norm1 * norm_inf;
    if denom == 0.0 || !denom.is_finite() {
        return Array2::zeros((r, r));
    }
    let mut z = a.t().mapv(|x| x / denom);
    let eye = Array2::<f64>::eye(r);
    for _ in 0..PINV_ITERATIONS {
        let az = a.dot(&z);
        let t1 = &eye * 7.0 - &az;
        let t2 = &eye * 15.0 - az.dot(&t1);
        let t3 = &eye * 13.0 - az.dot(&t2);
        z = z.dot(&t3) * 0.25;
    }
    z
}

/// The Moore–Penrose pseudo-inverse from an SVD, singular values below
/// [`PINV_RCOND`]`·σ₁` dropped; `None` if LAPACK fails.
pub(crate) fn svd_pinv(a: &Array2<f64>) -> Option<Array2<f64>> {
    let (u, sigma, vt) = a.svddc(JobSvd::Some).ok()?;
    let (u, vt) = (u?, vt?);
    let s1 = sigma.first().copied().unwrap_or(0.0);
    let keep = sigma.iter().take_while(|&&s| s > PINV_RCOND * s1).count();
    let mut v = vt.slice(s![..keep, ..]).t().to_owned();
    for (mut col, &s) in v.columns_mut().into_iter().zip(&sigma) {
        col.mapv_inplace(|x| x / s);
    }
    Some(v.dot(&u.slice(s![.., ..keep]).t()))
}

impl Nystrom {
    /// Builds the rank-`r` approximations of one head (`q` `[n_q, d]`, `k`, `v` `[n, d]`,
    /// `1 ≤ r ≤ min(n_q, n)`): with the paper's iterative pseudo-inverse and, unless
    /// LAPACK fails, with the SVD one (module docs).
    pub(crate) fn build(
        q: ArrayView2<'_, f32>,
        k: ArrayView2<'_, f32>,
        v: ArrayView2<'_, f32>,
        r: usize,
        scale: f32,
    ) -> Vec<Self> {
        let q_land = segment_means(q, r);
        let k_land = segment_means(k, r);
        // A = softmax(s Q̃ K̃ᵀ), in f64.
        let mut a = Array2::<f32>::zeros((r, r));
        general_mat_mul(scale, &q_land, &k_land.t(), 0.0, &mut a);
        let mut a = a.mapv(f64::from);
        let lse_a = softmax_rows(&mut a);
        // B V and lse(B) by one streaming pass.
        let pass = landmark_pass(q_land.view(), k, v, scale);
        let lse_b: Vec<f64> = pass
            .max
            .iter()
            .zip(&pass.sums)
            .map(|(&m, &s)| f64::from(m) + s.ln())
            .collect();
        let mut bv = pass.acc;
        for (mut row, &s) in bv.rows_mut().into_iter().zip(&pass.sums) {
            row.mapv_inplace(|x| x / s);
        }
        let t: Vec<f64> = lse_b.iter().zip(&lse_a).map(|(b, a)| b - a).collect();
        let shift = t.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e = Array1::from_iter(t.iter().map(|x| (x - shift).exp()));
        let ln_seg: Vec<f64> = segments(k.nrows(), r)
            .into_iter()
            .map(|(_, len)| (len as f64).ln())
            .collect();
        std::iter::once(iterative_pinv(&a))
            .chain(svd_pinv(&a))
            .map(|z| Self {
                k_land: k_land.clone(),
                w: z.dot(&bv),
                w_lse: z.dot(&e),
                shift,
                ln_seg: ln_seg.clone(),
                scale,
            })
            .collect()
    }

    /// The approximate output rows (`out` `[m, d]`) and log-sum-exps of query rows `q`
    /// (`[m, d]`).
    pub(crate) fn apply(&self, q: ArrayView2<'_, f32>, out: &mut [f32], lse: &mut [f64]) {
        let d = self.w.ncols();
        for (b, qb) in q.axis_chunks_iter(ndarray::Axis(0), ROW_BLOCK).enumerate() {
            let (mut f, maxes) = landmark_exp(qb, self.k_land.view(), self.scale);
            let mut lse_f = Vec::with_capacity(f.nrows());
            for (mut row, &m) in f.rows_mut().into_iter().zip(&maxes) {
                let sum = row.sum();
                row.mapv_inplace(|x| x / sum);
                lse_f.push(f64::from(m) + sum.ln());
            }
            let o = f.dot(&self.w);
            let rho = f.dot(&self.w_lse);
            let row0 = b * ROW_BLOCK;
            for (r, orow) in o.rows().into_iter().enumerate() {
                let dst = &mut out[(row0 + r) * d..(row0 + r + 1) * d];
                for (x, &y) in dst.iter_mut().zip(orow) {
                    *x = y as f32;
                }
                lse[row0 + r] = if rho[r] > 0.0 && rho[r].is_finite() {
                    lse_f[r] + self.shift + rho[r].ln()
                } else {
                    let quad: f64 = f
                        .row(r)
                        .iter()
                        .zip(&self.ln_seg)
                        .map(|(p, l)| p * l.exp())
                        .sum();
                    lse_f[r] + quad.ln()
                };
            }
        }
    }
}
