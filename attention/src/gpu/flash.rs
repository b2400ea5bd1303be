//! Flash attention forward on the GPU (`shaders/flash.wgsl`).
//!
//! Dao, Fu, Ermon, Rudra and Ré, *FlashAttention: Fast and Memory-Efficient Exact Attention
//! with IO-Awareness* (NeurIPS 2022, [arXiv:2205.14135](https://arxiv.org/abs/2205.14135)),
//! algorithm 1, with the online softmax of Milakov and Gimelshein
//! ([arXiv:1805.02867](https://arxiv.org/abs/1805.02867)). Same semantics as
//! [`crate::flash::attention`]: `Q` `[heads, n_q, d]`, `K`/`V` `[kv_heads, n_k, d]`, grouped-
//! query attention (query head `h` reads key/value head `h / (heads / kv_heads)`), causal
//! masking with a query offset, a key-padding mask, fully-masked rows → zeros and `lse = −∞`.
//!
//! # Kernel
//!
//! One workgroup per (query head, block of [`BLOCK_Q`] query rows); each invocation owns one
//! query row (its scaled query, running maximum `m`, running sum `l` and unnormalised
//! output row, in private memory) and the workgroup walks the keys in tiles of
//! [`block_k`]`(d)` rows staged in workgroup memory (`K` and `V` tiles of 2048 `f32` each:
//! exactly the 16 KiB WebGPU guarantees). Per tile: scores `s = scale·q·k` (masked keys
//! skipped), `m' = max(m, max s)`, `l ← e^(m−m')·l + Σ e^(s−m')`,
//! `o ← e^(m−m')·o + Σ e^(s−m')·v`; at the end `o / l` and `lse = m + ln l`. Causal query
//! blocks stop at the last key their last row may see. Both block sizes are WGSL `override`
//! constants (`BQ`, `BK`).
//!
//! The same shader is strided: with a segment length `w` and dilation `r` each workgroup
//! attends the rows `seg·w + o_h + r·t` of one segment, which is how
//! [`super::dilated`] and [`super::infini`] use it.
//!
//! # Limits and precision
//!
//! - `d ≤` [`MAX_D`] (the private accumulators are arrays of 128 `f32`): larger `d` is an
//!   [`Error::Shape`].
//! - Every count (`n_q`, `n_k`, `q_offset + n_q`, element counts) must fit `u32`, each of
//!   `Q`, `K`, `V` and the output within the device's `max_storage_buffer_binding_size`
//!   (128 MiB by default): larger calls are an [`Error::Shape`] (split them by heads).
//! - `lse` is computed in `f32`; the shader marks a fully-masked row with the sentinel
//!   [`NEG_SENTINEL`] (`−3·10³⁸`: WGSL has no infinity literal), which [`attention`] returns
//!   as `f64::NEG_INFINITY`. Inputs must be finite and scores far above `−10³⁸`.
//! - Accumulation is `f32` with `fma` in key order: against the `f64` reference the error
//!   is that of `f32` dot products of length `d` and `n_k`-term sums (the tests allow
//!   `1e-5 · max|v|`).
//! - Utilisation: one invocation per query row, so decoding (`n_q = 1`) keeps one
//!   invocation of each workgroup busy.

use crate::gpu::Gpu;
use crate::shape::{Mask, Output, Shape, default_scale};
use crate::{Error, Result};

/// The shader.
pub(crate) const SOURCE: &str = include_str!("shaders/flash.wgsl");

/// Largest head dimension the kernel accepts.
pub const MAX_D: usize = 128;

/// Query rows per workgroup (= invocations per workgroup, the `BQ` override).
pub const BLOCK_Q: usize = 64;

/// `f32` of each workgroup-memory tile (`K` and `V`: 2 × 8 KiB).
const TILE: usize = 2048;

/// Largest key tile (the private score array of the shader).
const BK_MAX: usize = 64;

/// What the shader writes as the `lse` of a fully-masked row (read back as `−∞`).
pub const NEG_SENTINEL: f32 = -3.0e38;

/// Keys per tile for head dimension `d` (the `BK` override): `min(64, 2048 / d)`, so the
/// `K` and `V` tiles fill at most 16 KiB of workgroup memory.
pub fn block_k(d: usize) -> usize {
    (TILE / d.max(1)).clamp(1, BK_MAX)
}

/// An `f32` log-sum-exp from the shader as `f64` (the sentinel as `−∞`).
pub(crate) fn lse_to_f64(x: f32) -> f64 {
    if x <= NEG_SENTINEL * 0.5 {
        f64::NEG_INFINITY
    } else {
        f64::from(x)
    }
}

