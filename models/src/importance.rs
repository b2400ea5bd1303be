//! Dynamic KV-cache precision by token importance: tokens that receive more attention keep
//! their keys and values at a wider precision.
//!
//! # Method
//!
//! - **Attention importance** of position `t`: `mean_l mean_h Σ_i A[l, h, i, t]`, the
//!   attention it receives from every query `i`, averaged over layers `l` and heads `h`
//!   ([`Probe::importance`], accumulated during the forward pass).
//! - **Rarity** of a token: `−ln p(token)` with `p` its add-one-smoothed frequency in a
//!   corpus ([`TokenFrequencies`]).
//! - Both are min-max **normalized to `[0, 1]` per sequence** ([`normalize`]) and blended:
//!   `score = (1 − w)·attention + w·rarity`, `w =` [`ImportanceOptions::rarity_weight`]
//!   (0 by default: attention only).
//! - **Tiers** from [`ImportanceOptions::thresholds`] `(high, low)`: `score > high` →
//!   `tiers[0]`, `low ≤ score ≤ high` → `tiers[1]`, `score < low` → `tiers[2]` (defaults
//!   0.8, 0.5 and F32, F16, FP8 E4M3) — [`assign_tiers`].
//! - Each position's keys and values are stored at its tier by the model's
//!   [`KvCache`] in [`KvMode::Tiered`] (through `quant`'s mixed-precision store), so the
//!   attention reads exactly what each tier holds and the cache's
//!   [`KvCache::bits_per_element`] is the true average (per-vector scales included).
//! - **Layer tiers** map each layer's mean output L2 norm ([`Probe::layer_norms`]) through
//!   the same normalization and thresholds ([`layer_tiers`]). They are reported as metadata
//!   only: the cache tiers positions, not layers.
//!
//! [`evaluate_importance`] runs each perplexity chunk twice: pass 1 with an `f32` cache and
//! a [`Probe`] (giving the importance, and the `f32`-cache perplexity), pass 2 from an empty
//! cache with the tiers of pass 1 (giving the tiered perplexity). The tiers therefore use
//! attention from *later* queries too: this is an offline (oracle) assignment, an upper bound
//! on what an online scheme deciding at write time can reach.
//!
//! # Causal bias
//!
//! Under a causal mask position `t` of an `n`-token sequence can be attended by only the
//! `n − t` queries at or after it, so raw attention received favors early tokens (and the
//! first token, an "attention sink", usually dominates). [`AttentionScore::PerQuery`]
//! divides by `n − t`, the mean attention per query that could see the token; it is not the
//! default because the raw sum is what the issue specifies.
//!
//! # Example
//!
//! ```
//! use models::importance::{ImportanceOptions, assign_tiers, normalize};
//! use quant::kv::KvPrecision;
//!
//! let scores = normalize(&[4.0, 0.5, 3.4, 1.0]); // [1.0, 0.0, 0.829, 0.143]
//! let tiers = assign_tiers(&scores, &ImportanceOptions::default());
//! assert_eq!(
//!     tiers,
//!     [KvPrecision::F32, KvPrecision::Fp8E4M3, KvPrecision::F32, KvPrecision::Fp8E4M3]
//! );
//! ```

use quant::kv::KvPrecision;
use serde::{Serialize, Serializer};

use crate::llama::{KvCache, KvMode, Model, Probe};
use crate::perplexity::{self, PerplexityOptions};
use crate::{Error, Result};

/// Which attention statistic measures importance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionScore {
    /// `mean_l mean_h Σ_i A[l, h, i, t]` (biased toward early positions; see the module
    /// docs).
    #[default]
    Received,
    /// The same divided by `n − t`, the number of queries that could attend position `t`.
    PerQuery,
}

/// How importance maps to KV precision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ImportanceOptions {
    /// `(high, low)` on scores in `[0, 1]`: `> high` → `tiers[0]`, `[low, high]` →
    /// `tiers[1]`, `< low` → `tiers[2]`. Default `(0.8, 0.5)`.
    pub thresholds: (f64, f64),
    /// Precisions of the high, middle and low tiers. Default F32, F16, FP8 E4M3.
    #[serde(serialize_with = "precision_names")]
    pub tiers: [KvPrecision; 3],
    /// Weight `w ∈ [0, 1]` of rarity in `score = (1 − w)·attention + w·rarity`. Default 0.
    pub rarity_weight: f64,
    /// The attention statistic. Default [`AttentionScore::Received`].
    pub attention: AttentionScore,
    /// Also run every chunk with the whole cache at each tier's precision (other than
    /// `f32`) for a uniform-precision comparison. Default `true` (one pass per precision).
    pub compare_uniform: bool,
}

