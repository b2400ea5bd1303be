//! NF4 and FP4 block quantization as in QLoRA (Dettmers et al. 2023, "QLoRA: Efficient
//! Finetuning of Quantized LLMs", §3) and bitsandbytes' `quantize_4bit` /
//! `dequantize_4bit`, with optional double quantization of the block scales
//! (`compress_statistics=True`).
//!
//! # Format
//!
//! The input (a flat slice: the row-major flattening of the tensor) is cut into blocks of
//! [`Nf4Params::block`] consecutive elements (default 64; the last block may be shorter).
//! For each block:
//!
//! 1. `a = max |x_i|` over the block's elements (an `f32`, the block's *absmax*);
//! 2. every element is normalized as `y = x · (1/a)`: an `f32` reciprocal, then an `f32`
//!    product, as bitsandbytes' CUDA kernel does (not a division);
//! 3. `y` gets a 4-bit code from the codebook's decision tree ([`Codebook4::encode`]: the
//!    comparisons of bitsandbytes' `dQuantizeNF4` / `dQuantizeFP4`, see [`NF4_THRESHOLDS`]
//!    and [`FP4_THRESHOLDS`] for the tie rule).
//!
//! Dequantization is one `f32` product per element: `x̂ = values[code] · â`, where `â` is
//! the block's absmax as stored, or as reconstructed from the double quantization
//! ([`Nf4Tensor::absmax`]).
//!
//! **Packing.** Two codes per byte, the *first* element of each pair in the *high* nibble:
//! byte `k = (q[2k] << 4) | q[2k+1]`, as bitsandbytes' `kQuantizeBlockwise` packs them and
//! `kDequantizeBlockwise` reads them. This is the opposite of [`crate::pack`] (low nibble
//! first). Blocks are even, so a byte never straddles two blocks. For an odd length the low
//! nibble of the last byte holds the code of a zero pad element (bitsandbytes loads the
//! missing elements of the last block as `0` and stores `(valid + 1) / 2` bytes), which is
//! [`Codebook4::zero_code`].
//!
//! # Double quantization
//!
//! With [`Nf4Params::double_quant`] the per-block absmax values `a_b` are not stored as
//! `f32`. As in `quantize_4bit(…, compress_statistics=True)`:
//!
//! 1. `offset = mean(a_b)` (one `f32`);
//! 2. `v_b = a_b − offset` (in `f32`) is quantized blockwise in groups of
//!    [`DOUBLE_QUANT_BLOCK`] = 256 with bitsandbytes' signed dynamic 8-bit map
//!    ([`DYNAMIC_MAP`]): per group `a2 = max |v_b|` (one `f32`), then one byte per block,
//!    the index `dQuantize` picks for `v_b · (1/a2)`;
//! 3. the absmax used for dequantization is `â_b = DYNAMIC_MAP[q_b] · a2 + offset`, two
//!    `f32` roundings, as `dequantize_blockwise` followed by `absmax += offset` computes it.
//!
//! The reconstruction error is absolute, relative to the spread of the absmax values:
//! `|â_b − a_b| ≤ a2 · 0.0070313` (half the widest gap of the map) plus rounding, so a block
//! whose absmax is far below its neighbours' can be rescaled noticeably. A group whose
//! absmax values are all equal has `a2 = 0` and reconstructs exactly to `offset`.
//!
//! # Storage
//!
//! [`Nf4Tensor::storage_bytes`] counts what is stored for `n` elements in blocks of `B`:
//! `⌈n/2⌉` bytes of codes, plus either `4·⌈n/B⌉` bytes of `f32` absmax, or with double
//! quantization `⌈n/B⌉` one-byte codes, `4·⌈⌈n/B⌉/256⌉` bytes of second-level absmax and a
//! 4-byte offset. The constant code tables (16 and 256 floats, which bitsandbytes also
//! serializes with every tensor as `quant_map` and `nested_quant_map`) are not counted. So
//! with double quantization, for `n` a multiple of `256·B`:
//!
//! ```text
//! bits/weight = 4 + 8/B + 32/(256·B) + 32/n
//!             = 4 + 0.125 + 0.001953 + 32/n ≈ 4.127   for B = 64
//! ```
//!
//! and `4 + 32/B` (= 4.5 for `B = 64`) without it.
//!
//! # Tensor-level behaviour and deviations from bitsandbytes
//!
//! - **Block sizes.** Any even `block > 0` is accepted ([`Error::InvalidParameter`]
//!   otherwise); the bitsandbytes kernels read here instantiate the powers of two from 64
//!   to 4096. For those, the layout is identical.
//! - **Inputs.** A NaN or infinity is an [`Error::NonFinite`] naming the first index
//!   (bitsandbytes would propagate it into the absmax). An empty input is an
//!   [`Error::Empty`]: its mean absmax, the double quantization offset, would be undefined
//!   (NaN in PyTorch).
//! - **All-zero blocks** get [`Codebook4::zero_code`] for every element, so they decode to
//!   zero whatever their (reconstructed) absmax. bitsandbytes computes `0 · (1/0) = NaN`
//!   there, which its NF4 tree sends to code 0 (`−1.0`): without double quantization that
//!   still decodes to `−0.0`, but with it each element becomes `−â`, a small nonzero value.
//!   FP4 sends NaN to code 0 (`+0.0`) like us.
//! - **Exact reciprocal.** bitsandbytes builds its CUDA code with `--use_fast_math`, so
//!   `1.0f / absmax` is an approximate reciprocal and subnormals are flushed to zero. We
//!   use the correctly rounded reciprocal, so a value within an ulp or so of a decision
//!   threshold can get the neighbouring code. When `1/a` overflows (`a < 2^−128`, a
//!   subnormal absmax) we divide by `a` instead; bitsandbytes would flush such a block to
//!   zero.
//! - **Offset.** PyTorch's CUDA `mean` accumulates in `f32` in its own reduction order; we
//!   sum in `f64` and round once, so the offset can differ from bitsandbytes' by an ulp on
//!   large tensors.
//!
//! Everything else (tables, thresholds, strict comparisons, reciprocal-then-multiply, the
//! dynamic map and its search, the nibble order, the `f32` operation order of the
//! reconstruction) follows the sources below, and the tests pin it down bit for bit.
//!
//! # Idempotence
//!
//! Re-quantizing a dequantized tensor with the same parameters reproduces it when double
//! quantization is off: each block's largest element decodes to `±a` exactly (codes ±1),
//! so the absmax is unchanged, and `c · a · (1/a)` stays within an ulp of `c`, far from any
//! threshold. NF4 reproduces the codes bit for bit; FP4 also the values, except that a
//! `−0.0` (code `0b1000`) comes back as `+0.0` (code 0), because the tree takes the sign from
//! `y < 0`. With double quantization the 4-bit codes are still reproduced, but the second
//! pass quantizes the *reconstructed* absmax values around a new mean, so they can move by
//! up to the double quantization error again.
//!
//! # Sources
//!
//! - bitsandbytes-foundation/bitsandbytes, `bitsandbytes/functional.py`
//!   (commit `01327aa0119fa503ea16322dd72f69f202e4502e`, and current main): `get_4bit_type`,
//!   `quantize_4bit`, `dequantize_4bit`, `create_dynamic_map`, `quantize_blockwise`.
//! - `csrc/cuda/blockwise_quantization.cu` (commit
//!   `12297f3b6effd3096dd9a39c2110008464e148cc`): `dQuantizeNF4`, `dQuantizeFP4`,
//!   `dQuantize`, `kQuantizeBlockwise` (absmax, reciprocal, packing, partial blocks).
//! - `csrc/kernels.cu` (current main: `nf4_dequantization_lut`, `fp4_dequantization_lut`,
//!   `kDequantizeBlockwise`; commit `c037a306e97ced3c452570132f66aac4e2964056`:
//!   `dDequantizeNF4`, `dDequantizeFP4Tree`, the same values as trees); `CMakeLists.txt`
//!   (`--use_fast_math`).
//! - PyTorch `aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp` (`linspace`), for the
//!   exact `f32` values of the dynamic map.
//!
//! # Example
//!
//! ```
//! use quant::nf4::{quantize, Codebook4, Nf4Params};
//! # fn main() -> Result<(), quant::Error> {
//! let w: Vec<f32> = (0..256).map(|i| ((i as f32) * 0.37).sin()).collect();
//! let q = quantize(&w, Nf4Params::default())?; // NF4, blocks of 64, double quantization
//! assert_eq!(q.packed().len(), 128);
//! assert_eq!(q.packed()[0] >> 4, 7); // w[0] = 0 has the NF4 zero code, in the high nibble
//! let back = q.dequantize();
//! let absmax = q.absmax();
//! for (i, (x, y)) in w.iter().zip(&back).enumerate() {
//!     let a = absmax[i / 64];
//!     assert!((x - y).abs() <= 0.152 * a + 0.01);
//! }
//!
//! let plain = quantize(&w, Nf4Params::new(Codebook4::Fp4, 128, false))?;
//! assert_eq!(plain.storage_bytes(), 128 + 2 * 4); // codes + two f32 absmax
//! # Ok(())
//! # }
//! ```

