//! Adaptive-rank attention: per head, decide at run time from cheap statistics whether a
//! low-rank approximation is accurate enough, and at which rank; dense (flash) otherwise.
//!
//! # Statistics (per head, `O(sample · n_k · d)`)
//!
//! `sample_rows` query rows are drawn at random (seeded), and their attention rows are
//! computed exactly (`f32` GEMMs and softmax, entropies in `f64`). From them:
//!
//! - **local entropy**: each sampled row's normalized entropy `H(p_i) / ln(#visible keys)`
//!   (`numerics::entropy`'s definition: 1 = uniform, 0 = one key), reported as mean and
//!   (population) variance over the sample;
//! - **global entropy**: the normalized entropy of the mean attention distribution of the
//!   sample, `H(mean_i p_i)`. It is at least the mean local entropy (concavity); the gap is
//!   the mutual information between query and key position — 0 when every row has the same
//!   distribution (a rank-one softmax matrix), large for sharp, position-dependent rows. It
//!   is reported for diagnosis; the decision uses the local statistics and the error
//!   estimate.
//!
//! # Decision
//!
//! 1. **Causal masks → dense.** The low-rank paths approximate the whole key range; under a
//!    causal mask every query sees a different prefix, which a global factorization cannot
//!    respect (the masked part would leak into the approximation), so causal heads always
//!    run dense. Key-padding masks are fine: the invalid keys are dropped before the
//!    factorization.
//! 2. **Peaked heads → dense.** A head is peaked when `mean − std` of its local entropies is
//!    below [`RankParams::entropy_threshold`] (most sampled rows concentrate on few keys:
//!    such softmax matrices are close to permutation-like and have no good low-rank
//!    approximation).
//! 3. **Rank search.** Otherwise each candidate rank of [`RankParams::ranks`] (in order,
//!    those `≤ max_rank`) is tried: the approximation is built and applied to the sampled
//!    rows, and its **estimated error** is the relative Frobenius error of those output rows
//!    against the exact ones,
//!
//!    ```text
//!    err(S) = ‖Õ_S − O_S‖_F / ‖O_S‖_F
//!    ```
//!
//!    (the *sampled-rows relative Frobenius error*). The first rank with
//!    `err ≤ ACCEPT_FRACTION · tolerance` ([`ACCEPT_FRACTION`] = 0.75, a margin for the
//!    sampling error of the estimate) is used for the whole head. A rank is only tried when the
//!    approximation is at least ~2× cheaper than dense by flop count — `4·c ≤ min(n_q, n_k)`
//!    with `c` the number of landmarks (`c = r` for Nyström, `2r` for the randomized-SVD
//!    path); if no rank qualifies or none meets the tolerance, the head runs dense
//!    ([`crate::flash`]).
//!
//! The **actual error** ([`HeadDecision::actual_error`]) is the same metric on a second,
//! disjoint random sample of up to `sample_rows` rows (the *holdout*), measured on the
//! final output after it is computed, so it checks that the estimate generalizes to rows
//! it was not chosen on (when `n_q ≤ sample_rows` there are no other rows, and the holdout
//! is the sample itself). Dense heads report `estimated_error = 0` and their actual error
//! (the `f32` rounding of flash and of the check, about `1e-6`).
//!
//! # Low-rank paths ([`LowRankMethod`])
//!
//! Neither path ever builds an `n_q × n_k` matrix; both cost `O(n·c·d)` time and
//! `O(n·d + c·(c+d))` memory besides the output, against `O(n_q·n_k·d)` for dense:
//!
//! - [`LowRankMethod::Nystrom`] — Nyströmformer (Xiong et al. 2021, arXiv:2102.03902):
//!   segment-mean landmarks, `softmax(QK̃ᵀ) · A⁺ · softmax(Q̃Kᵀ)V` with the paper's iterative
//!   pseudo-inverse, and the exact (SVD) pseudo-inverse as a second candidate at each rank
//!   ([`nystrom`] has the formulas and why);
//! - [`LowRankMethod::RandomizedSvd`] — a skeleton (CUR) approximation of the exp-score
//!   matrix from `2r` evenly spaced real rows and columns, with the core pseudo-inverse
//!   truncated to rank `r` by randomized SVD (Halko, Martinsson & Tropp 2011) through
//!   ndarray-linalg QR and `gesdd`, rows normalized by their approximate sums
//!   ([`skeleton`] has the formulas and the safeguard).
//!
//! # Cost
//!
//! Per head: the statistics and the holdout check `O(sample·n_k·d)`; each rank tried
//! `O(n·c·d + c³)` (one streaming pass of the `c` landmark queries over the keys, the
//! `c × c` pseudo-inverse or randomized SVD, the sampled rows); the chosen approximation
//! `O(n_q·c·d)`. Dense flash is `O(n_q·n_k·d)`, so the decision pays off from a few thousand
//! keys on, and the speedup grows linearly with the length (measured in the bench). For
//! near-uniform attention the softmax matrix is about `𝟙𝟙ᵀ/n` plus `s·QKᵀ/n`, of rank
//! `d + 1`: expect ranks a little above `d` unless the scores are tiny.
//!
//! # Example
//!
//! ```
//! use attention::adaptive_rank::{RankParams, attention};
//! use attention::flash::FlashParams;
//! use attention::{Mask, Shape};
//! # fn main() -> attention::Result<()> {
//! let shape = Shape::self_attention(1, 512, 8);
//! // Tiny scores: near-uniform attention, which a rank-16 approximation captures.
//! let q: Vec<f32> = (0..shape.q_len()).map(|i| ((i * 37) % 101) as f32 * 1e-3).collect();
//! let v: Vec<f32> = (0..shape.kv_len()).map(|i| ((i * 53) % 97) as f32 / 97.0).collect();
//! let params = RankParams::default();
//! let (out, report) =
//!     attention(&q, &q, &v, shape, Mask::NONE, None, &params, &FlashParams::default())?;
//! let head = &report.heads[0];
//! assert_eq!(head.rank, Some(16));
//! assert!(head.actual_error <= params.tolerance);
//! assert_eq!(out.out.len(), shape.q_len());
//! # Ok(())
//! # }
//! ```
//!
//! **`lse` of low-rank rows is approximate**: the log of the approximation's row sum of the
//! unnormalized kernel (see each path). Dense rows have flash's exact `lse`.
//!
//! Heads run one after the other; the dense fallback runs [`crate::flash`] with the given
//! [`FlashParams`] (its `parallel` flag splits that head's query blocks over rayon).

