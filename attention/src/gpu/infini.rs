//! Infini-attention on the GPU (Munkhdalai, Faruqui and Gopal, *Leave No Context Behind:
//! Efficient Infinite Context Transformers with Infini-attention*, 2024,
//! [arXiv:2404.07143](https://arxiv.org/abs/2404.07143)), stateless, with the semantics of
//! [`crate::infini::attention`]: the same segments, `σ = ELU + 1`, gate `sigmoid(β_h)`,
//! linear and delta updates, and the same **first-segment convention** (the retrieved
//! value is zero wherever `σ(x)·z ≤ 0`, in retrieval and in the delta correction alike).
//!
//! # Kernels
//!
//! - The local attention of every query (causal, inside its own segment, padded keys
//!   hidden) is **one** dispatch of the strided flash shader ([`super::flash`]) with segment
//!   length `S` and dilation 1; it writes the output buffer and the local `lse`.
//! - The memories (`M`: `[kv_heads, d, d]`, `z`: `[kv_heads, d]`, zero at first) stay on the
//!   GPU; the host loops over the segments up to the last query's, in order:
//!   - queries in segment `s`: `shaders/infini_retrieve.wgsl` (mode 0, one workgroup per
//!     (row, head)) mixes `sigmoid(β_h)·σ(q)M/(σ(q)z)` into the local output in place;
//!   - a complete segment before the last query's is written by
//!     `shaders/infini_update.wgsl` (one invocation per entry of `M`), after — for the delta
//!     rule — `infini_retrieve.wgsl` in mode 1 has formed the corrected values
//!     `V − σ(K)M/(σ(K)z)` from the memory before the segment. Under the linear rule the
//!     segments before the first query's are written by one dispatch (the linear memory is
//!     a plain sum).
//!
//! Everything is `f32` (the exponentials are WGSL's `exp`).
//!
//! # Limits
//!
//! As [`super::flash`] (`d ≤ 128`, `u32` sizes, bindings within the device limit, which
//! here includes the delta rule's `[kv_heads, S, d]` scratch), plus positions
//! `n_k + S` within `u32`.

use crate::gpu::Gpu;
use crate::gpu::flash::{
    Buffers, Launch, check_binding, check_common, dispatch, read_output, to_u32, upload_valid,
};
use crate::infini::{InfiniParams, MemoryUpdate};
use crate::shape::{Mask, Output, Shape};
use crate::{Error, Result};

/// Keys one memory-update dispatch sums per invocation.
const UPDATE_CHUNK: usize = 16_384;

const RETRIEVE: &str = include_str!("shaders/infini_retrieve.wgsl");
const UPDATE: &str = include_str!("shaders/infini_update.wgsl");

/// Invocations per workgroup of both memory kernels.
const WG: u32 = 64;

/// The memories and the buffers the memory kernels read.
struct State<'a> {
    gpu: &'a Gpu,
    shape: Shape,
    k: &'a wgpu::Buffer,
    valid: Option<&'a wgpu::Buffer>,
    mem: wgpu::Buffer,
    z: wgpu::Buffer,
}

impl State<'_> {
    /// `dst` ← retrieval from `src` rows `i0 .. i0 + rows` of each of `heads` heads (see
    /// `infini_retrieve.wgsl`), in chunks of at most 65 535 rows.
    #[allow(clippy::too_many_arguments)]
    fn retrieve(
        &self,
        src: &wgpu::Buffer,
        n_src: usize,
        aux: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        (i0, rows): (usize, usize),
        heads: usize,
        group: usize,
        mode: u32,
        dst_rows: usize,
    ) -> Result<()> {
        let pipe = self.gpu.pipeline(
            "infini/retrieve",
            RETRIEVE,
            "main",
            &[("WG", f64::from(WG))],
        )?;
        let max = self
            .gpu
            .device()
            .limits()
            .max_compute_workgroups_per_dimension as usize;
        let mut done = 0;
        while done < rows {
            let n = (rows - done).min(max);
            let params: [u32; 8] = [
                to_u32("rows", n_src)?,
                to_u32("d", self.shape.d)?,
                to_u32("row", i0 + done)?,
                to_u32("group", group)?,
                mode,
                to_u32("rows", dst_rows)?,
                to_u32("row", done)?,
                0,
            ];
            let pb = self.gpu.uniform("infini/retrieve", &params);
            self.gpu.dispatch(
                "infini/retrieve",
                &pipe,
                &[src, &self.mem, &self.z, aux, dst, &pb],
                [to_u32("rows", n)?, to_u32("heads", heads)?, 1],
            )?;
            done += n;
        }
        Ok(())
    }

    /// Writes keys `k0 .. k0 + count` of every key/value head, with values `w` (row `w0`
    /// of `w_rows` per head for key `k0`).
    fn update(
        &self,
        (k0, count): (usize, usize),
        w: &wgpu::Buffer,
        w_rows: usize,
        w0: usize,
    ) -> Result<()> {
        // The update is a sum over keys, so chunks of keys add up to the same memory; the
        // shader loops over one chunk's keys per invocation, kept well inside llvmpipe's
        // loop budget (`Gpu::loop_budget`).
        let mut done = 0;
        while done < count {
            let n = (count - done).min(UPDATE_CHUNK);
            self.update_chunk((k0 + done, n), w, w_rows, w0 + done)?;
            done += n;
        }
        Ok(())
    }

    fn update_chunk(
        &self,
        (k0, count): (usize, usize),
        w: &wgpu::Buffer,
        w_rows: usize,
        w0: usize,
    ) -> Result<()> {
        let pipe = self
            .gpu
            .pipeline("infini/update", UPDATE, "main", &[("WG", f64::from(WG))])?;
        let d = self.shape.d;
        let params: [u32; 8] = [
            to_u32("n_k", self.shape.n_k)?,
            to_u32("d", d)?,
            to_u32("key", k0)?,
            to_u32("keys", count)?,
            to_u32("rows", w_rows)?,
            to_u32("row", w0)?,
            u32::from(self.valid.is_some()),
            0,
        ];
        let pb = self.gpu.uniform("infini/update", &params);
        let dummy;
        let valid = match self.valid {
            Some(b) => b,
            None => {
                dummy = self.gpu.upload("infini/no-valid", &[1u32]);
                &dummy
            }
        };
        self.gpu.dispatch(
            "infini/update",
            &pipe,
            &[self.k, w, valid, &self.mem, &self.z, &pb],
            [
                to_u32("workgroups", (d * d).div_ceil(WG as usize))?,
                to_u32("kv_heads", self.shape.kv_heads)?,
                1,
            ],
        )
    }
}

