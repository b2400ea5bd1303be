//! `C = A·B` on the GPU: a tiled WGSL matrix multiply with workgroup-memory staging and
//! register blocking, in f32 and three 16-bit storage variants.
//!
//! The kernel is the classic shared-memory tiling (Volkov & Demmel, *Benchmarking GPUs to
//! tune dense linear algebra*, SC 2008; the CUDA C Programming Guide's tiled `MatMul`): each
//! workgroup computes a `64 × 64` tile of `C` (override constants `TILE_M`, `TILE_N`),
//! stepping through `k` in slices of 16 (`TILE_K`) staged in workgroup memory (8 KiB, inside
//! WebGPU's default 16 KiB); each of its 256 invocations accumulates a `4 × 4` register block.
//! Loads and stores are bounds-checked, so any `m`, `k`, `n` work.
//!
//! [`Storage`] picks how `A` and `B` live on the device (the result is always `f32`):
//! - [`Storage::F32`]: `f32`, `f32` math (`shaders/matmul.wgsl`);
//! - [`Storage::F16Native`]: `array<f16>` with `enable f16;`, products in f16, sums in f32
//!   (`shaders/matmul_f16.wgsl`; needs `SHADER_F16`, see [`GpuInfo`](super::GpuInfo));
//! - [`Storage::PackedF16`], [`Storage::PackedBf16`]: two 16-bit values per `u32`, unpacked
//!   in the shader by shifts (IEEE half as `unpack2x16float` would decode it, bfloat16 into
//!   the top of an `f32`), f32 math
//!   (`shaders/matmul_packed.wgsl`; runs on any adapter).
//!
//! The host API rounds the `f32` inputs to the storage format (round to nearest even);
//! [`matmul_buffers`] and [`matmul_buffers_with`] only dispatch, for benches and callers that
//! keep their operands on the device.

use super::Gpu;
use crate::{Error, Result};

const SRC_F32: &str = include_str!("shaders/matmul.wgsl");
const SRC_F16: &str = include_str!("shaders/matmul_f16.wgsl");
const SRC_PACKED: &str = include_str!("shaders/matmul_packed.wgsl");

/// Rows of `C` per workgroup (`TILE_M`).
pub const TILE_M: u32 = 64;
/// Columns of `C` per workgroup (`TILE_N`).
pub const TILE_N: u32 = 64;
/// Depth of one staged slice (`TILE_K`).
pub const TILE_K: u32 = 16;

/// How `A` and `B` are stored on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// `f32`.
    F32,
    /// Native `f16` (`enable f16;`): needs `SHADER_F16`.
    F16Native,
    /// IEEE half, two per `u32`, decoded with shifts (no `SHADER_F16` needed).
    PackedF16,
    /// bfloat16, two per `u32`, decoded with a shift.
    PackedBf16,
}

impl Storage {
    /// Bytes per element of `A` or `B`.
    pub fn element_bytes(self) -> usize {
        match self {
            Storage::F32 => 4,
            _ => 2,
        }
    }

    /// Whether `gpu` can run this variant.
    pub fn supported(self, gpu: &Gpu) -> bool {
        self != Storage::F16Native || gpu.info().shader_f16
    }

    /// The unit roundoff of the storage format (`2⁻²⁴`, `2⁻¹¹`, `2⁻⁸`).
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Storage::F32 => f64::powi(2.0, -24),
            Storage::F16Native | Storage::PackedF16 => f64::powi(2.0, -11),
            Storage::PackedBf16 => f64::powi(2.0, -8),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

fn dim_u32(what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::params(what, format!("{v} does not fit in u32")))
}

/// Checks that a `len`-element operand of `bytes_per` bytes fits one storage binding.
fn check_binding(gpu: &Gpu, what: &str, len: usize, bytes_per: usize) -> Result<()> {
    let max = gpu.device().limits().max_storage_buffer_binding_size;
    let bytes = len.saturating_mul(bytes_per) as u64;
    if bytes > max {
        return Err(Error::Gpu {
            reason: format!(
                "matmul: {what} needs {bytes} bytes, over the device's {max}-byte storage binding limit (split the product)"
            )
            .into(),
        });
    }
    Ok(())
}

/// The pipeline of `storage`.
fn pipeline(gpu: &Gpu, storage: Storage) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
    let tiles = [
        ("TILE_M", f64::from(TILE_M)),
        ("TILE_N", f64::from(TILE_N)),
        ("TILE_K", f64::from(TILE_K)),
    ];
    match storage {
        Storage::F32 => gpu.pipeline("matmul", SRC_F32, "main", &tiles),
        Storage::F16Native => {
            if !gpu.info().shader_f16 {
                return Err(Error::Gpu {
                    reason: format!(
                        "matmul: Storage::F16Native needs SHADER_F16, which {} lacks (use PackedF16)",
                        gpu.info().name
                    )
                    .into(),
                });
            }
            gpu.pipeline("matmul_f16", SRC_F16, "main", &tiles)
        }
        Storage::PackedF16 | Storage::PackedBf16 => {
            let bf16 = if storage == Storage::PackedBf16 {
                1.0
            } else {
                0.0
            };
            let mut c = tiles.to_vec();
            c.push(("BF16", bf16));
            gpu.pipeline("matmul_packed", SRC_PACKED, "main", &c)
        }
    }
}