/// `x` as `u32`, or a shape error naming it.
pub(crate) fn to_u32(what: &str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::shape(format!("{what} = {x} does not fit u32")))
}

/// Checks that a binding of `elems` 4-byte elements fits the device.
pub(crate) fn check_binding(gpu: &Gpu, what: &str, elems: usize) -> Result<()> {
    let max = gpu.device().limits().max_storage_buffer_binding_size;
    let bytes = (elems as u64).saturating_mul(4);
    to_u32(what, elems)?;
    if bytes > max {
        return Err(Error::shape(format!(
            "{what} needs {bytes} bytes, above the device's storage binding limit of {max} \
             (split the call by heads)"
        )));
    }
    Ok(())
}

/// Checks `d` against [`MAX_D`].
pub(crate) fn check_d(d: usize) -> Result<()> {
    if d > MAX_D {
        return Err(Error::shape(format!(
            "d = {d}: the GPU kernels support d ≤ {MAX_D}"
        )));
    }
    Ok(())
}

/// The buffers of one launch.
pub(crate) struct Buffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub k: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
    /// One `u32` per key position (non-zero: valid), or `None`.
    pub valid: Option<&'a wgpu::Buffer>,
    pub out: &'a wgpu::Buffer,
    pub lse: &'a wgpu::Buffer,
}

/// One (strided) launch of the shader over segments `seg0 .. seg0 + segments`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Launch {
    pub heads: u32,
    pub kv_heads: u32,
    pub n_q: u32,
    pub n_k: u32,
    pub d: u32,
    pub q_offset: u32,
    pub causal: bool,
    pub scale: f32,
    /// Segment length.
    pub w: u32,
    /// Dilation.
    pub r: u32,
    pub merge: bool,
    pub seg0: u32,
    pub segments: u32,
    /// Most query rows one segment holds for one head.
    pub rows_per_segment: u32,
}

/// Dispatches `launch` (chunks of at most 65 535 segments; does not wait).
pub(crate) fn dispatch(gpu: &Gpu, bufs: &Buffers<'_>, launch: &Launch) -> Result<()> {
    let d = launch.d as usize;
    let bk = block_k(d);
    let pipe = gpu.pipeline(
        "flash",
        SOURCE,
        "main",
        &[("BQ", BLOCK_Q as f64), ("BK", bk as f64)],
    )?;
    let q_end = launch
        .q_offset
        .checked_add(launch.n_q)
        .ok_or_else(|| Error::shape("q_offset + n_q does not fit u32"))?;
    let x = to_u32(
        "query blocks",
        (launch.rows_per_segment as usize).div_ceil(BLOCK_Q),
    )?;
    let dummy;
    let valid = match bufs.valid {
        Some(b) => b,
        None => {
            dummy = gpu.upload("flash/no-valid", &[1u32]);
            &dummy
        }
    };
    // Loop iterations one invocation runs (see `flash.wgsl`): per key of its segment two
    // key loops and 2·⌈d/16⌉ chunk loops, plus the tile loads, per tile one loop step.
    let seg_keys = u64::from(launch.w.min(launch.n_k)).div_ceil(u64::from(launch.r.max(1)));
    let d16 = (d as u64).div_ceil(16);
    let per_key = 2 + 2 * d16 + (d as u64).div_ceil(BLOCK_Q as u64);
    gpu.check_loop_budget(
        "flash attention",
        seg_keys * per_key + seg_keys.div_ceil(bk as u64) + 8 * d16,
    )?;
    let max_z = gpu.device().limits().max_compute_workgroups_per_dimension;
    let mut done = 0u32;
    while done < launch.segments {
        let count = (launch.segments - done).min(max_z);
        let params: [u32; 16] = [
            launch.heads,
            launch.heads / launch.kv_heads.max(1),
            launch.n_q,
            launch.n_k,
            launch.d,
            launch.q_offset,
            u32::from(launch.causal),
            u32::from(bufs.valid.is_some()),
            launch.scale.to_bits(),
            launch.w,
            launch.r,
            u32::from(launch.merge),
            launch.seg0 + done,
            q_end,
            0,
            0,
        ];
        let pb = gpu.uniform("flash/params", &params);
        gpu.dispatch(
            "flash",
            &pipe,
            &[bufs.q, bufs.k, bufs.v, valid, bufs.out, bufs.lse, &pb],
            [x, launch.heads, count],
        )?;
        done += count;
    }
    Ok(())
}