mod landmarks;
pub mod nystrom;
pub mod rsvd;
mod sample;
pub mod skeleton;
#[cfg(test)]
mod tests;

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::flash::FlashParams;
use crate::shape::{Mask, Output, Shape, default_scale};
use crate::{Error, Result};
use landmarks::gather;
use nystrom::Nystrom;
use sample::{EntropyStats, draw_rows, exact_rows, rel_frobenius};
use skeleton::Skeleton;

/// A rank is accepted when its estimated error is at most this fraction of
/// [`RankParams::tolerance`]: the estimate comes from a few dozen rows, and the margin keeps
/// the error on the other rows under the tolerance as well.
pub const ACCEPT_FRACTION: f64 = 0.75;

/// The largest [`RankParams::max_rank`] accepted.
pub const MAX_RANK: usize = 1024;

/// The largest [`RankParams::sample_rows`] accepted.
pub const MAX_SAMPLE_ROWS: usize = 4096;

/// The low-rank approximation tried on diffuse heads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LowRankMethod {
    /// Nyströmformer (segment-mean landmarks, iterative pseudo-inverse).
    #[default]
    Nystrom,
    /// Skeleton (CUR) of the exp-score matrix with a randomized-SVD truncated core.
    RandomizedSvd,
}

impl LowRankMethod {
    /// Landmarks the method uses at rank `r`.
    pub fn landmarks(self, r: usize) -> usize {
        match self {
            LowRankMethod::Nystrom => r,
            LowRankMethod::RandomizedSvd => skeleton::LANDMARKS_PER_RANK * r,
        }
    }
}

