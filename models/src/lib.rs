//! `models`: LLaMA-family transformers on real GGUF weights.
//!
//! Sits above [`parallel`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//! It will load real GGUF weights (SmolLM2-135M-Instruct) and compose precision policies,
//! token-importance precision, attention variants and partitioned execution. Nothing is
//! implemented yet: this crate exists so the layout of the workspace is visible; its
//! contents arrive with its own issue.

pub use parallel;