/// Checks the sizes and returns the workgroup grid.
fn validate(
    gpu: &Gpu,
    storage: Storage,
    m: usize,
    k: usize,
    n: usize,
) -> Result<(Params, [u32; 3])> {
    let params = Params {
        m: dim_u32("m", m)?,
        k: dim_u32("k", k)?,
        n: dim_u32("n", n)?,
        _pad: 0,
    };
    let eb = storage.element_bytes();
    check_binding(gpu, "A", m.saturating_mul(k), eb)?;
    check_binding(gpu, "B", k.saturating_mul(n), eb)?;
    check_binding(gpu, "C", m.saturating_mul(n), 4)?;
    let groups = [params.n.div_ceil(TILE_N), params.m.div_ceil(TILE_M), 1];
    let max = gpu.device().limits().max_compute_workgroups_per_dimension;
    if groups[0] > max || groups[1] > max {
        return Err(Error::Gpu {
            reason: format!(
                "matmul: {m}×{n} needs {groups:?} workgroups, over the device's {max} per dimension"
            )
            .into(),
        });
    }
    Ok((params, groups))
}

/// `C = A·B` for `f32` row-major `A` `[m, k]` and `B` `[k, n]`; returns `C` `[m, n]`.
///
/// # Errors
///
/// [`Error::Shape`] if `a` or `b` do not have `m·k` and `k·n` elements; [`Error::Gpu`] if an
/// operand exceeds the device's storage binding size, the grid its workgroup limit, or the
/// dispatch fails.
pub fn matmul(gpu: &Gpu, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Result<Vec<f32>> {
    matmul_with(gpu, Storage::F32, a, b, m, k, n)
}

/// Like [`matmul`] with `A` and `B` stored on the device as `storage` (the inputs are rounded
/// to it, nearest even; `C` is `f32`).
///
/// # Errors
///
/// As [`matmul`]; [`Error::Gpu`] for [`Storage::F16Native`] on an adapter without
/// `SHADER_F16`.
pub fn matmul_with(
    gpu: &Gpu,
    storage: Storage,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) -> Result<Vec<f32>> {
    if a.len() != m.saturating_mul(k) || b.len() != k.saturating_mul(n) {
        return Err(Error::shape(format!(
            "matmul: A has {} elements and B {}, expected {m}×{k} = {} and {k}×{n} = {}",
            a.len(),
            b.len(),
            m.saturating_mul(k),
            k.saturating_mul(n)
        )));
    }
    validate(gpu, storage, m, k, n)?;
    if m == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let (a_buf, b_buf) = (
        upload(gpu, "matmul A", a, storage),
        upload(gpu, "matmul B", b, storage),
    );
    let c_buf = gpu.zeros("matmul C", 4 * m * n);
    matmul_buffers_with(gpu, storage, &a_buf, &b_buf, &c_buf, m, k, n)?;
    gpu.read(&c_buf, m * n)
}

/// Uploads `x` in `storage`'s device layout (what [`matmul_buffers_with`] expects).
pub fn upload(gpu: &Gpu, label: &str, x: &[f32], storage: Storage) -> wgpu::Buffer {
    match storage {
        Storage::F32 => gpu.upload(label, x),
        Storage::F16Native | Storage::PackedF16 => {
            gpu.upload(label, &pack16(x, |v| numerics::f16::from_f32(v).to_bits()))
        }
        Storage::PackedBf16 => {
            gpu.upload(label, &pack16(x, |v| numerics::bf16::from_f32(v).to_bits()))
        }
    }
}

/// Two 16-bit encodings per `u32`, element `2i` in the low half (an odd tail padded with 0).
fn pack16(x: &[f32], enc: impl Fn(f32) -> u16) -> Vec<u32> {
    x.chunks(2)
        .map(|p| u32::from(enc(p[0])) | (u32::from(p.get(1).map_or(0, |&v| enc(v))) << 16))
        .collect()
}

/// Dispatches `C = A·B` on `f32` device buffers (`a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]`,
/// row-major) without waiting.
///
/// # Errors
///
/// [`Error::Shape`] if a buffer is smaller than its operand; otherwise as [`matmul`].
pub fn matmul_buffers(
    gpu: &Gpu,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    matmul_buffers_with(gpu, Storage::F32, a, b, c, m, k, n)
}

/// [`matmul_buffers`] for operands in `storage`'s device layout (see [`upload`]).
///
/// # Errors
///
/// As [`matmul_buffers`] and [`matmul_with`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_buffers_with(
    gpu: &Gpu,
    storage: Storage,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    let (params, groups) = validate(gpu, storage, m, k, n)?;
    let eb = storage.element_bytes() as u64;
    let need = |len: usize, per: u64| (len as u64 * per).next_multiple_of(4);
    for (name, buf, bytes) in [
        ("A", a, need(m * k, eb)),
        ("B", b, need(k * n, eb)),
        ("C", c, need(m * n, 4)),
    ] {
        if buf.size() < bytes {
            return Err(Error::shape(format!(
                "matmul_buffers: {name} holds {} bytes, needs {bytes}",
                buf.size()
            )));
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let pipe = pipeline(gpu, storage)?;
    let p = gpu.uniform("matmul params", &params);
    gpu.dispatch("matmul", &pipe, &[a, b, c, &p], groups)
}
