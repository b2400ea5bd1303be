//! Layer sensitivity: quantize one tensor group at a time, measure what it costs in KL
//! divergence and perplexity on held-out calibration chunks, rank the groups, and allocate
//! precision under a memory budget by sensitivity per byte saved.
//!
//! # Method
//!
//! 1. The **calibration tokens** are a held-out slice: the perplexity runs score the chunks
//!    at the *start* of the tokenized corpus (llama.cpp's method, see [`crate::perplexity`]),
//!    so [`calibration_tokens`] takes the last `k · n_ctx` tokens and refuses a slice that
//!    would overlap the scored chunks.
//! 2. [`analyze`] loads the **baseline** (the high-precision [`SensitivityOptions::base`]
//!    policy, e.g. preset `fp32` or `fp16`), keeps its next-token log-probabilities on the
//!    calibration chunks ([`perplexity::reference_log_probs`]), then, one model in memory at
//!    a time, loads `base` with each [`TensorGroup`] overridden to
//!    [`SensitivityOptions::format`] and scores it against those log-probabilities with
//!    [`perplexity::evaluate`] (second half of each chunk scored, as perplexity does).
//! 3. Per group it records ΔKL, ΔPPL %, top-1 agreement and the exact bytes saved (sums of
//!    [`TensorReport::bytes`](crate::llama::TensorReport::bytes)), and ranks the groups by
//!    ΔKL, most sensitive first.
//! 4. [`allocate`] starts from the baseline and quantizes groups in increasing order of ΔKL
//!    per byte saved until the weights fit the budget; the predicted size is exact.
//!
//! To compare with a hand-written preset at equal size, allocate with the preset's size as
//! the budget (`Model::load(file, &Policy::preset("aggressive")?, threads)?.weight_bytes()`)
//! and score both policies with [`perplexity::evaluate`] on the *scored* chunks.
//!
//! # ΔKL and its floor
//!
//! The reference log-probabilities are kept as `f32` (to bound memory), so even the baseline
//! scored against itself has a tiny positive mean KL (of order 1e-8 nats, the rounding of those
//! `f32` values): the **floor**, [`SensitivityReport::kl_floor`]. A group's ΔKL is its mean
//! `KL(P_base ‖ P_group)` minus the floor, clamped at 0. A group quantized to the format it
//! already has yields bit-identical logits, hence exactly the floor, hence ΔKL = 0 exactly.
//!
//! # Additivity
//!
//! The allocation treats ΔKL as additive over groups ([`Allocation::predicted_damage`]);
//! quantization errors of different groups interact, so measure the allocated policy with
//! [`perplexity::evaluate`] before trusting that sum.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "testing")]
//! # fn main() -> models::Result<()> {
//! use models::gguf::GgufFile;
//! use models::policy::Policy;
//! use models::sensitivity::{SensitivityOptions, allocate, analyze, calibration_tokens};
//! use models::testing::{TinySpec, tiny_gguf};
//!
//! let file = GgufFile::from_bytes(tiny_gguf(&TinySpec::default())?)?;
//! let corpus: Vec<u32> = (0..128).map(|i| (i * 37 % 250) as u32).collect();
//! // Perplexity scores the first 2 chunks of 32; calibrate on the last 2.
//! let calib = calibration_tokens(&corpus, 32, 2, 2)?;
//! let mut opts = SensitivityOptions::new("int4-g32".parse()?, Policy::preset("fp32")?);
//! opts.n_ctx = 32;
//! opts.calib_chunks = 2;
//! let report = analyze(&file, calib, &opts, &mut |_| {})?;
//! let half = report.base_weight_bytes / 2 + report.base_weight_bytes / 4;
//! let alloc = allocate(&report, half)?;
//! assert!(alloc.weight_bytes <= half);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```

use std::time::Instant;

use quant::QuantFormat;
use serde::{Serialize, Serializer};

use crate::gguf::GgufFile;
use crate::llama::{Config, Model, TensorReport};
use crate::perplexity::{self, PerplexityOptions, Reference};
use crate::policy::{Policy, Rule, Target};
use crate::{Error, Result};

/// A set of tensors quantized together, e.g. one block's attention projections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorGroup {
    /// A short name: `token_embd`, `blk.3.attn`, `blk.3.ffn`, `output`.
    pub name: String,
    /// Policy patterns of its tensors: exact GGUF tensor names (glob-escaped), one per tensor,
    /// so that no pattern can catch a tensor another model family adds.
    pub patterns: Vec<String>,
}

