//! Perplexity, KL divergence and top-1 agreement, computed the way llama.cpp's
//! `llama-perplexity` computes them so that the numbers are comparable.
//!
//! Method (llama.cpp `tools/perplexity/perplexity.cpp`, `perplexity()` and
//! `kl_divergence()`):
//!
//! - the tokenized corpus is cut into `n_chunk = min(chunks, ⌊n_tokens / n_ctx⌋)` chunks of
//!   `n_ctx` consecutive tokens; each chunk is evaluated from an empty KV cache;
//! - the first token of a chunk is replaced by BOS only when the model's metadata asks to add
//!   BOS (`tokenizer.ggml.add_bos_token`; SmolLM2 does not);
//! - only the second half is scored: the logits at positions `first = n_ctx/2 .. n_ctx − 2`
//!   predict tokens `first + 1 .. n_ctx − 1` (`n_ctx − 1 − first` tokens a chunk);
//! - `nll = −log softmax(logits)[next]` with the maximum subtracted in `f32` and the sum of
//!   exponentials in `f64`; `PPL = exp(mean nll)`, and its standard error is
//!   `PPL · sqrt((mean nll² − mean nll²) / (count − 1))` (the delta method on `exp`);
//! - against a reference model: `KL(P_ref ‖ P)` of each scored position's next-token
//!   distributions, its mean and standard error, and the fraction of positions whose argmax
//!   agrees (llama.cpp's "Same top p").

use std::time::Instant;

use crate::llama::{KvCache, Model};
use crate::{Error, Result};

/// How to cut and score the corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerplexityOptions {
    /// Tokens per chunk (`-c/--ctx-size`, llama.cpp's default for this is 512).
    pub n_ctx: usize,
    /// Evaluate at most this many chunks (`--chunks`); `None` = all.
    pub chunks: Option<usize>,
    /// Replace each chunk's first token with this BOS id (only when the model asks to add
    /// BOS).
    pub bos: Option<u32>,
}

impl Default for PerplexityOptions {
    fn default() -> Self {
        Self {
            n_ctx: 512,
            chunks: None,
            bos: None,
        }
    }
}

/// Mean and standard error of KL divergence and top-1 agreement against a reference.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct KlStats {
    /// Mean `KL(P_ref ‖ P)` over scored positions, in nats.
    pub mean: f64,
    /// Standard error of the mean.
    pub stderr: f64,
    /// Largest per-position KL.
    pub max: f64,
    /// Fraction of scored positions where both models' argmax agree.
    pub top1_agreement: f64,
    /// Scored positions.
    pub count: usize,
}

/// Running sums of one model's scores.
#[derive(Clone, Debug, Default)]
struct Accum {
    nll: f64,
    nll2: f64,
    count: usize,
    kl: f64,
    kl2: f64,
    kl_max: f64,
    same_top: usize,
    seconds: f64,
    tokens_evaluated: usize,
}

impl Accum {
    fn ppl(&self) -> f64 {
        (self.nll / self.count as f64).exp()
    }
}

/// The result of a perplexity run for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct PerplexityReport {
    /// `exp(mean nll)`.
    pub ppl: f64,
    /// Standard error of `ppl`.
    pub ppl_stderr: f64,
    /// Mean negative log-likelihood (nats).
    pub mean_nll: f64,
    /// Chunks evaluated.
    pub chunks: usize,
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// Tokens scored (`chunks · (n_ctx − 1 − n_ctx/2)`).
    pub tokens_scored: usize,
    /// The running PPL estimate after each chunk (llama.cpp's `[i]ppl` line).
    pub running: Vec<f64>,
    /// Against the reference model, when one was given.
    pub kl: Option<KlStats>,
    /// The reference model's own PPL on the same positions, when the reference is a model
    /// evaluated in lockstep ([`Reference::Model`]).
    pub reference_ppl: Option<f64>,
    /// Tokens evaluated per second of forward passes (prefill throughput).
    pub prefill_tokens_per_second: f64,
}

/// Progress after one chunk of one model.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Chunk index (0-based).
    pub chunk: usize,
    /// Chunks in the run.
    pub chunks: usize,
    /// Index of the model in the list.
    pub model: usize,
    /// Running PPL of that model.
    pub ppl: f64,
}

