//! `y = W·x` on the GPU for quantized weights, dequantized on the fly: the weight stays in
//! its compact storage on the device (bytes packed four to a `u32`, decoded in the shader
//! with shifts), so a matrix-vector product reads `bits/8` bytes per weight instead of 4.
//!
//! Formats (see [`quant::format`]):
//! - **uniform integers** (`int8`, `int4-g32`, any 1–8 bit width, symmetric or `-asym`, per
//!   output channel, per group `-gN`, per tensor `-pt`): quant's little-endian bit stream of
//!   codes, `w = s·(q − z)` with one `(s, z)` per group (`shaders/qmatvec_int.wgsl`; the
//!   scheme of Jacob et al., *Quantization and Training of Neural Networks for Efficient
//!   Integer-Arithmetic-Only Inference*, CVPR 2018);
//! - **GGML Q4_0, Q4_1, Q8_0**: the 18/20/34-byte blocks of 32 exactly as `ggml-quants.c`
//!   and GGUF lay them out, `f16` scales decoded with shifts (`shaders/qmatvec_ggml.wgsl`);
//! - **FP8 E4M3FN and E5M2** (OCP *8-bit Floating Point Specification*, 2023; Micikevicius
//!   et al., *FP8 Formats for Deep Learning*, 2022) with a per-tensor or per-output-channel
//!   amax scale (`shaders/qmatvec_fp8.wgsl`).
//!
//! Other formats (NF4/FP4, MX blocks, f16/bf16 tensors, per-channel integers along an axis
//! other than 0) are refused with [`Error::InvalidParams`] — dequantize them and use
//! [`super::matmul`].
//!
//! One workgroup per output row, a strided pass over the row and a tree reduction in
//! workgroup memory; sums are `f32`. [`QWeights`] uploads a weight once for repeated
//! products; [`matvec`] is the one-shot form.

use quant::fp8::{Fp8Kind, Fp8Scaling};
use quant::uniform::Granularity;
use quant::{QuantFormat, QuantizedTensor};

use super::Gpu;
use super::softmax::row_grid;
use crate::{Error, Result};

const SRC_INT: &str = include_str!("shaders/qmatvec_int.wgsl");
const SRC_FP8: &str = include_str!("shaders/qmatvec_fp8.wgsl");
const SRC_GGML: &str = include_str!("shaders/qmatvec_ggml.wgsl");

/// Invocations per workgroup of the integer and FP8 kernels (one element each per step).
pub const WORKGROUP: u32 = 256;
/// Invocations per workgroup of the GGML kernels (one 32-element block each per step).
pub const WORKGROUP_GGML: u32 = 64;

