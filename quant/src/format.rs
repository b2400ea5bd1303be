//! One run-time quantization format for every quantizer of the crate, parsed from a string,
//! and the quantized tensor it produces.
//!
//! # Grammar
//!
//! `KIND[-gN][-asym|-sym][-pt][-sf16|-se8m0]`, case-insensitive, where `KIND` is one of
//! `f32`, `f16`, `bf16`, `fp8-e4m3`, `fp8-e5m2`, `int2` … `int8`, `nf4`, `fp4`, `q4_0`,
//! `q4_1`, `q8_0`, `mxfp8-e4m3`, `mxfp8-e5m2`, `mxfp6-e2m3`, `mxfp6-e3m2`, `mxfp4`, `mxint8`.
//!
//! - Integer kinds default to symmetric, per output channel (axis 0). `-gN` makes them per
//!   group of `N` along the reduction (last) axis, `-pt` per tensor, `-asym` affine, `-sym`
//!   symmetric (the default, accepted for clarity). `-sf16` / `-se8m0` store their scales as
//!   `f16` / E8M0 instead of `f32` (an extension of the grammar).
//! - `fp8-*` default to a per-output-channel amax scale; `-pt` makes it per tensor.
//! - `nf4` and `fp4` take `-gN` for their block size (default 64), with bitsandbytes'
//!   double quantization of the block absmax.
//! - The other kinds take no options.
//!
//! Examples: `int8`, `int4-g32`, `int4-g32-asym`, `int8-pt`, `nf4-g128`, `fp8-e4m3-pt`.
//! Errors name the offending token ([`Error::Parse`]). [`QuantFormat`]'s `Display` writes the
//! canonical string, which parses back to the same format.

use core::fmt;
use core::str::FromStr;

use half::{bf16, f16};
use numerics::{MxFormat, NonFinite, Par};
use rayon::prelude::*;

use crate::fp8::{self, Fp8Kind, Fp8Scaling, Fp8Tensor, MxTensor};
use crate::ggml::{self, BlockQ4_0, BlockQ4_1, BlockQ8_0};
use crate::nf4::{self, Codebook4, Nf4Params, Nf4Tensor};
use crate::qmatvec::{self, QWeight};
use crate::uniform::{self, Granularity, ScaleStorage, UniformSpec, UniformTensor};
use crate::{Error, Result};

/// Default block size of NF4/FP4 (bitsandbytes' default).
pub const DEFAULT_NF4_BLOCK: usize = 64;

/// A quantization format chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuantFormat {
    /// Unquantized `f32`.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// FP8 with amax scaling.
    Fp8 {
        /// Element format.
        kind: Fp8Kind,
        /// Scale granularity.
        scaling: Fp8Scaling,
    },
    /// Uniform integer quantizer.
    Int(UniformSpec),
    /// NF4 or FP4 (bitsandbytes) with double quantization.
    Nf4 {
        /// Which 16-value codebook.
        codebook: Codebook4,
        /// Elements per absmax block.
        block: usize,
    },
    /// GGML Q4_0.
    Q4_0,
    /// GGML Q4_1.
    Q4_1,
    /// GGML Q8_0.
    Q8_0,
    /// OCP MX block format.
    Mx(MxFormat),
}

const KINDS: [&str; 23] = [
    "f32",
    "f16",
    "bf16",
    "fp8-e4m3",
    "fp8-e5m2",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "int8",
    "nf4",
    "fp4",
    "q4_0",
    "q4_1",
    "q8_0",
    "mxfp8-e4m3",
    "mxfp8-e5m2",
    "mxfp6-e2m3",
    "mxfp6-e3m2",
    "mxfp4",
    "mxint8",
];

