//! Layer sensitivity and budgeted allocation for the encoder, the counterpart of
//! [`crate::sensitivity`] with embedding fidelity in place of KL divergence.
//!
//! [`analyze`] loads the baseline policy, embeds held-out calibration sentences
//! ([`crate::fidelity::calibration_sentences`]), then loads the baseline with each
//! [`groups`] group overridden to the format and measures the **damage**: the mean cosine
//! distance `1 − cos(e_base, e_group)` over the sentences (plus the minimum cosine and the
//! top-1 retrieval agreement, reported but not ranked by). Groups are ranked by damage;
//! [`allocate`] quantizes groups in increasing order of damage per byte saved until the
//! weights fit the budget, exactly as the LLaMA allocation does (same greedy pass and
//! refinement), and the predicted size is exact.
//!
//! Damage is treated as additive over groups ([`Allocation::predicted_damage`]); measure
//! the allocated policy with [`crate::fidelity::compare`] before trusting that sum.

use std::path::Path;
use std::time::Instant;

use quant::QuantFormat;
use serde::Serialize;

use super::{Encoder, EncoderConfig};
use crate::fidelity;
use crate::policy::Policy;
use crate::sensitivity::{
    Allocation, Candidate, TensorGroup, allocate_in_order, order_by_damage_per_byte,
};
use crate::{Error, Result};

/// The encoder's weight matrices as groups: `embeddings` (word, position and token-type
/// tables), then per layer `layer.N.attn` (query, key, value, output dense) and
/// `layer.N.ffn` (intermediate and output dense). Biases and LayerNorms belong to no group.
/// Names carry the file's `prefix` (`""` or `"bert."`).
pub fn groups(config: &EncoderConfig, prefix: &str) -> Vec<TensorGroup> {
    let t = |s: String| format!("{prefix}{s}");
    let mut out = vec![TensorGroup::new(
        "embeddings",
        &["word", "position", "token_type"].map(|k| t(format!("embeddings.{k}_embeddings.weight"))),
    )];
    for l in 0..config.n_layers {
        let p = format!("encoder.layer.{l}");
        out.push(TensorGroup::new(
            format!("layer.{l}.attn"),
            &[
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ]
            .map(|k| t(format!("{p}.{k}.weight"))),
        ));
        out.push(TensorGroup::new(
            format!("layer.{l}.ffn"),
            &["intermediate.dense", "output.dense"].map(|k| t(format!("{p}.{k}.weight"))),
        ));
    }
    out
}

/// What [`analyze`] measures.
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityOptions {
    /// The format each group is quantized to in turn.
    pub format: QuantFormat,
    /// The high-precision baseline, e.g. preset `fp32`.
    pub base: Policy,
    /// Threads of each loaded encoder.
    pub threads: usize,
}

/// The cost of quantizing one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSensitivity {
    /// The group.
    pub group: TensorGroup,
    /// Mean `1 − cos` to the baseline's embeddings: the damage the ranking uses.
    pub cosine_distance: f64,
    /// Fidelity against the baseline on the calibration sentences.
    pub fidelity: fidelity::FidelityReport,
    /// Bytes of the group's tensors in the baseline.
    pub base_bytes: usize,
    /// Bytes of the group's tensors in the format.
    pub quant_bytes: usize,
    /// `base_bytes − quant_bytes`.
    pub bytes_saved: i64,
    /// `cosine_distance / bytes_saved`, or `None` when nothing is saved.
    pub damage_per_byte: Option<f64>,
}

/// The result of [`analyze`].
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityReport {
    /// The format the groups were quantized to.
    pub format: QuantFormat,
    /// The baseline policy.
    pub base: Policy,
    /// Calibration sentences.
    pub sentences: usize,
    /// Exact bytes of all the baseline's weights.
    pub base_weight_bytes: usize,
    /// One entry per group, most damaging first; ties keep [`groups`]' order.
    pub groups: Vec<GroupSensitivity>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl SensitivityReport {
    /// The groups that save bytes in the order [`allocate`] quantizes them: increasing
    /// damage per byte saved, then larger savings first, then [`groups`]' order.
    pub fn allocation_order(&self) -> Vec<&GroupSensitivity> {
        order_by_damage_per_byte(&self.groups, |g| (g.damage_per_byte, g.bytes_saved))
    }
}

/// Measures every [`groups`] group of the encoder in `dir` quantized alone to
/// `opts.format`, on `sentences`, and ranks them (see the module docs). Holds one encoder
/// at a time; `progress(done, total)` is called after each group.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for fewer than 2 sentences; [`Encoder::load`]'s and
/// [`Encoder::embed`]'s errors.
pub fn analyze<S: AsRef<str>>(
    dir: &Path,
    sentences: &[S],
    opts: &SensitivityOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SensitivityReport> {
    let start = Instant::now();
    if sentences.len() < 2 {
        return Err(Error::invalid(
            "calibration sentences",
            "need at least 2 (retrieval needs a neighbour)",
        ));
    }
    let baseline = Encoder::load(dir, &opts.base, opts.threads)?;
    let prefix = if baseline.tensors()[0].name.starts_with("bert.") {
        "bert."
    } else {
        ""
    };
    let groups = groups(baseline.config(), prefix);
    let base_tensors = baseline.tensors().to_vec();
    let base_weight_bytes = baseline.weight_bytes();
    let reference = baseline.embed(sentences)?;
    drop(baseline);
    let mut results = Vec::with_capacity(groups.len());
    for (i, group) in groups.iter().enumerate() {
        let policy = group.override_in(&opts.base, opts.format)?;
        let enc = Encoder::load(dir, &policy, opts.threads)?;
        let quant_bytes = group.bytes(enc.tensors());
        let emb = enc.embed(sentences)?;
        drop(enc);
        let fid = fidelity::compare(&reference, &emb)?;
        let base_bytes = group.bytes(&base_tensors);
        let bytes_saved = base_bytes as i64 - quant_bytes as i64;
        let cosine_distance = (1.0 - fid.mean_cosine).max(0.0);
        results.push(GroupSensitivity {
            group: group.clone(),
            cosine_distance,
            fidelity: fid,
            base_bytes,
            quant_bytes,
            bytes_saved,
            damage_per_byte: (bytes_saved > 0).then(|| cosine_distance / bytes_saved as f64),
        });
        progress(i + 1, groups.len());
    }
    results.sort_by(|a, b| b.cosine_distance.total_cmp(&a.cosine_distance));
    Ok(SensitivityReport {
        format: opts.format,
        base: opts.base.clone(),
        sentences: sentences.len(),
        base_weight_bytes,
        groups: results,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Fits the encoder's weights into `budget_bytes` from the report (see the module docs);
/// the policy is named `auto-<budget>`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] (`budget`) if even every group quantized exceeds the budget.
pub fn allocate(report: &SensitivityReport, budget_bytes: usize) -> Result<Allocation> {
    let order: Vec<Candidate<'_>> = report
        .allocation_order()
        .into_iter()
        .map(|g| Candidate {
            group: &g.group,
            damage: g.cosine_distance,
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
