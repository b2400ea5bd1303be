//! The dense-mask oracle of dilated attention.

use super::{DilatedParams, head_offset};
use crate::reference::attention_with;
use crate::{Error, Mask, Output, Result, Shape};

/// Dilated attention by brute force: for each pair `(w, r)`, query head `h` with offset
/// `o = head_offset(h, heads, r)`, query row `i` at position `p = q_offset + i` sees key `j`
/// iff `⌊p/w⌋ = ⌊j/w⌋` (same segment), `(p mod w) mod r = o`, `(j mod w) mod r = o` and the
/// [`Mask`] allows it; the dense `f64` [`crate::reference::attention_with`] runs with that
/// mask, and the pairs are merged in `f64` by their log-sum-exps (see the module docs).
/// Cost `O(pairs·heads·n_q·n_k·d)`: tests only.
///
/// # Errors
///
/// As [`super::attention`].
pub fn oracle(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &DilatedParams,
) -> Result<Output> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    params.check()?;
    mask.q_offset
        .checked_add(shape.n_q)
        .ok_or_else(|| Error::shape("q_offset + n_q overflows"))?;
    let d = shape.d;
    let rows = shape.heads * shape.n_q;
    let mut out = vec![0.0f64; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; rows];
    for &(w, r) in &params.pairs {
        let allowed = |h: usize, i: usize, j: usize| {
            let p = mask.q_offset + i;
            let o = head_offset(h, shape.heads, r);
            p / w == j / w && (p % w) % r == o && (j % w) % r == o && mask.allows(i, j)
        };
        let part = attention_with(q, k, v, shape, scale, &allowed)?;
        for row in 0..rows {
            let l = part.lse[row];
            if l == f64::NEG_INFINITY {
                continue;
            }
            let la = lse[row];
            let total = if la == f64::NEG_INFINITY {
                l
            } else {
                let m = la.max(l);
                m + ((la - m).exp() + (l - m).exp()).ln()
            };
            let (wa, wb) = if la == f64::NEG_INFINITY {
                (0.0, 1.0)
            } else {
                ((la - total).exp(), (l - total).exp())
            };
            for (a, &b) in out[row * d..][..d]
                .iter_mut()
                .zip(&part.out[row * d..][..d])
            {
                *a = wa * *a + wb * f64::from(b);
            }
            lse[row] = total;
        }
    }
    Ok(Output {
        out: out.into_iter().map(|x| x as f32).collect(),
        lse,
    })
}
