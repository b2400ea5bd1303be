//! `models`: a LLaMA-family transformer on real GGUF weights, with precision policies.
//!
//! Sits above [`parallel`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).

mod error;
pub mod gguf;

pub use error::{Error, Result};
pub use parallel;
