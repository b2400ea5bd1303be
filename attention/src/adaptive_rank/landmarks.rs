//! Landmarks and the two streaming passes both low-rank paths are built from.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};

use crate::adaptive_precision::exp::exp_shifted_sum;

/// Keys per block of [`landmark_pass`] (bounds its scratch to `c × 1024`).
const KEY_BLOCK: usize = 1024;

/// Query rows per block when a low-rank approximation is applied to many rows.
pub(crate) const ROW_BLOCK: usize = 256;

/// The `c` segments `0..n` is cut into (consecutive, lengths differing by at most one, the
/// longer ones first), as `(start, len)`.
pub(crate) fn segments(n: usize, c: usize) -> Vec<(usize, usize)> {
    let (base, extra) = (n / c, n % c);
    let mut start = 0;
    (0..c)
        .map(|t| {
            let len = base + usize::from(t < extra);
            let seg = (start, len);
            start += len;
            seg
        })
        .collect()
}

/// The means of the rows of `x` (`[n, d]`) over `c ≤ n` consecutive segments (Nyströmformer's
/// landmarks), `[c, d]`.
pub(crate) fn segment_means(x: ArrayView2<'_, f32>, c: usize) -> Array2<f32> {
    let d = x.ncols();
    let mut out = Array2::<f32>::zeros((c, d));
    for (t, (start, len)) in segments(x.nrows(), c).into_iter().enumerate() {
        let mean = x
            .slice(s![start..start + len, ..])
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(d));
        out.row_mut(t).assign(&mean);
    }
    out
}

/// `c` evenly spaced indices of `0..n` (`⌊(2t+1)·n / 2c⌋`, the middle of each segment).
pub(crate) fn strided(n: usize, c: usize) -> Vec<usize> {
    (0..c).map(|t| ((2 * t + 1) * n) / (2 * c)).collect()
}

/// The rows `idx` of `x`.
pub(crate) fn gather(x: ArrayView2<'_, f32>, idx: &[usize]) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((idx.len(), x.ncols()));
    for (r, &i) in idx.iter().enumerate() {
        out.row_mut(r).assign(&x.row(i));
    }
    out
}

/// Landmark queries against every key, streamed over key blocks with the online-softmax
/// rescaling (Milakov & Gimelshein 2018): for each landmark `c`, its score maximum
/// `a_c = max_j s·q̃_c·k_j`, `sums_c = Σ_j exp(s·q̃_c·k_j − a_c)` and
/// `acc_c = Σ_j exp(s·q̃_c·k_j − a_c) v_j` (`[c, d]`). `O(c·n·d)` time, `O(c·1024)` scratch:
/// the `c × n` matrix is never formed.
pub(crate) struct LandmarkPass {
    pub(crate) max: Vec<f32>,
    pub(crate) sums: Vec<f64>,
    pub(crate) acc: Array2<f64>,
}

pub(crate) fn landmark_pass(
    ql: ArrayView2<'_, f32>,
    k: ArrayView2<'_, f32>,
    v: ArrayView2<'_, f32>,
    scale: f32,
) -> LandmarkPass {
    let (c, d, n) = (ql.nrows(), v.ncols(), k.nrows());
    let mut max = vec![f32::NEG_INFINITY; c];
    let mut sums = vec![0.0f64; c];
    let mut acc = Array2::<f32>::zeros((c, d));
    let mut sblk = Array2::<f32>::zeros((c, KEY_BLOCK.min(n.max(1))));
    let mut j0 = 0;
    while j0 < n {
        let kb = KEY_BLOCK.min(n - j0);
        let kblk = k.slice(s![j0..j0 + kb, ..]);
        let vblk = v.slice(s![j0..j0 + kb, ..]);
        let mut sv = sblk.slice_mut(s![.., ..kb]);
        general_mat_mul(scale, &ql, &kblk.t(), 0.0, &mut sv);
        for (r, mut row) in sv.rows_mut().into_iter().enumerate() {
            let bmax = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let new = max[r].max(bmax);
            if new > max[r] {
                let alpha = (max[r] - new).exp(); // 0 on the first block
                sums[r] *= f64::from(alpha);
                acc.row_mut(r).mapv_inplace(|x| x * alpha);
                max[r] = new;
            }
            let row = row.as_slice_mut().expect("contiguous row");
            sums[r] += f64::from(exp_shifted_sum(row, new));
        }
        general_mat_mul(1.0, &sv, &vblk, 1.0, &mut acc);
        j0 += kb;
    }
    LandmarkPass {
        max,
        sums,
        acc: acc.mapv(f64::from),
    }
}

/// `S = s·Q_rows·Lᵀ` for query rows `q` (`[m, d]`) against landmark keys `l` (`[c, d]`),
/// then per row `m_i = max_c S_ic` and `E_ic = exp(S_ic − m_i)` in place; returns
/// `(E as f64 [m, c], m)`.
pub(crate) fn landmark_exp(
    q: ArrayView2<'_, f32>,
    l: ArrayView2<'_, f32>,
    scale: f32,
) -> (Array2<f64>, Vec<f32>) {
    let mut sc = Array2::<f32>::zeros((q.nrows(), l.nrows()));
    general_mat_mul(scale, &q, &l.t(), 0.0, &mut sc);
    let mut maxes = Vec::with_capacity(q.nrows());
    for mut row in sc.rows_mut() {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        exp_shifted_sum(row.as_slice_mut().expect("contiguous row"), m);
        maxes.push(m);
    }
    (sc.mapv(f64::from), maxes)
}