impl Default for ImportanceOptions {
    fn default() -> Self {
        Self {
            thresholds: (0.8, 0.5),
            tiers: [KvPrecision::F32, KvPrecision::F16, KvPrecision::Fp8E4M3],
            rarity_weight: 0.0,
            attention: AttentionScore::Received,
            compare_uniform: true,
        }
    }
}

impl ImportanceOptions {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] unless `0 ≤ low ≤ high ≤ 1` and `0 ≤ rarity_weight ≤ 1`.
    pub fn validate(&self) -> Result<()> {
        let (high, low) = self.thresholds;
        if !(0.0 <= low && low <= high && high <= 1.0) {
            return Err(Error::invalid(
                "importance thresholds",
                format!("(high {high}, low {low}) must satisfy 0 ≤ low ≤ high ≤ 1"),
            ));
        }
        if !(0.0..=1.0).contains(&self.rarity_weight) {
            return Err(Error::invalid(
                "rarity weight",
                format!("{} is outside [0, 1]", self.rarity_weight),
            ));
        }
        Ok(())
    }
}

/// Token counts of a corpus, for rarity scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFrequencies {
    counts: Vec<u64>,
    total: u64,
}

impl TokenFrequencies {
    /// Counts the ids of `corpus` over a vocabulary of `vocab` tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `vocab == 0`; [`Error::TokenOutOfRange`] for an id
    /// `≥ vocab`.
    pub fn from_tokens(corpus: &[u32], vocab: usize) -> Result<Self> {
        if vocab == 0 {
            return Err(Error::invalid("vocabulary", "must hold at least 1 token"));
        }
        let mut counts = vec![0u64; vocab];
        for &id in corpus {
            *counts
                .get_mut(id as usize)
                .ok_or(Error::TokenOutOfRange { id, vocab })? += 1;
        }
        Ok(Self {
            counts,
            total: corpus.len() as u64,
        })
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.counts.len()
    }

    /// Occurrences of `id` (0 outside the vocabulary).
    pub fn count(&self, id: u32) -> u64 {
        self.counts.get(id as usize).copied().unwrap_or(0)
    }

    /// Add-one smoothed probability `(count + 1) / (total + vocab)`.
    pub fn probability(&self, id: u32) -> f64 {
        (self.count(id) + 1) as f64 / (self.total + self.counts.len() as u64) as f64
    }

    /// Rarity `−ln p(id)` (nats; finite and positive).
    pub fn rarity(&self, id: u32) -> f64 {
        -self.probability(id).ln()
    }
}

/// Min-max normalization to `[0, 1]`: `(v − min) / (max − min)` over the finite values.
/// `+∞` maps to 1, `−∞` and NaN to 0; when fewer than two distinct finite values exist
/// (constant or empty input) every finite value maps to 0.5, the middle of the range (so a
/// sequence with no signal lands in the middle tier under the default thresholds). The
/// result holds no NaN.
pub fn normalize(v: &[f64]) -> Vec<f64> {
    let finite = v.iter().copied().filter(|x| x.is_finite());
    let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let range = max - min;
    v.iter()
        .map(|&x| {
            if x.is_nan() {
                0.0
            } else if x.is_infinite() {
                if x > 0.0 { 1.0 } else { 0.0 }
            } else if range > 0.0 && range.is_finite() {
                ((x - min) / range).clamp(0.0, 1.0)
            } else if range > 0.0 {
                // max − min overflowed: scale each half first.
                ((x / 2.0 - min / 2.0) / (max / 2.0 - min / 2.0)).clamp(0.0, 1.0)
            } else {
                0.5
            }
        })
        .collect()
}

/// Tier index (0 = high, 1 = middle, 2 = low) of a score under `(high, low)` thresholds.
fn tier_index(score: f64, (high, low): (f64, f64)) -> usize {
    if score > high {
        0
    } else if score >= low {
        1
    } else {
        2
    }
}