impl TensorGroup {
    pub(crate) fn new(name: impl Into<String>, tensors: &[String]) -> Self {
        Self {
            name: name.into(),
            patterns: tensors.iter().map(|t| glob::Pattern::escape(t)).collect(),
        }
    }

    /// Whether one of the group's patterns matches `tensor_name`.
    pub fn contains(&self, tensor_name: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| Rule::new(p, Target::Keep).is_ok_and(|r| r.matches(tensor_name)))
    }

    /// `policy` with every tensor of the group overridden to `format` (the group's rules put
    /// first, in pattern order).
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] if a pattern is not a valid glob (never for [`groups_for`]'s).
    pub fn override_in(&self, policy: &Policy, format: QuantFormat) -> Result<Policy> {
        let mut rules = self
            .patterns
            .iter()
            .map(|p| Rule::new(p, Target::Format(format)))
            .collect::<Result<Vec<_>>>()?;
        rules.extend(policy.rules.iter().cloned());
        Ok(Policy {
            name: format!("{}+{}={format}", policy.name, self.name),
            rules,
        })
    }

    /// Sum of [`TensorReport::bytes`] over the group's tensors in `tensors`.
    pub(crate) fn bytes(&self, tensors: &[TensorReport]) -> usize {
        tensors
            .iter()
            .filter(|t| self.contains(&t.name))
            .map(|t| t.bytes)
            .sum()
    }
}

/// The weight matrices of a LLaMA model as groups: the embedding (`token_embd`), then per
/// block `blk.N.attn` (`attn_q`, `attn_k`, `attn_v`, `attn_output`) and `blk.N.ffn`
/// (`ffn_gate`, `ffn_up`, `ffn_down`), then `output` (`output.weight`) unless the head is
/// tied to the embedding. Norm weights belong to no group: they stay at the baseline.
pub fn groups_for(config: &Config, tied: bool) -> Vec<TensorGroup> {
    let mut groups = vec![TensorGroup::new(
        "token_embd",
        &["token_embd.weight".to_owned()],
    )];
    for l in 0..config.n_layers {
        let names = |parts: &[&str]| -> Vec<String> {
            parts
                .iter()
                .map(|p| format!("blk.{l}.{p}.weight"))
                .collect()
        };
        groups.push(TensorGroup::new(
            format!("blk.{l}.attn"),
            &names(&["attn_q", "attn_k", "attn_v", "attn_output"]),
        ));
        groups.push(TensorGroup::new(
            format!("blk.{l}.ffn"),
            &names(&["ffn_gate", "ffn_up", "ffn_down"]),
        ));
    }
    if !tied {
        groups.push(TensorGroup::new("output", &["output.weight".to_owned()]));
    }
    groups
}

/// The calibration slice of a corpus: its last `k · n_ctx` tokens, disjoint from the first
/// `scored_chunks` chunks of `n_ctx` tokens that perplexity scores (pass the chunk count of
/// the scored run, e.g. [`perplexity::chunk_count`]).
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `n_ctx` or `k` is zero, the corpus is shorter than
/// `k · n_ctx`, or the slice would overlap the scored chunks
/// (`len − k·n_ctx < scored_chunks · n_ctx`).
pub fn calibration_tokens(
    tokens: &[u32],
    n_ctx: usize,
    k: usize,
    scored_chunks: usize,
) -> Result<&[u32]> {
    if n_ctx == 0 || k == 0 {
        return Err(Error::invalid(
            "calibration",
            format!("n_ctx = {n_ctx} and k = {k} must both be at least 1"),
        ));
    }
    let want = k
        .checked_mul(n_ctx)
        .filter(|&w| w <= tokens.len())
        .ok_or_else(|| {
            Error::invalid(
                "calibration",
                format!(
                    "{k} chunks of {n_ctx} tokens do not fit in a corpus of {}",
                    tokens.len()
                ),
            )
        })?;
    let start = tokens.len() - want;
    let scored_end = scored_chunks.saturating_mul(n_ctx);
    if start < scored_end {
        return Err(Error::invalid(
            "calibration",
            format!(
                "the last {k} chunks of {n_ctx} (tokens {start}..{}) overlap the {scored_chunks} \
                 scored chunks (tokens 0..{scored_end}); use fewer chunks or a longer corpus",
                tokens.len()
            ),
        ));
    }
    Ok(&tokens[start..])
}