mod codebook;
mod dynamic;
#[cfg(test)]
mod tests;

pub use codebook::{
    CODEBOOK, Codebook4, FP4_CODEBOOK, FP4_MAGNITUDE_CODES, FP4_THRESHOLDS, NF4_THRESHOLDS,
};
pub use dynamic::{DOUBLE_QUANT_BLOCK, DYNAMIC_MAP};

use crate::{Error, Result};
use dynamic::dynamic_index;

/// Parameters of [`quantize`]. Default: NF4, blocks of 64, double quantization (QLoRA's
/// setting; bitsandbytes' `quantize_4bit` itself defaults to FP4 without it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Nf4Params {
    /// The 4-bit code table.
    pub codebook: Codebook4,
    /// Elements per absmax block: even and positive.
    pub block: usize,
    /// Quantize the block absmax values again, 8 bits each (`compress_statistics`).
    pub double_quant: bool,
}

impl Default for Nf4Params {
    fn default() -> Self {
        Nf4Params {
            codebook: Codebook4::Nf4,
            block: 64,
            double_quant: true,
        }
    }
}

impl Nf4Params {
    /// Parameters with every field given (checked by [`quantize`]).
    pub const fn new(codebook: Codebook4, block: usize, double_quant: bool) -> Self {
        Nf4Params {
            codebook,
            block,
            double_quant,
        }
    }
}

