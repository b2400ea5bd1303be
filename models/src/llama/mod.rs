//! A LLaMA-family decoder-only transformer running on GGUF weights.
//!
//! The architecture is the one the GGUF metadata describes and llama.cpp's `llama` graph
//! computes (Touvron et al., *LLaMA*, arXiv:2302.13971; grouped-query attention: Ainslie et
//! al., arXiv:2305.13245):
//!
//! ```text
//! x₀ = token_embd[t]
//! for each block l:
//!     h  = x + W_o · Attn(RoPE(W_q·n), RoPE(W_k·n), W_v·n),   n = RMSNorm(x)·attn_norm
//!     x  = h + W_down · (SiLU(W_gate·m) ⊙ W_up·m),            m = RMSNorm(h)·ffn_norm
//! logits = W_out · RMSNorm(x)·output_norm        (W_out = token_embd when tied)
//! ```
//!
//! - RMSNorm: `x / sqrt(mean(x²) + ε)`, the mean accumulated in `f64` (as ggml does).
//! - RoPE (Su et al., arXiv:2104.09864) in ggml's "normal" mode: dimensions `(2i, 2i+1)` of
//!   each head rotate by `pos · θ^(−2i/rope_dim)` (the GGUF converter permutes `W_q`, `W_k`
//!   so that this matches the Hugging Face checkpoint's half-split rotation).
//! - Attention: causal, scaled by `1/sqrt(head_dim)`, softmax in `f32` with an `f64` sum.
//!
//! Weights stay in the format they are stored in ([`quant::QuantizedTensor`]) and every
//! product runs through `quant`'s kernels, which decode on the fly; activations are `f32`.
//! A [`crate::policy::Policy`] re-encodes chosen tensors at load time.

mod config;
mod forward;
mod kv;
pub mod reference;
mod variant;

use std::sync::Arc;

use numerics::Par;
use quant::{QuantFormat, QuantizedTensor};

pub use config::Config;
pub use forward::{ForwardOutput, Probe};
pub use kv::{KvCache, KvMode};
pub use variant::parse_attention_spec;

use crate::gguf::GgufFile;
use crate::policy::Policy;
use crate::{Error, Result};

/// One tensor of a loaded model: where it came from and what it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    /// The GGUF tensor name.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The GGML type in the file (`q4_1`, `q8_0`, `f32`, …).
    pub stored_type: String,
    /// The format it is held in after the policy (`q4_1` when kept, else the policy's
    /// format string).
    pub format: String,
    /// Bytes of the tensor in the file.
    pub stored_bytes: usize,
    /// Bytes of the tensor as held (codes, scales, zero points).
    pub bytes: usize,
}

/// A matrix `W` `[rows, cols]` (`rows` outputs) in some stored format.
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub(crate) w: QuantizedTensor,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

/// From this many inputs on (prefill), [`Linear::forward`] decodes row blocks of the weight to
/// `f32` once each and multiplies them with a cache-blocked GEMM (`matrixmultiply`, through
/// `ndarray`); below it, `quant`'s fused kernels decode on the fly per input.
pub(crate) const GEMM_MIN_N: usize = 16;

/// The `f32` scratch a GEMM task decodes one block of weight rows into.
const GEMM_BLOCK_BYTES: usize = 192 << 10;

