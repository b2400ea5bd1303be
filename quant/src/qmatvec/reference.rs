//! The slow `f64` oracle: every weight decoded on its own from the layout definition in the
//! [module docs](super), every product and sum in `f64`.

use super::{QWeight, check_weight};
use crate::ggml::QK;

/// The value of `W[r, c]`, decoded from the layout definition alone, in `f64` (exact for
/// every layout: each is at most one product of an `f32` and a small integer, plus an
/// `f16` minimum for Q4_1).
///
/// ```
/// # use quant::qmatvec::{QWeight, weight_reference};
/// let w = QWeight::U4 { packed: &[0x5A], scales: &[0.5], zeros: &[8], group: 2 };
/// assert_eq!(weight_reference(&w, 1, 2, 0, 0), 1.0); // 0.5·(10 − 8)
/// assert_eq!(weight_reference(&w, 1, 2, 0, 1), -1.5); // 0.5·(5 − 8)
/// ```
///
/// # Panics
///
/// If `r ≥ rows` or `c ≥ cols`, or the element lies outside the weight's slices.
pub fn weight_reference(w: &QWeight<'_>, rows: usize, cols: usize, r: usize, c: usize) -> f64 {
    assert!(
        r < rows && c < cols,
        "weight_reference: ({r}, {c}) outside [{rows}, {cols}]"
    );
    let e = r * cols + c;
    // Element `e` of a row-major 4-bit stream: `high_first` says which nibble holds the even
    // element.
    let nibble = |packed: &[u8], high_first: bool| {
        let b = packed[e / 2];
        if e.is_multiple_of(2) == high_first {
            b >> 4
        } else {
            b & 15
        }
    };
    match *w {
        QWeight::U8 {
            codes,
            scales,
            zeros,
            group,
        } => f64::from(scales[e / group]) * (f64::from(codes[e]) - f64::from(zeros[e / group])),
        QWeight::U4 {
            packed,
            scales,
            zeros,
            group,
        } => {
            f64::from(scales[e / group])
                * (f64::from(nibble(packed, false)) - f64::from(zeros[e / group]))
        }
        QWeight::Codebook4 {
            packed,
            absmax,
            block,
            codebook,
        } => f64::from(codebook[usize::from(nibble(packed, true))]) * f64::from(absmax[e / block]),
        QWeight::Q8_0(blocks) => {
            let b = &blocks[e / QK];
            f64::from(b.d.to_f32()) * f64::from(b.qs[e % QK])
        }
        QWeight::Q4_0(blocks) => {
            let b = &blocks[e / QK];
            f64::from(b.d.to_f32()) * (f64::from(ggml_nibble(&b.qs, e % QK)) - 8.0)
        }
        QWeight::Q4_1(blocks) => {
            let b = &blocks[e / QK];
            f64::from(b.d.to_f32()) * f64::from(ggml_nibble(&b.qs, e % QK))
                + f64::from(b.m.to_f32())
        }
        QWeight::Fp8 {
            codes,
            scales,
            kind,
        } => f64::from(scales[r]) * f64::from(kind.decode(codes[e])),
        QWeight::F32(v) => f64::from(v[e]),
    }
}

/// Element `j` of a GGML Q4 block: low nibble of `qs[j]` for `j < 16`, else the high
/// nibble of `qs[j − 16]`.
fn ggml_nibble(qs: &[u8; 16], j: usize) -> u8 {
    if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }
}

/// `y[r] = Σ_c W[r, c]·x[c]` with each weight from [`weight_reference`], accumulated in
/// `f64` (the oracle for [`super::matvec`]).
///
/// # Panics
///
/// As [`super::matvec`].
pub fn matvec_reference(w: &QWeight<'_>, rows: usize, cols: usize, x: &[f32], y: &mut [f64]) {
    matmul_reference(w, rows, cols, x, 1, y);
}

/// `Y[i, r] = Σ_c W[r, c]·X[i, c]` (`X` `[n, cols]`, `Y` `[n, rows]`, row-major), accumulated
/// in `f64` (the oracle for [`super::matmul`]).
///
/// # Panics
///
/// As [`super::matmul`].
pub fn matmul_reference(
    w: &QWeight<'_>,
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    y: &mut [f64],
) {
    check_weight(w, rows, cols);
    assert!(
        Some(x.len()) == n.checked_mul(cols) && Some(y.len()) == n.checked_mul(rows),
        "matmul_reference: x has length {}, y {}; expected n·cols = {}, n·rows = {}",
        x.len(),
        y.len(),
        n * cols,
        n * rows
    );
    for r in 0..rows {
        let wr: Vec<f64> = (0..cols)
            .map(|c| weight_reference(w, rows, cols, r, c))
            .collect();
        for i in 0..n {
            let xi = &x[i * cols..][..cols];
            y[i * rows + r] = wr.iter().zip(xi).map(|(&a, &b)| a * f64::from(b)).sum();
        }
    }
}