/// The chunk count a corpus of `n_tokens` gives.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `n_ctx < 2` (nothing to score) or the corpus has fewer than
/// `2·n_ctx` tokens (llama.cpp refuses those too), or `chunks == Some(0)`.
pub fn chunk_count(n_tokens: usize, opts: &PerplexityOptions) -> Result<usize> {
    if opts.n_ctx < 4 {
        return Err(Error::invalid(
            "ctx-size",
            format!("{} is too small (at least 4)", opts.n_ctx),
        ));
    }
    if n_tokens < 2 * opts.n_ctx {
        return Err(Error::invalid(
            "corpus",
            format!(
                "{n_tokens} tokens; perplexity at ctx {} needs at least {}",
                opts.n_ctx,
                2 * opts.n_ctx
            ),
        ));
    }
    if opts.chunks == Some(0) {
        return Err(Error::invalid("chunks", "must be at least 1"));
    }
    let max = n_tokens / opts.n_ctx;
    Ok(opts.chunks.map_or(max, |c| c.min(max)))
}

/// `log softmax(logits)` in `f64`, the maximum subtracted in `f32` as llama.cpp does.
pub fn log_softmax(logits: &[f32], out: &mut Vec<f64>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    let lse = sum.ln();
    out.clear();
    out.extend(logits.iter().map(|&l| f64::from(l - max) - lse));
}

/// Tokens of chunk `chunk` as evaluated: `n_ctx` corpus tokens, the first replaced by BOS when
/// the options carry one.
pub(crate) fn chunk_batch(tokens: &[u32], chunk: usize, opts: &PerplexityOptions) -> Vec<u32> {
    let mut batch = tokens[chunk * opts.n_ctx..(chunk + 1) * opts.n_ctx].to_vec();
    if let Some(bos) = opts.bos {
        batch[0] = bos;
    }
    batch
}