impl Linear {
    /// `Y = X·Wᵀ` for `n` row-major inputs `X` `[n, cols]` into `Y` `[n, rows]`.
    ///
    /// Small `n` (decode) runs `quant`'s fused kernels, which stream the stored format.
    /// Large `n` (prefill) splits `Y` into column blocks (one block of weight rows each, the
    /// blocks spread over the pool's threads), decodes each block's rows exactly as
    /// [`QuantizedTensor::dequantize`] would into a scratch of at most `GEMM_BLOCK_BYTES`,
    /// and multiplies with `ndarray`'s `general_mat_mul` (`f32` accumulation, blocked over
    /// the reduction axis): the weight is never decoded whole.
    pub(crate) fn forward(&self, x: &[f32], n: usize, y: &mut [f32], par: Par) -> Result<()> {
        use ndarray::linalg::general_mat_mul;
        use ndarray::parallel::prelude::*;
        use ndarray::{ArrayView2, ArrayViewMut2, Axis};

        debug_assert_eq!((x.len(), y.len()), (n * self.cols, n * self.rows));
        if n < GEMM_MIN_N {
            self.w.matmul(x, n, y, par)?;
            return Ok(());
        }
        let shape = |e: ndarray::ShapeError| Error::invalid("matrix product", e.to_string());
        let xv = ArrayView2::from_shape((n, self.cols), x).map_err(shape)?;
        let mut yv = ArrayViewMut2::from_shape((n, self.rows), y).map_err(shape)?;
        let block = (GEMM_BLOCK_BYTES / 4 / self.cols.max(1)).clamp(16, self.rows.max(16));
        let cols = self.cols;
        // `scratch` is one per worker, reused across its blocks.
        let run =
            |scratch: &mut Vec<f32>, b: usize, mut yc: ArrayViewMut2<'_, f32>| -> Result<()> {
                let (r0, nr) = (b * block, yc.ncols());
                if let QuantizedTensor::F32 { data, .. } = &self.w {
                    let wv = ArrayView2::from_shape((nr, cols), &data[r0 * cols..(r0 + nr) * cols])
                        .map_err(shape)?;
                    general_mat_mul(1.0, &xv, &wv.t(), 0.0, &mut yc);
                    return Ok(());
                }
                scratch.resize(nr * cols, 0.0);
                for (j, row) in scratch.chunks_exact_mut(cols).enumerate() {
                    self.w.dequantize_row(r0 + j, row)?;
                }
                let wv = ArrayView2::from_shape((nr, cols), &scratch[..]).map_err(shape)?;
                general_mat_mul(1.0, &xv, &wv.t(), 0.0, &mut yc);
                Ok(())
            };
        let chunks = yv.axis_chunks_iter_mut(Axis(1), block);
        match par {
            Par::Seq => {
                let mut scratch = Vec::new();
                chunks
                    .enumerate()
                    .try_for_each(|(b, yc)| run(&mut scratch, b, yc))
            }
            _ => chunks
                .into_par_iter()
                .enumerate()
                .try_for_each_init(Vec::new, |scratch, (b, yc)| run(scratch, b, yc)),
        }
    }
}

/// The weights of one transformer block.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub(crate) attn_norm: Vec<f32>,
    pub(crate) wq: Linear,
    pub(crate) wk: Linear,
    pub(crate) wv: Linear,
    pub(crate) wo: Linear,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

/// A loaded LLaMA-family model: configuration, weights in their held formats, and the
/// thread pool its products run on.
pub struct Model {
    config: Config,
    embed: Linear,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    /// `None` when the head is tied to the embedding.
    output: Option<Linear>,
    tensors: Vec<TensorReport>,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    llama_cpp_arithmetic: bool,
    /// Per layer: an `attention` variant, or `None` for the built-in path.
    attention_variants: Vec<Option<attention::Variant>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("weight_bytes", &self.weight_bytes())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// Loads one tensor, re-encoded as the policy says, and records what it costs.
fn load_tensor(
    file: &GgufFile,
    policy: &Policy,
    name: &str,
    expected: &[usize],
    reports: &mut Vec<TensorReport>,
) -> Result<QuantizedTensor> {
    let info = file.tensor(name).ok_or_else(|| Error::MissingTensor {
        name: name.to_owned(),
    })?;
    let shape = info.shape();
    if shape != expected {
        return Err(Error::TensorShape {
            name: name.to_owned(),
            expected: expected.to_vec(),
            got: shape,
        });
    }
    let stored = file.read_tensor(name)?;
    let stored_bytes = info.n_bytes() as usize;
    let held = apply_policy(policy, name, stored)?;
    reports.push(TensorReport {
        name: name.to_owned(),
        shape: expected.to_vec(),
        stored_type: info.ggml_type.name().to_owned(),
        format: held.format().to_string(),
        stored_bytes,
        bytes: held.storage_bytes(),
    });
    Ok(held)
}

/// `stored` as `policy` holds tensor `name`: re-encoded in the first matching rule's format,
/// or unchanged when no rule matches or the format is already the stored one.
pub(crate) fn apply_policy(
    policy: &Policy,
    name: &str,
    stored: QuantizedTensor,
) -> Result<QuantizedTensor> {
    match policy.format_for(name) {
        Some(format) if format != stored.format() => requantize(name, &stored, format),
        _ => Ok(stored),
    }
}

/// A rayon pool of `threads` threads.
pub(crate) fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    if threads == 0 {
        return Err(Error::invalid("threads", "must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map(Arc::new)
        .map_err(|e| Error::invalid("threads", e.to_string()))
}

/// Decodes `stored` to `f32` and encodes it in `format`.
fn requantize(
    name: &str,
    stored: &QuantizedTensor,
    format: QuantFormat,
) -> Result<QuantizedTensor> {
    let values = stored.dequantize();
    QuantizedTensor::quantize(format, &values, stored.shape()).map_err(|e| Error::Policy {
        location: Some(format!("tensor `{name}` → {format}")),
        reason: e.to_string().into(),
    })
}

/// A 1-D norm weight as `f32` (decoded from whatever it is held in).
fn norm(
    file: &GgufFile,
    policy: &Policy,
    name: &str,
    d: usize,
    reports: &mut Vec<TensorReport>,
) -> Result<Vec<f32>> {
    let t = load_tensor(file, policy, name, &[d], reports)?;
    let v = t.dequantize();
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "norm weight",
            position: i,
        });
    }
    Ok(v)
}