/// Checks the shared preconditions of the GPU attention calls and returns the scale.
pub(crate) fn check_common(
    gpu: &Gpu,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
) -> Result<f32> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    check_d(shape.d)?;
    if mask.q_offset.checked_add(shape.n_q).is_none() {
        return Err(Error::params(
            "q_offset",
            format!("{} + n_q {} overflows", mask.q_offset, shape.n_q),
        ));
    }
    let scale = scale.unwrap_or_else(|| default_scale(shape.d));
    if !scale.is_finite() {
        return Err(Error::params("scale", format!("{scale} is not finite")));
    }
    check_binding(gpu, "Q", shape.q_len())?;
    check_binding(gpu, "K", shape.kv_len())?;
    to_u32("heads", shape.heads)?;
    to_u32("n_q", shape.n_q)?;
    to_u32("n_k", shape.n_k)?;
    Ok(scale)
}

/// The key-padding mask as one `u32` per key, uploaded (or `None`).
pub(crate) fn upload_valid(gpu: &Gpu, mask: Mask<'_>) -> Option<wgpu::Buffer> {
    mask.key_valid.map(|m| {
        let words: Vec<u32> = m.iter().map(|&b| u32::from(b)).collect();
        gpu.upload("flash/valid", &words)
    })
}

/// Reads `(out, lse)` back into an [`Output`].
pub(crate) fn read_output(
    gpu: &Gpu,
    out: &wgpu::Buffer,
    lse: &wgpu::Buffer,
    shape: Shape,
) -> Result<Output> {
    let out_v: Vec<f32> = gpu.read(out, shape.q_len())?;
    let lse_v: Vec<f32> = gpu.read(lse, shape.heads * shape.n_q)?;
    Ok(Output {
        out: out_v,
        lse: lse_v.into_iter().map(lse_to_f64).collect(),
    })
}

/// Exact attention `softmax(scale·QKᵀ + M)·V` on the GPU with each row's log-sum-exp (see
/// the module docs); the semantics of [`crate::flash::attention`]. `scale` defaults to
/// `1/sqrt(d)`.
///
/// # Errors
///
/// - [`Error::Shape`] for inconsistent shapes, slice or mask lengths, `d >` [`MAX_D`], or
///   sizes beyond `u32` or the device's storage-binding limit;
/// - [`Error::InvalidParams`] for a non-finite `scale` or a `q_offset + n_q` overflow;
/// - [`Error::Gpu`] when the device rejects the pipeline or the dispatch.
pub fn attention(
    gpu: &Gpu,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
) -> Result<Output> {
    let scale = check_common(gpu, q, k, v, shape, mask, scale)?;
    if shape.n_q == 0 {
        return Ok(Output {
            out: Vec::new(),
            lse: Vec::new(),
        });
    }
    // Past n_k the causal limit hides nothing: clamp so the offset fits u32.
    let q_offset = if mask.causal {
        mask.q_offset.min(shape.n_k)
    } else {
        0
    };
    let n_q = to_u32("n_q", shape.n_q)?;
    let q_offset = to_u32("q_offset", q_offset)?;
    let q_end = q_offset
        .checked_add(n_q)
        .ok_or_else(|| Error::shape("q_offset + n_q does not fit u32"))?;
    let n_k = to_u32("n_k", shape.n_k)?;
    let qb = gpu.upload("flash/q", q);
    let kb = gpu.upload("flash/k", k);
    let vb = gpu.upload("flash/v", v);
    let valid = upload_valid(gpu, mask);
    let out = gpu.zeros("flash/out", 4 * shape.q_len());
    let lse = gpu.zeros("flash/lse", 4 * shape.heads * shape.n_q);
    let bufs = Buffers {
        q: &qb,
        k: &kb,
        v: &vb,
        valid: valid.as_ref(),
        out: &out,
        lse: &lse,
    };
    let launch = Launch {
        heads: to_u32("heads", shape.heads)?,
        kv_heads: to_u32("kv_heads", shape.kv_heads)?,
        n_q,
        n_k,
        d: to_u32("d", shape.d)?,
        q_offset,
        causal: mask.causal,
        scale,
        // One segment holding every query and key position.
        w: q_end.max(n_k).max(1),
        r: 1,
        merge: false,
        seg0: 0,
        segments: 1,
        rows_per_segment: n_q,
    };
    dispatch(gpu, &bufs, &launch)?;
    read_output(gpu, &out, &lse, shape)
}