/// The second-level quantization of the block absmax values (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct DoubleQuant {
    codes: Vec<u8>,
    absmax: Vec<f32>,
    offset: f32,
}

impl DoubleQuant {
    /// One [`DYNAMIC_MAP`] index per 4-bit block (bitsandbytes' `quant_state.absmax`).
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// One `f32` scale per [`DOUBLE_QUANT_BLOCK`] codes (`quant_state.state2.absmax`).
    pub fn absmax(&self) -> &[f32] {
        &self.absmax
    }

    /// The mean of the original block absmax values, added back on reconstruction
    /// (`quant_state.offset`).
    pub fn offset(&self) -> f32 {
        self.offset
    }

    /// The reconstructed absmax of every block, `DYNAMIC_MAP[q] · a2 + offset`.
    fn reconstruct(&self) -> Vec<f32> {
        self.codes
            .chunks(DOUBLE_QUANT_BLOCK)
            .zip(&self.absmax)
            .flat_map(|(codes, &a2)| {
                codes
                    .iter()
                    .map(move |&q| DYNAMIC_MAP[usize::from(q)] * a2 + self.offset)
            })
            .collect()
    }

    /// Quantizes the block absmax values `absmax` (non-empty).
    fn quantize(absmax: &[f32]) -> DoubleQuant {
        let mean = absmax.iter().map(|&a| f64::from(a)).sum::<f64>() / absmax.len() as f64;
        let offset = mean as f32;
        let mut codes = Vec::with_capacity(absmax.len());
        let mut scales = Vec::with_capacity(absmax.len().div_ceil(DOUBLE_QUANT_BLOCK));
        for group in absmax.chunks(DOUBLE_QUANT_BLOCK) {
            let a2 = group.iter().fold(0.0f32, |m, &a| m.max((a - offset).abs()));
            scales.push(a2);
            // With a2 = 0 every centred value is ±0 and the normalized value is NaN, as in
            // bitsandbytes (0 · ∞); the search maps it to index 0 and the reconstruction
            // is DYNAMIC_MAP[0] · 0 + offset = offset exactly.
            let normalize = Normalizer::new(a2);
            codes.extend(
                group
                    .iter()
                    .map(|&a| dynamic_index(normalize.apply(a - offset))),
            );
        }
        DoubleQuant {
            codes,
            absmax: scales,
            offset,
        }
    }
}