/// The tier of each score (scores in `[0, 1]`, e.g. from [`normalize`]): see
/// [`ImportanceOptions::thresholds`]. NaN goes to the low tier.
pub fn assign_tiers(scores: &[f64], opts: &ImportanceOptions) -> Vec<KvPrecision> {
    scores
        .iter()
        .map(|&s| opts.tiers[tier_index(s, opts.thresholds)])
        .collect()
}

/// Layer tiers from their mean output L2 norms: [`normalize`] then [`assign_tiers`].
pub fn layer_tiers(layer_norms: &[f64], opts: &ImportanceOptions) -> Vec<KvPrecision> {
    assign_tiers(&normalize(layer_norms), opts)
}

fn precision_name<S: Serializer>(p: &KvPrecision, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

fn precision_names<S: Serializer>(p: &[KvPrecision; 3], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(p.iter().map(|p| p.name()))
}

/// Importance metadata of one position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenImportance {
    /// Position in the sequence.
    pub position: usize,
    /// Token id.
    pub token: u32,
    /// The raw attention statistic ([`ImportanceOptions::attention`]).
    pub importance: f64,
    /// `importance` normalized over the sequence.
    pub attention: f64,
    /// `−ln p(token)` in the corpus.
    pub rarity: f64,
    /// `(1 − w)·attention + w·normalized rarity`, the score the tier comes from.
    pub blended: f64,
    /// The KV precision of the position (its name in JSON).
    #[serde(serialize_with = "precision_name")]
    pub tier: KvPrecision,
}

/// Per-position importance and tiers of one sequence from the attention statistic of a
/// [`Probe`] (`received[t]` = [`Probe::importance`], over a prefill of `tokens` from an
/// empty cache) and corpus frequencies.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if the lengths differ or the options are out of range
/// ([`ImportanceOptions::validate`]).
pub fn token_importance(
    received: &[f64],
    tokens: &[u32],
    opts: &ImportanceOptions,
    frequencies: &TokenFrequencies,
) -> Result<Vec<TokenImportance>> {
    opts.validate()?;
    if received.len() != tokens.len() {
        return Err(Error::invalid(
            "importance",
            format!(
                "{} attention values for {} tokens",
                received.len(),
                tokens.len()
            ),
        ));
    }
    let n = tokens.len();
    let raw: Vec<f64> = match opts.attention {
        AttentionScore::Received => received.to_vec(),
        AttentionScore::PerQuery => received
            .iter()
            .enumerate()
            .map(|(t, a)| a / (n - t) as f64)
            .collect(),
    };
    let attention = normalize(&raw);
    let rarity: Vec<f64> = tokens.iter().map(|&id| frequencies.rarity(id)).collect();
    let rarity_norm = normalize(&rarity);
    let w = opts.rarity_weight;
    Ok((0..n)
        .map(|t| {
            let blended = (1.0 - w) * attention[t] + w * rarity_norm[t];
            TokenImportance {
                position: t,
                token: tokens[t],
                importance: raw[t],
                attention: attention[t],
                rarity: rarity[t],
                blended,
                tier: opts.tiers[tier_index(blended, opts.thresholds)],
            }
        })
        .collect())
}

/// Metadata of one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerImportance {
    /// Layer index.
    pub layer: usize,
    /// Mean L2 norm of the layer's output over the chunk's tokens.
    pub mean_norm: f64,
    /// `mean_norm` normalized over the layers.
    pub normalized: f64,
    /// The tier the thresholds give it (metadata only; see the module docs).
    #[serde(serialize_with = "precision_name")]
    pub tier: KvPrecision,
}

/// Positions stored at one precision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierCount {
    /// The precision.
    #[serde(serialize_with = "precision_name")]
    pub tier: KvPrecision,
    /// Positions stored at it.
    pub tokens: usize,
}