/// Infini-attention on the GPU, statelessly (see the module docs): the result of
/// [`crate::infini::attention`] up to `f32` rounding. `scale` (default `1/sqrt(d)`)
/// applies to the local attention only; `lse` is the local attention's.
///
/// # Errors
///
/// - [`Error::Shape`] for inconsistent shapes, slice or mask lengths, queries past the keys
///   (`q_offset + n_q > n_k`), `d > 128`, or sizes beyond `u32` or the device's binding
///   limit;
/// - [`Error::InvalidParams`] for a non-causal mask, a bad segment length, `beta` of the
///   wrong length or with a NaN, or a non-finite `scale`;
/// - [`Error::Gpu`] when the device rejects a pipeline or a dispatch.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    gpu: &Gpu,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &InfiniParams,
) -> Result<Output> {
    let scale = check_common(gpu, q, k, v, shape, mask, scale)?;
    if !mask.causal {
        return Err(Error::params(
            "mask",
            "Infini-attention is causal: the mask must have causal = true",
        ));
    }
    if mask.q_offset + shape.n_q > shape.n_k {
        return Err(Error::shape(format!(
            "queries at positions {}..{}+{} need keys up to there, only {} given",
            mask.q_offset, mask.q_offset, shape.n_q, shape.n_k
        )));
    }
    let gates = params.gates(shape.heads)?;
    let Shape {
        heads,
        kv_heads,
        n_q,
        n_k,
        d,
    } = shape;
    if n_q == 0 {
        return Ok(Output {
            out: Vec::new(),
            lse: Vec::new(),
        });
    }
    let seg = params.segment;
    check_binding(gpu, "memory", kv_heads * d * d)?;
    if params.update == MemoryUpdate::Delta {
        check_binding(gpu, "delta values", kv_heads * seg.min(n_k) * d)?;
    }
    n_k.checked_add(seg)
        .filter(|&x| u32::try_from(x).is_ok())
        .ok_or_else(|| Error::shape(format!("positions n_k {n_k} + segment {seg} exceed u32")))?;

    let first = mask.q_offset;
    let last = first + n_q - 1;
    let qb = gpu.upload("infini/q", q);
    let kb = gpu.upload("infini/k", k);
    let vb = gpu.upload("infini/v", v);
    let valid = upload_valid(gpu, mask);
    let out = gpu.zeros("infini/out", 4 * shape.q_len());
    let lse = gpu.zeros("infini/lse", 4 * heads * n_q);
    // Local attention: causal inside each segment.
    let seg0 = first / seg;
    dispatch(
        gpu,
        &Buffers {
            q: &qb,
            k: &kb,
            v: &vb,
            valid: valid.as_ref(),
            out: &out,
            lse: &lse,
        },
        &Launch {
            heads: to_u32("heads", heads)?,
            kv_heads: to_u32("kv_heads", kv_heads)?,
            n_q: to_u32("n_q", n_q)?,
            n_k: to_u32("n_k", n_k)?,
            d: to_u32("d", d)?,
            q_offset: to_u32("q_offset", first)?,
            causal: true,
            scale,
            w: to_u32("segment", seg)?,
            r: 1,
            merge: false,
            seg0: to_u32("segment", seg0)?,
            segments: to_u32("segments", last / seg - seg0 + 1)?,
            rows_per_segment: to_u32("rows", seg.min(n_q))?,
        },
    )?;
    let state = State {
        gpu,
        shape,
        k: &kb,
        valid: valid.as_ref(),
        mem: gpu.zeros("infini/M", 4 * kv_heads * d * d),
        z: gpu.zeros("infini/z", 4 * kv_heads * d),
    };
    let gate_buf = gpu.upload("infini/gates", &gates);
    let delta_vals = (params.update == MemoryUpdate::Delta)
        .then(|| gpu.zeros("infini/delta", 4 * kv_heads * seg.min(n_k) * d));
    let mut s = 0;
    if params.update == MemoryUpdate::Linear && seg0 > 0 {
        // The linear memory is a sum: write every segment before the first query's at once.
        state.update((0, seg0 * seg), &vb, n_k, 0)?;
        s = seg0;
    }
    while s <= last / seg {
        let start = s * seg;
        if start + seg > first {
            let lo = first.max(start);
            let hi = (last + 1).min(start + seg);
            state.retrieve(
                &qb,
                n_q,
                &gate_buf,
                &out,
                (lo - first, hi - lo),
                heads,
                shape.group(),
                0,
                n_q,
            )?;
        }
        if start + seg <= last {
            match &delta_vals {
                Some(vals) => {
                    state.retrieve(&kb, n_k, &vb, vals, (start, seg), kv_heads, 1, 1, seg)?;
                    state.update((start, seg), vals, seg, 0)?;
                }
                None => state.update((start, seg), &vb, n_k, start)?,
            }
        }
        s += 1;
    }
    read_output(gpu, &out, &lse, shape)
}
