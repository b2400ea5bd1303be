//! Adaptive-precision attention: `QKᵀ` and `PV` with operands rounded to a narrow number
//! format chosen per head, `f32` accumulation; plus the token-importance score
//! ([`importance`]).
//!
//! # The computation
//!
//! For query head `h` (key/value head `g`) and format `f` ([`OperandFormat`]):
//!
//! 1. `Q_h`, `K_g`, `V_g` are each rounded to `f` with `numerics`' slice conversions
//!    (round to nearest even, saturating): `X̃ = round(σ_X · X) / σ_X`, with one per-tensor
//!    scale `σ_X` per head slice. FP8 (E4M3 = OCP `F8E4M3FN`, E5M2 = `F8E5M2`) uses
//!    `σ = max_finite / amax(X)`, which maps the largest magnitude to the format's largest
//!    finite value (the per-tensor scaling of the OCP 8-bit floating point specification's
//!    deployment recipes, Micikevicius et al. 2022, "FP8 Formats for Deep Learning",
//!    arXiv:2209.05433); FP16 uses the exact power-of-two scale that puts `amax` just below
//!    65504; BF16 and F32 are unscaled.
//! 2. Scores `s_ij = scale · q̃_i·k̃_j` by an `f32` GEMM (the scales folded into `scale`),
//!    softmax in `f32`: `p_ij = exp(s_ij − m_i) / l_i` with the row sum `l_i` accumulated in
//!    `f32` from the unrounded exponentials; `lse_i = m_i + ln l_i`.
//! 3. **The probabilities are rounded to the same format as `V`** (the operand format of
//!    the head; FP8 with the fixed scale `σ_P = max_finite`, which maps `p = 1`, the largest
//!    possible probability, to the largest finite value), then `o_i = Σ_j p̃_ij ṽ_j` by an
//!    `f32` GEMM. This is the FP8 attention recipe where both operands of each GEMM are
//!    narrow (FlashAttention-3, Shah et al. 2024, arXiv:2407.08608, §3.3).
//!
//! Rows are processed in blocks of up to 64 queries against all visible keys (scratch
//! bounded to 1 MiB per block whatever the length), so the memory is `O(n·d)` plus the
//! block. The arithmetic is the same two GEMMs as `f32` attention: rounding adds
//! `O(n·d)` conversions per operand and `O(n_q·n_k)` for `P`, it does not make the CPU path
//! faster — the point is to measure what a narrow-format kernel would compute (on hardware
//! with FP8/BF16 tensor cores it would also be faster).
//!
//! [`reference_with_formats`] is the `f64` oracle: the same rounded operands (and rounded
//! probabilities), every product and sum in `f64`.
//!
//! # The decision rule ([`PrecisionPolicy`])
//!
//! Per head, from cheap statistics ([`HeadPrecision`]):
//!
//! - `dynamic_range_db`: the largest, over `Q_h`, `K_g`, `V_g`, of the robust dynamic range
//!   `20·log₁₀(amax / a₀₁)`, with `a₀₁` the 1 % quantile of the non-zero magnitudes of an
//!   evenly strided sample of at most 4096 elements;
//! - `entropy`: the mean normalized entropy `H(p_i) / ln(#visible keys)` of the exact
//!   softmax rows of `sample_rows` evenly spaced query rows (`O(sample·n_k·d)`); its value
//!   in nats gives the effective number of keys per row `n_eff = exp(H)`, so the typical
//!   probability is `1/n_eff` — this is where the sequence length enters.
//!
//! A format `f` **fits** a head when its normal range `R(f) = 20·log₁₀(max_finite /
//! min_normal)` (E4M3 89 dB, E5M2 180 dB, FP16 181 dB, BF16 1529 dB) holds both the
//! operands and the typical probability with [`MARGIN_DB`] (20 dB) to spare:
//! `dynamic_range_db + 20 ≤ R(f)` and `20·log₁₀ n_eff + 20 ≤ R(f)`. Below the normal range
//! values lose relative precision (subnormals) or vanish. Each policy lists candidate
//! formats, narrowest first, by how peaked the head is (a peaked head has large score gaps,
//! so the absolute score error `≈ u·|s|` of a format with unit roundoff `u` moves its
//! few large probabilities; a diffuse head averages the rounding errors over many keys):
//!
//! | policy | diffuse (`entropy ≥ 0.6`) | mixed | peaked (`entropy < 0.3`) |
//! |---|---|---|---|
//! | [`Quality`](PrecisionPolicy::Quality) | F16, F32 | F16, F32 | F32 |
//! | [`Balanced`](PrecisionPolicy::Balanced) | E4M3, F16, BF16, F32 | F16, BF16, F32 | F16, F32 |
//! | [`Speed`](PrecisionPolicy::Speed) | E4M3, E5M2, BF16, F32 | same as diffuse | BF16, F32 |
//!
//! and the first candidate that fits is chosen (F32 always fits). So under `Quality` a
//! head whose operands span more than 161 dB gets F32; FP8 needs operands within 69 dB and
//! `n_eff ≤ 2.9·10³` (E4M3). [`PrecisionParams::fixed`] bypasses the rule (the statistics
//! are still reported).
//!
//! # Example
//!
//! ```
//! use attention::adaptive_precision::{PrecisionParams, attention, attention_with_formats};
//! use attention::{Mask, Shape};
//! # fn main() -> attention::Result<()> {
//! let shape = Shape::self_attention(2, 64, 16);
//! let x: Vec<f32> = (0..shape.q_len()).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
//! let params = PrecisionParams::default();
//! let (out, report) = attention(&x, &x, &x, shape, Mask::NONE, None, &params)?;
//! assert_eq!(report.heads.len(), 2);
//! // The same computation with the formats given explicitly.
//! let again = attention_with_formats(&x, &x, &x, shape, Mask::NONE, None, &report.formats())?;
//! assert_eq!(out, again);
//! # Ok(())
//! # }
//! ```
//!
//! # Token importance
//!
//! [`importance::attention_received`] is the attention each key receives, `Σ_i A[h,i,j]`
//! averaged over heads (H2O's accumulated attention score, Zhang et al. 2023,
//! arXiv:2306.14048): the per-token score `models` uses to keep important tokens in a wider
//! format.