/// The decoder a weight needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `words`: the word-per-step entry point applies (see the shader).
    Int {
        bits: u32,
        group: u32,
        words: bool,
    },
    Fp8 {
        e5m2: bool,
        words: bool,
    },
    Q4_0,
    Q4_1,
    Q8_0,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct IntParams {
    rows: u32,
    cols: u32,
    bits: u32,
    group: u32,
    groups_per_row: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Fp8Params {
    rows: u32,
    cols: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GgmlParams {
    rows: u32,
    cols: u32,
    blocks_per_row: u32,
    _pad: u32,
}

/// A quantized `[rows, cols]` weight resident on the device, ready for [`QWeights::matvec`].
#[derive(Debug)]
pub struct QWeights {
    format: QuantFormat,
    kind: Kind,
    rows: usize,
    cols: usize,
    /// Raw storage, four bytes per `u32`, plus a padding word.
    w: wgpu::Buffer,
    /// Per-group `(scale, zero)` (integers) or per-row scales (FP8); `None` for GGML.
    aux: Option<wgpu::Buffer>,
    params: wgpu::Buffer,
    weight_bytes: usize,
}

/// Bytes packed little-endian into `u32`s, with one extra zero word (kernels may read one
/// word past a value that ends near the end).
fn words(bytes: &[u8]) -> Vec<u32> {
    let mut out: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect();
    out.push(0);
    out
}

fn unsupported(format: QuantFormat, why: &str) -> Error {
    Error::params(
        "gpu::qmatvec format",
        format!(
            "{format}: {why} (supported: uniform int1–8, q4_0, q4_1, q8_0, fp8-e4m3, fp8-e5m2)"
        ),
    )
}

fn to_u32(what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::params(what, format!("{v} does not fit in u32")))
}

impl QWeights {
    /// Uploads `w` (a 2-D `[rows, cols]` quantized tensor) in its raw storage.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if `w` is not 2-D; [`Error::InvalidParams`] for a format without a
    /// GPU kernel; [`Error::Gpu`] if the storage exceeds the device's binding size or the
    /// rows its workgroup grid.
    pub fn upload(gpu: &Gpu, w: &QuantizedTensor) -> Result<Self> {
        let format = w.format();
        let (rows, cols) = match *w.shape() {
            [r, c] => (r, c),
            _ => {
                return Err(Error::shape(format!(
                    "gpu::qmatvec: weight of shape {:?}, expected [rows, cols]",
                    w.shape()
                )));
            }
        };
        row_grid(gpu, "gpu::qmatvec", rows)?;
        let (kind, raw, aux): (Kind, &[u8], Option<Vec<f32>>) = match w {
            QuantizedTensor::Int(t) => {
                let spec = t.spec();
                let (group, per_row) = match spec.granularity() {
                    Granularity::PerChannel { axis: 0 } | Granularity::PerTensor => (cols, 1),
                    Granularity::PerGroup { group } => (group, cols / group.max(1)),
                    Granularity::PerChannel { .. } => {
                        return Err(unsupported(format, "per-channel scales along axis 1"));
                    }
                };
                let sz: Vec<f32> = if spec.granularity() == Granularity::PerTensor {
                    let pair = [t.scales()[0], f32::from(t.zero_point(0))];
                    pair.repeat(rows)
                } else {
                    t.scales()
                        .iter()
                        .zip(t.zero_points_per_group())
                        .flat_map(|(&s, &z)| [s, f32::from(z)])
                        .collect()
                };
                debug_assert_eq!(sz.len(), 2 * rows * per_row);
                (
                    Kind::Int {
                        bits: spec.bits(),
                        group: to_u32("group", group.max(1))?,
                        words: 32 % spec.bits() == 0
                            && cols.is_multiple_of(32 / spec.bits() as usize)
                            && group.is_multiple_of(32 / spec.bits() as usize),
                    },
                    t.packed(),
                    Some(sz),
                )
            }
            QuantizedTensor::Fp8(t) => {
                let scales = match t.scaling() {
                    Fp8Scaling::PerChannel => t.scales().to_vec(),
                    Fp8Scaling::PerTensor => vec![t.scales().first().copied().unwrap_or(1.0); rows],
                };
                (
                    Kind::Fp8 {
                        e5m2: t.kind() == Fp8Kind::E5M2,
                        words: cols.is_multiple_of(4),
                    },
                    t.codes(),
                    Some(scales),
                )
            }
            QuantizedTensor::Q4_0 { blocks, .. } => {
                (Kind::Q4_0, bytemuck::cast_slice(blocks), None)
            }
            QuantizedTensor::Q4_1 { blocks, .. } => {
                (Kind::Q4_1, bytemuck::cast_slice(blocks), None)
            }
            QuantizedTensor::Q8_0 { blocks, .. } => {
                (Kind::Q8_0, bytemuck::cast_slice(blocks), None)
            }
            _ => return Err(unsupported(format, "no GPU kernel for this layout")),
        };
        let max = gpu.device().limits().max_storage_buffer_binding_size;
        let x_bytes = 4 * cols as u64;
        let raw_bytes = raw.len() as u64 + 8;
        let aux_bytes = aux.as_ref().map_or(0, |a| 4 * a.len() as u64);
        if raw_bytes.max(x_bytes).max(aux_bytes) > max {
            return Err(Error::Gpu {
                reason: format!(
                    "gpu::qmatvec: a {rows}×{cols} {format} weight needs {raw_bytes} bytes in one binding, over the device's {max}"
                )
                .into(),
            });
        }
        let (rows32, cols32) = (to_u32("rows", rows)?, to_u32("cols", cols)?);
        let params = match kind {
            Kind::Int { bits, group, .. } => gpu.uniform(
                "qmatvec params",
                &IntParams {
                    rows: rows32,
                    cols: cols32,
                    bits,
                    group,
                    groups_per_row: cols32 / group,
                    _pad: [0; 3],
                },
            ),
            Kind::Fp8 { .. } => gpu.uniform(
                "qmatvec params",
                &Fp8Params {
                    rows: rows32,
                    cols: cols32,
                },
            ),
            Kind::Q4_0 | Kind::Q4_1 | Kind::Q8_0 => gpu.uniform(
                "qmatvec params",
                &GgmlParams {
                    rows: rows32,
                    cols: cols32,
                    blocks_per_row: cols32 / 32,
                    _pad: 0,
                },
            ),
        };
        Ok(Self {
            format,
            kind,
            rows,
            cols,
            w: gpu.upload("qmatvec weight", &words(raw)),
            aux: aux.map(|a| gpu.upload("qmatvec scales", &a)),
            params,
            weight_bytes: w.storage_bytes(),
        })
    }

    /// The weight's format.
    pub fn format(&self) -> QuantFormat {
        self.format
    }

    /// Output length.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input length.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weight's storage in bytes as quant counts it (codes, scales, zero points): the
    /// traffic of one product, for GB/s figures.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Dispatches `y = W·x` on device buffers (`x`: `cols` `f32`, `y`: `rows` `f32`)
    /// without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if a buffer is too small; [`Error::Gpu`] if the dispatch fails.
    pub fn matvec_buffers(&self, gpu: &Gpu, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<()> {
        if x.size() < 4 * self.cols as u64 || y.size() < 4 * self.rows as u64 {
            return Err(Error::shape(format!(
                "QWeights::matvec_buffers: x of {} bytes and y of {} for a {}×{} weight",
                x.size(),
                y.size(),
                self.rows,
                self.cols
            )));
        }
        if self.rows == 0 {
            return Ok(());
        }
        let grid = row_grid(gpu, "gpu::qmatvec", self.rows)?;
        let wg = ("WG", f64::from(WORKGROUP));
        let entry = |words: bool| if words { "main_words" } else { "main" };
        let (pipe, scaled) = match self.kind {
            Kind::Int { words, .. } => (
                gpu.pipeline("qmatvec_int", SRC_INT, entry(words), &[wg])?,
                true,
            ),
            Kind::Fp8 { e5m2, words } => (
                gpu.pipeline(
                    "qmatvec_fp8",
                    SRC_FP8,
                    entry(words),
                    &[wg, ("E5M2", if e5m2 { 1.0 } else { 0.0 })],
                )?,
                true,
            ),
            Kind::Q4_0 | Kind::Q4_1 | Kind::Q8_0 => {
                let entry = match self.kind {
                    Kind::Q4_0 => "q4_0",
                    Kind::Q4_1 => "q4_1",
                    _ => "q8_0",
                };
                let wg = ("WG", f64::from(WORKGROUP_GGML));
                (gpu.pipeline("qmatvec_ggml", SRC_GGML, entry, &[wg])?, false)
            }
        };
        match (&self.aux, scaled) {
            (Some(aux), true) => {
                gpu.dispatch("qmatvec", &pipe, &[&self.w, aux, x, y, &self.params], grid)
            }
            (None, false) => gpu.dispatch("qmatvec", &pipe, &[&self.w, x, y, &self.params], grid),
            _ => Err(Error::Gpu {
                reason: "gpu::qmatvec: scales buffer does not match the format".into(),
            }),
        }
    }

    /// `y = W·x` for a host vector `x` of `cols` elements.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if `x.len() != cols`; as [`QWeights::matvec_buffers`].
    pub fn matvec(&self, gpu: &Gpu, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.cols {
            return Err(Error::shape(format!(
                "gpu::qmatvec: x has {} elements for a {}×{} weight",
                x.len(),
                self.rows,
                self.cols
            )));
        }
        let xb = gpu.upload("qmatvec x", x);
        let yb = gpu.zeros("qmatvec y", 4 * self.rows);
        self.matvec_buffers(gpu, &xb, &yb)?;
        gpu.read(&yb, self.rows)
    }
}

/// Whether [`matvec`] has a kernel for `w`'s layout.
pub fn supports(w: &QuantizedTensor) -> bool {
    match w {
        QuantizedTensor::Int(t) => !matches!(
            t.spec().granularity(),
            Granularity::PerChannel { axis } if axis != 0
        ),
        QuantizedTensor::Fp8(_)
        | QuantizedTensor::Q4_0 { .. }
        | QuantizedTensor::Q4_1 { .. }
        | QuantizedTensor::Q8_0 { .. } => true,
        _ => false,
    }
}

/// `y = W·x` for a quantized `[rows, cols]` weight `w` and `x` of `cols` elements (uploads
/// `w` each call: keep a [`QWeights`] for repeated products).
///
/// # Errors
///
/// As [`QWeights::upload`] and [`QWeights::matvec`].
pub fn matvec(gpu: &Gpu, w: &QuantizedTensor, x: &[f32]) -> Result<Vec<f32>> {
    if let [_, cols] = *w.shape()
        && x.len() != cols
    {
        return Err(Error::shape(format!(
            "gpu::qmatvec: x has {} elements for a weight of shape {:?}",
            x.len(),
            w.shape()
        )));
    }
    QWeights::upload(gpu, w)?.matvec(gpu, x)
}
