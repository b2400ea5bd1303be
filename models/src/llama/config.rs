//! Hyper-parameters of a LLaMA-family model, read from GGUF metadata.

use crate::gguf::Metadata;
use crate::{Error, Result};

/// The largest value accepted for any size hyper-parameter: far above any real model, low
/// enough that every product of two of them fits in `usize` on 64-bit targets.
const MAX_DIM: usize = 1 << 24;

/// Hyper-parameters of a LLaMA-family transformer (the `{arch}.*` keys of the GGUF
/// metadata, as llama.cpp reads them).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// `general.architecture` (`llama`).
    pub arch: String,
    /// Number of transformer blocks (`{arch}.block_count`).
    pub n_layers: usize,
    /// Model width (`{arch}.embedding_length`).
    pub d_model: usize,
    /// Query heads (`{arch}.attention.head_count`).
    pub n_heads: usize,
    /// Key/value heads (`{arch}.attention.head_count_kv`; grouped-query attention when
    /// smaller than `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one head: `d_model / n_heads`.
    pub head_dim: usize,
    /// Hidden width of the SwiGLU MLP (`{arch}.feed_forward_length`).
    pub ffn_dim: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab_size: usize,
    /// RoPE base frequency θ (`{arch}.rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// Number of rotated dimensions per head (`{arch}.rope.dimension_count`, default
    /// `head_dim`).
    pub rope_dim: usize,
    /// RMSNorm ε (`{arch}.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Training context length (`{arch}.context_length`).
    pub context_length: usize,
}

impl Config {
    /// Reads the hyper-parameters from GGUF metadata; `vocab_size` is taken from the
    /// embedding's shape by the caller when the metadata has no `{arch}.vocab_size`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingMetadata`] / [`Error::BadMetadata`] for absent or unusable keys
    /// (zero or absurd sizes, heads that do not divide the width, a rotated dimension that
    /// is odd or wider than a head, a non-finite θ or ε).
    pub fn from_metadata(meta: &Metadata, vocab_size: usize) -> Result<Self> {
        let arch = meta.get_str("general.architecture")?.to_owned();
        if arch != "llama" {
            return Err(Error::BadMetadata {
                key: "general.architecture".into(),
                expected: format!("`llama` (found `{arch}`)").into(),
            });
        }
        let key = |k: &str| format!("{arch}.{k}");
        let size = |k: &str| -> Result<usize> {
            let k = key(k);
            let v = meta.get_u32(&k)? as usize;
            if v == 0 || v > MAX_DIM {
                return Err(Error::BadMetadata {
                    key: k,
                    expected: format!("a size in 1..={MAX_DIM} (found {v})").into(),
                });
            }
            Ok(v)
        };
        let n_layers = size("block_count")?;
        let d_model = size("embedding_length")?;
        let n_heads = size("attention.head_count")?;
        let n_kv_heads = match meta.get(&key("attention.head_count_kv")) {
            Some(_) => size("attention.head_count_kv")?,
            None => n_heads,
        };
        let ffn_dim = size("feed_forward_length")?;
        let context_length = size("context_length")?;
        let bad = |k: &str, expected: String| Error::BadMetadata {
            key: key(k),
            expected: expected.into(),
        };
        if !d_model.is_multiple_of(n_heads) {
            return Err(bad(
                "attention.head_count",
                format!("a divisor of embedding_length {d_model} (found {n_heads})"),
            ));
        }
        if n_kv_heads > n_heads || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(bad(
                "attention.head_count_kv",
                format!("a divisor of head_count {n_heads} (found {n_kv_heads})"),
            ));
        }
        let head_dim = d_model / n_heads;
        let rope_dim = match meta.get(&key("rope.dimension_count")) {
            Some(_) => size("rope.dimension_count")?,
            None => head_dim,
        };
        if rope_dim > head_dim || !rope_dim.is_multiple_of(2) {
            return Err(bad(
                "rope.dimension_count",
                format!("an even number ≤ head_dim {head_dim} (found {rope_dim})"),
            ));
        }
        let rope_theta = match meta.get(&key("rope.freq_base")) {
            Some(_) => meta.get_f32(&key("rope.freq_base"))?,
            None => 10_000.0,
        };
        if !(rope_theta.is_finite() && rope_theta > 1.0) {
            return Err(bad(
                "rope.freq_base",
                format!("a finite base > 1 (found {rope_theta})"),
            ));
        }
        let rms_eps = meta.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        if !(rms_eps.is_finite() && rms_eps >= 0.0) {
            return Err(bad(
                "attention.layer_norm_rms_epsilon",
                format!("a finite ε ≥ 0 (found {rms_eps})"),
            ));
        }
        if vocab_size == 0 || vocab_size > MAX_DIM {
            return Err(Error::BadMetadata {
                key: key("vocab_size"),
                expected: format!("a vocabulary size in 1..={MAX_DIM} (found {vocab_size})").into(),
            });
        }
        Ok(Self {
            arch,
            n_layers,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim,
            vocab_size,
            rope_theta,
            rope_dim,
            rms_eps,
            context_length,
        })
    }

    /// Width of the keys (and values) of one token: `n_kv_heads · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Query heads per key/value head.
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}