pub(crate) mod exp;
pub mod importance;
mod kernel;
mod policy;
mod reference;
mod rounding;
#[cfg(test)]
mod tests;

pub use policy::{DIFFUSE_ENTROPY, MARGIN_DB, PEAKED_ENTROPY};
pub use reference::reference_with_formats;

use rounding::{Rounder, amax, operand_scale};

use crate::shape::{Mask, Output, Shape, default_scale};
use crate::{Error, Result};

/// The format the operands of one head are rounded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperandFormat {
    /// No rounding (`f32`).
    F32,
    /// bfloat16 (8 exponent bits, 7 mantissa bits).
    Bf16,
    /// IEEE binary16, with an exact power-of-two per-tensor scale.
    F16,
    /// OCP FP8 E4M3 (`F8E4M3FN`: max 448, no infinity), per-tensor scaled.
    E4M3,
    /// OCP FP8 E5M2 (max 57344), per-tensor scaled.
    E5M2,
}

impl OperandFormat {
    /// Every format, widest first.
    pub const ALL: [OperandFormat; 5] = [
        OperandFormat::F32,
        OperandFormat::F16,
        OperandFormat::Bf16,
        OperandFormat::E5M2,
        OperandFormat::E4M3,
    ];

    /// The lower-case name (`f32`, `bf16`, `f16`, `e4m3`, `e5m2`).
    pub const fn name(self) -> &'static str {
        match self {
            OperandFormat::F32 => "f32",
            OperandFormat::Bf16 => "bf16",
            OperandFormat::F16 => "f16",
            OperandFormat::E4M3 => "e4m3",
            OperandFormat::E5M2 => "e5m2",
        }
    }
}

impl core::fmt::Display for OperandFormat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// How aggressively [`attention`] narrows formats (the table in the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrecisionPolicy {
    /// F16 at most, F32 for peaked heads.
    Quality,
    /// FP8 (E4M3) for diffuse heads, F16/BF16 otherwise.
    #[default]
    Balanced,
    /// FP8 wherever it fits, BF16 for peaked heads.
    Speed,
}

/// Parameters of [`attention`].
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionParams {
    /// The decision rule.
    pub policy: PrecisionPolicy,
    /// Force one format for every head (the statistics are still computed and reported).
    pub fixed: Option<OperandFormat>,
    /// Query rows sampled per head for the entropy (1 ..= [`MAX_SAMPLE_ROWS`]).
    pub sample_rows: usize,
}

/// The largest [`PrecisionParams::sample_rows`].
pub const MAX_SAMPLE_ROWS: usize = 1 << 16;

impl Default for PrecisionParams {
    /// `Balanced`, no fixed format, 32 sampled rows.
    fn default() -> Self {
        Self {
            policy: PrecisionPolicy::Balanced,
            fixed: None,
            sample_rows: 32,
        }
    }
}

impl PrecisionParams {
    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] when `sample_rows` is 0 or above [`MAX_SAMPLE_ROWS`].
    pub fn validate(&self) -> Result<()> {
        if self.sample_rows == 0 || self.sample_rows > MAX_SAMPLE_ROWS {
            return Err(Error::params(
                "sample_rows",
                format!("must be in 1..={MAX_SAMPLE_ROWS}, got {}", self.sample_rows),
            ));
        }
        Ok(())
    }
}

/// The decision for one head.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadPrecision {
    /// Query head.
    pub head: usize,
    /// The format its operands were rounded to.
    pub format: OperandFormat,
    /// The largest robust dynamic range of its `Q`, `K`, `V` slices, in dB.
    pub dynamic_range_db: f64,
    /// Mean normalized attention entropy of the sampled rows, in `[0, 1]`.
    pub entropy: f64,
}

/// The per-head decisions of one [`attention`] call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrecisionReport {
    /// One entry per query head, in order.
    pub heads: Vec<HeadPrecision>,
}

impl PrecisionReport {
    /// How many heads use `format`.
    pub fn count(&self, format: OperandFormat) -> usize {
        self.heads.iter().filter(|h| h.format == format).count()
    }