/// What [`analyze`] measures.
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityOptions {
    /// The format each group is quantized to in turn.
    pub format: QuantFormat,
    /// Tokens per calibration chunk.
    pub n_ctx: usize,
    /// Calibration chunks (at least 2: perplexity's method needs `2 · n_ctx` tokens).
    pub calib_chunks: usize,
    /// The high-precision baseline, e.g. preset `fp32` or `fp16`.
    pub base: Policy,
    /// Threads of each loaded model.
    pub threads: usize,
    /// Replace each chunk's first token with this BOS id (as
    /// [`PerplexityOptions::bos`]).
    pub bos: Option<u32>,
}

impl SensitivityOptions {
    /// `format` against `base`, with `n_ctx = 512`, 4 calibration chunks, 1 thread, no BOS.
    pub fn new(format: QuantFormat, base: Policy) -> Self {
        Self {
            format,
            n_ctx: 512,
            calib_chunks: 4,
            base,
            threads: 1,
            bos: None,
        }
    }
}

/// The cost of quantizing one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSensitivity {
    /// The group.
    pub group: TensorGroup,
    /// Mean `KL(P_base ‖ P_group)` over the scored positions, nats (floor included).
    pub kl: f64,
    /// Standard error of `kl`.
    pub kl_stderr: f64,
    /// `max(kl − floor, 0)`: the KL the quantization adds (see the module docs).
    pub delta_kl: f64,
    /// Perplexity on the calibration chunks.
    pub ppl: f64,
    /// `100 · (ppl − base_ppl) / base_ppl`.
    pub delta_ppl_pct: f64,
    /// Fraction of scored positions whose argmax agrees with the baseline's.
    pub top1_agreement: f64,
    /// Bytes of the group's tensors in the baseline.
    pub base_bytes: usize,
    /// Bytes of the group's tensors in [`SensitivityOptions::format`].
    pub quant_bytes: usize,
    /// `base_bytes − quant_bytes` (negative if the format is larger).
    pub bytes_saved: i64,
    /// `delta_kl / bytes_saved`, or `None` when nothing is saved.
    pub kl_per_byte: Option<f64>,
}

/// The result of [`analyze`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensitivityReport {
    /// The format the groups were quantized to.
    #[serde(serialize_with = "display")]
    pub format: QuantFormat,
    /// The baseline policy.
    #[serde(serialize_with = "display")]
    pub base: Policy,
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// Calibration chunks.
    pub calib_chunks: usize,
    /// Positions scored per model.
    pub tokens_scored: usize,
    /// The baseline's perplexity on the calibration chunks.
    pub base_ppl: f64,
    /// The baseline's mean KL against its own stored (`f32`) log-probabilities.
    pub kl_floor: f64,
    /// Exact bytes of all the baseline's weights.
    pub base_weight_bytes: usize,
    /// One entry per group, most sensitive (largest ΔKL) first; ties keep
    /// [`groups_for`]'s order.
    pub groups: Vec<GroupSensitivity>,
    /// Wall time of the whole analysis, seconds.
    pub seconds: f64,
}

fn display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Progress after one group.
#[derive(Clone, Copy, Debug)]
pub struct SensitivityProgress<'a> {
    /// Groups done (1-based count).
    pub done: usize,
    /// Groups in all.
    pub total: usize,
    /// The group just measured.
    pub result: &'a GroupSensitivity,
}

