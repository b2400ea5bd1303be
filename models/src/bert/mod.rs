//! A BERT sentence encoder on real `f32` safetensors weights: all-MiniLM-L6-v2 and its
//! family, computing the sentence embedding sentence-transformers produces.
//!
//! The architecture (Devlin et al., *BERT*, arXiv:1810.04805; sentence embeddings:
//! Reimers & Gurevych, *Sentence-BERT*, arXiv:1908.10084) as Hugging Face's `BertModel`
//! computes it, post-LayerNorm:
//!
//! ```text
//! x₀ = LN(word[t] + position[p] + token_type[0])
//! for each layer l:
//!     a  = LN(x + W_o · MHA(W_q·x + b_q, W_k·x + b_k, W_v·x + b_v) + b_o)
//!     x  = LN(a + W_2 · GELU(W_1·a + b_1) + b_2)
//! e  = mean of x over the attended tokens          (or the first token: CLS pooling)
//! e  = e / max(‖e‖₂, 1e-12)                         (when the folder has a Normalize module)
//! ```
//!
//! - LayerNorm `LN(v) = (v − μ)/√(σ² + ε) · γ + β` over the hidden axis, `μ`, `σ²` in `f64`.
//! - Multi-head attention is bidirectional: every token attends to every token of its own
//!   sequence, softmax(`QKᵀ/√d_h`) with an `f64` row sum. Padding never enters: batches are
//!   **packed** (each sequence's tokens back to back, attention restricted to the
//!   sequence's own range), which is what Hugging Face's padded batch with its attention
//!   mask computes for the attended positions, without spending work on padding.
//!   [`Encoder::forward`] takes the padded `[batch, seq_len]` layout and 0/1 mask for
//!   callers who have one.
//! - GELU in its exact `erf` form when the config says `"gelu"` ([`Activation`]).
//!
//! Weights are held as [`quant::QuantizedTensor`]s: a [`Policy`] re-encodes chosen tensors
//! at load time exactly as for the LLaMA model ([`crate::llama`]), over the file's own
//! tensor names (`encoder.layer.N.attention.self.query.weight`, …); the presets map
//! attention, feed-forward and embedding tensors for both families (see
//! [`crate::policy`]). Products run through the same linear-layer code as the LLaMA model:
//! `quant`'s fused kernels for short inputs, row-block decode + GEMM from 16 rows on.
//!
//! ```no_run
//! # fn main() -> models::Result<()> {
//! use models::bert::Encoder;
//! use models::policy::Policy;
//! let dir = models::fetch::minilm_model()?;
//! let enc = Encoder::load(&dir, &Policy::preset("fp32")?, 2)?;
//! let e = enc.embed(&["A cat sat on the mat.", "A dog lay on the rug."])?;
//! let cos: f32 = e[0].iter().zip(&e[1]).map(|(a, b)| a * b).sum();
//! assert!(cos > 0.3);
//! # Ok(())
//! # }
//! ```

mod config;
mod forward;
pub mod reference;
pub mod sensitivity;
mod tokenizer;

use std::path::Path;
use std::sync::Arc;

use numerics::Par;
use quant::QuantizedTensor;

pub use config::{Activation, EncoderConfig, Pooling};
pub use forward::{BATCH_SEQUENCES, BATCH_TOKENS};
pub use tokenizer::WordPiece;

use crate::llama::{Linear, TensorReport, apply_policy, thread_pool};
use crate::policy::Policy;
use crate::safetensors::SafeTensorsFile;
use crate::{Error, Result};

/// A dense layer: weight `[out, in]` in its held format and an `f32` bias.
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    pub(crate) lin: Linear,
    pub(crate) bias: Vec<f32>,
}

/// LayerNorm's `γ` and `β`.
#[derive(Clone, Debug)]
pub(crate) struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

/// One encoder layer.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) q: Dense,
    pub(crate) k: Dense,
    pub(crate) v: Dense,
    pub(crate) o: Dense,
    pub(crate) attn_norm: Norm,
    pub(crate) up: Dense,
    pub(crate) down: Dense,
    pub(crate) out_norm: Norm,
}

/// A loaded BERT encoder: configuration, tokenizer, weights in their held formats, and
/// the thread pool its products run on.
pub struct Encoder {
    config: EncoderConfig,
    tokenizer: WordPiece,
    word: QuantizedTensor,
    position: QuantizedTensor,
    token_type: QuantizedTensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    tensors: Vec<TensorReport>,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .field("weight_bytes", &self.weight_bytes())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// Reads tensors of one file under a policy, recording what each costs.
struct Loader<'a> {
    file: &'a SafeTensorsFile,
    policy: &'a Policy,
    /// `""` or `"bert."`: some checkpoints prefix every name.
    prefix: &'static str,
    reports: Vec<TensorReport>,
}