/// Mean of `count` values from their sum and sum of squares, and the standard error of that
/// mean (`sqrt((mean x² − mean²) / (count − 1))`, llama.cpp's formula; 0 when undefined).
fn mean_and_stderr(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    let n = count as f64;
    let mean = sum / n;
    let var = sum2 / n - mean * mean;
    let stderr = if var > 0.0 && count > 1 {
        (var / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, stderr)
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// What KL divergence and top-1 agreement are measured against.
#[derive(Clone, Copy, Debug)]
pub enum Reference<'a> {
    /// Nothing: perplexity only.
    None,
    /// A model evaluated in lockstep, chunk by chunk (nothing is stored).
    Model(&'a Model),
    /// Log-probabilities computed once by [`reference_log_probs`] on the same tokens and
    /// options.
    LogProbs(&'a RefLogProbs),
}

/// The scored rows' next-token log-probabilities of a reference model, kept for repeated
/// comparisons (a sensitivity sweep): `chunks · (n_ctx − 1 − n_ctx/2) · vocab` `f32` values.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLogProbs {
    n_ctx: usize,
    vocab: usize,
    chunks: Vec<Vec<f32>>,
}

impl RefLogProbs {
    /// Chunks held.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

/// Runs `model` over the chunks `opts` selects and keeps the scored rows' log-probabilities.
///
/// # Errors
///
/// As [`evaluate`].
pub fn reference_log_probs(
    model: &Model,
    tokens: &[u32],
    opts: &PerplexityOptions,
) -> Result<RefLogProbs> {
    let n_chunk = chunk_count(tokens.len(), opts)?;
    let (n_ctx, vocab) = (opts.n_ctx, model.config().vocab_size);
    let first = n_ctx / 2;
    let scored = n_ctx - 1 - first;
    let mut cache = model.new_cache(n_ctx)?;
    let mut lp = Vec::new();
    let mut chunks = Vec::with_capacity(n_chunk);
    for chunk in 0..n_chunk {
        let batch = chunk_batch(tokens, chunk, opts);
        cache.clear();
        let out = model.forward(&mut cache, &batch, first, None)?;
        let mut rows = Vec::with_capacity(scored * vocab);
        for i in 0..scored {
            log_softmax(out.row(i), &mut lp);
            rows.extend(lp.iter().map(|&v| v as f32));
        }
        chunks.push(rows);
    }
    Ok(RefLogProbs {
        n_ctx,
        vocab,
        chunks,
    })
}

/// Perplexity of each of `models` on `tokens`, chunk by chunk; with a `reference`, also KL
/// divergence and top-1 agreement of every model against it. `progress` is called after
/// every chunk of every model.
///
/// # Errors
///
/// As [`chunk_count`], plus forward-pass errors (tokens outside a model's vocabulary,
/// non-finite logits), and [`Error::InvalidArgument`] if `models` is empty, a model's
/// context is shorter than `n_ctx`, or the models' vocabularies differ.
pub fn evaluate(
    models: &[&Model],
    reference: Reference<'_>,
    tokens: &[u32],
    opts: &PerplexityOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<PerplexityReport>> {
    let n_chunk = chunk_count(tokens.len(), opts)?;
    let first_model = *models
        .first()
        .ok_or_else(|| Error::invalid("models", "none given"))?;
    let vocab = first_model.config().vocab_size;
    let ref_model = match reference {
        Reference::Model(m) => Some(m),
        _ => None,
    };
    let ref_vocab = match reference {
        Reference::None => vocab,
        Reference::Model(m) => m.config().vocab_size,
        Reference::LogProbs(r) => {
            if r.n_ctx != opts.n_ctx || r.chunks.len() < n_chunk {
                return Err(Error::invalid(
                    "reference",
                    "log-probabilities were computed with other options",
                ));
            }
            r.vocab
        }
    };
    for v in models
        .iter()
        .map(|m| m.config().vocab_size)
        .chain([ref_vocab])
    {
        if v != vocab {
            return Err(Error::invalid(
                "models",
                "the reference and the models have different vocabularies",
            ));
        }
    }
    let n_ctx = opts.n_ctx;
    let first = n_ctx / 2;
    let scored = n_ctx - 1 - first;
    let mut caches: Vec<KvCache> = models
        .iter()
        .map(|m| m.new_cache(n_ctx))
        .collect::<Result<_>>()?;
    let mut ref_cache = ref_model.map(|m| m.new_cache(n_ctx)).transpose()?;
    let has_ref = !matches!(reference, Reference::None);
    let (mut ref_nll, mut ref_count) = (0.0f64, 0usize);
    let mut acc = vec![Accum::default(); models.len()];
    let mut running = vec![Vec::with_capacity(n_chunk); models.len()];
    let mut lp = Vec::new();
    let mut ref_rows: Vec<f64> = Vec::new();
    for chunk in 0..n_chunk {
        let batch = chunk_batch(tokens, chunk, opts);
        match (reference, ref_cache.as_mut()) {
            (Reference::Model(r), Some(cache)) => {
                cache.clear();
                let out = r.forward(cache, &batch, first, None)?;
                ref_rows.clear();
                for i in 0..scored {
                    log_softmax(out.row(i), &mut lp);
                    ref_nll -= lp[tokens[chunk * n_ctx + first + i + 1] as usize];
                    ref_count += 1;
                    ref_rows.extend_from_slice(&lp);
                }
            }
            (Reference::LogProbs(r), _) => {
                ref_rows.clear();
                ref_rows.extend(r.chunks[chunk].iter().map(|&v| f64::from(v)));
            }
            _ => {}
        }
        for (mi, model) in models.iter().enumerate() {
            let cache = &mut caches[mi];
            cache.clear();
            let start = Instant::now();
            let out = model.forward(cache, &batch, first, None)?;
            let a = &mut acc[mi];
            a.seconds += start.elapsed().as_secs_f64();
            a.tokens_evaluated += n_ctx;
            for i in 0..scored {
                let next = tokens[chunk * n_ctx + first + i + 1] as usize;
                log_softmax(out.row(i), &mut lp);
                let v = -lp[next];
                a.nll += v;
                a.nll2 += v * v;
                a.count += 1;
                if has_ref {
                    let lr = &ref_rows[i * vocab..(i + 1) * vocab];
                    let kl: f64 = lr
                        .iter()
                        .zip(&lp)
                        .map(|(&r, &p)| r.exp() * (r - p))
                        .sum::<f64>()
                        .max(0.0);
                    a.kl += kl;
                    a.kl2 += kl * kl;
                    a.kl_max = a.kl_max.max(kl);
                    a.same_top += usize::from(argmax(lr) == argmax(&lp));
                }
            }
            running[mi].push(a.ppl());
            progress(Progress {
                chunk,
                chunks: n_chunk,
                model: mi,
                ppl: a.ppl(),
            });
        }
    }
    Ok(acc
        .into_iter()
        .zip(running)
        .map(|(a, running)| {
            let (mean, nll_stderr) = mean_and_stderr(a.nll, a.nll2, a.count);
            let ppl = mean.exp();
            let ppl_stderr = nll_stderr * ppl;
            let kl = has_ref.then(|| {
                let (mean, stderr) = mean_and_stderr(a.kl, a.kl2, a.count);
                KlStats {
                    mean,
                    stderr,
                    max: a.kl_max,
                    top1_agreement: a.same_top as f64 / a.count as f64,
                    count: a.count,
                }
            });
            PerplexityReport {
                ppl,
                ppl_stderr,
                mean_nll: mean,
                chunks: n_chunk,
                n_ctx,
                tokens_scored: a.count,
                running,
                kl,
                reference_ppl: (ref_count > 0).then(|| (ref_nll / ref_count as f64).exp()),
                prefill_tokens_per_second: a.tokens_evaluated as f64 / a.seconds.max(1e-9),
            }
        })
        .collect())
}