/// One chunk of [`evaluate_importance`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChunkImportance {
    /// Chunk index.
    pub chunk: usize,
    /// Perplexity of the scored half with an `f32` cache.
    pub ppl_f32: f64,
    /// Perplexity of the scored half with the tiered cache.
    pub ppl_tiered: f64,
    /// Average stored bits per KV element of the tiered cache (scales included).
    pub kv_bits: f64,
    /// Bytes of the tiered cache holding the whole chunk.
    pub kv_bytes: usize,
    /// Positions per tier, in [`ImportanceOptions::tiers`] order.
    pub tier_counts: Vec<TierCount>,
    /// Every position.
    pub tokens: Vec<TokenImportance>,
    /// Every layer.
    pub layers: Vec<LayerImportance>,
}

/// A uniform-precision cache over the same chunks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UniformKv {
    /// The precision of every position.
    #[serde(serialize_with = "precision_name")]
    pub precision: KvPrecision,
    /// Average stored bits per KV element (scales included).
    pub kv_bits: f64,
    /// Perplexity over the chunks.
    pub ppl: f64,
}

/// The result of [`evaluate_importance`]; serialize it with `serde_json` for the per-token
/// and per-layer tier metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportanceReport {
    /// The options used.
    pub options: ImportanceOptions,
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// Chunks evaluated.
    pub chunks: usize,
    /// Positions scored (`chunks · (n_ctx − 1 − n_ctx/2)`).
    pub tokens_scored: usize,
    /// Perplexity with an `f32` cache.
    pub ppl_f32: f64,
    /// Perplexity with the tiered cache.
    pub ppl_tiered: f64,
    /// `100 · (ppl_tiered − ppl_f32) / ppl_f32`.
    pub delta_ppl_pct: f64,
    /// Average stored bits per KV element of the tiered caches (every chunk holds as many
    /// elements, so this is the mean of the chunks').
    pub kv_bits: f64,
    /// Positions per tier over all chunks, in [`ImportanceOptions::tiers`] order.
    pub tier_counts: Vec<TierCount>,
    /// Uniform caches at each non-`f32` tier precision (empty unless
    /// [`ImportanceOptions::compare_uniform`]).
    pub uniform: Vec<UniformKv>,
    /// Per-chunk metadata.
    pub per_chunk: Vec<ChunkImportance>,
}

/// Sum of `−log p(next)` over the scored rows of a chunk's logits (rows from `n_ctx/2`).
fn chunk_nll(out: &crate::llama::ForwardOutput, next: &[u32], lp: &mut Vec<f64>) -> f64 {
    next.iter()
        .enumerate()
        .map(|(i, &t)| {
            perplexity::log_softmax(out.row(i), lp);
            -lp[t as usize]
        })
        .sum()
}

/// Distinct tiers, in order.
fn distinct(tiers: &[KvPrecision; 3]) -> Vec<KvPrecision> {
    let mut d: Vec<KvPrecision> = Vec::with_capacity(3);
    for &t in tiers {
        if !d.contains(&t) {
            d.push(t);
        }
    }
    d
}

fn counts(tiers: &[KvPrecision], order: &[KvPrecision]) -> Vec<TierCount> {
    order
        .iter()
        .map(|&tier| TierCount {
            tier,
            tokens: tiers.iter().filter(|&&t| t == tier).count(),
        })
        .collect()
}