impl FromStr for QuantFormat {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let s = input.trim().to_ascii_lowercase();
        let err = |token: &str, reason: &'static str| Error::Parse {
            input: input.to_string(),
            token: token.to_string(),
            reason,
        };
        // The longest kind that the string starts with, followed by the end or '-'.
        let kind = KINDS
            .iter()
            .filter(|k| {
                s.starts_with(**k) && (s.len() == k.len() || s.as_bytes()[k.len()] == b'-')
            })
            .max_by_key(|k| k.len())
            .ok_or_else(|| {
                err(
                    s.split('-').next().unwrap_or(""),
                    "unknown kind (expected f32, f16, bf16, fp8-e4m3, fp8-e5m2, int2..int8, nf4, fp4, q4_0, q4_1, q8_0, mxfp8-e4m3, mxfp8-e5m2, mxfp6-e2m3, mxfp6-e3m2, mxfp4, mxint8)",
                )
            })?;
        let rest = &s[kind.len()..];
        let mut group: Option<usize> = None;
        let mut symmetric: Option<bool> = None;
        let mut per_tensor = false;
        let mut storage: Option<ScaleStorage> = None;
        for token in rest.split('-').skip(1) {
            match token {
                "asym" | "sym" => {
                    if symmetric.is_some() {
                        return Err(err(token, "symmetry given twice"));
                    }
                    symmetric = Some(token == "sym");
                }
                "pt" => {
                    if per_tensor {
                        return Err(err(token, "given twice"));
                    }
                    per_tensor = true;
                }
                "sf16" | "se8m0" => {
                    if storage.is_some() {
                        return Err(err(token, "scale storage given twice"));
                    }
                    storage = Some(if token == "sf16" {
                        ScaleStorage::F16
                    } else {
                        ScaleStorage::E8M0
                    });
                }
                t if t.starts_with('g') => {
                    if group.is_some() {
                        return Err(err(token, "group size given twice"));
                    }
                    let n: usize = t[1..]
                        .parse()
                        .map_err(|_| err(token, "expected gN with N a positive integer"))?;
                    if n == 0 || n > 1 << 20 {
                        return Err(err(token, "group size must be in 1..=1048576"));
                    }
                    group = Some(n);
                }
                "" => return Err(err(token, "empty option (doubled '-')")),
                _ => {
                    return Err(err(
                        token,
                        "unknown option (expected gN, asym, sym, pt, sf16, se8m0)",
                    ));
                }
            }
        }
        let is_int = kind.starts_with("int");
        let is_fp8 = kind.starts_with("fp8");
        let is_4bit_codebook = *kind == "nf4" || *kind == "fp4";
        if symmetric.is_some() && !is_int {
            return Err(err(
                if symmetric == Some(true) {
                    "sym"
                } else {
                    "asym"
                },
                "only integer kinds take a symmetry",
            ));
        }
        if storage.is_some() && !is_int {
            return Err(err(
                if storage == Some(ScaleStorage::F16) {
                    "sf16"
                } else {
                    "se8m0"
                },
                "only integer kinds take a scale storage",
            ));
        }
        if per_tensor && !(is_int || is_fp8) {
            return Err(err("pt", "only integer and fp8 kinds can be per tensor"));
        }
        if let Some(g) = group {
            if !(is_int || is_4bit_codebook) {
                return Err(err(
                    &format!("g{g}"),
                    "only integer kinds, nf4 and fp4 take a group size",
                ));
            }
            if per_tensor {
                return Err(err("pt", "per-tensor conflicts with a group size"));
            }
            if is_4bit_codebook && g % 2 != 0 {
                return Err(err(&format!("g{g}"), "nf4/fp4 block sizes must be even"));
            }
        }
        Ok(match *kind {
            "f32" => QuantFormat::F32,
            "f16" => QuantFormat::F16,
            "bf16" => QuantFormat::BF16,
            "fp8-e4m3" | "fp8-e5m2" => QuantFormat::Fp8 {
                kind: if *kind == "fp8-e4m3" {
                    Fp8Kind::E4M3
                } else {
                    Fp8Kind::E5M2
                },
                scaling: if per_tensor {
                    Fp8Scaling::PerTensor
                } else {
                    Fp8Scaling::PerChannel
                },
            },
            "nf4" | "fp4" => QuantFormat::Nf4 {
                codebook: if *kind == "nf4" {
                    Codebook4::Nf4
                } else {
                    Codebook4::Fp4
                },
                block: group.unwrap_or(DEFAULT_NF4_BLOCK),
            },
            "q4_0" => QuantFormat::Q4_0,
            "q4_1" => QuantFormat::Q4_1,
            "q8_0" => QuantFormat::Q8_0,
            "mxfp8-e4m3" => QuantFormat::Mx(MxFormat::Fp8E4M3),
            "mxfp8-e5m2" => QuantFormat::Mx(MxFormat::Fp8E5M2),
            "mxfp6-e2m3" => QuantFormat::Mx(MxFormat::Fp6E2M3),
            "mxfp6-e3m2" => QuantFormat::Mx(MxFormat::Fp6E3M2),
            "mxfp4" => QuantFormat::Mx(MxFormat::Fp4E2M1),
            "mxint8" => QuantFormat::Mx(MxFormat::Int8),
            int => {
                let bits: u32 = int[3..].parse().expect("kind list holds int2..int8");
                let granularity = match (group, per_tensor) {
                    (Some(group), _) => Granularity::PerGroup { group },
                    (None, true) => Granularity::PerTensor,
                    (None, false) => Granularity::PerChannel { axis: 0 },
                };
                QuantFormat::Int(
                    UniformSpec::new(bits, symmetric.unwrap_or(true), granularity)?
                        .with_scale_storage(storage.unwrap_or_default()),
                )
            }
        })
    }
}