impl Model {
    /// Loads a model from a GGUF file, re-encoding each tensor the policy names (first
    /// matching rule) and keeping the others in their stored type; products run on
    /// `threads` threads.
    ///
    /// # Errors
    ///
    /// Metadata errors ([`Config::from_metadata`]), [`Error::MissingTensor`],
    /// [`Error::TensorShape`], [`Error::UnsupportedTensorType`], a policy format that
    /// cannot encode a tensor ([`Error::Policy`]), or `threads == 0`.
    pub fn load(file: &GgufFile, policy: &Policy, threads: usize) -> Result<Self> {
        let pool = thread_pool(threads)?;
        let embd = file
            .tensor("token_embd.weight")
            .ok_or_else(|| Error::MissingTensor {
                name: "token_embd.weight".into(),
            })?;
        let vocab = match embd.shape().as_slice() {
            [v, _] => *v,
            other => {
                return Err(Error::TensorShape {
                    name: "token_embd.weight".into(),
                    expected: vec![0, 0],
                    got: other.to_vec(),
                });
            }
        };
        let config = Config::from_metadata(file.metadata(), vocab)?;
        let (d, kv, ff) = (config.d_model, config.kv_dim(), config.ffn_dim);
        let mut reports = Vec::new();
        let linear = |name: String, rows: usize, cols: usize, reports: &mut Vec<_>| {
            let w = load_tensor(file, policy, &name, &[rows, cols], reports)?;
            Ok::<_, Error>(Linear { w, rows, cols })
        };
        let embed = linear("token_embd.weight".into(), vocab, d, &mut reports)?;
        let mut blocks = Vec::with_capacity(config.n_layers);
        for l in 0..config.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            blocks.push(Block {
                attn_norm: norm(file, policy, &n("attn_norm"), d, &mut reports)?,
                wq: linear(n("attn_q"), d, d, &mut reports)?,
                wk: linear(n("attn_k"), kv, d, &mut reports)?,
                wv: linear(n("attn_v"), kv, d, &mut reports)?,
                wo: linear(n("attn_output"), d, d, &mut reports)?,
                ffn_norm: norm(file, policy, &n("ffn_norm"), d, &mut reports)?,
                gate: linear(n("ffn_gate"), ff, d, &mut reports)?,
                up: linear(n("ffn_up"), ff, d, &mut reports)?,
                down: linear(n("ffn_down"), d, ff, &mut reports)?,
            });
        }
        let output_norm = norm(file, policy, "output_norm.weight", d, &mut reports)?;
        let output = match file.tensor("output.weight") {
            Some(_) => Some(linear("output.weight".into(), vocab, d, &mut reports)?),
            None => None,
        };
        let n_layers = config.n_layers;
        Ok(Self {
            config,
            embed,
            blocks,
            output_norm,
            output,
            tensors: reports,
            pool,
            threads,
            llama_cpp_arithmetic: false,
            attention_variants: vec![None; n_layers],
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every tensor with its stored and held format and bytes, in load order.
    pub fn tensors(&self) -> &[TensorReport] {
        &self.tensors
    }

    /// Exact bytes of all weights as held (codes, scales, zero points, `f32` norms as their
    /// held format).
    pub fn weight_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes of the same tensors in the GGUF file.
    pub fn stored_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.stored_bytes).sum()
    }

