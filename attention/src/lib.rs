//! `attention`: attention variants for efficient inference.
//!
//! Sits above [`quant`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//! It will own dense and flash attention, adaptive-rank attention, dilated (LongNet)
//! attention and Infini-attention memory, each with a CPU reference, a fast CPU path and a
//! WGSL compute shader. Nothing is implemented yet: this crate exists so the layout of the
//! workspace is visible; its contents arrive with its own issue.

pub use quant;
