//! Tests of `attention::adaptive_rank`: decisions on diffuse, peaked and causal inputs,
//! the low-rank errors against the `f64` reference, the dense fallback against flash and
//! the reference, and parameter validation.

use attention::adaptive_rank::{
    DecisionReason, LowRankMethod, MAX_RANK, RankParams, RankReport, attention,
};
use attention::flash::FlashParams;
use attention::{Error, Mask, Output, Shape, reference};
use proptest::prelude::*;

use crate::common::{assert_close, normal, qkv, rel_l2 as rel_frobenius};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Dense heads against the `f64` reference: flash's `f32` error (a few `1e-7` relative to
/// `max |v|`, flash's module docs), with margin.
const DENSE_ABS_TOL: f32 = 2e-5;

/// How far the holdout (actual) error may stray from the sampled-row estimate: within a
/// factor 2, or 0.005 absolute for errors near zero. Both are relative Frobenius errors of
/// 32 rows of the same head, so they estimate the same quantity with sampling noise.
const ESTIMATE_FACTOR: f64 = 2.0;
const ESTIMATE_SLACK: f64 = 0.005;

/// Largest error of the approximate `lse` of low-rank rows on diffuse heads (nats).
const LSE_ABS_TOL: f64 = 0.05;

/// Diffuse inputs: small-norm random `Q`, `K` (scores of standard deviation `std²`), so
/// attention is close to uniform; unit-normal `V`.
fn diffuse(shape: Shape, std: f32, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    qkv(shape, std, seed)
}

/// Peaked inputs: every query is a large multiple of one key, so each row puts almost all
/// its mass on that key.
fn peaked(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = normal(&mut rng, shape.kv_len(), 1.0);
    let v = normal(&mut rng, shape.kv_len(), 1.0);
    let d = shape.d;
    let mut q = vec![0.0f32; shape.q_len()];
    for h in 0..shape.heads {
        let g = shape.kv_head(h);
        for i in 0..shape.n_q {
            let j = rng.random_range(0..shape.n_k);
            for c in 0..d {
                q[(h * shape.n_q + i) * d + c] = 20.0 * k[(g * shape.n_k + j) * d + c];
            }
        }
    }
    (q, k, v)
}

fn run(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    mask: Mask<'_>,
    params: &RankParams,
) -> (Output, RankReport) {
    attention(q, k, v, shape, mask, None, params, &FlashParams::default()).unwrap()
}

fn params(method: LowRankMethod) -> RankParams {
    RankParams {
        method,
        ..RankParams::default()
    }
}