/// Token-importance KV precision on the perplexity chunks of `tokens` (cut and scored as
/// [`perplexity::evaluate`] does, with `ppl`'s `n_ctx`, `chunks` and `bos`): see the module
/// docs for the two passes. `frequencies` gives the rarity scores; `None` counts them over
/// `tokens` itself.
///
/// # Errors
///
/// [`ImportanceOptions::validate`]'s and [`perplexity::chunk_count`]'s errors,
/// [`Error::InvalidArgument`] if `frequencies` has another vocabulary than the model, and
/// forward-pass errors (ids outside the vocabulary, non-finite logits).
pub fn evaluate_importance(
    model: &Model,
    tokens: &[u32],
    opts: &ImportanceOptions,
    ppl: &PerplexityOptions,
    frequencies: Option<&TokenFrequencies>,
) -> Result<ImportanceReport> {
    opts.validate()?;
    let n_chunk = perplexity::chunk_count(tokens.len(), ppl)?;
    let config = model.config();
    let vocab = config.vocab_size;
    let owned;
    let freqs = match frequencies {
        Some(f) => f,
        None => {
            owned = TokenFrequencies::from_tokens(tokens, vocab)?;
            &owned
        }
    };
    if freqs.vocab() != vocab {
        return Err(Error::invalid(
            "token frequencies",
            format!(
                "counted over {} tokens; the model has {vocab}",
                freqs.vocab()
            ),
        ));
    }
    let n_ctx = ppl.n_ctx;
    let first = n_ctx / 2;
    let scored = n_ctx - 1 - first;
    let order = distinct(&opts.tiers);
    let uniform: Vec<KvPrecision> = if opts.compare_uniform {
        order
            .iter()
            .copied()
            .filter(|&p| p != KvPrecision::F32)
            .collect()
    } else {
        Vec::new()
    };
    let mut f32_cache = model.new_cache(n_ctx)?;
    let mut lp = Vec::new();
    let (mut nll_f32, mut nll_tiered) = (0.0f64, 0.0f64);
    let mut uniform_nll = vec![0.0f64; uniform.len()];
    let mut uniform_bits = vec![0.0f64; uniform.len()];
    let mut per_chunk = Vec::with_capacity(n_chunk);
    for chunk in 0..n_chunk {
        let original = &tokens[chunk * n_ctx..(chunk + 1) * n_ctx];
        let batch = perplexity::chunk_batch(tokens, chunk, ppl);
        let next = &original[first + 1..][..scored];
        // Pass 1: f32 cache with a probe.
        let mut probe = Probe::default();
        f32_cache.clear();
        let out = model.forward(&mut f32_cache, &batch, first, Some(&mut probe))?;
        let c_f32 = chunk_nll(&out, next, &mut lp);
        let toks = token_importance(&probe.importance(), &batch, opts, freqs)?;
        let tiers: Vec<KvPrecision> = toks.iter().map(|t| t.tier).collect();
        let norms = probe.layer_norms();
        let norms_n = normalize(&norms);
        let layers = norms
            .iter()
            .zip(&norms_n)
            .enumerate()
            .map(|(layer, (&mean_norm, &normalized))| LayerImportance {
                layer,
                mean_norm,
                normalized,
                tier: opts.tiers[tier_index(normalized, opts.thresholds)],
            })
            .collect();
        // Pass 2: the tiered cache.
        let mut cache = KvCache::new(config, n_ctx, KvMode::Tiered(tiers.clone()))?;
        let out = model.forward(&mut cache, &batch, first, None)?;
        let c_tiered = chunk_nll(&out, next, &mut lp);
        for (i, &p) in uniform.iter().enumerate() {
            let mut cache = KvCache::new(config, n_ctx, KvMode::Uniform(p))?;
            let out = model.forward(&mut cache, &batch, first, None)?;
            uniform_nll[i] += chunk_nll(&out, next, &mut lp);
            uniform_bits[i] += cache.bits_per_element();
        }
        nll_f32 += c_f32;
        nll_tiered += c_tiered;
        per_chunk.push(ChunkImportance {
            chunk,
            ppl_f32: (c_f32 / scored as f64).exp(),
            ppl_tiered: (c_tiered / scored as f64).exp(),
            kv_bits: cache.bits_per_element(),
            kv_bytes: cache.storage_bytes(),
            tier_counts: counts(&tiers, &order),
            tokens: toks,
            layers,
        });
    }
    let count = (n_chunk * scored) as f64;
    let (ppl_f32, ppl_tiered) = ((nll_f32 / count).exp(), (nll_tiered / count).exp());
    let all_tiers: Vec<KvPrecision> = per_chunk
        .iter()
        .flat_map(|c| c.tokens.iter().map(|t| t.tier))
        .collect();
    Ok(ImportanceReport {
        options: *opts,
        n_ctx,
        chunks: n_chunk,
        tokens_scored: n_chunk * scored,
        ppl_f32,
        ppl_tiered,
        delta_ppl_pct: 100.0 * (ppl_tiered - ppl_f32) / ppl_f32,
        kv_bits: per_chunk.iter().map(|c| c.kv_bits).sum::<f64>() / n_chunk as f64,
        tier_counts: counts(&all_tiers, &order),
        uniform: uniform
            .iter()
            .enumerate()
            .map(|(i, &precision)| UniformKv {
                precision,
                kv_bits: uniform_bits[i] / n_chunk as f64,
                ppl: (uniform_nll[i] / count).exp(),
            })
            .collect(),
        per_chunk,
    })
}
