//! LongNet dilated attention on the GPU (Ding et al., *LongNet: Scaling Transformers to
//! 1,000,000,000 Tokens*, 2023, [arXiv:2307.02486](https://arxiv.org/abs/2307.02486),
//! §2.2–2.3), with the semantics of [`crate::dilated::attention`]: the same segments, the
//! same head offsets ([`crate::dilated::head_offset`]), the same log-sum-exp merge of the
//! pairs and the same fully-masked convention.
//!
//! # Kernel
//!
//! One dispatch of the strided flash shader (`shaders/flash.wgsl`, see [`super::flash`])
//! per pair `(w, r)`: workgroup `(x, h, z)` attends query block `x` of segment `z` for
//! query head `h`. The gather is fused into the loads (the shader reads query row
//! `seg·w + o_h + r·u` and key/value rows `seg·w + o_h + r·t` in place, `o_h` computed in
//! the shader by the `head_offset` rule), and so are the merge and the scatter: each row's
//! result `(o_p, lse_p)` is combined in the epilogue with the `(out, lse)` already in the
//! output buffers, `lse = ln(e^lse_a + e^lse_p)`, `out = e^(lse_a−lse)·out + e^(lse_p−lse)·o_p`
//! (one invocation owns each row within a pair, and the pairs are successive dispatches,
//! so there is no race). Nothing is gathered into separate buffers. Dispatches of more
//! than 65 535 segments are split.
//!
//! Limits and precision as [`super::flash`] (`d ≤ 128`, `u32` sizes and positions, the
//! merge in `f32`).

use crate::dilated::DilatedParams;
use crate::gpu::Gpu;
use crate::gpu::flash::{
    Buffers, Launch, NEG_SENTINEL, check_common, dispatch, read_output, to_u32, upload_valid,
};
use crate::shape::{Mask, Output, Shape};
use crate::{Error, Result};

/// LongNet dilated attention on the GPU (see the module docs): the result of
/// [`crate::dilated::attention`] (up to `f32` rounding), without its CPU `FlashParams`.
/// `scale` defaults to `1/sqrt(d)`.
///
/// # Errors
///
/// - [`Error::Shape`] for inconsistent shapes, slice or mask lengths, `d > 128`, or sizes
///   or positions (`q_offset + n_q + w`) beyond `u32` or the device's binding limit;
/// - [`Error::InvalidParams`] for bad pairs (see [`DilatedParams::new`]), a non-finite
///   `scale` or a `q_offset + n_q` overflow;
/// - [`Error::Gpu`] when the device rejects the pipeline or a dispatch.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    gpu: &Gpu,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &DilatedParams,
) -> Result<Output> {
    let scale = check_common(gpu, q, k, v, shape, mask, scale)?;
    // DilatedParams::check is crate-private: re-check the same invariants here.
    crate::dilated::DilatedParams::new(
        &params.pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        &params.pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
    )?;
    if shape.n_q == 0 {
        return Ok(Output {
            out: Vec::new(),
            lse: Vec::new(),
        });
    }
    let q_start = mask.q_offset;
    let q_end = q_start + shape.n_q;
    let n_q = to_u32("n_q", shape.n_q)?;
    let q_offset = to_u32("q_offset", q_start)?;
    let qb = gpu.upload("dilated/q", q);
    let kb = gpu.upload("dilated/k", k);
    let vb = gpu.upload("dilated/v", v);
    let valid = upload_valid(gpu, mask);
    let out = gpu.zeros("dilated/out", 4 * shape.q_len());
    let lse = gpu.upload("dilated/lse", &vec![NEG_SENTINEL; shape.heads * shape.n_q]);
    let bufs = Buffers {
        q: &qb,
        k: &kb,
        v: &vb,
        valid: valid.as_ref(),
        out: &out,
        lse: &lse,
    };
    for &(w, r) in &params.pairs {
        // Every position the shader forms (segment end included) must fit u32.
        q_end
            .max(shape.n_k)
            .checked_add(w)
            .filter(|&x| u32::try_from(x).is_ok())
            .ok_or_else(|| {
                Error::shape(format!(
                    "positions up to {} + segment {w} do not fit u32",
                    q_end.max(shape.n_k)
                ))
            })?;
        let seg0 = q_start / w;
        let seg_last = (q_end - 1) / w;
        let launch = Launch {
            heads: to_u32("heads", shape.heads)?,
            kv_heads: to_u32("kv_heads", shape.kv_heads)?,
            n_q,
            n_k: to_u32("n_k", shape.n_k)?,
            d: to_u32("d", shape.d)?,
            q_offset,
            causal: mask.causal,
            scale,
            w: to_u32("w", w)?,
            r: to_u32("r", r)?,
            merge: true,
            seg0: to_u32("segment", seg0)?,
            segments: to_u32("segments", seg_last - seg0 + 1)?,
            rows_per_segment: to_u32("rows", w.div_ceil(r).min(shape.n_q))?,
        };
        dispatch(gpu, &bufs, &launch)?;
    }
    read_output(gpu, &out, &lse, shape)
}
