//! Text generation: greedy decoding and temperature / top-k / top-p sampling over the
//! incremental forward pass.
//!
//! The sampler applies its filters in llama.cpp's default order: top-k, then top-p (nucleus
//! sampling, Holtzman et al., arXiv:1904.09751) on the softmax of the raw logits, then the
//! temperature, then a draw from the renormalized distribution. Temperature 0 is greedy
//! (argmax, lowest id on ties).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::llama::Model;
use crate::{Error, Result};

/// Sampling parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` = greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; `0` = all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`;
    /// `1` = all.
    pub top_p: f32,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a negative or non-finite temperature, or `top_p`
    /// outside `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::invalid(
                "temperature",
                format!("{} is not a finite value ≥ 0", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::invalid(
                "top-p",
                format!("{} is outside (0, 1]", self.top_p),
            ));
        }
        Ok(())
    }
}

/// Draws tokens from logits.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    /// A sampler with its own seeded generator.
    ///
    /// # Errors
    ///
    /// As [`SamplingParams::validate`].
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        Ok(Self {
            params,
            rng: StdRng::seed_from_u64(params.seed),
        })
    }

    /// The next token for `logits` (one row, finite values).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let greedy = || {
            let mut best = 0;
            for (i, &l) in logits.iter().enumerate() {
                if l > logits[best] {
                    best = i;
                }
            }
            best as u32
        };
        let p = self.params;
        if p.temperature == 0.0 || logits.len() < 2 {
            return greedy();
        }
        let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
        // Descending by logit, ties by id: a total order, so runs are reproducible.
        idx.sort_unstable_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        if p.top_k > 0 {
            idx.truncate(p.top_k.max(1));
        }
        let max = f64::from(logits[idx[0] as usize]);
        let probs: Vec<f64> = idx
            .iter()
            .map(|&i| (f64::from(logits[i as usize]) - max).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        if p.top_p < 1.0 {
            let mut cum = 0.0;
            let mut keep = idx.len();
            for (n, q) in probs.iter().enumerate() {
                cum += q / total;
                if cum >= f64::from(p.top_p) {
                    keep = n + 1;
                    break;
                }
            }
            idx.truncate(keep);
        }
        let t = f64::from(p.temperature);
        let weights: Vec<f64> = idx
            .iter()
            .map(|&i| ((f64::from(logits[i as usize]) - max) / t).exp())
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut u = self.rng.random::<f64>() * sum;
        for (&i, w) in idx.iter().zip(&weights) {
            if u < *w {
                return i;
            }
            u -= w;
        }
        idx[idx.len() - 1]
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// Sampling parameters.
    pub sampling: SamplingParams,
    /// Stop at this token (EOS), which is not emitted.
    pub stop: Option<u32>,
}

/// Timings of a generation.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct GenerateStats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Single-token forward passes after the prompt (the first new token comes from the
    /// prompt's pass).
    pub decode_steps: usize,
    /// Seconds spent on the prompt (prefill).
    pub prefill_seconds: f64,
    /// Seconds spent generating (decode), after the prompt.
    pub decode_seconds: f64,
}

impl GenerateStats {
    /// Prompt tokens per second.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds.max(1e-9)
    }

    /// Generated tokens per second (each one a forward pass of one token).
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.decode_steps as f64 / self.decode_seconds.max(1e-9)
    }
}

/// Generates after `prompt`, calling `on_token` with each new token as soon as it is drawn
/// (return `false` to stop). Returns the generated ids.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for an empty prompt or one that, with `max_tokens`, does not
/// fit the model's context length; sampling-parameter and forward-pass errors.
pub fn generate(
    model: &Model,
    prompt: &[u32],
    opts: &GenerateOptions,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenerateStats)> {
    let mut sampler = Sampler::new(opts.sampling)?;
    if prompt.is_empty() {
        return Err(Error::invalid("prompt", "empty (no tokens)"));
    }
    let capacity = prompt.len() + opts.max_tokens;
    let ctx = model.config().context_length;
    if capacity > ctx {
        return Err(Error::invalid(
            "prompt",
            format!(
                "{} prompt tokens + {} new exceed the context length {ctx}",
                prompt.len(),
                opts.max_tokens
            ),
        ));
    }
    let mut cache = model.new_cache(capacity)?;
    let mut stats = GenerateStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    let mut out = Vec::new();
    if opts.max_tokens == 0 {
        return Ok((out, stats));
    }
    let start = Instant::now();
    let logits = model.forward(&mut cache, prompt, prompt.len() - 1, None)?;
    stats.prefill_seconds = start.elapsed().as_secs_f64();
    let mut next = sampler.sample(logits.row(0));
    let start = Instant::now();
    loop {
        if Some(next) == opts.stop {
            break;
        }
        out.push(next);
        if !on_token(next) || out.len() == opts.max_tokens {
            break;
        }
        let logits = model.forward(&mut cache, &[next], 0, None)?;
        stats.decode_steps += 1;
        next = sampler.sample(logits.row(0));
    }
    stats.decode_seconds = start.elapsed().as_secs_f64();
    Ok((out, stats))
}