impl fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantFormat::F32 => f.write_str("f32"),
            QuantFormat::F16 => f.write_str("f16"),
            QuantFormat::BF16 => f.write_str("bf16"),
            QuantFormat::Fp8 { kind, scaling } => {
                f.write_str(match kind {
                    Fp8Kind::E4M3 => "fp8-e4m3",
                    Fp8Kind::E5M2 => "fp8-e5m2",
                })?;
                if *scaling == Fp8Scaling::PerTensor {
                    f.write_str("-pt")?;
                }
                Ok(())
            }
            QuantFormat::Int(spec) => {
                write!(f, "int{}", spec.bits())?;
                match spec.granularity() {
                    Granularity::PerGroup { group } => write!(f, "-g{group}")?,
                    Granularity::PerTensor => f.write_str("-pt")?,
                    Granularity::PerChannel { .. } => {}
                }
                if !spec.symmetric() {
                    f.write_str("-asym")?;
                }
                match spec.scale_storage() {
                    ScaleStorage::F32 => Ok(()),
                    ScaleStorage::F16 => f.write_str("-sf16"),
                    ScaleStorage::E8M0 => f.write_str("-se8m0"),
                }
            }
            QuantFormat::Nf4 { codebook, block } => {
                f.write_str(match codebook {
                    Codebook4::Nf4 => "nf4",
                    Codebook4::Fp4 => "fp4",
                })?;
                if *block != DEFAULT_NF4_BLOCK {
                    write!(f, "-g{block}")?;
                }
                Ok(())
            }
            QuantFormat::Q4_0 => f.write_str("q4_0"),
            QuantFormat::Q4_1 => f.write_str("q4_1"),
            QuantFormat::Q8_0 => f.write_str("q8_0"),
            QuantFormat::Mx(m) => f.write_str(match m {
                MxFormat::Fp8E4M3 => "mxfp8-e4m3",
                MxFormat::Fp8E5M2 => "mxfp8-e5m2",
                MxFormat::Fp6E2M3 => "mxfp6-e2m3",
                MxFormat::Fp6E3M2 => "mxfp6-e3m2",
                MxFormat::Fp4E2M1 => "mxfp4",
                _ => "mxint8",
            }),
        }
    }
}

/// A tensor quantized in some [`QuantFormat`], row-major with its shape.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum QuantizedTensor {
    /// Unquantized.
    F32 {
        /// Shape.
        shape: Vec<usize>,
        /// Values.
        data: Vec<f32>,
    },
    /// IEEE half.
    F16 {
        /// Shape.
        shape: Vec<usize>,
        /// Values.
        data: Vec<f16>,
    },
    /// bfloat16.
    BF16 {
        /// Shape.
        shape: Vec<usize>,
        /// Values.
        data: Vec<bf16>,
    },
    /// FP8 with amax scales.
    Fp8(Fp8Tensor),
    /// Uniform integer.
    Int(UniformTensor),
    /// NF4 / FP4.
    Nf4 {
        /// Shape.
        shape: Vec<usize>,
        /// The blocks.
        tensor: Nf4Tensor,
        /// The per-block absmax as the kernels use it (decoded once from the double
        /// quantization; an in-memory copy, not part of the stored format).
        absmax: Vec<f32>,
    },
    /// GGML Q8_0 (rows of 32-element blocks).
    Q8_0 {
        /// Shape.
        shape: Vec<usize>,
        /// Blocks, row-major.
        blocks: Vec<BlockQ8_0>,
    },
    /// GGML Q4_0.
    Q4_0 {
        /// Shape.
        shape: Vec<usize>,
        /// Blocks, row-major.
        blocks: Vec<BlockQ4_0>,
    },
    /// GGML Q4_1.
    Q4_1 {
        /// Shape.
        shape: Vec<usize>,
        /// Blocks, row-major.
        blocks: Vec<BlockQ4_1>,
    },
    /// OCP MX blocks over the row-major flattening.
    Mx {
        /// Shape.
        shape: Vec<usize>,
        /// The blocks.
        tensor: MxTensor,
    },
}

