//! Row softmax on the GPU: `y_ij = exp(x_ij − max_j x_ij) / Σ_j exp(x_ij − max_j x_ij)`, the
//! max-subtracted form every attention implementation uses (Vaswani et al., *Attention Is
//! All You Need*, 2017; the max shift as in Milakov & Gimelshein, *Online normalizer
//! calculation for softmax*, 2018, without the single-pass fusion).
//!
//! One workgroup of 256 invocations per row (`shaders/softmax.wgsl`): a max reduction, a sum
//! reduction and the normalized write, each a strided pass over the row and a tree reduction
//! in workgroup memory. Rows beyond 65 535 wrap onto the grid's second axis.
//!
//! Masked entries may be `−∞`: they come out as exact zeros, and a row of only `−∞` (a fully
//! masked query) comes out as all zeros rather than NaN. NaN inputs propagate; a `+∞` entry
//! gives NaN for its row.

use super::Gpu;
use crate::{Error, Result};

const SRC: &str = include_str!("shaders/softmax.wgsl");

/// Invocations per workgroup (`WG`, a power of two).
pub const WORKGROUP: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
}

/// The workgroup grid for one workgroup per item of `count` (wrapping onto `y` past the
/// per-dimension limit), or an error naming `what`.
pub(crate) fn row_grid(gpu: &Gpu, what: &str, count: usize) -> Result<[u32; 3]> {
    let max = gpu.device().limits().max_compute_workgroups_per_dimension as usize;
    let x = count.min(max);
    let y = count.div_ceil(max.max(1));
    if y > max {
        return Err(Error::Gpu {
            reason: format!("{what}: {count} rows exceed the device's {max}² workgroups").into(),
        });
    }
    Ok([x as u32, y as u32, 1])
}

/// Softmax of each row of `x` `[rows, cols]` (row-major); returns `[rows, cols]`.
///
/// # Errors
///
/// [`Error::Shape`] if `x.len() != rows·cols`; [`Error::Gpu`] if `x` exceeds the device's
/// storage binding size or the dispatch fails.
pub fn softmax_rows(gpu: &Gpu, x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
    if x.len() != rows.saturating_mul(cols) {
        return Err(Error::shape(format!(
            "softmax_rows: {} elements for {rows}×{cols}",
            x.len()
        )));
    }
    if x.is_empty() {
        return Ok(Vec::new());
    }
    let y = gpu.zeros("softmax y", 4 * x.len());
    let xb = gpu.upload("softmax x", x);
    softmax_rows_buffers(gpu, &xb, &y, rows, cols)?;
    gpu.read(&y, x.len())
}

/// Dispatches the row softmax of the `f32` buffer `x` `[rows, cols]` into `y` without
/// waiting.
///
/// # Errors
///
/// [`Error::Shape`] if a buffer is smaller than `rows·cols` floats; as [`softmax_rows`].
pub fn softmax_rows_buffers(
    gpu: &Gpu,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let len = rows.saturating_mul(cols);
    let bytes = len.saturating_mul(4) as u64;
    let max = gpu.device().limits().max_storage_buffer_binding_size;
    if bytes > max {
        return Err(Error::Gpu {
            reason: format!(
                "softmax_rows: {rows}×{cols} needs {bytes} bytes, over the device's {max}-byte storage binding limit"
            )
            .into(),
        });
    }
    if x.size() < bytes || y.size() < bytes {
        return Err(Error::shape(format!(
            "softmax_rows_buffers: buffers of {} and {} bytes for {rows}×{cols}",
            x.size(),
            y.size()
        )));
    }
    if len == 0 {
        return Ok(());
    }
    let grid = row_grid(gpu, "softmax_rows", rows)?;
    let params = Params {
        rows: rows as u32,
        cols: cols as u32,
    };
    let pipe = gpu.pipeline("softmax", SRC, "main", &[("WG", f64::from(WORKGROUP))])?;
    let p = gpu.uniform("softmax params", &params);
    gpu.dispatch("softmax", &pipe, &[x, y, &p], grid)
}
