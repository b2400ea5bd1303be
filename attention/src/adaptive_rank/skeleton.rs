//! The randomized-SVD low-rank path: a skeleton (CUR) approximation of the exp-score
//! matrix whose core pseudo-inverse is truncated to rank `r` by randomized SVD.
//!
//! Let `E = exp(s·QKᵀ)` (never formed). Take `c = 2r` landmark query rows `I` and key rows
//! `J` (evenly spaced, so real rows and columns of `E`) and the three pieces
//!
//! ```text
//! C = E[:, J]  [n_q, c]      W = E[I, J]  [c, c]      R = E[I, :]  [c, n_k]
//! ```
//!
//! Then `E ≈ C · W⁺_r · R` (the skeleton / CUR decomposition, e.g. Goreinov, Tyrtyshnikov
//! & Zamarashkin 1997; Drineas, Mahoney & Muthukrishnan 2008), where `W⁺_r = V_r Σ_r⁻¹ U_rᵀ`
//! is the pseudo-inverse of the rank-`r` truncated SVD of the core, computed by randomized
//! subspace iteration ([`super::rsvd`], Halko, Martinsson & Tropp 2011) through
//! ndarray-linalg's QR and `gesdd`; singular values below [`RCOND`]`·σ₁` are dropped. The
//! output rows are normalized by the approximation's own row sums:
//!
//! ```text
//! o_i = (C_i · W⁺_r · R V) / (C_i · W⁺_r · R 𝟙)
//! ```
//!
//! `R V` and `R 𝟙` come from one streaming pass of the `c` landmark queries over key
//! blocks, `C` is formed in blocks of query rows: `O(n·c·d + c²·r)` time, `O(n·d + c·(c+d))`
//! memory besides the output — the `n_q × n_k` matrix is never built. Rows are stabilized
//! by their maxima (`C` row `i` by `m_i = max_J`, `R` and `W` row `c` by `a_c = max_j`),
//! which cancel in the normalization.
//!
//! **Safeguard and log-sum-exp.** The exact row sum of `exp(s·q_i·k_j − m_i)` is at least 1
//! (some key scores at least `m_i`), so a row whose approximate sum `ρ_i = C_i W⁺_r R 𝟙` is
//! below ½ (or not finite) is recomputed exactly (`O(n·d)`; counted in
//! [`super::HeadDecision::exact_rows`]). `lse_i = m_i + ln ρ_i` (approximate; exact for the
//! recomputed rows).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::rngs::StdRng;

use super::landmarks::{ROW_BLOCK, gather, landmark_exp, landmark_pass, strided};
use super::rsvd::randomized_svd;
use crate::Result;

/// Relative threshold below which singular values of the core are dropped.
pub const RCOND: f64 = 1e-5;

/// Landmarks per unit of rank (`c = 2r`).
pub const LANDMARKS_PER_RANK: usize = 2;

/// A built skeleton approximation of one head.
pub(crate) struct Skeleton<'a> {
    /// Landmark keys `K[J]` `[c, d]`.
    k_land: Array2<f32>,
    /// `W⁺_r (R V)` `[c, d]`.
    wv: Array2<f64>,
    /// `W⁺_r (R 𝟙)` `[c]`.
    w1: Array1<f64>,
    k: ArrayView2<'a, f32>,
    v: ArrayView2<'a, f32>,
    scale: f32,
}