impl QuantizedTensor {
    /// Quantizes `x` (row-major with `shape`) to `format`.
    ///
    /// ```
    /// use quant::QuantizedTensor;
    /// # fn main() -> Result<(), quant::Error> {
    /// let w: Vec<f32> = (0..128).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    /// for name in ["int8", "int4-g32-asym", "nf4", "q4_0", "fp8-e4m3", "mxfp4"] {
    ///     let q = QuantizedTensor::quantize(name.parse()?, &w, &[2, 64])?;
    ///     let back = q.dequantize();
    ///     let err = w.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    ///     assert!(err < 0.5, "{name}: {err}");
    ///     assert!(q.bits_per_weight() < 9.0);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::ShapeMismatch`] if `x.len()` is not the product of `shape`, or the shape
    ///   does not suit the format (GGML needs a last axis that is a multiple of 32; groups
    ///   must divide the last axis).
    /// - [`Error::NonFinite`] for NaN or infinite values (every format refuses them, so a
    ///   stored weight is never silently garbage).
    /// - Errors of the individual quantizers (unrepresentable scales, bad block sizes).
    pub fn quantize(format: QuantFormat, x: &[f32], shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != x.len() {
            return Err(Error::ShapeMismatch {
                op: "QuantizedTensor::quantize",
                expected: shape.to_vec(),
                got: vec![x.len()],
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "QuantizedTensor::quantize",
                index,
                value: x[index],
            });
        }
        let shape_v = shape.to_vec();
        let ggml_rows = || -> Result<()> {
            let last = shape.last().copied().unwrap_or(0);
            if last % ggml::QK != 0 {
                return Err(Error::ShapeMismatch {
                    op: "QuantizedTensor::quantize (GGML rows must be multiples of 32)",
                    expected: vec![ggml::QK],
                    got: shape.to_vec(),
                });
            }
            Ok(())
        };
        Ok(match format {
            QuantFormat::F32 => QuantizedTensor::F32 {
                shape: shape_v,
                data: x.to_vec(),
            },
            QuantFormat::F16 => {
                let mut data = vec![f16::ZERO; n];
                numerics::encode_slice(x, &mut data, Par::Seq)?;
                QuantizedTensor::F16 {
                    shape: shape_v,
                    data,
                }
            }
            QuantFormat::BF16 => {
                let mut data = vec![bf16::ZERO; n];
                numerics::encode_slice(x, &mut data, Par::Seq)?;
                QuantizedTensor::BF16 {
                    shape: shape_v,
                    data,
                }
            }
            QuantFormat::Fp8 { kind, scaling } => {
                QuantizedTensor::Fp8(fp8::quantize(x, shape, kind, scaling)?)
            }
            QuantFormat::Int(spec) => QuantizedTensor::Int(uniform::quantize(x, shape, spec)?),
            QuantFormat::Nf4 { codebook, block } => {
                let tensor = nf4::quantize(x, Nf4Params::new(codebook, block, true))?;
                QuantizedTensor::Nf4 {
                    shape: shape_v,
                    absmax: tensor.absmax(),
                    tensor,
                }
            }
            QuantFormat::Q8_0 => {
                ggml_rows()?;
                QuantizedTensor::Q8_0 {
                    shape: shape_v,
                    blocks: ggml::quantize_row_q8_0(x),
                }
            }
            QuantFormat::Q4_0 => {
                ggml_rows()?;
                QuantizedTensor::Q4_0 {
                    shape: shape_v,
                    blocks: ggml::quantize_row_q4_0(x),
                }
            }
            QuantFormat::Q4_1 => {
                ggml_rows()?;
                QuantizedTensor::Q4_1 {
                    shape: shape_v,
                    blocks: ggml::quantize_row_q4_1(x),
                }
            }
            QuantFormat::Mx(m) => QuantizedTensor::Mx {
                shape: shape_v,
                tensor: numerics::mx::quantize(m, x, NonFinite::Error, Par::Seq)?,
            },
        })
    }

    /// The format this tensor is stored in.
    pub fn format(&self) -> QuantFormat {
        match self {
            QuantizedTensor::F32 { .. } => QuantFormat::F32,
            QuantizedTensor::F16 { .. } => QuantFormat::F16,
            QuantizedTensor::BF16 { .. } => QuantFormat::BF16,
            QuantizedTensor::Fp8(t) => QuantFormat::Fp8 {
                kind: t.kind(),
                scaling: t.scaling(),
            },
            QuantizedTensor::Int(t) => QuantFormat::Int(t.spec()),
            QuantizedTensor::Nf4 { tensor, .. } => QuantFormat::Nf4 {
                codebook: tensor.codebook(),
                block: tensor.block(),
            },
            QuantizedTensor::Q8_0 { .. } => QuantFormat::Q8_0,
            QuantizedTensor::Q4_0 { .. } => QuantFormat::Q4_0,
            QuantizedTensor::Q4_1 { .. } => QuantFormat::Q4_1,
            QuantizedTensor::Mx { tensor, .. } => QuantFormat::Mx(tensor.format()),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            QuantizedTensor::F32 { shape, .. }
            | QuantizedTensor::F16 { shape, .. }
            | QuantizedTensor::BF16 { shape, .. }
            | QuantizedTensor::Nf4 { shape, .. }
            | QuantizedTensor::Q8_0 { shape, .. }
            | QuantizedTensor::Q4_0 { shape, .. }
            | QuantizedTensor::Q4_1 { shape, .. }
            | QuantizedTensor::Mx { shape, .. } => shape,
            QuantizedTensor::Fp8(t) => t.shape(),
            QuantizedTensor::Int(t) => t.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exact bytes of the stored representation: codes, scales, zero points, minima.
    pub fn storage_bytes(&self) -> usize {
        match self {
            QuantizedTensor::F32 { data, .. } => 4 * data.len(),
            QuantizedTensor::F16 { data, .. } => 2 * data.len(),
            QuantizedTensor::BF16 { data, .. } => 2 * data.len(),
            QuantizedTensor::Fp8(t) => t.storage_bytes(),
            QuantizedTensor::Int(t) => t.storage_bytes(),
            QuantizedTensor::Nf4 { tensor, .. } => tensor.storage_bytes(),
            QuantizedTensor::Q8_0 { blocks, .. } => core::mem::size_of_val(blocks.as_slice()),
            QuantizedTensor::Q4_0 { blocks, .. } => core::mem::size_of_val(blocks.as_slice()),
            QuantizedTensor::Q4_1 { blocks, .. } => core::mem::size_of_val(blocks.as_slice()),
            QuantizedTensor::Mx { tensor, .. } => (tensor.storage_bits() as usize).div_ceil(8),
        }
    }

    /// Storage bits per element, everything included.
    pub fn bits_per_weight(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.storage_bytes() as f64 * 8.0 / self.len() as f64
    }

    /// Decodes into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `out` is not the tensor's length.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.len() {
            return Err(Error::ShapeMismatch {
                op: "QuantizedTensor::dequantize_into",
                expected: vec![self.len()],
                got: vec![out.len()],
            });
        }
        match self {
            QuantizedTensor::F32 { data, .. } => out.copy_from_slice(data),
            QuantizedTensor::F16 { data, .. } => numerics::decode_slice(data, out, Par::Seq)?,
            QuantizedTensor::BF16 { data, .. } => numerics::decode_slice(data, out, Par::Seq)?,
            QuantizedTensor::Fp8(t) => t.dequantize_range_into(0, out)?,
            QuantizedTensor::Int(t) => t.dequantize_into(out)?,
            QuantizedTensor::Nf4 { tensor, .. } => tensor.dequantize_into(out)?,
            QuantizedTensor::Q8_0 { blocks, .. } => ggml::dequantize_row_q8_0(blocks, out),
            QuantizedTensor::Q4_0 { blocks, .. } => ggml::dequantize_row_q4_0(blocks, out),
            QuantizedTensor::Q4_1 { blocks, .. } => ggml::dequantize_row_q4_1(blocks, out),
            QuantizedTensor::Mx { tensor, .. } => tensor.dequantize_into(out, Par::Seq)?,
        }
        Ok(())
    }

