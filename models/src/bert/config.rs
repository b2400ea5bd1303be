//! The encoder's hyper-parameters, from a Hugging Face model folder's JSON files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// Largest configuration file read (they are a few hundred bytes; this bounds a hostile one).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Largest value accepted for any size in `config.json` (a hostile file cannot ask for more).
const MAX_DIM: usize = 1 << 20;

/// The feed-forward activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x·Φ(x) = x/2 · (1 + erf(x/√2))` (Hendrycks & Gimpel, arXiv:1606.08415), Hugging
    /// Face's `"gelu"`.
    GeluErf,
    /// The tanh approximation `x/2 · (1 + tanh(√(2/π)(x + 0.044715x³)))`, Hugging Face's
    /// `"gelu_new"` and `"gelu_pytorch_tanh"`.
    GeluTanh,
}

/// How token vectors become a sentence vector (sentence-transformers' `Pooling` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the attended tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// The first token's vector (`pooling_mode_cls_token`).
    Cls,
}

/// A BERT encoder's hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Encoder layers.
    pub n_layers: usize,
    /// Attention heads (`H` is a multiple of it).
    pub n_heads: usize,
    /// Feed-forward width.
    pub intermediate: usize,
    /// Rows of the position-embedding table.
    pub max_positions: usize,
    /// Rows of the token-type table.
    pub type_vocab_size: usize,
    /// LayerNorm ε.
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Sentence pooling.
    pub pooling: Pooling,
    /// Whether sentence vectors are L2-normalized (a `Normalize` module in `modules.json`;
    /// assumed when `modules.json` is absent, as for all-MiniLM-L6-v2's card).
    pub normalize: bool,
    /// Longest input in tokens, special tokens included (sentence-transformers'
    /// `max_seq_length`; longer inputs are truncated, as it does).
    pub max_seq_len: usize,
}

impl EncoderConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.n_heads
    }

    /// Reads `config.json`, and when present `1_Pooling/config.json`,
    /// `sentence_bert_config.json` and `modules.json`, from the model folder `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `config.json` cannot be read; [`Error::Config`] naming the file
    /// when a file is not the JSON expected, the model is not a BERT encoder with absolute
    /// positions, the activation or pooling is one this crate does not run, or a size is
    /// zero, absurd or inconsistent (`hidden` not a multiple of the heads, a sequence
    /// length beyond the position table).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let raw: RawConfig = read_json(&path)?.ok_or_else(|| Error::Io {
            path: path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let bad = |reason: String| Error::Config {
            path: path.clone(),
            reason: Cow::Owned(reason),
        };
        if let Some(t) = &raw.model_type
            && t != "bert"
        {
            return Err(bad(format!("model_type `{t}`: only `bert` is supported")));
        }
        if let Some(p) = &raw.position_embedding_type
            && p != "absolute"
        {
            return Err(bad(format!(
                "position_embedding_type `{p}`: only `absolute` is supported"
            )));
        }
        let activation = match raw.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => return Err(bad(format!("hidden_act `{other}` is not supported"))),
        };
        for (what, v) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
            ("intermediate_size", raw.intermediate_size),
            ("max_position_embeddings", raw.max_position_embeddings),
            ("type_vocab_size", raw.type_vocab_size),
        ] {
            if v == 0 || v > MAX_DIM {
                return Err(bad(format!("{what} = {v} (must be 1..={MAX_DIM})")));
            }
        }
        if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            )));
        }
        let eps = raw.layer_norm_eps;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(bad(format!(
                "layer_norm_eps = {eps} (must be finite and > 0)"
            )));
        }

        let pooling = match read_json::<RawPooling>(&dir.join("1_Pooling").join("config.json"))? {
            None => Pooling::Mean,
            Some(p) => {
                let modes = [
                    p.pooling_mode_mean_tokens,
                    p.pooling_mode_cls_token,
                    p.pooling_mode_max_tokens,
                    p.pooling_mode_mean_sqrt_len_tokens,
                ];
                match modes {
                    [true, false, false, false] => Pooling::Mean,
                    [false, true, false, false] => Pooling::Cls,
                    _ => {
                        return Err(Error::Config {
                            path: dir.join("1_Pooling").join("config.json"),
                            reason: "exactly one of mean or CLS pooling must be on".into(),
                        });
                    }
                }
            }
        };
        let sbert_path = dir.join("sentence_bert_config.json");
        let max_seq_len = match read_json::<RawSbert>(&sbert_path)? {
            Some(RawSbert {
                max_seq_length: Some(n),
            }) => n,
            _ => raw.max_position_embeddings,
        };
        if max_seq_len < 2 || max_seq_len > raw.max_position_embeddings {
            return Err(Error::Config {
                path: sbert_path,
                reason: Cow::Owned(format!(
                    "max_seq_length {max_seq_len} must be 2..={} (the position table)",
                    raw.max_position_embeddings
                )),
            });
        }
        let normalize = match read_json::<Vec<RawModule>>(&dir.join("modules.json"))? {
            None => true,
            Some(m) => m.iter().any(|m| m.kind.ends_with(".Normalize")),
        };
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden: raw.hidden_size,
            n_layers: raw.num_hidden_layers,
            n_heads: raw.num_attention_heads,
            intermediate: raw.intermediate_size,
            max_positions: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size,
            layer_norm_eps: eps,
            activation,
            pooling,
            normalize,
            max_seq_len,
        })
    }
}

/// Reads a JSON file of at most [`MAX_CONFIG_BYTES`]; `Ok(None)` when it does not exist.
pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let io = |source| Error::Io {
        path: PathBuf::from(path),
        source,
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if len > MAX_CONFIG_BYTES {
        return Err(Error::Config {
            path: path.to_path_buf(),
            reason: Cow::Owned(format!(
                "{len} bytes: a configuration file may hold at most {MAX_CONFIG_BYTES}"
            )),
        });
    }
    let text = std::fs::read(path).map_err(io)?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: Cow::Owned(format!("not the JSON expected: {e}")),
        })
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    position_embedding_type: Option<String>,
}

fn two() -> usize {
    2
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

#[derive(Deserialize)]
struct RawPooling {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct RawSbert {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct RawModule {
    #[serde(rename = "type")]
    kind: String,
}
