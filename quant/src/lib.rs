//! `quant`: turning `f32` tensors into compact codes and back, choosing their ranges,
//! simulating quantization during training, and multiplying by quantized weights fast.
//!
//! Sits above [`numerics`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`); `models`
//! uses it to store every weight and the KV cache at the precision a policy asks for.
//!
//! Modules:
//! - [`uniform`]: integer quantizers, 2–8 bits, symmetric or affine, per tensor / channel /
//!   group, packed codes, scales in f32/f16/E8M0, exact memory accounting;
//! - [`nf4`]: NF4 and FP4 as in QLoRA/bitsandbytes, with double quantization;
//! - [`fp8`]: FP8 (E4M3FN/E5M2) with amax scaling, and the OCP MX block formats;
//! - [`ggml`]: GGML's Q8_0, Q4_0 and Q4_1 blocks, byte-compatible with GGUF;
//! - [`mod@format`]: one run-time format type parsed from strings such as `int4-g32-asym`, and
//!   the quantized tensor it produces;
//! - [`calibrate`]: range observers (min-max, moving average, percentile, MSE-optimal,
//!   KL/entropy);
//! - [`qat`]: fake quantization with PyTorch's semantics and STE, and LSQ;
//! - [`kv`]: quantized KV-cache storage, appendable token by token, mixed precision;
//! - [`qmatvec`]: matrix-vector and matrix-matrix products with quantized weights;
//! - [`pack`]: bit packing of 2- to 8-bit codes.
//!
//! # Cargo features
//!
//! None.
#![doc(test(attr(deny(warnings))))]

pub mod calibrate;
mod error;
pub mod format;
pub mod fp8;
pub mod ggml;
pub mod kv;
pub mod nf4;
pub mod pack;
pub mod qat;
pub mod qmatvec;
pub mod uniform;

pub use error::{Error, Result};
pub use format::{QuantFormat, QuantizedTensor};
