//! `models`: real transformers — a LLaMA-family decoder on GGUF weights and a BERT encoder on
//! safetensors weights — with precision policies.
//!
//! Sits above [`parallel`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//!
//! Two real models: SmolLM2-135M-Instruct (GGUF, 4-bit as packaged) through [`llama`], and
//! the fp32 sentence encoder all-MiniLM-L6-v2 (safetensors) through [`bert`], so precision
//! ablations run both on a 4-bit-born and on a genuinely full-precision model.
//!
//! - [`gguf`]: GGUF v2/v3 reader (memory-mapped, hostile-input safe) and writer;
//! - [`tokenizer`]: byte-level BPE from the GGUF vocabulary, token-for-token equal to
//!   llama.cpp's;
//! - [`llama`]: the transformer ([`llama::Model`]), its KV cache and an `f64` reference;
//! - [`perplexity`]: llama.cpp's perplexity method, KL divergence and top-1 agreement;
//! - [`generate`]: greedy and sampled generation;
//! - [`policy`]: precision policies mapping tensor-name patterns to `quant` formats;
//! - [`sensitivity`]: per-group quantization sensitivity and budgeted precision allocation;
//! - [`importance`]: KV-cache precision tiers from token importance;
//! - [`safetensors`]: Hugging Face safetensors reader (memory-mapped, hostile-input safe);
//! - [`bert`]: the BERT sentence encoder ([`bert::Encoder`]) matching sentence-transformers,
//!   its WordPiece tokenizer, an `f64` reference and its layer sensitivity;
//! - [`fidelity`]: embedding fidelity against a reference run (cosine, retrieval agreement);
//! - [`fetch`]: finds (or downloads and verifies) the real models and corpus.

pub mod bert;
mod error;
pub mod fetch;
pub mod fidelity;
pub mod generate;
pub mod gguf;
pub mod importance;
pub mod llama;
pub mod perplexity;
pub mod policy;
pub mod safetensors;
pub mod sensitivity;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokenizer;

pub use error::{Error, Result};
pub use parallel;