    /// Bytes of the same tensors in `f32` (4 per parameter).
    pub fn f32_bytes(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| 4 * t.shape.iter().product::<usize>())
            .sum()
    }

    /// Number of parameters.
    pub fn n_params(&self) -> usize {
        self.f32_bytes() / 4
    }

    /// Whether the output head is the token embedding (tied weights).
    pub fn is_tied(&self) -> bool {
        self.output.is_none()
    }

    /// Threads the products run on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Changes the number of threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `threads == 0` or the pool cannot be built.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.pool = thread_pool(threads)?;
        self.threads = threads;
        Ok(())
    }

    /// Emulates the arithmetic of llama.cpp's CPU backend where it rounds more than we do:
    /// activations are rounded to 8-bit blocks (Q8_0/Q8_1: 32 values, scale `amax/127` kept
    /// in f16) before every product with a Q4_0/Q4_1/Q8_0 weight, queries are rounded to
    /// f16 before the attention scores, and [`Model::new_cache`] keeps keys and values in f16
    /// (llama.cpp's default cache type). Off by default: our own arithmetic keeps all of
    /// these in `f32`. With it on, perplexities are comparable with llama.cpp's to a few
    /// hundredths of a percent rather than a few tenths.
    pub fn set_llama_cpp_arithmetic(&mut self, on: bool) {
        self.llama_cpp_arithmetic = on;
    }

    /// Whether [`Model::set_llama_cpp_arithmetic`] is on.
    pub fn llama_cpp_arithmetic(&self) -> bool {
        self.llama_cpp_arithmetic
    }

    /// A KV cache for up to `capacity` positions: `f32` entries, or f16 under
    /// [`Model::set_llama_cpp_arithmetic`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `capacity` is zero.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        let mode = if self.llama_cpp_arithmetic {
            KvMode::Uniform(quant::kv::KvPrecision::F16)
        } else {
            KvMode::F32
        };
        KvCache::new(&self.config, capacity, mode)
    }

    /// The `[rows, cols]` head matrix: `output.weight`, or the embedding when tied.
    pub(crate) fn head(&self) -> &Linear {
        self.output.as_ref().unwrap_or(&self.embed)
    }

    pub(crate) fn par(&self) -> Par {
        match std::num::NonZeroUsize::new(self.threads) {
            Some(n) if self.threads > 1 => Par::Rayon(n),
            _ => Par::Seq,
        }
    }
}

/// Writes the tensors of `file`, each re-encoded as `policy` says (first matching rule; the
/// others copied as stored), with all of its metadata, as a GGUF v3 file at `path` that
/// llama.cpp can load. Returns the bytes of tensor data written.
///
/// Only GGML types can be written: a policy format outside f32, f16, bf16, q8_0, q4_0 and
/// q4_1 is an error naming the tensor (llama.cpp could not run it). One-dimensional tensors
/// (the norms) are written as `f32` holding exactly the values the policy rounds them to:
/// ggml's element-wise kernels need `f32` norms, and the model computes with the same values
/// either way.
///
/// # Errors
///
/// [`Error::UnsupportedTensorType`] for a format GGUF cannot hold, [`Error::Policy`] for a
/// format that cannot encode a tensor, and read/write errors.
pub fn export_gguf(
    file: &GgufFile,
    policy: &Policy,
    path: impl AsRef<std::path::Path>,
) -> Result<usize> {
    let mut w = crate::gguf::GgufWriter::from_metadata(file.metadata());
    let mut bytes = 0;
    for info in file.tensors() {
        let stored = file.read_tensor(&info.name)?;
        let held = apply_policy(policy, &info.name, stored)?;
        let held = if held.shape().len() == 1 && held.format() != QuantFormat::F32 {
            QuantizedTensor::quantize(QuantFormat::F32, &held.dequantize(), held.shape())?
        } else {
            held
        };
        bytes += held.storage_bytes();
        w.add_tensor(info.name.clone(), &held)?;
    }
    w.write_to_path(path)?;
    Ok(bytes)
}