    /// `(format, heads using it)` for every format, widest first.
    pub fn counts(&self) -> [(OperandFormat, usize); 5] {
        OperandFormat::ALL.map(|f| (f, self.count(f)))
    }

    /// The formats, one per head (the argument of [`attention_with_formats`]).
    pub fn formats(&self) -> Vec<OperandFormat> {
        self.heads.iter().map(|h| h.format).collect()
    }
}

/// One head's operands rounded to a format, each still multiplied by its scale.
pub(crate) struct RoundedHead {
    pub(crate) q: Vec<f32>,
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
    pub(crate) q_scale: f32,
    pub(crate) k_scale: f32,
    pub(crate) v_scale: f32,
}

impl RoundedHead {
    /// Rounds one head's `Q` slice and its key/value head's `K`, `V` slices.
    pub(crate) fn new(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        format: OperandFormat,
        rounder: &mut Rounder,
    ) -> Result<Self> {
        let mut one = |x: &[f32]| -> Result<(Vec<f32>, f32)> {
            let sigma = operand_scale(format, amax(x));
            let mut r = vec![0.0f32; x.len()];
            rounder.round(format, x, sigma, &mut r)?;
            Ok((r, sigma))
        };
        let (q, q_scale) = one(q)?;
        let (k, k_scale) = one(k)?;
        let (v, v_scale) = one(v)?;
        Ok(Self {
            q,
            k,
            v,
            q_scale,
            k_scale,
            v_scale,
        })
    }
}

/// Checks that there is one format per query head.
pub(crate) fn check_formats(formats: &[OperandFormat], heads: usize) -> Result<()> {
    if formats.len() != heads {
        return Err(Error::params(
            "formats",
            format!("one format per head: {} for {heads} heads", formats.len()),
        ));
    }
    Ok(())
}

/// Adaptive-precision attention: picks a format per head by `params` (module docs) and
/// runs [`attention_with_formats`] with them. `scale` defaults to `1/sqrt(d)`.
///
/// # Errors
///
/// [`Error::Shape`] for inconsistent shapes, slice or mask lengths;
/// [`Error::InvalidParams`] for bad `params`.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &PrecisionParams,
) -> Result<(Output, PrecisionReport)> {
    params.validate()?;
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    let Shape { n_q, n_k, d, .. } = shape;
    let s = scale.unwrap_or_else(|| default_scale(d));
    let mut report = PrecisionReport::default();
    for h in 0..shape.heads {
        let g = shape.kv_head(h);
        let qh = &q[h * n_q * d..(h + 1) * n_q * d];
        let kh = &k[g * n_k * d..(g + 1) * n_k * d];
        let vh = &v[g * n_k * d..(g + 1) * n_k * d];
        let range = [qh, kh, vh]
            .into_iter()
            .map(policy::dynamic_range_db)
            .fold(0.0f64, f64::max);
        let (entropy, nats) =
            policy::sampled_entropy(qh, kh, s, n_q, n_k, d, mask, params.sample_rows);
        let format = params
            .fixed
            .unwrap_or_else(|| policy::choose(params.policy, range, entropy, nats));
        report.heads.push(HeadPrecision {
            head: h,
            format,
            dynamic_range_db: range,
            entropy,
        });
    }
    let out = attention_with_formats(q, k, v, shape, mask, scale, &report.formats())?;
    Ok((out, report))
}

/// Attention with head `h`'s operands rounded to `formats[h]` (module docs: per-tensor
/// scaled rounding through `numerics`, `P` rounded to `V`'s format, `f32` GEMMs and
/// accumulation). `scale` defaults to `1/sqrt(d)`. Fully-masked rows give zeros and
/// `lse = −∞`.
///
/// # Errors
///
/// [`Error::Shape`] for inconsistent shapes, slice or mask lengths;
/// [`Error::InvalidParams`] when `formats.len() != shape.heads`.
pub fn attention_with_formats(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    formats: &[OperandFormat],
) -> Result<Output> {
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    check_formats(formats, shape.heads)?;
    let Shape { n_q, n_k, d, .. } = shape;
    let s = scale.unwrap_or_else(|| default_scale(d));
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; shape.heads * n_q];
    let mut rounder = Rounder::default();
    for (h, &format) in formats.iter().enumerate() {
        let g = shape.kv_head(h);
        let r = RoundedHead::new(
            &q[h * n_q * d..(h + 1) * n_q * d],
            &k[g * n_k * d..(g + 1) * n_k * d],
            &v[g * n_k * d..(g + 1) * n_k * d],
            format,
            &mut rounder,
        )?;
        let ops = kernel::HeadOperands {
            q: &r.q,
            k: &r.k,
            v: &r.v,
            score_scale: s / (r.q_scale * r.k_scale),
            v_scale: r.v_scale,
        };
        kernel::head_attention(
            &ops,
            format,
            n_q,
            n_k,
            d,
            mask,
            &mut out[h * n_q * d..(h + 1) * n_q * d],
            &mut lse[h * n_q..(h + 1) * n_q],
            &mut rounder,
        )?;
    }
    Ok(Output { out, lse })
}