/// Measures every [`groups_for`] group of the model in `file` quantized alone to
/// `opts.format`, on `opts.calib_chunks` chunks of `tokens` (the calibration slice from
/// [`calibration_tokens`]: chunks are taken from its start), and ranks them (see the module
/// docs). Holds one model at a time plus the baseline's scored log-probabilities
/// (`calib_chunks · (n_ctx/2 − 1)·vocab` `f32` values, roughly). `progress` is called after
/// each group.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for `calib_chunks < 2`, fewer than `calib_chunks · n_ctx`
/// tokens or `threads == 0`; model-loading errors ([`Model::load`], including a format that
/// cannot encode a tensor of some group), and [`perplexity::evaluate`]'s errors.
pub fn analyze(
    file: &GgufFile,
    tokens: &[u32],
    opts: &SensitivityOptions,
    progress: &mut dyn FnMut(SensitivityProgress<'_>),
) -> Result<SensitivityReport> {
    let start = Instant::now();
    if opts.calib_chunks < 2 {
        return Err(Error::invalid(
            "calibration chunks",
            format!(
                "{} is too few: perplexity's method needs at least 2 chunks",
                opts.calib_chunks
            ),
        ));
    }
    let need = opts.calib_chunks.saturating_mul(opts.n_ctx);
    if tokens.len() < need {
        return Err(Error::invalid(
            "calibration tokens",
            format!(
                "{} tokens; {} chunks of {} need {need}",
                tokens.len(),
                opts.calib_chunks,
                opts.n_ctx
            ),
        ));
    }
    let popts = PerplexityOptions {
        n_ctx: opts.n_ctx,
        chunks: Some(opts.calib_chunks),
        bos: opts.bos,
    };
    let baseline = Model::load(file, &opts.base, opts.threads)?;
    let groups = groups_for(baseline.config(), baseline.is_tied());
    let base_tensors = baseline.tensors().to_vec();
    let base_weight_bytes = baseline.weight_bytes();
    let reference = perplexity::reference_log_probs(&baseline, tokens, &popts)?;
    let base = single(&baseline, &reference, tokens, &popts)?;
    drop(baseline);
    let kl_floor = base.kl.map_or(0.0, |k| k.mean);
    let mut results = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let policy = group.override_in(&opts.base, opts.format)?;
        let model = Model::load(file, &policy, opts.threads)?;
        let quant_bytes = group.bytes(model.tensors());
        let r = single(&model, &reference, tokens, &popts)?;
        drop(model);
        let kl = r.kl.unwrap_or_default();
        let base_bytes = group.bytes(&base_tensors);
        let bytes_saved = base_bytes as i64 - quant_bytes as i64;
        let delta_kl = (kl.mean - kl_floor).max(0.0);
        results.push(GroupSensitivity {
            group: group.clone(),
            kl: kl.mean,
            kl_stderr: kl.stderr,
            delta_kl,
            ppl: r.ppl,
            delta_ppl_pct: 100.0 * (r.ppl - base.ppl) / base.ppl,
            top1_agreement: kl.top1_agreement,
            base_bytes,
            quant_bytes,
            bytes_saved,
            kl_per_byte: (bytes_saved > 0).then(|| delta_kl / bytes_saved as f64),
        });
        progress(SensitivityProgress {
            done: i + 1,
            total: groups.len(),
            result: results.last().expect("just pushed"),
        });
    }
    results.sort_by(|a, b| b.delta_kl.total_cmp(&a.delta_kl));
    Ok(SensitivityReport {
        format: opts.format,
        base: opts.base.clone(),
        n_ctx: opts.n_ctx,
        calib_chunks: opts.calib_chunks,
        tokens_scored: base.tokens_scored,
        base_ppl: base.ppl,
        kl_floor,
        base_weight_bytes,
        groups: results,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One model against the stored reference.
fn single(
    model: &Model,
    reference: &perplexity::RefLogProbs,
    tokens: &[u32],
    popts: &PerplexityOptions,
) -> Result<perplexity::PerplexityReport> {
    let mut reports = perplexity::evaluate(
        &[model],
        Reference::LogProbs(reference),
        tokens,
        popts,
        &mut |_| {},
    )?;
    reports
        .pop()
        .ok_or_else(|| Error::invalid("models", "evaluate returned no report"))
}

impl SensitivityReport {
    /// The groups that save bytes, in the order [`allocate`] quantizes them: increasing ΔKL
    /// per byte saved, then larger savings first, then [`groups_for`]'s order.
    pub fn allocation_order(&self) -> Vec<&GroupSensitivity> {
        order_by_damage_per_byte(&self.groups, |g| (g.kl_per_byte, g.bytes_saved))
    }
}

/// The items that save bytes (`key(item) = (damage per byte, bytes saved)`), by increasing
/// damage per byte, then larger savings first, then input order: the quantization order of
/// both allocations.
pub(crate) fn order_by_damage_per_byte<T>(
    items: &[T],
    key: impl Fn(&T) -> (Option<f64>, i64),
) -> Vec<&T> {
    let mut order: Vec<&T> = items.iter().filter(|g| key(g).1 > 0).collect();
    order.sort_by(|a, b| {
        let ((ka, sa), (kb, sb)) = (key(a), key(b));
        ka.unwrap_or(0.0)
            .total_cmp(&kb.unwrap_or(0.0))
            .then(sb.cmp(&sa))
    });
    order
}

/// A policy chosen by [`allocate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// `auto-<budget>`: one rule per tensor of each quantized group (in the order they were
    /// chosen), then the baseline's rules (first match wins).
    pub policy: Policy,
    /// Exact bytes of the weights under `policy` (what [`Model::weight_bytes`] reports).
    pub weight_bytes: usize,
    /// Names of the quantized groups, in the order they were chosen.
    pub quantized: Vec<String>,
    /// Sum of the quantized groups' damage — ΔKL for [`allocate`], cosine distance for
    /// [`crate::bert::sensitivity::allocate`] — an additive estimate (see the module docs).
    pub predicted_damage: f64,
}

/// Fits the weights into `budget_bytes`: starting from the baseline, quantizes groups to the
/// report's format in [`SensitivityReport::allocation_order`] (least ΔKL per byte saved
/// first) until the total is at most the budget; then, most damaging (largest ΔKL) first,
/// restores any chosen group whose bytes still fit under the budget (the greedy's last step
/// can overshoot by a large group). A budget the baseline already meets returns the
/// baseline's rules unchanged.
///
/// # Errors
///
/// [`Error::InvalidArgument`] (`budget`) if even every group quantized exceeds the budget;
/// the message gives the smallest reachable size. [`Error::Policy`] only for a report whose
/// patterns are not globs (never for [`analyze`]'s).
pub fn allocate(report: &SensitivityReport, budget_bytes: usize) -> Result<Allocation> {
    let order: Vec<Candidate<'_>> = report
        .allocation_order()
        .into_iter()
        .map(|g| Candidate {
            group: &g.group,
            damage: g.delta_kl,
            base_bytes: g.base_bytes,
            quant_bytes: g.quant_bytes,
        })
        .collect();
    allocate_in_order(
        &report.base,
        report.format,
        report.base_weight_bytes,
        &order,
        budget_bytes,
    )
}

/// A group as [`allocate_in_order`] sees it.
pub(crate) struct Candidate<'a> {
    pub(crate) group: &'a TensorGroup,
    /// The additive damage estimate (ΔKL, cosine distance, …).
    pub(crate) damage: f64,
    pub(crate) base_bytes: usize,
    pub(crate) quant_bytes: usize,
}

/// The allocation of [`allocate`] over candidates already in quantization order: the
/// greedy pass, then the refinement that restores the most damaging groups that still fit.
pub(crate) fn allocate_in_order(
    base: &Policy,
    format: QuantFormat,
    base_weight_bytes: usize,
    order: &[Candidate<'_>],
    budget_bytes: usize,
) -> Result<Allocation> {
    let mut bytes = base_weight_bytes;
    let mut chosen: Vec<&Candidate<'_>> = Vec::new();
    for g in order {
        if bytes <= budget_bytes {
            break;
        }
        bytes = bytes - g.base_bytes + g.quant_bytes;
        chosen.push(g);
    }
    if bytes <= budget_bytes {
        // Refinement: the last greedy step can overshoot (one large group, such as the
        // embedding, saves far more than needed). Give back the most damaging chosen groups
        // whose bytes still fit under the budget.
        let mut by_damage: Vec<usize> = (0..chosen.len()).collect();
        by_damage.sort_by(|&a, &b| chosen[b].damage.total_cmp(&chosen[a].damage));
        let mut keep = vec![true; chosen.len()];
        for i in by_damage {
            let g = chosen[i];
            let back = bytes - g.quant_bytes + g.base_bytes;
            if back <= budget_bytes {
                bytes = back;
                keep[i] = false;
            }
        }
        let mut k = keep.into_iter();
        chosen.retain(|_| k.next().unwrap_or(true));
    }
    if bytes > budget_bytes {
        return Err(Error::invalid(
            "budget",
            format!(
                "{budget_bytes} bytes cannot be met: the baseline `{}` holds {base_weight_bytes} \
                 bytes and quantizing every group to {format} still leaves {bytes}",
                base.name
            ),
        ));
    }
    let mut rules = Vec::new();
    for g in &chosen {
        for p in &g.group.patterns {
            rules.push(Rule::new(p, Target::Format(format))?);
        }
    }
    rules.extend(base.rules.iter().cloned());
    Ok(Allocation {
        policy: Policy {
            name: format!("auto-{budget_bytes}"),
            rules,
        },
        weight_bytes: bytes,
        quantized: chosen.iter().map(|g| g.group.name.clone()).collect(),
        // `fold` from +0.0: an empty `f64` sum is −0.0.
        predicted_damage: chosen.iter().fold(0.0, |a, g| a + g.damage),
    })
}