impl<'a> Skeleton<'a> {
    /// Builds the rank-`r` approximation (`c = 2r` landmarks, `c ≤ min(n_q, n)`).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Linalg`] when the SVD fails.
    pub(crate) fn build(
        q: ArrayView2<'_, f32>,
        k: ArrayView2<'a, f32>,
        v: ArrayView2<'a, f32>,
        r: usize,
        scale: f32,
        rng: &mut StdRng,
    ) -> Result<Self> {
        let c = LANDMARKS_PER_RANK * r;
        let q_land = gather(q, &strided(q.nrows(), c));
        let k_land = gather(k, &strided(k.nrows(), c));
        let pass = landmark_pass(q_land.view(), k, v, scale);
        // W = exp(s·Q_I K_Jᵀ − a_c), rows scaled like R's.
        let mut w = Array2::<f32>::zeros((c, c));
        ndarray::linalg::general_mat_mul(scale, &q_land, &k_land.t(), 0.0, &mut w);
        let mut w = w.mapv(f64::from);
        for (mut row, &a) in w.rows_mut().into_iter().zip(&pass.max) {
            row.mapv_inplace(|x| (x - f64::from(a)).exp());
        }
        let (u, sigma, vt) = randomized_svd(&w, r, rng)?;
        let s1 = sigma.first().copied().unwrap_or(0.0);
        let keep = sigma.iter().take_while(|&&s| s > RCOND * s1).count();
        // W⁺_r = V Σ⁻¹ Uᵀ, applied to [R V | R 𝟙].
        let mut rhs = Array2::<f64>::zeros((c, v.ncols() + 1));
        rhs.slice_mut(ndarray::s![.., ..v.ncols()])
            .assign(&pass.acc);
        rhs.column_mut(v.ncols())
            .assign(&Array1::from_vec(pass.sums.clone()));
        let mut t = u.slice(ndarray::s![.., ..keep]).t().dot(&rhs); // [keep, d+1]
        for (mut row, &s) in t.rows_mut().into_iter().zip(&sigma) {
            row.mapv_inplace(|x| x / s);
        }
        let sol = vt.slice(ndarray::s![..keep, ..]).t().dot(&t); // [c, d+1]
        let wv = sol.slice(ndarray::s![.., ..v.ncols()]).to_owned();
        let w1 = sol.column(v.ncols()).to_owned();
        Ok(Self {
            k_land,
            wv,
            w1,
            k,
            v,
            scale,
        })
    }

    /// The approximate output rows (`out` `[m, d]`) and log-sum-exps of query rows `q`
    /// (`[m, d]`); returns how many rows were recomputed exactly (module docs).
    pub(crate) fn apply(&self, q: ArrayView2<'_, f32>, out: &mut [f32], lse: &mut [f64]) -> usize {
        let d = self.wv.ncols();
        let mut exact = 0;
        for (b, qb) in q.axis_chunks_iter(Axis(0), ROW_BLOCK).enumerate() {
            let (cm, maxes) = landmark_exp(qb, self.k_land.view(), self.scale);
            let num = cm.dot(&self.wv);
            let den = cm.dot(&self.w1);
            let row0 = b * ROW_BLOCK;
            for r in 0..qb.nrows() {
                let dst = &mut out[(row0 + r) * d..(row0 + r + 1) * d];
                let rho = den[r];
                let row_ok = rho >= 0.5 && rho.is_finite();
                if row_ok {
                    for (x, &y) in dst.iter_mut().zip(num.row(r)) {
                        *x = (y / rho) as f32;
                    }
                }
                if row_ok && dst.iter().all(|x| x.is_finite()) {
                    lse[row0 + r] = f64::from(maxes[r]) + rho.ln();
                } else {
                    lse[row0 + r] = self.exact_row(qb.row(r).as_slice().expect("row"), dst);
                    exact += 1;
                }
            }
        }
        exact
    }

    /// Exact attention of one query row over all keys (`f64` sums); returns its lse.
    fn exact_row(&self, qi: &[f32], dst: &mut [f32]) -> f64 {
        let s = f64::from(self.scale);
        let scores: Vec<f64> = self
            .k
            .rows()
            .into_iter()
            .map(|kj| {
                s * qi
                    .iter()
                    .zip(kj)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>()
            })
            .collect();
        let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = scores.iter().map(|&x| (x - m).exp()).sum();
        let mut acc = vec![0.0f64; dst.len()];
        for (&sc, vj) in scores.iter().zip(self.v.rows()) {
            let p = (sc - m).exp() / sum;
            for (a, &x) in acc.iter_mut().zip(vj) {
                *a += p * f64::from(x);
            }
        }
        for (x, a) in dst.iter_mut().zip(acc) {
            *x = a as f32;
        }
        m + sum.ln()
    }
}
