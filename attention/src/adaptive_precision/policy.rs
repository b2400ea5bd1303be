//! The per-head statistics and the decision rule of [`super::PrecisionPolicy`].

use super::kernel::{Rows, softmax_rows};
use super::{OperandFormat, PrecisionPolicy};
use crate::Mask;

/// At most this many elements of an operand are looked at for its robust dynamic range.
const RANGE_SAMPLE: usize = 4096;

/// The quantile of the sampled non-zero magnitudes taken as an operand's "smallest" value.
const LOW_QUANTILE: f64 = 0.01;

/// Sampled rows per GEMM in [`sampled_entropy`].
const SAMPLE_BLOCK: usize = 64;

/// Headroom (dB) a format's normal range must have beyond a head's needs.
pub const MARGIN_DB: f64 = 20.0;

/// A head whose mean normalized entropy is at least this is "diffuse".
pub const DIFFUSE_ENTROPY: f64 = 0.6;

/// A head whose mean normalized entropy is below this is "peaked".
pub const PEAKED_ENTROPY: f64 = 0.3;

/// The robust dynamic range of `x` in dB: `20·log₁₀(amax / a₀₁)`, where `amax` is the
/// largest finite magnitude and `a₀₁` the 1 % quantile of the non-zero finite magnitudes of
/// an evenly strided sample of at most 4096 elements. 0 for an all-zero tensor.
pub(crate) fn dynamic_range_db(x: &[f32]) -> f64 {
    let amax = super::rounding::amax(x);
    if amax == 0.0 {
        return 0.0;
    }
    let step = x.len().div_ceil(RANGE_SAMPLE).max(1);
    let mut mags: Vec<f32> = x
        .iter()
        .step_by(step)
        .map(|v| v.abs())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if mags.is_empty() {
        return 0.0;
    }
    mags.sort_unstable_by(f32::total_cmp);
    let idx = ((mags.len() - 1) as f64 * LOW_QUANTILE).floor() as usize;
    let lo = mags[idx].min(amax);
    20.0 * (f64::from(amax) / f64::from(lo)).log10()
}

/// Mean normalized entropy and mean entropy in nats of the softmax rows of `sample_rows`
/// evenly spaced query rows (exact `f32` rows, in blocks of 64: `O(sample · n_k · d)`).
/// Rows that see fewer than two keys are skipped; `(1, 0)` when none is left.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sampled_entropy(
    q: &[f32],
    k: &[f32],
    scale: f32,
    n_q: usize,
    n_k: usize,
    d: usize,
    mask: Mask<'_>,
    sample_rows: usize,
) -> (f64, f64) {
    let s = sample_rows.min(n_q);
    if s == 0 || n_k == 0 {
        return (1.0, 0.0);
    }
    let ids: Vec<usize> = (0..s).map(|t| ((2 * t + 1) * n_q) / (2 * s)).collect();
    let (mut norm_sum, mut nats_sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut qs = Vec::new();
    let mut p = Vec::new();
    let mut lse = vec![0.0f64; SAMPLE_BLOCK];
    // Blocks of sampled rows: one GEMM each, scratch bounded by `SAMPLE_BLOCK × n_k`.
    for chunk in ids.chunks(SAMPLE_BLOCK) {
        qs.clear();
        for &i in chunk {
            qs.extend_from_slice(&q[i * d..(i + 1) * d]);
        }
        let rows = Rows::Gathered(chunk);
        let kend = softmax_rows(&qs, rows, k, scale, d, n_k, mask, &mut p, &mut lse);
        if kend == 0 {
            continue;
        }
        for (&i, row) in chunk.iter().zip(p.chunks_exact(kend)) {
            let visible = (0..kend).filter(|&j| mask.allows(i, j)).count();
            if visible < 2 {
                continue;
            }
            let h: f64 = row
                .iter()
                .filter(|&&x| x > 0.0)
                .map(|&x| {
                    let x = f64::from(x);
                    -x * x.ln()
                })
                .sum();
            norm_sum += (h.max(0.0) / (visible as f64).ln()).min(1.0);
            nats_sum += h.max(0.0);
            count += 1;
        }
    }
    if count == 0 {
        (1.0, 0.0)
    } else {
        (norm_sum / count as f64, nats_sum / count as f64)
    }
}

/// The formats a policy tries for a head, narrowest first (see the module docs of
/// [`super`]); the first that [`fits`] is chosen, `F32` always fits.
pub(crate) fn candidates(policy: PrecisionPolicy, entropy: f64) -> &'static [OperandFormat] {
    use OperandFormat::{Bf16, E4M3, E5M2, F16, F32};
    let diffuse = entropy >= DIFFUSE_ENTROPY;
    let peaked = entropy < PEAKED_ENTROPY;
    match policy {
        PrecisionPolicy::Quality if peaked => &[F32],
        PrecisionPolicy::Quality => &[F16, F32],
        PrecisionPolicy::Balanced if diffuse => &[E4M3, F16, Bf16, F32],
        PrecisionPolicy::Balanced if peaked => &[F16, F32],
        PrecisionPolicy::Balanced => &[F16, Bf16, F32],
        PrecisionPolicy::Speed if peaked => &[Bf16, F32],
        PrecisionPolicy::Speed => &[E4M3, E5M2, Bf16, F32],
    }
}

/// Whether `format` holds a head with operand dynamic range `range_db` and typical
/// probability `1/n_eff` (`n_eff = exp(entropy in nats)`) with [`MARGIN_DB`] to spare:
/// `range_db + MARGIN_DB ≤ R(f)` and `20·log₁₀ n_eff + MARGIN_DB ≤ R(f)`, where `R(f)` is
/// [`OperandFormat::normal_range_db`].
pub(crate) fn fits(format: OperandFormat, range_db: f64, entropy_nats: f64) -> bool {
    if format == OperandFormat::F32 {
        return true;
    }
    let r = format.normal_range_db();
    let prob_db = 20.0 * entropy_nats / std::f64::consts::LN_10;
    range_db + MARGIN_DB <= r && prob_db + MARGIN_DB <= r
}

/// The format `policy` picks for a head with these statistics.
pub(crate) fn choose(
    policy: PrecisionPolicy,
    range_db: f64,
    entropy: f64,
    entropy_nats: f64,
) -> OperandFormat {
    candidates(policy, entropy)
        .iter()
        .copied()
        .find(|&f| fits(f, range_db, entropy_nats))
        .unwrap_or(OperandFormat::F32)
}
