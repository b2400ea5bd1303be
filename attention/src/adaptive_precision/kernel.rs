//! The blocked CPU kernel: `f32` GEMMs on rounded operands, probabilities rounded to the
//! value format, `f32` accumulation.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::OperandFormat;
use super::exp::{exp_shifted_sum, max8};
use super::rounding::Rounder;
use crate::{Mask, Result};

/// Score-matrix entries per query block (`block rows × keys`): bounds the scratch memory
/// at 1 MiB of `f32` whatever `n_k` is.
const BLOCK_ELEMS: usize = 1 << 18;

/// Query rows per block: up to 64, fewer for long key sequences (see [`BLOCK_ELEMS`]).
pub(crate) fn block_rows(n_k: usize) -> usize {
    (BLOCK_ELEMS / n_k.max(1)).clamp(1, 64)
}

/// One head's operands, already rounded (and multiplied by their per-tensor scales).
pub(crate) struct HeadOperands<'a> {
    /// `[n_q, d]`, rounded `σ_q·Q`.
    pub(crate) q: &'a [f32],
    /// `[n_k, d]`, rounded `σ_k·K`.
    pub(crate) k: &'a [f32],
    /// `[n_k, d]`, rounded `σ_v·V` (unused by [`softmax_rows`]).
    pub(crate) v: &'a [f32],
    /// `scale / (σ_q σ_k)`: turns the raw products into the scores.
    pub(crate) score_scale: f32,
    /// `σ_v`.
    pub(crate) v_scale: f32,
}

/// Which query rows a block of [`softmax_rows`] holds.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// Rows `start .. start + len`.
    Range {
        /// First row.
        start: usize,
        /// Rows in the block.
        len: usize,
    },
    /// These rows (ascending), gathered into a contiguous block.
    Gathered(&'a [usize]),
}

impl Rows<'_> {
    fn len(self) -> usize {
        match self {
            Rows::Range { len, .. } => len,
            Rows::Gathered(ids) => ids.len(),
        }
    }

    /// The absolute index of the block's row `r`.
    fn row(self, r: usize) -> usize {
        match self {
            Rows::Range { start, .. } => start + r,
            Rows::Gathered(ids) => ids[r],
        }
    }
}

/// The normalized probabilities of a block of query rows (`qb`, `[rows, d]`, holding the
/// rows `rows` describes), written into `p` (`rows × kend`, row-major, where `kend` is the
/// returned key bound): scores by one `f32` GEMM, masked entries zero, each row divided by
/// its `f32` sum. Each row's log-sum-exp goes to `lse` (`−∞` for a fully-masked row, whose
/// probabilities are all zero). `rows` must not be empty.
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_rows(
    qb: &[f32],
    rows: Rows<'_>,
    k: &[f32],
    score_scale: f32,
    d: usize,
    n_k: usize,
    mask: Mask<'_>,
    p: &mut Vec<f32>,
    lse: &mut [f64],
) -> usize {
    let m = rows.len();
    let kend = mask.key_end(rows.row(m - 1), n_k);
    p.clear();
    p.resize(m * kend, 0.0);
    if kend == 0 {
        lse[..m].fill(f64::NEG_INFINITY);
        return 0;
    }
    let qb = ArrayView2::from_shape((m, d), &qb[..m * d]).expect("q block");
    let kb = ArrayView2::from_shape((kend, d), &k[..kend * d]).expect("k block");
    let mut s = ArrayViewMut2::from_shape((m, kend), &mut p[..]).expect("score block");
    general_mat_mul(score_scale, &qb, &kb.t(), 0.0, &mut s);
    let plain = !mask.causal && mask.key_valid.is_none();
    for (r, row) in p.chunks_exact_mut(kend).enumerate() {
        let i = rows.row(r);
        if !plain {
            for (j, x) in row.iter_mut().enumerate() {
                if !mask.allows(i, j) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        let m = max8(row);
        if m == f32::NEG_INFINITY {
            row.fill(0.0);
            lse[r] = f64::NEG_INFINITY;
            continue;
        }
        let l = exp_shifted_sum(row, m); // exp(−∞) = 0 for masked keys
        let inv = 1.0 / l;
        row.iter_mut().for_each(|x| *x *= inv);
        lse[r] = f64::from(m) + f64::from(l).ln();
    }
    kend
}

/// The per-tensor scale of the probabilities before rounding: FP8 maps `p = 1` (the
/// largest possible probability) to the format's largest finite value; the other formats
/// round `p` as is.
pub(crate) fn prob_scale(format: OperandFormat) -> f32 {
    if format.is_scaled() {
        format.max_finite()
    } else {
        1.0
    }
}

/// One head of attention on rounded operands into `out` (`[n_q, d]`) and `lse` (`[n_q]`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn head_attention(
    ops: &HeadOperands<'_>,
    format: OperandFormat,
    n_q: usize,
    n_k: usize,
    d: usize,
    mask: Mask<'_>,
    out: &mut [f32],
    lse: &mut [f64],
    rounder: &mut Rounder,
) -> Result<()> {
    let bq = block_rows(n_k);
    let p_scale = prob_scale(format);
    let out_scale = 1.0 / (p_scale * ops.v_scale);
    let mut p = Vec::new();
    let mut pr = Vec::new();
    let mut i0 = 0;
    while i0 < n_q {
        let rows = bq.min(n_q - i0);
        let kend = softmax_rows(
            &ops.q[i0 * d..(i0 + rows) * d],
            Rows::Range {
                start: i0,
                len: rows,
            },
            ops.k,
            ops.score_scale,
            d,
            n_k,
            mask,
            &mut p,
            &mut lse[i0..i0 + rows],
        );
        let ob = &mut out[i0 * d..(i0 + rows) * d];
        if kend == 0 {
            ob.fill(0.0);
        } else {
            let pb: &[f32] = if format == OperandFormat::F32 {
                &p
            } else {
                pr.resize(p.len(), 0.0);
                rounder.round(format, &p, p_scale, &mut pr)?;
                &pr
            };
            let pv = ArrayView2::from_shape((rows, kend), pb).expect("p block");
            let vb = ArrayView2::from_shape((kend, d), &ops.v[..kend * d]).expect("v block");
            let mut o = ArrayViewMut2::from_shape((rows, d), ob).expect("out block");
            general_mat_mul(out_scale, &pv, &vb, 0.0, &mut o);
        }
        i0 += rows;
    }
    Ok(())
}
