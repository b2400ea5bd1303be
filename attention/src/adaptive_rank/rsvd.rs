//! Randomized truncated SVD (Halko, Martinsson & Tropp 2011, "Finding Structure with
//! Randomness", SIAM Review 53(2), arXiv:0909.4061): Algorithm 4.4 (randomized subspace
//! iteration) for the range, Algorithm 5.1 (direct SVD of the projected matrix) for the
//! factors, through ndarray-linalg's QR and divide-and-conquer SVD (`gesdd`).

use ndarray::Array2;
use ndarray_linalg::{JobSvd, QR, SVDDC};
use rand::RngExt;
use rand::rngs::StdRng;

use crate::{Error, Result};

/// Extra sample columns beyond the target rank (Halko et al. §4.2 recommend 5–10).
pub const OVERSAMPLING: usize = 8;

/// Power (subspace) iterations (Halko et al. §4.5: one or two suffice unless the spectrum
/// decays slowly; each costs two `O(c²·(k + p))` products and two QRs).
pub const POWER_ITERATIONS: usize = 1;

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn linalg(what: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Linalg {
        reason: format!("{what}: {e}").into(),
    }
}

/// An orthonormal basis of the columns of `y` (thin QR).
fn orth(y: &Array2<f64>) -> Result<Array2<f64>> {
    let (q, _) = y.qr().map_err(|e| linalg("QR", e))?;
    Ok(q)
}

/// The rank-`k` truncated SVD `A ≈ U diag(σ) Vᵀ` of `a` (`[m, n]`) by randomized subspace
/// iteration with [`OVERSAMPLING`] extra columns and [`POWER_ITERATIONS`] power steps;
/// returns `(U [m, k'], σ [k'], Vᵀ [k', n])` with `k' = min(k, m, n)`.
///
/// # Errors
///
/// [`Error::Linalg`] when LAPACK fails.
pub(crate) fn randomized_svd(
    a: &Array2<f64>,
    k: usize,
    rng: &mut StdRng,
) -> Result<(Array2<f64>, Vec<f64>, Array2<f64>)> {
    let (m, n) = a.dim();
    let k = k.min(m).min(n);
    let l = (k + OVERSAMPLING).min(m).min(n);
    let omega = Array2::from_shape_simple_fn((n, l), || gaussian(rng));
    let mut q = orth(&a.dot(&omega))?;
    for _ in 0..POWER_ITERATIONS {
        let z = orth(&a.t().dot(&q))?;
        q = orth(&a.dot(&z))?;
    }
    let b = q.t().dot(a); // [l, n]
    let (u_b, sigma, vt) = b.svddc(JobSvd::Some).map_err(|e| linalg("SVD", e))?;
    let (Some(u_b), Some(vt)) = (u_b, vt) else {
        return Err(linalg("SVD", "no singular vectors returned"));
    };
    let u = q.dot(&u_b);
    let k = k.min(sigma.len());
    Ok((
        u.slice(ndarray::s![.., ..k]).to_owned(),
        sigma.iter().take(k).copied().collect(),
        vt.slice(ndarray::s![..k, ..]).to_owned(),
    ))
}