impl Loader<'_> {
    fn tensor(&mut self, name: &str, expected: &[usize]) -> Result<QuantizedTensor> {
        let full = format!("{}{name}", self.prefix);
        let shape = self
            .file
            .shape(&full)
            .ok_or_else(|| Error::MissingTensor { name: full.clone() })?;
        if shape != expected {
            return Err(Error::TensorShape {
                name: full,
                expected: expected.to_vec(),
                got: shape.to_vec(),
            });
        }
        let stored = self.file.read_tensor(&full)?;
        let stored_type = stored.format().to_string();
        let stored_bytes = stored.storage_bytes();
        if let QuantizedTensor::F32 { data, .. } = &stored
            && let Some(i) = data.iter().position(|x| !x.is_finite())
        {
            return Err(Error::NonFinite {
                what: "weight in the file",
                position: i,
            });
        }
        let held = apply_policy(self.policy, &full, stored)?;
        self.reports.push(TensorReport {
            name: full,
            shape: expected.to_vec(),
            stored_type,
            format: held.format().to_string(),
            stored_bytes,
            bytes: held.storage_bytes(),
        });
        Ok(held)
    }

    fn vector(&mut self, name: &str, n: usize) -> Result<Vec<f32>> {
        let v = self.tensor(name, &[n])?.dequantize();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "bias or norm weight after the policy",
                position: i,
            });
        }
        Ok(v)
    }

    fn dense(&mut self, name: &str, rows: usize, cols: usize) -> Result<Dense> {
        let w = self.tensor(&format!("{name}.weight"), &[rows, cols])?;
        let bias = self.vector(&format!("{name}.bias"), rows)?;
        Ok(Dense {
            lin: Linear { w, rows, cols },
            bias,
        })
    }

    fn norm(&mut self, name: &str, n: usize) -> Result<Norm> {
        Ok(Norm {
            gamma: self.vector(&format!("{name}.weight"), n)?,
            beta: self.vector(&format!("{name}.bias"), n)?,
        })
    }
}

impl Encoder {
    /// Loads the encoder in the Hugging Face / sentence-transformers folder `dir`
    /// (`config.json`, `model.safetensors`, `tokenizer.json`, and optionally
    /// `1_Pooling/config.json`, `sentence_bert_config.json`, `modules.json`), re-encoding
    /// each tensor the policy names; products run on `threads` threads.
    ///
    /// Tensor names may carry a `bert.` prefix. The pooler (`pooler.dense.*`), which
    /// sentence-transformers does not use, is not loaded.
    ///
    /// # Errors
    ///
    /// [`EncoderConfig::from_dir`]'s errors; [`Error::Io`] / [`Error::SafeTensors`] /
    /// [`Error::Tokenizer`] for unreadable files; [`Error::MissingTensor`],
    /// [`Error::TensorShape`], [`Error::UnsupportedTensorType`]; [`Error::NonFinite`] for
    /// a non-finite stored weight or a bias/norm a policy turned non-finite; a policy
    /// format that cannot encode a tensor ([`Error::Policy`]); `threads == 0`; a tokenizer
    /// whose ids reach past the embedding table ([`Error::Config`]).
    pub fn load(dir: &Path, policy: &Policy, threads: usize) -> Result<Self> {
        let pool = thread_pool(threads)?;
        let config = EncoderConfig::from_dir(dir)?;
        let tokenizer = WordPiece::from_file(&dir.join("tokenizer.json"), config.max_seq_len)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::Config {
                path: dir.join("tokenizer.json"),
                reason: format!(
                    "{} tokens, but the embedding table (config.json vocab_size) has {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                )
                .into(),
            });
        }
        let file = SafeTensorsFile::open(dir.join("model.safetensors"))?;
        let prefix = if file.shape("embeddings.word_embeddings.weight").is_none()
            && file
                .shape("bert.embeddings.word_embeddings.weight")
                .is_some()
        {
            "bert."
        } else {
            ""
        };
        let mut ld = Loader {
            file: &file,
            policy,
            prefix,
            reports: Vec::new(),
        };
        let (h, ff) = (config.hidden, config.intermediate);
        let word = ld.tensor("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position = ld.tensor(
            "embeddings.position_embeddings.weight",
            &[config.max_positions, h],
        )?;
        let token_type = ld.tensor(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let emb_norm = ld.norm("embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(config.n_layers);
        for l in 0..config.n_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                q: ld.dense(&format!("{p}.attention.self.query"), h, h)?,
                k: ld.dense(&format!("{p}.attention.self.key"), h, h)?,
                v: ld.dense(&format!("{p}.attention.self.value"), h, h)?,
                o: ld.dense(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: ld.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: ld.dense(&format!("{p}.intermediate.dense"), ff, h)?,
                down: ld.dense(&format!("{p}.output.dense"), h, ff)?,
                out_norm: ld.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        let tensors = ld.reports;
        Ok(Self {
            config,
            tokenizer,
            word,
            position,
            token_type,
            emb_norm,
            layers,
            tensors,
            pool,
            threads,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// One report per loaded tensor, in load order.
    pub fn tensors(&self) -> &[TensorReport] {
        &self.tensors
    }

    /// Bytes of all loaded weights as held (after the policy).
    pub fn weight_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes of the same tensors in the file.
    pub fn stored_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.stored_bytes).sum()
    }

    /// Bytes the loaded tensors take in `f32`.
    pub fn f32_bytes(&self) -> usize {
        4 * self.n_params()
    }

    /// Parameters loaded (the unused pooler excluded).
    pub fn n_params(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum()
    }

    /// Threads products run on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn par(&self) -> Par {
        if self.threads > 1 {
            Par::rayon(self.threads)
        } else {
            Par::Seq
        }
    }
}
