//! `quant`: quantizers for efficient inference.
//!
//! Sits directly above [`numerics`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//! It will own uniform symmetric/asymmetric quantizers, NF4, the GGML block formats,
//! calibration, QAT fake-quant with STE/LSQ gradients, quantized matvec kernels and
//! KV-cache quantization. Nothing is implemented yet: this crate exists so the layout of
//! the workspace is visible; its contents arrive with its own issue.

pub use numerics;