/// Parameters of [`attention`].
#[derive(Clone, Debug, PartialEq)]
pub struct RankParams {
    /// Largest accepted estimated error (relative Frobenius error of the sampled output
    /// rows), in `(0, 1]`.
    pub tolerance: f64,
    /// Query rows sampled per head for the statistics and the error estimate
    /// (1 ..= [`MAX_SAMPLE_ROWS`]); as many again form the holdout.
    pub sample_rows: usize,
    /// The largest rank tried (1 ..= [`MAX_RANK`]).
    pub max_rank: usize,
    /// Candidate ranks, tried in order (non-empty, each in `1..=max_rank`).
    pub ranks: Vec<usize>,
    /// The low-rank approximation.
    pub method: LowRankMethod,
    /// Normalized entropy in `[0, 1]` below which a head is "peaked" and stays dense.
    pub entropy_threshold: f64,
    /// Seed of the row sampling and of the randomized SVD.
    pub seed: u64,
}

impl Default for RankParams {
    /// Tolerance 0.02, 32 sampled rows, ranks 16, 32, 64, 128, 256 (max 256), Nyström,
    /// entropy threshold 0.85, seed 0.
    fn default() -> Self {
        Self {
            tolerance: 0.02,
            sample_rows: 32,
            max_rank: 256,
            ranks: vec![16, 32, 64, 128, 256],
            method: LowRankMethod::Nystrom,
            entropy_threshold: 0.85,
            seed: 0,
        }
    }
}

impl RankParams {
    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance > 0.0 && self.tolerance <= 1.0) {
            return Err(Error::params(
                "tolerance",
                format!("must be in (0, 1], got {}", self.tolerance),
            ));
        }
        if self.sample_rows == 0 || self.sample_rows > MAX_SAMPLE_ROWS {
            return Err(Error::params(
                "sample_rows",
                format!("must be in 1..={MAX_SAMPLE_ROWS}, got {}", self.sample_rows),
            ));
        }
        if self.max_rank == 0 || self.max_rank > MAX_RANK {
            return Err(Error::params(
                "max_rank",
                format!("must be in 1..={MAX_RANK}, got {}", self.max_rank),
            ));
        }
        if self.ranks.is_empty() {
            return Err(Error::params("ranks", "no candidate rank"));
        }
        if let Some(&r) = self.ranks.iter().find(|&&r| r == 0 || r > self.max_rank) {
            return Err(Error::params(
                "ranks",
                format!("rank {r} is not in 1..=max_rank ({})", self.max_rank),
            ));
        }
        if !(0.0..=1.0).contains(&self.entropy_threshold) {
            return Err(Error::params(
                "entropy_threshold",
                format!("must be in [0, 1], got {}", self.entropy_threshold),
            ));
        }
        Ok(())
    }
}

/// Why a head ended up on its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionReason {
    /// A candidate rank met the tolerance.
    LowRank,
    /// Causal mask: always dense.
    Causal,
    /// The sampled rows are peaked (entropy below the threshold).
    Peaked,
    /// No candidate rank is small enough to pay off at this length (or no key is valid).
    TooShort,
    /// Every candidate rank missed the tolerance.
    ToleranceNotMet,
}

/// The decision and errors of one head.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadDecision {
    /// Query head.
    pub head: usize,
    /// Normalized entropy of the mean attention distribution of the sampled rows.
    pub global_entropy: f64,
    /// Mean normalized entropy of the sampled rows.
    pub local_entropy_mean: f64,
    /// Variance of the sampled rows' normalized entropies.
    pub local_entropy_var: f64,
    /// The rank used, `None` for dense.
    pub rank: Option<usize>,
    /// Sampled-rows relative Frobenius error of the chosen rank (0 for dense).
    pub estimated_error: f64,
    /// The same metric on the holdout rows of the computed output (module docs).
    pub actual_error: f64,
    /// Seconds spent on the statistics and the rank search.
    pub decide_seconds: f64,
    /// Why this path.
    pub reason: DecisionReason,
    /// `(rank, estimated error)` of every candidate tried, in order.
    pub tried: Vec<(usize, f64)>,
    /// Rows the randomized-SVD path recomputed exactly (its safeguard; 0 otherwise).
    pub exact_rows: usize,
}

