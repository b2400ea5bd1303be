//! `attention`: attention variants for efficient inference, each with a slow `f64`
//! reference and a fast CPU path tested against it.
//!
//! Sits above [`quant`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//!
//! Every variant takes `Q` `[heads, n_q, d]`, `K`/`V` `[kv_heads, n_k, d]` (row-major `f32`,
//! grouped-query attention when `kv_heads < heads`), a [`Mask`] (causal with a query offset
//! for decoding, optional key-padding mask) and returns an [`Output`]: the attention output
//! and each row's log-sum-exp.
//!
//! - [`reference`](mod@reference): dense `softmax(s·QKᵀ + M)V` in `f64`, row by row — the
//!   oracle every variant is tested against;
//! - [`flash`]: the production dense path (tiled, online softmax);
//! - [`dilated`]: LongNet dilated attention;
//! - [`infini`]: Infini-attention's compressive memory, stateless and streaming;
//! - [`adaptive_rank`]: per-head low-rank (Nyström, randomized SVD) or dense, decided from
//!   attention entropy;
//! - [`adaptive_precision`]: per-head operand precision (f32 … FP8) and token importance;
//! - [`variant`]: one entry point ([`Variant`]) selectable from a string, for models that
//!   choose their attention per layer.

pub mod adaptive_precision;
pub mod adaptive_rank;
pub mod dilated;
mod error;
pub mod flash;
pub mod gpu;
pub mod infini;
pub mod reference;
mod shape;
pub mod variant;

pub use error::{Error, Result};
pub use quant;
pub use shape::{Mask, Output, Shape, default_scale};
pub use variant::Variant;