/// How the block absmax is stored.
#[derive(Clone, Debug, PartialEq)]
enum AbsmaxStore {
    Plain(Vec<f32>),
    Double(DoubleQuant),
}

/// A tensor quantized to NF4 or FP4 (see the module docs for the layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Nf4Tensor {
    params: Nf4Params,
    len: usize,
    packed: Vec<u8>,
    absmax: AbsmaxStore,
}

/// `y = x · (1/a)`, with the fallbacks of the module docs.
#[derive(Clone, Copy, Debug)]
struct Normalizer {
    a: f32,
    inv: f32,
}

impl Normalizer {
    fn new(a: f32) -> Self {
        Normalizer { a, inv: 1.0 / a }
    }

    #[inline]
    fn apply(self, x: f32) -> f32 {
        if self.inv.is_finite() {
            x * self.inv
        } else {
            // a = 0 (NaN, as in bitsandbytes; callers handle it) or a subnormal whose
            // reciprocal overflows.
            x / self.a
        }
    }
}

/// Quantizes `x` (the row-major flattening of a tensor) to 4 bits per element.
///
/// See the module docs for the algorithm, the layout and where it departs from
/// bitsandbytes.
///
/// # Errors
///
/// - [`Error::InvalidParameter`] if `params.block` is zero or odd.
/// - [`Error::Empty`] if `x` is empty.
/// - [`Error::NonFinite`] for a NaN or infinite element (naming the first).
pub fn quantize(x: &[f32], params: Nf4Params) -> Result<Nf4Tensor> {
    const OP: &str = "nf4::quantize";
    if params.block == 0 || !params.block.is_multiple_of(2) {
        return Err(Error::InvalidParameter {
            op: OP,
            name: "block",
            value: params.block.to_string(),
            reason: "must be even and positive",
        });
    }
    if x.is_empty() {
        return Err(Error::Empty { op: OP });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            op: OP,
            index,
            value: x[index],
        });
    }
    let codebook = params.codebook;
    let zero = codebook.zero_code();
    let mut packed = Vec::with_capacity(x.len().div_ceil(2));
    let mut absmax = Vec::with_capacity(x.len().div_ceil(params.block));
    for block in x.chunks(params.block) {
        let a = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        absmax.push(a);
        let normalize = Normalizer::new(a);
        let code = |v: f32| {
            if a == 0.0 {
                zero
            } else {
                codebook.encode(normalize.apply(v))
            }
        };
        packed.extend(block.chunks(2).map(|pair| {
            let low = pair.get(1).map_or(zero, |&v| code(v));
            (code(pair[0]) << 4) | low
        }));
    }
    let absmax = if params.double_quant {
        AbsmaxStore::Double(DoubleQuant::quantize(&absmax))
    } else {
        AbsmaxStore::Plain(absmax)
    };
    Ok(Nf4Tensor {
        params,
        len: x.len(),
        packed,
        absmax,
    })
}