/// The per-head decisions of one [`attention`] call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RankReport {
    /// One entry per query head, in order.
    pub heads: Vec<HeadDecision>,
}

impl RankReport {
    /// Heads that ran low-rank.
    pub fn low_rank_heads(&self) -> usize {
        self.heads.iter().filter(|h| h.rank.is_some()).count()
    }
}

/// A built approximation.
enum Approx<'a> {
    Nystrom(Nystrom),
    Skeleton(Skeleton<'a>),
}

impl Approx<'_> {
    /// Output rows and lse of query rows `q`; returns the exactly recomputed rows.
    fn apply(&self, q: ArrayView2<'_, f32>, out: &mut [f32], lse: &mut [f64]) -> usize {
        match self {
            Approx::Nystrom(a) => {
                a.apply(q, out, lse);
                0
            }
            Approx::Skeleton(a) => a.apply(q, out, lse),
        }
    }
}

/// Dense attention of one head (flash on single-head slices).
#[allow(clippy::too_many_arguments)]
fn dense_head(
    qh: &[f32],
    kh: &[f32],
    vh: &[f32],
    n_q: usize,
    n_k: usize,
    d: usize,
    mask: Mask<'_>,
    scale: f32,
    flash: &FlashParams,
) -> Result<Output> {
    let shape = Shape {
        heads: 1,
        kv_heads: 1,
        n_q,
        n_k,
        d,
    };
    crate::flash::attention(qh, kh, vh, shape, mask, Some(scale), flash)
}

