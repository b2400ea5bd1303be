//! The `f64` oracle of [`super::attention_with_formats`]: the same rounded operands, every
//! product and sum in `f64`.

use super::kernel::prob_scale;
use super::rounding::Rounder;
use super::{OperandFormat, RoundedHead, check_formats};
use crate::Result;
use crate::shape::{Mask, Output, Shape, default_scale};

/// Dense attention on operands rounded to `formats[h]` (one per query head), in `f64`.
///
/// Operands are rounded exactly as [`super::attention_with_formats`] rounds them (same
/// per-tensor scales, through `numerics`), then turned into `f64` and divided by their
/// scales; scores, softmax and the output are computed in `f64` as in
/// [`crate::reference::attention`]. The normalized probabilities are rounded to the head's
/// format (scaled as in the fast path: FP8 maps `p = 1` to the format's largest finite
/// value) before the product with the rounded `V`; `lse` is that of the rounded-operand
/// scores. With [`OperandFormat::F32`] for every head this is
/// [`crate::reference::attention`] up to the rounding of the probabilities to `f32`.
///
/// # Errors
///
/// [`crate::Error::Shape`] for inconsistent shapes, slice or mask lengths,
/// [`crate::Error::InvalidParams`]
/// when `formats.len() != shape.heads`.
pub fn reference_with_formats(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    formats: &[OperandFormat],
) -> Result<Output> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    check_formats(formats, shape.heads)?;
    let Shape {
        heads, n_q, n_k, d, ..
    } = shape;
    let s = f64::from(scale.unwrap_or_else(|| default_scale(d)));
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; heads * n_q];
    let mut rounder = Rounder::default();
    let mut scores = vec![0.0f64; n_k];
    let mut p32 = vec![0.0f32; n_k];
    let mut pr = vec![0.0f32; n_k];
    for (h, &format) in formats.iter().enumerate() {
        let g = shape.kv_head(h);
        let r = RoundedHead::new(
            &q[h * n_q * d..(h + 1) * n_q * d],
            &k[g * n_k * d..(g + 1) * n_k * d],
            &v[g * n_k * d..(g + 1) * n_k * d],
            format,
            &mut rounder,
        )?;
        let to64 = |x: &[f32], sigma: f32| -> Vec<f64> {
            x.iter().map(|&a| f64::from(a) / f64::from(sigma)).collect()
        };
        let (qh, kh, vh) = (
            to64(&r.q, r.q_scale),
            to64(&r.k, r.k_scale),
            to64(&r.v, r.v_scale),
        );
        let p_scale = prob_scale(format);
        for i in 0..n_q {
            let qi = &qh[i * d..(i + 1) * d];
            let mut max = f64::NEG_INFINITY;
            for (j, sc) in scores.iter_mut().enumerate() {
                *sc = if mask.allows(i, j) {
                    s * qi
                        .iter()
                        .zip(&kh[j * d..(j + 1) * d])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                } else {
                    f64::NEG_INFINITY
                };
                max = max.max(*sc);
            }
            if max == f64::NEG_INFINITY {
                continue;
            }
            let sum: f64 = scores.iter().map(|&x| (x - max).exp()).sum();
            let l = max + sum.ln();
            lse[h * n_q + i] = l;
            for (p, &sc) in p32.iter_mut().zip(&scores) {
                *p = (sc - l).exp() as f32;
            }
            rounder.round(format, &p32, p_scale, &mut pr)?;
            let oi = &mut out[(h * n_q + i) * d..(h * n_q + i + 1) * d];
            for (c, o) in oi.iter_mut().enumerate() {
                let acc: f64 = pr
                    .iter()
                    .enumerate()
                    .map(|(j, &p)| f64::from(p) * vh[j * d + c])
                    .sum();
                *o = (acc / f64::from(p_scale)) as f32;
            }
        }
    }
    Ok(Output { out, lse })
}