    /// Decodes into a new vector.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        self.dequantize_into(&mut out)
            .expect("output has the tensor's length");
        out
    }
}

/// Owned side data a kernel view needs for some layouts (per-row scales of a per-tensor
/// quantizer), kept alive while the [`QWeight`] borrows it.
#[derive(Default)]
struct KernelScratch {
    scales: Vec<f32>,
    zeros: Vec<u8>,
}

impl QuantizedTensor {
    /// `[rows, cols]` of a 2-D tensor.
    fn matrix_dims(&self, op: &'static str) -> Result<(usize, usize)> {
        match *self.shape() {
            [rows, cols] => Ok((rows, cols)),
            _ => Err(Error::ShapeMismatch {
                op,
                expected: vec![2],
                got: self.shape().to_vec(),
            }),
        }
    }

    /// The fused kernel view of this `[rows, cols]` weight, if [`crate::qmatvec`] has a
    /// kernel for its layout: f32, FP8, int8 and int4 per channel or per group (even group
    /// sizes), NF4/FP4 whose block divides the rows, and the GGML blocks.
    fn qweight<'a>(
        &'a self,
        rows: usize,
        cols: usize,
        scratch: &'a mut KernelScratch,
    ) -> Option<QWeight<'a>> {
        match self {
            QuantizedTensor::F32 { data, .. } => Some(QWeight::F32(data)),
            QuantizedTensor::Fp8(t) => {
                let scales: &[f32] = match t.scaling() {
                    Fp8Scaling::PerChannel => t.scales(),
                    Fp8Scaling::PerTensor => {
                        scratch.scales = t.row_scales();
                        &scratch.scales
                    }
                };
                Some(QWeight::Fp8 {
                    codes: t.codes(),
                    scales,
                    kind: t.kind(),
                })
            }
            QuantizedTensor::Int(t) => {
                let spec = t.spec();
                let group = match spec.granularity() {
                    Granularity::PerChannel { axis: 0 } => cols,
                    Granularity::PerGroup { group } => group,
                    Granularity::PerTensor => cols,
                    Granularity::PerChannel { .. } => return None,
                };
                let (scales, zeros): (&[f32], &[u8]) =
                    if spec.granularity() == Granularity::PerTensor {
                        scratch.scales = vec![t.scales()[0]; rows];
                        scratch.zeros = vec![t.zero_point(0); rows];
                        (&scratch.scales, &scratch.zeros)
                    } else {
                        (t.scales(), t.zero_points_per_group())
                    };
                match spec.bits() {
                    8 => Some(QWeight::U8 {
                        codes: t.packed(),
                        scales,
                        zeros,
                        group,
                    }),
                    4 if group.is_multiple_of(2) && cols.is_multiple_of(2) => Some(QWeight::U4 {
                        packed: t.packed(),
                        scales,
                        zeros,
                        group,
                    }),
                    _ => None,
                }
            }
            QuantizedTensor::Nf4 { tensor, absmax, .. }
                if cols.is_multiple_of(tensor.block()) && cols.is_multiple_of(2) =>
            {
                Some(QWeight::Codebook4 {
                    packed: tensor.packed(),
                    absmax,
                    block: tensor.block(),
                    codebook: tensor.codebook().values(),
                })
            }
            QuantizedTensor::Q8_0 { blocks, .. } => Some(QWeight::Q8_0(blocks)),
            QuantizedTensor::Q4_0 { blocks, .. } => Some(QWeight::Q4_0(blocks)),
            QuantizedTensor::Q4_1 { blocks, .. } => Some(QWeight::Q4_1(blocks)),
            _ => None,
        }
    }

    /// Decodes row `r` of a `[rows, cols]` tensor into `out` (the fallback of formats
    /// without a fused kernel).
    fn decode_row(&self, r: usize, out: &mut [f32]) {
        let cols = out.len();
        let start = r * cols;
        match self {
            QuantizedTensor::F32 { data, .. } => out.copy_from_slice(&data[start..start + cols]),
            QuantizedTensor::F16 { data, .. } => {
                numerics::decode_slice(&data[start..start + cols], out, Par::Seq)
                    .expect("row lengths match");
            }
            QuantizedTensor::BF16 { data, .. } => {
                numerics::decode_slice(&data[start..start + cols], out, Par::Seq)
                    .expect("row lengths match");
            }
            QuantizedTensor::Fp8(t) => t
                .dequantize_range_into(start, out)
                .expect("row inside the tensor"),
            QuantizedTensor::Int(t) => t
                .dequantize_range_into(start, out)
                .expect("row inside the tensor"),
            QuantizedTensor::Nf4 { tensor, absmax, .. } => {
                let values = tensor.codebook().values();
                let packed = tensor.packed();
                for (k, o) in out.iter_mut().enumerate() {
                    let i = start + k;
                    let byte = packed[i / 2];
                    let code = if i.is_multiple_of(2) {
                        byte >> 4
                    } else {
                        byte & 0x0F
                    };
                    *o = values[code as usize] * absmax[i / tensor.block()];
                }
            }
            QuantizedTensor::Q8_0 { blocks, .. } => {
                let b = cols / ggml::QK;
                ggml::dequantize_row_q8_0(&blocks[r * b..(r + 1) * b], out);
            }
            QuantizedTensor::Q4_0 { blocks, .. } => {
                let b = cols / ggml::QK;
                ggml::dequantize_row_q4_0(&blocks[r * b..(r + 1) * b], out);
            }
            QuantizedTensor::Q4_1 { blocks, .. } => {
                let b = cols / ggml::QK;
                ggml::dequantize_row_q4_1(&blocks[r * b..(r + 1) * b], out);
            }
            QuantizedTensor::Mx { tensor, .. } => {
                let format = tensor.format();
                for (k, o) in out.iter_mut().enumerate() {
                    let i = start + k;
                    let scale = tensor.scales()[i / numerics::mx::BLOCK_SIZE];
                    let code = tensor.codes()[i];
                    *o = if scale.is_nan() {
                        f32::NAN
                    } else {
                        let element = match format.element_format() {
                            Some(f) => f.decode(code as u16),
                            None => (code as i8) as f32 / 64.0,
                        };
                        element * scale.to_f32()
                    };
                }
            }
        }
    }

    /// `y = W·x` for this tensor as a `[rows, cols]` weight (`rows` outputs): the fused
    /// kernel of [`crate::qmatvec`] where the layout has one (decoding on the fly), otherwise
    /// row by row through a one-row scratch. The full `f32` matrix is never materialized.
    ///
    /// ```
    /// use numerics::Par;
    /// use quant::QuantizedTensor;
    /// # fn main() -> Result<(), quant::Error> {
    /// let w: Vec<f32> = (0..4 * 64).map(|i| ((i % 7) as f32 - 3.0) / 8.0).collect();
    /// let q = QuantizedTensor::quantize("int8".parse()?, &w, &[4, 64])?;
    /// let x = vec![1.0f32; 64];
    /// let mut y = [0.0f32; 4];
    /// q.matvec(&x, &mut y, Par::Seq)?;
    /// let exact: f32 = w[..64].iter().sum();
    /// assert!((y[0] - exact).abs() < 0.05);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the tensor is not 2-D or `x`/`y` do not fit it.
    pub fn matvec(&self, x: &[f32], y: &mut [f32], par: Par) -> Result<()> {
        self.matmul(x, 1, y, par)
    }

    /// `Y = X·Wᵀ` for `n` row-major inputs `X` (`[n, cols]`) into `Y` (`[n, rows]`), as
    /// [`QuantizedTensor::matvec`] but decoding each weight row once for all inputs.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the tensor is not 2-D or `x`/`y` do not fit it.
    pub fn matmul(&self, x: &[f32], n: usize, y: &mut [f32], par: Par) -> Result<()> {
        let op = "QuantizedTensor::matmul";
        let (rows, cols) = self.matrix_dims(op)?;
        if x.len() != n * cols || y.len() != n * rows {
            return Err(Error::ShapeMismatch {
                op,
                expected: vec![n * cols, n * rows],
                got: vec![x.len(), y.len()],
            });
        }
        if n == 0 || rows == 0 {
            return Ok(());
        }
        let mut scratch = KernelScratch::default();
        if let Some(w) = self.qweight(rows, cols, &mut scratch) {
            if n == 1 {
                qmatvec::matvec(&w, rows, cols, x, y, par);
            } else {
                qmatvec::matmul(&w, rows, cols, x, n, y, par);
            }
            return Ok(());
        }
        // Fallback: decode a block of rows to `f32` (each row exactly as `dequantize` would)
        // and run the `f32` kernel on it; the block's outputs are scattered into their
        // columns of Y. Each task owns a contiguous range of rows and a scratch of at most
        // `MATMUL_SCRATCH_BYTES`.
        let block_rows = (qmatvec::MATMUL_SCRATCH_BYTES / 4 / cols.max(1)).clamp(1, rows);
        let tasks = par.degree().min(rows.div_ceil(block_rows)).max(1);
        let per_task = rows.div_ceil(tasks);
        let compute = |first: usize, last: usize| -> Vec<f32> {
            // Yᵀ for rows first..last, row-major [last - first, n].
            let mut out = vec![0.0f32; (last - first) * n];
            let mut w = vec![0.0f32; block_rows * cols];
            let mut yb = vec![0.0f32; block_rows * n];
            let mut r0 = first;
            while r0 < last {
                let br = block_rows.min(last - r0);
                for (j, row) in w[..br * cols].chunks_exact_mut(cols).enumerate() {
                    self.decode_row(r0 + j, row);
                }
                let wq = QWeight::F32(&w[..br * cols]);
                qmatvec::matmul(&wq, br, cols, x, n, &mut yb[..br * n], Par::Seq);
                for k in 0..n {
                    for j in 0..br {
                        out[(r0 - first + j) * n + k] = yb[k * br + j];
                    }
                }
                r0 += br;
            }
            out
        };
        let parts: Vec<(usize, Vec<f32>)> = if tasks == 1 {
            vec![(0, compute(0, rows))]
        } else {
            (0..tasks)
                .into_par_iter()
                .map(|t| {
                    let first = (t * per_task).min(rows);
                    let last = ((t + 1) * per_task).min(rows);
                    (first, compute(first, last))
                })
                .collect()
        };
        for (first, yt) in parts {
            for (j, row) in yt.chunks_exact(n).enumerate() {
                for (k, v) in row.iter().enumerate() {
                    y[k * rows + first + j] = *v;
                }
            }
        }
        Ok(())
    }

    /// Decodes row `r` of this tensor viewed as a `[rows, cols]` matrix (the last axis is
    /// `cols`) into `out`, exactly as [`QuantizedTensor::dequantize`] would decode those
    /// elements (an embedding lookup).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the tensor is not 2-D, `out` is not one row long, or `r`
    /// is not a row.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        let op = "QuantizedTensor::dequantize_row";
        let (rows, cols) = self.matrix_dims(op)?;
        if out.len() != cols || r >= rows {
            return Err(Error::ShapeMismatch {
                op,
                expected: vec![rows, cols],
                got: vec![r, out.len()],
            });
        }
        self.decode_row(r, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_examples_parse_and_print_back() {
        for s in [
            "f32",
            "f16",
            "bf16",
            "fp8-e4m3",
            "fp8-e5m2-pt",
            "int8",
            "int4-g32",
            "int4-g32-asym",
            "int8-pt",
            "int2-g64-asym-sf16",
            "int3-se8m0",
            "nf4",
            "nf4-g128",
            "fp4",
            "q4_0",
            "q4_1",
            "q8_0",
            "mxfp8-e4m3",
            "mxfp8-e5m2",
            "mxfp6-e2m3",
            "mxfp6-e3m2",
            "mxfp4",
            "mxint8",
        ] {
            let f: QuantFormat = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(f.to_string(), s);
            assert_eq!(f.to_string().parse::<QuantFormat>().unwrap(), f);
        }
        let f: QuantFormat = "INT4-G32-SYM".parse().unwrap();
        assert_eq!(f.to_string(), "int4-g32");
        match "int4".parse::<QuantFormat>().unwrap() {
            QuantFormat::Int(s) => {
                assert!(s.symmetric());
                assert_eq!(s.granularity(), Granularity::PerChannel { axis: 0 });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_the_bad_token() {
        for (s, token) in [
            ("int9", "int9"),
            ("int4-g0", "g0"),
            ("int4-gx", "gx"),
            ("int4-foo", "foo"),
            ("int4-g32-pt", "pt"),
            ("int4-asym-sym", "sym"),
            ("q4_0-g32", "g32"),
            ("nf4-asym", "asym"),
            ("nf4-g33", "g33"),
            ("fp8-e4m3-g32", "g32"),
            ("f16-pt", "pt"),
            ("int4--g32", ""),
            ("", ""),
            ("fp8", "fp8"),
        ] {
            match s.parse::<QuantFormat>() {
                Err(Error::Parse { token: t, .. }) => assert_eq!(t, token, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn matvec_and_matmul_agree_with_dequantized_reference_for_every_format() {
        use numerics::testing::rng;
        let mut r = rng::seeded(5);
        let (rows, cols) = (7, 128);
        let w = rng::normal_vec(&mut r, rows * cols);
        let n = 3;
        let x = rng::normal_vec(&mut r, n * cols);
        for name in [
            "f32",
            "f16",
            "bf16",
            "fp8-e4m3",
            "fp8-e5m2-pt",
            "int8",
            "int8-pt",
            "int8-g32-asym",
            "int4",
            "int4-g32",
            "int4-g64-asym",
            "int4-pt",
            "int3-g32",
            "int2-asym",
            "nf4",
            "fp4-g32",
            "nf4-g128",
            "q8_0",
            "q4_0",
            "q4_1",
            "mxfp8-e4m3",
            "mxfp4",
            "mxint8",
        ] {
            let q = QuantizedTensor::quantize(name.parse().unwrap(), &w, &[rows, cols]).unwrap();
            let wd = q.dequantize();
            let mut want = vec![0.0f64; n * rows];
            for k in 0..n {
                for rr in 0..rows {
                    want[k * rows + rr] = (0..cols)
                        .map(|c| wd[rr * cols + c] as f64 * x[k * cols + c] as f64)
                        .sum();
                }
            }
            for par in [Par::Seq, Par::rayon(3)] {
                let mut y = vec![0.0f32; n * rows];
                q.matmul(&x, n, &mut y, par).unwrap();
                let mut yv = vec![0.0f32; rows];
                q.matvec(&x[..cols], &mut yv, par).unwrap();
                for i in 0..n * rows {
                    let tol = 1e-4 * (1.0 + want[i].abs()) * (cols as f64).sqrt();
                    assert!(
                        (y[i] as f64 - want[i]).abs() <= tol,
                        "{name} {par:?} matmul {i}: {} vs {}",
                        y[i],
                        want[i]
                    );
                }
                for i in 0..rows {
                    // matvec and matmul may sum in different orders: compare to the reference.
                    let tol = 1e-4 * (1.0 + want[i].abs()) * (cols as f64).sqrt();
                    assert!(
                        (yv[i] as f64 - want[i]).abs() <= tol,
                        "{name} {par:?} matvec {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn matvec_shape_errors_are_typed() {
        let q = QuantizedTensor::quantize(QuantFormat::F32, &[0.0; 8], &[2, 4]).unwrap();
        assert!(q.matvec(&[0.0; 3], &mut [0.0; 2], Par::Seq).is_err());
        assert!(q.matvec(&[0.0; 4], &mut [0.0; 3], Par::Seq).is_err());
        let v = QuantizedTensor::quantize(QuantFormat::F32, &[0.0; 8], &[8]).unwrap();
        assert!(v.matvec(&[0.0; 8], &mut [0.0; 1], Par::Seq).is_err());
    }

    #[test]
    fn quantize_rejects_bad_input_with_typed_errors() {
        let nan = [1.0, f32::NAN, 0.0, 0.0];
        for name in ["f16", "int8", "nf4", "q8_0", "mxfp4", "fp8-e4m3"] {
            let f: QuantFormat = name.parse().unwrap();
            assert!(
                matches!(
                    QuantizedTensor::quantize(f, &nan, &[4]),
                    Err(Error::NonFinite { index: 1, .. })
                ),
                "{name}"
            );
            assert!(
                matches!(
                    QuantizedTensor::quantize(f, &[0.0; 4], &[5]),
                    Err(Error::ShapeMismatch { .. })
                ),
                "{name}"
            );
        }
        assert!(matches!(
            QuantizedTensor::quantize(QuantFormat::Q4_0, &[0.0; 40], &[40]),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn storage_accounting_is_exact() {
        let w = vec![0.5f32; 2 * 64];
        let bytes = |name: &str| {
            QuantizedTensor::quantize(name.parse().unwrap(), &w, &[2, 64])
                .unwrap()
                .storage_bytes()
        };
        assert_eq!(bytes("f32"), 512);
        assert_eq!(bytes("bf16"), 256);
        assert_eq!(bytes("int8"), 128 + 2 * 4);
        assert_eq!(bytes("int4-g32-asym"), 64 + 4 * 4 + 4);
        assert_eq!(bytes("int3-pt"), 48 + 4);
        assert_eq!(bytes("q4_0"), 4 * 18);
        assert_eq!(bytes("q8_0"), 4 * 34);
        assert_eq!(bytes("mxfp4"), 64 + 4);
        assert_eq!(bytes("fp8-e4m3"), 128 + 2 * 4);
    }
}