impl Nf4Tensor {
    /// The parameters it was quantized with.
    pub fn params(&self) -> Nf4Params {
        self.params
    }

    /// The code table.
    pub fn codebook(&self) -> Codebook4 {
        self.params.codebook
    }

    /// Elements per absmax block.
    pub fn block(&self) -> usize {
        self.params.block
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements (never: [`quantize`] rejects empty input).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of absmax blocks, `⌈len / block⌉`.
    pub fn num_blocks(&self) -> usize {
        self.len.div_ceil(self.params.block)
    }

    /// The packed codes, `⌈len/2⌉` bytes: element `2k` in the high nibble of byte `k`,
    /// element `2k + 1` in the low nibble (bitsandbytes' order; a stable layout for kernels).
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// The 4-bit code of every element, unpacked.
    pub fn codes(&self) -> Vec<u8> {
        let mut codes: Vec<u8> = self
            .packed
            .iter()
            .flat_map(|&b| [b >> 4, b & 0x0F])
            .collect();
        codes.truncate(self.len);
        codes
    }

    /// The absmax of every block as used for dequantization: the stored `f32` values, or
    /// with double quantization the reconstructed ones (`DYNAMIC_MAP[q] · a2 + offset`).
    /// Element `i` decodes to `codebook.decode(code_i) · absmax[i / block]`.
    pub fn absmax(&self) -> Vec<f32> {
        match &self.absmax {
            AbsmaxStore::Plain(a) => a.clone(),
            AbsmaxStore::Double(d) => d.reconstruct(),
        }
    }

    /// The second-level quantization of the absmax, if double quantization is on.
    pub fn double_quant(&self) -> Option<&DoubleQuant> {
        match &self.absmax {
            AbsmaxStore::Plain(_) => None,
            AbsmaxStore::Double(d) => Some(d),
        }
    }

    /// Stored bytes: packed codes plus the absmax as stored (see the module docs; the
    /// constant code tables are not counted).
    pub fn storage_bytes(&self) -> usize {
        let scales = match &self.absmax {
            AbsmaxStore::Plain(a) => 4 * a.len(),
            AbsmaxStore::Double(d) => d.codes.len() + 4 * d.absmax.len() + 4,
        };
        self.packed.len() + scales
    }

    /// Stored bits per element, `8 · storage_bytes / len` (≈ 4.127 for the default
    /// parameters on large tensors; the formula is in the module docs).
    pub fn bits_per_weight(&self) -> f64 {
        self.storage_bytes() as f64 * 8.0 / self.len as f64
    }

    /// Decodes into `out`: `out[i] = codebook.decode(code_i) · absmax[i / block]`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `out.len()` is not [`Nf4Tensor::len`].
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.len {
            return Err(Error::ShapeMismatch {
                op: "Nf4Tensor::dequantize_into",
                expected: vec![self.len],
                got: vec![out.len()],
            });
        }
        let table = self.params.codebook.values();
        let bytes_per_block = self.params.block / 2;
        let absmax = self.absmax();
        for ((block, bytes), &a) in out
            .chunks_mut(self.params.block)
            .zip(self.packed.chunks(bytes_per_block))
            .zip(&absmax)
        {
            for (pair, &byte) in block.chunks_mut(2).zip(bytes) {
                pair[0] = table[usize::from(byte >> 4)] * a;
                if let Some(second) = pair.get_mut(1) {
                    *second = table[usize::from(byte & 0x0F)] * a;
                }
            }
        }
        Ok(())
    }

    /// Decodes into a new vector.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len];
        self.dequantize_into(&mut out)
            .expect("the output has the tensor's length");
        out
    }
}