/// Adaptive-rank attention (module docs): per head, low-rank (Nyström or randomized SVD)
/// when the sampled rows say it is accurate to `params.tolerance`, dense flash otherwise.
/// `scale` defaults to `1/sqrt(d)`. Low-rank rows have an approximate `lse`.
///
/// # Errors
///
/// [`Error::Shape`] for inconsistent shapes, slice or mask lengths;
/// [`Error::InvalidParams`] for bad `params` or `flash`; [`Error::Linalg`] if LAPACK fails.
#[allow(clippy::too_many_arguments)] // the crate's attention signature plus two parameter sets
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    scale: Option<f32>,
    params: &RankParams,
    flash: &FlashParams,
) -> Result<(Output, RankReport)> {
    params.validate()?;
    flash.check()?;
    shape.check(q, k, v)?;
    mask.check(shape.n_k)?;
    let Shape { n_q, n_k, d, .. } = shape;
    let s = scale.unwrap_or_else(|| default_scale(d));
    let mut out = vec![0.0f32; shape.q_len()];
    let mut lse = vec![f64::NEG_INFINITY; shape.heads * n_q];
    let mut report = RankReport::default();

    // Keys every (non-causal) query sees: padding removed once per call.
    let valid: Option<Vec<usize>> = mask
        .key_valid
        .map(|kv| (0..n_k).filter(|&j| kv[j]).collect());
    for h in 0..shape.heads {
        let g = shape.kv_head(h);
        let qh = &q[h * n_q * d..(h + 1) * n_q * d];
        let kh = &k[g * n_k * d..(g + 1) * n_k * d];
        let vh = &v[g * n_k * d..(g + 1) * n_k * d];
        let out_h = &mut out[h * n_q * d..(h + 1) * n_q * d];
        let lse_h = &mut lse[h * n_q..(h + 1) * n_q];
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(
            params
                .seed
                .wrapping_add((h as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let (sample, holdout) = draw_rows(n_q, params.sample_rows, &mut rng);
        let exact = exact_rows(qh, kh, vh, d, n_k, mask, s, &sample);
        let stats = EntropyStats::of(&exact);

        // The keys the low-rank paths factor (padding dropped).
        let compact: Option<(Array2<f32>, Array2<f32>)> = match (&valid, mask.causal) {
            (Some(idx), false) => {
                let kv = ArrayView2::from_shape((n_k, d), kh).expect("k");
                let vv = ArrayView2::from_shape((n_k, d), vh).expect("v");
                Some((gather(kv, idx), gather(vv, idx)))
            }
            _ => None,
        };
        let n_valid = valid.as_ref().map_or(n_k, Vec::len);
        let (kc, vc) = match &compact {
            Some((kc, vc)) => (kc.view(), vc.view()),
            None => (
                ArrayView2::from_shape((n_k, d), kh).expect("k"),
                ArrayView2::from_shape((n_k, d), vh).expect("v"),
            ),
        };
        let qv = ArrayView2::from_shape((n_q, d), qh).expect("q");
        let q_sample = gather(qv, &sample);

        let mut tried = Vec::new();
        let mut chosen: Option<(usize, f64, Approx<'_>)> = None;
        let reason = if mask.causal {
            DecisionReason::Causal
        } else if stats.local_mean - stats.local_var.sqrt() < params.entropy_threshold {
            DecisionReason::Peaked
        } else {
            let limit = n_q.min(n_valid);
            let mut eligible = false;
            for &r in params.ranks.iter().filter(|&&r| r <= params.max_rank) {
                if 4 * params.method.landmarks(r) > limit {
                    continue;
                }
                eligible = true;
                let candidates: Vec<Approx<'_>> = match params.method {
                    LowRankMethod::Nystrom => Nystrom::build(qv, kc, vc, r, s)
                        .into_iter()
                        .map(Approx::Nystrom)
                        .collect(),
                    LowRankMethod::RandomizedSvd => {
                        vec![Approx::Skeleton(Skeleton::build(
                            qv, kc, vc, r, s, &mut rng,
                        )?)]
                    }
                };
                let mut best: Option<(f64, Approx<'_>)> = None;
                for approx in candidates {
                    let mut o = vec![0.0f32; sample.len() * d];
                    let mut l = vec![0.0f64; sample.len()];
                    approx.apply(q_sample.view(), &mut o, &mut l);
                    let err = rel_frobenius(&exact.out, &o);
                    if best.as_ref().is_none_or(|(e, _)| err < *e) {
                        best = Some((err, approx));
                    }
                }
                let Some((err, approx)) = best else { continue };
                tried.push((r, err));
                if err <= ACCEPT_FRACTION * params.tolerance {
                    chosen = Some((r, err, approx));
                    break;
                }
            }
            if chosen.is_some() {
                DecisionReason::LowRank
            } else if eligible {
                DecisionReason::ToleranceNotMet
            } else {
                DecisionReason::TooShort
            }
        };
        let decide_seconds = start.elapsed().as_secs_f64();

        let (rank, estimated_error, exact_rows_count) = match chosen {
            Some((r, err, approx)) => {
                let n = approx.apply(qv, out_h, lse_h);
                (Some(r), err, n)
            }
            None => {
                let o = dense_head(qh, kh, vh, n_q, n_k, d, mask, s, flash)?;
                out_h.copy_from_slice(&o.out);
                lse_h.copy_from_slice(&o.lse);
                (None, 0.0, 0)
            }
        };

        // Actual error on the holdout rows (the sample itself when there are none).
        let (check_rows, check_exact) = if holdout.is_empty() {
            (&sample, exact.out)
        } else {
            let e = exact_rows(qh, kh, vh, d, n_k, mask, s, &holdout);
            (&holdout, e.out)
        };
        let got: Vec<f32> = check_rows
            .iter()
            .flat_map(|&i| out_h[i * d..(i + 1) * d].iter().copied())
            .collect();
        let actual_error = rel_frobenius(&check_exact, &got);

        report.heads.push(HeadDecision {
            head: h,
            global_entropy: stats.global,
            local_entropy_mean: stats.local_mean,
            local_entropy_var: stats.local_var,
            rank,
            estimated_error,
            actual_error,
            decide_seconds,
            reason,
            tried,
            exact_rows: exact_rows_count,
        });
    }
    Ok((Output { out, lse }, report))
}