#[test]
fn diffuse_heads_go_low_rank_within_tolerance() {
    let shape = Shape::self_attention(3, 1024, 32);
    let (q, k, v) = diffuse(shape, 0.3, 1);
    let exact = reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap();
    for method in [LowRankMethod::RandomizedSvd, LowRankMethod::Nystrom] {
        let p = params(method);
        let (o, report) = run(&q, &k, &v, shape, Mask::NONE, &p);
        for hd in &report.heads {
            eprintln!("{method:?} {hd:?}");
            assert_eq!(
                hd.reason,
                DecisionReason::LowRank,
                "{method:?} head {}",
                hd.head
            );
            assert!(hd.rank.is_some());
            assert!(hd.estimated_error <= p.tolerance);
            assert!(
                hd.actual_error <= p.tolerance,
                "{method:?} head {}: actual {} vs tolerance {}",
                hd.head,
                hd.actual_error,
                p.tolerance
            );
        }
        // The whole output, not just the sampled rows.
        let err = rel_frobenius(&exact.out, &o.out);
        eprintln!("{method:?}: whole-output error {err}");
        assert!(err <= p.tolerance, "{method:?}: whole-output error {err}");
        // Approximate lse: close to the exact one on diffuse heads.
        let worst = exact
            .lse
            .iter()
            .zip(&o.lse)
            .map(|(e, g)| (e - g).abs())
            .fold(0.0f64, f64::max);
        eprintln!("{method:?}: worst lse error {worst}");
        assert!(worst <= LSE_ABS_TOL, "{method:?}: lse error {worst}");
        assert!(o.out.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn peaked_heads_fall_back_to_dense_and_equal_flash() {
    let shape = Shape::self_attention(2, 300, 16);
    let (q, k, v) = peaked(shape, 2);
    for method in [LowRankMethod::Nystrom, LowRankMethod::RandomizedSvd] {
        let (o, report) = run(&q, &k, &v, shape, Mask::NONE, &params(method));
        for hd in &report.heads {
            assert_eq!(hd.reason, DecisionReason::Peaked, "head {}", hd.head);
            assert_eq!(hd.rank, None);
            assert!(hd.tried.is_empty());
            assert!(hd.local_entropy_mean < 0.5, "{hd:?}");
            assert!(hd.actual_error < 1e-5, "{hd:?}");
        }
        let flash = attention::flash::attention(
            &q,
            &k,
            &v,
            shape,
            Mask::NONE,
            None,
            &FlashParams::default(),
        )
        .unwrap();
        assert_eq!(o, flash, "dense heads are flash's output");
        let exact = reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap();
        assert_close("peaked vs reference", &exact.out, &o.out, DENSE_ABS_TOL);
    }
}

#[test]
fn causal_heads_are_dense_and_decoding_matches_the_full_rows() {
    let shape = Shape::self_attention(2, 260, 16);
    let (q, k, v) = diffuse(shape, 0.1, 3);
    let p = params(LowRankMethod::Nystrom);
    let (full, report) = run(&q, &k, &v, shape, Mask::causal(0), &p);
    assert!(
        report
            .heads
            .iter()
            .all(|h| h.reason == DecisionReason::Causal && h.rank.is_none())
    );
    let exact = reference::attention(&q, &k, &v, shape, Mask::causal(0), None).unwrap();
    assert_close("causal vs reference", &exact.out, &full.out, DENSE_ABS_TOL);
    // The same inputs without the mask do go low rank.
    let (_, open) = run(&q, &k, &v, shape, Mask::NONE, &p);
    assert_eq!(open.low_rank_heads(), 2);

    // Decoding the last 3 rows with a query offset equals those rows of the full call.
    let (n, d, tail) = (shape.n_q, shape.d, 3);
    let dec_shape = Shape { n_q: tail, ..shape };
    let mut q_tail = Vec::new();
    for h in 0..shape.heads {
        q_tail.extend_from_slice(&q[(h * n + n - tail) * d..(h + 1) * n * d]);
    }
    let (dec, _) = run(&q_tail, &k, &v, dec_shape, Mask::causal(n - tail), &p);
    for h in 0..shape.heads {
        assert_close(
            "decode rows",
            &full.out[(h * n + n - tail) * d..(h + 1) * n * d],
            &dec.out[h * tail * d..(h + 1) * tail * d],
            1e-6,
        );
    }
}

#[test]
fn estimated_and_actual_errors_agree() {
    let shape = Shape::self_attention(2, 1024, 32);
    let mut checked = 0;
    for (seed, std) in [(4u64, 0.2f32), (5, 0.3), (6, 0.4)] {
        let (q, k, v) = diffuse(shape, std, seed);
        for method in [LowRankMethod::Nystrom, LowRankMethod::RandomizedSvd] {
            let p = RankParams {
                tolerance: 0.05,
                ..params(method)
            };
            let (_, report) = run(&q, &k, &v, shape, Mask::NONE, &p);
            for hd in report.heads.iter().filter(|h| h.rank.is_some()) {
                let (est, act) = (hd.estimated_error, hd.actual_error);
                eprintln!(
                    "{method:?} std {std} rank {:?}: estimated {est:.4}, actual {act:.4}",
                    hd.rank
                );
                checked += 1;
                assert!(
                    act <= ESTIMATE_FACTOR * est + ESTIMATE_SLACK
                        && est <= ESTIMATE_FACTOR * act + ESTIMATE_SLACK,
                    "{method:?} std {std}: estimated {est} vs actual {act}"
                );
            }
        }
    }
    assert!(checked >= 8, "only {checked} low-rank heads to compare");
}

#[test]
fn error_decreases_with_rank_and_unmet_tolerance_falls_back_to_dense() {
    let shape = Shape::self_attention(1, 1024, 16);
    let (q, k, v) = diffuse(shape, 0.4, 7);
    let exact = reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap();
    for method in [LowRankMethod::Nystrom, LowRankMethod::RandomizedSvd] {
        let p = RankParams {
            tolerance: 1e-9,
            ranks: vec![4, 16, 64],
            ..params(method)
        };
        let (o, report) = run(&q, &k, &v, shape, Mask::NONE, &p);
        let hd = &report.heads[0];
        assert_eq!(hd.reason, DecisionReason::ToleranceNotMet);
        assert_eq!(hd.tried.len(), 3, "{hd:?}");
        let errs: Vec<f64> = hd.tried.iter().map(|t| t.1).collect();
        assert!(errs[2] < errs[0] / 2.0, "{method:?}: {errs:?}");
        assert_close("fallback vs reference", &exact.out, &o.out, DENSE_ABS_TOL);
    }
}

#[test]
fn key_padding_and_gqa_on_the_low_rank_path() {
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: 700,
        n_k: 900,
        d: 16,
    };
    let (q, k, v) = diffuse(shape, 0.3, 8);
    let valid: Vec<bool> = (0..shape.n_k).map(|j| j % 7 != 3).collect();
    let mask = Mask {
        key_valid: Some(&valid),
        ..Mask::NONE
    };
    let exact = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
    for method in [LowRankMethod::Nystrom, LowRankMethod::RandomizedSvd] {
        let p = params(method);
        let (o, report) = run(&q, &k, &v, shape, mask, &p);
        assert_eq!(report.low_rank_heads(), 4, "{method:?}: {report:?}");
        let err = rel_frobenius(&exact.out, &o.out);
        assert!(err <= p.tolerance, "{method:?}: error {err}");
    }
}

#[test]
fn short_sequences_and_fully_masked_rows_are_dense() {
    // Too short for any candidate rank to pay off.
    let shape = Shape::self_attention(1, 40, 8);
    let (q, k, v) = diffuse(shape, 0.1, 9);
    let (o, report) = run(
        &q,
        &k,
        &v,
        shape,
        Mask::NONE,
        &params(LowRankMethod::Nystrom),
    );
    assert_eq!(report.heads[0].reason, DecisionReason::TooShort);
    let exact = reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap();
    assert_close("short", &exact.out, &o.out, DENSE_ABS_TOL);

    // No valid key: every row fully masked.
    let none = vec![false; shape.n_k];
    let mask = Mask {
        key_valid: Some(&none),
        ..Mask::NONE
    };
    let (o, report) = run(
        &q,
        &k,
        &v,
        shape,
        mask,
        &params(LowRankMethod::RandomizedSvd),
    );
    assert!(report.heads[0].rank.is_none());
    assert!(o.out.iter().all(|&x| x == 0.0));
    assert!(o.lse.iter().all(|&l| l == f64::NEG_INFINITY));
}

#[test]
fn same_seed_same_decisions() {
    let shape = Shape::self_attention(2, 512, 16);
    let (q, k, v) = diffuse(shape, 0.3, 10);
    let p = params(LowRankMethod::RandomizedSvd);
    let (o1, r1) = run(&q, &k, &v, shape, Mask::NONE, &p);
    let (o2, r2) = run(&q, &k, &v, shape, Mask::NONE, &p);
    assert_eq!(o1, o2);
    for (a, b) in r1.heads.iter().zip(&r2.heads) {
        assert_eq!((a.rank, &a.tried, a.reason), (b.rank, &b.tried, b.reason));
    }
}

#[test]
fn bad_params_and_shapes_are_errors() {
    let shape = Shape::self_attention(1, 8, 4);
    let (q, k, v) = diffuse(shape, 0.1, 11);
    let ok = RankParams::default();
    let bad = [
        RankParams {
            tolerance: 0.0,
            ..ok.clone()
        },
        RankParams {
            tolerance: f64::NAN,
            ..ok.clone()
        },
        RankParams {
            sample_rows: 0,
            ..ok.clone()
        },
        RankParams {
            max_rank: 0,
            ..ok.clone()
        },
        RankParams {
            max_rank: MAX_RANK + 1,
            ranks: vec![1],
            ..ok.clone()
        },
        RankParams {
            ranks: vec![],
            ..ok.clone()
        },
        RankParams {
            ranks: vec![16, 512],
            ..ok.clone()
        },
        RankParams {
            entropy_threshold: 1.5,
            ..ok.clone()
        },
    ];
    for p in &bad {
        let e = attention(
            &q,
            &k,
            &v,
            shape,
            Mask::NONE,
            None,
            p,
            &FlashParams::default(),
        );
        assert!(
            matches!(e, Err(Error::InvalidParams { .. })),
            "{p:?}: {e:?}"
        );
    }
    let flash = FlashParams {
        block_q: 0,
        ..FlashParams::default()
    };
    let e = attention(&q, &k, &v, shape, Mask::NONE, None, &ok, &flash);
    assert!(matches!(e, Err(Error::InvalidParams { .. })), "{e:?}");
    let e = attention(
        &q[1..],
        &k,
        &v,
        shape,
        Mask::NONE,
        None,
        &ok,
        &FlashParams::default(),
    );
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
    let short = [true; 3];
    let m = Mask {
        key_valid: Some(&short),
        ..Mask::NONE
    };
    let e = attention(&q, &k, &v, shape, m, None, &ok, &FlashParams::default());
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
}

/// Random shapes, masks and input norms (diffuse or peaked): the output is finite, the
/// report is consistent, and dense heads equal the reference.
fn case() -> impl Strategy<Value = (Shape, bool, usize, Option<Vec<bool>>, f32, bool, u64)> {
    (
        1usize..=3,
        1usize..=2,
        1usize..=160,
        1usize..=160,
        1usize..=12,
    )
        .prop_flat_map(|(kv, g, n_q, n_k, d)| {
            let shape = Shape {
                heads: kv * g,
                kv_heads: kv,
                n_q,
                n_k,
                d,
            };
            (
                Just(shape),
                any::<bool>(),
                0usize..=n_k,
                proptest::option::of(proptest::collection::vec(any::<bool>(), n_k)),
                prop_oneof![Just(0.05f32), Just(0.3), Just(3.0)],
                any::<bool>(),
                any::<u64>(),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_shapes_are_finite_and_dense_heads_exact(
        (shape, causal, offset, valid, std, svd, seed) in case()
    ) {
        let (q, k, v) = diffuse(shape, std, seed);
        let mask = Mask {
            causal,
            q_offset: if causal { offset } else { 0 },
            key_valid: valid.as_deref(),
        };
        let p = RankParams {
            ranks: vec![2, 4, 8],
            max_rank: 8,
            sample_rows: 8,
            tolerance: 0.05,
            method: if svd { LowRankMethod::RandomizedSvd } else { LowRankMethod::Nystrom },
            seed,
            ..RankParams::default()
        };
        let (o, report) = run(&q, &k, &v, shape, mask, &p);
        prop_assert!(o.out.iter().all(|x| x.is_finite()));
        let exact = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
        let (n, d) = (shape.n_q, shape.d);
        prop_assert_eq!(report.heads.len(), shape.heads);
        for hd in &report.heads {
            let h = hd.head;
            prop_assert_eq!(hd.rank.is_some(), hd.reason == DecisionReason::LowRank);
            if causal {
                prop_assert_eq!(hd.reason, DecisionReason::Causal);
            }
            let rows = h * n * d..(h + 1) * n * d;
            match hd.rank {
                None => {
                    assert_close("dense", &exact.out[rows.clone()], &o.out[rows], DENSE_ABS_TOL);
                }
                Some(_) => prop_assert!(hd.estimated_error <= p.tolerance),
            }
            for i in 0..n {
                let l = o.lse[h * n + i];
                if exact.lse[h * n + i] == f64::NEG_INFINITY {
                    prop_assert!(l == f64::NEG_INFINITY);
                    let row = &o.out[(h * n + i) * d..(h * n + i + 1) * d];
                    prop_assert!(row.iter().all(|x| x.abs() <= 0.0));
                } else {
                    prop_assert!(l.is_finite());
                }
            }
        }
    }
}
