//! `models::importance`: normalization and thresholds as properties, rarity, and the
//! two-pass tiered-KV evaluation on the tiny random model (all-`f32` tiers reproduce the
//! `f32` perplexity exactly; the average bits are those of the tier counts).

use models::Error;
use models::gguf::GgufFile;
use models::importance::{
    AttentionScore, ImportanceOptions, TokenFrequencies, assign_tiers, evaluate_importance,
    layer_tiers, normalize, token_importance,
};
use models::llama::Model;
use models::perplexity::{self, PerplexityOptions, Reference};
use models::policy::{Policy, Target};
use models::testing::{TinySpec, tiny_gguf};
use numerics::testing::{Tolerance, rng};
use proptest::prelude::*;
use quant::kv::KvPrecision;
use rand::RngExt;

const N_CTX: usize = 32;

fn model() -> Model {
    let file = GgufFile::from_bytes(tiny_gguf(&TinySpec::default()).expect("tiny")).unwrap();
    Model::load(&file, &Policy::single("*", Target::Keep).unwrap(), 1).unwrap()
}

fn corpus(vocab: usize) -> Vec<u32> {
    let mut r = rng::seeded(5);
    (0..4 * N_CTX)
        .map(|_| r.random_range(0..vocab as u32))
        .collect()
}

fn ppl_opts(chunks: usize) -> PerplexityOptions {
    PerplexityOptions {
        n_ctx: N_CTX,
        chunks: Some(chunks),
        bos: None,
    }
}

/// Position of a precision in the default tiers (0 = widest).
fn rank(p: KvPrecision, opts: &ImportanceOptions) -> usize {
    opts.tiers.iter().position(|&t| t == p).expect("a tier")
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec(-1e6f64..1e6, 0..64),
        // Constants and few distinct values.
        (1usize..20, -5.0f64..5.0).prop_map(|(n, c)| vec![c; n]),
        prop::collection::vec(prop::sample::select(vec![0.0, 1.0, 2.5]), 0..20),
    ]
}

proptest! {
    #[test]
    fn normalized_values_lie_in_unit_interval(v in values()) {
        let n = normalize(&v);
        prop_assert_eq!(n.len(), v.len());
        for (&x, &y) in v.iter().zip(&n) {
            prop_assert!((0.0..=1.0).contains(&y), "{} → {}", x, y);
        }
        let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
        if max > min {
            for (&x, &y) in v.iter().zip(&n) {
                if x.to_bits() == min.to_bits() { prop_assert_eq!(y.to_bits(), 0f64.to_bits()); }
                if x.to_bits() == max.to_bits() { prop_assert_eq!(y.to_bits(), 1f64.to_bits()); }
            }
        } else {
            prop_assert!(n.iter().all(|&y| y.to_bits() == 0.5f64.to_bits()));
        }
    }

    #[test]
    fn tiers_are_monotone_and_follow_thresholds(v in values()) {
        let opts = ImportanceOptions::default();
        let scores = normalize(&v);
        let tiers = assign_tiers(&scores, &opts);
        for (i, (&s, &t)) in scores.iter().zip(&tiers).enumerate() {
            let expected = if s > 0.8 {
                KvPrecision::F32
            } else if s >= 0.5 {
                KvPrecision::F16
            } else {
                KvPrecision::Fp8E4M3
            };
            prop_assert_eq!(t, expected);
            // More important never means a narrower tier.
            for (&s2, &t2) in scores.iter().zip(&tiers).skip(i + 1) {
                if s < s2 { prop_assert!(rank(t, &opts) >= rank(t2, &opts)); }
                if s > s2 { prop_assert!(rank(t, &opts) <= rank(t2, &opts)); }
            }
        }
    }
}

#[test]
fn normalize_handles_non_finite_and_thresholds_are_inclusive_in_the_middle() {
    let n = normalize(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0, 3.0]);
    assert_eq!(
        n.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        [0.0, 1.0, 0.0, 0.0, 1.0f64].map(f64::to_bits)
    );
    assert!(normalize(&[]).is_empty());
    let opts = ImportanceOptions::default();
    assert_eq!(
        assign_tiers(&[0.8, 0.5, 0.8000001, 0.4999999, f64::NAN], &opts),
        [
            KvPrecision::F16,
            KvPrecision::F16,
            KvPrecision::F32,
            KvPrecision::Fp8E4M3,
            KvPrecision::Fp8E4M3
        ]
    );
    assert_eq!(
        layer_tiers(&[10.0, 20.0, 12.0, 17.0], &opts),
        [
            KvPrecision::Fp8E4M3,
            KvPrecision::F32,
            KvPrecision::Fp8E4M3,
            KvPrecision::F16
        ]
    );
}

#[test]
fn options_are_validated() {
    let bad = [
        ImportanceOptions {
            thresholds: (0.4, 0.6),
            ..Default::default()
        },
        ImportanceOptions {
            thresholds: (1.2, 0.5),
            ..Default::default()
        },
        ImportanceOptions {
            rarity_weight: 1.5,
            ..Default::default()
        },
        ImportanceOptions {
            rarity_weight: f64::NAN,
            ..Default::default()
        },
    ];
    for o in bad {
        assert!(
            matches!(o.validate(), Err(Error::InvalidArgument { .. })),
            "{o:?}"
        );
    }
    ImportanceOptions::default().validate().unwrap();
}

#[test]
fn rarity_is_smoothed_negative_log_frequency() {
    let f = TokenFrequencies::from_tokens(&[0, 0, 0, 1], 4).unwrap();
    // p = (count + 1) / (4 + 4).
    let tol = Tolerance::rel_abs(1e-15, 0.0);
    assert!(tol.allows(-(4.0f64 / 8.0).ln(), f.rarity(0)));
    assert!(tol.allows(-(2.0f64 / 8.0).ln(), f.rarity(1)));
    assert!(tol.allows(-(1.0f64 / 8.0).ln(), f.rarity(3)));
    assert!(f.rarity(3) > f.rarity(1) && f.rarity(1) > f.rarity(0));
    assert!(matches!(
        TokenFrequencies::from_tokens(&[4], 4),
        Err(Error::TokenOutOfRange { id: 4, vocab: 4 })
    ));
}

#[test]
fn per_query_score_divides_by_the_queries_that_see_a_position() {
    let f = TokenFrequencies::from_tokens(&[0, 1, 2, 3], 4).unwrap();
    let received = [4.0, 3.0, 2.0, 1.0];
    let opts = ImportanceOptions {
        attention: AttentionScore::PerQuery,
        ..Default::default()
    };
    let t = token_importance(&received, &[0, 1, 2, 3], &opts, &f).unwrap();
    // Every position got 1 per query that could see it: no signal, middle tier.
    for x in &t {
        assert_eq!(x.importance.to_bits(), 1f64.to_bits());
        assert_eq!(x.tier, KvPrecision::F16);
    }
    let raw = token_importance(&received, &[0, 1, 2, 3], &Default::default(), &f).unwrap();
    assert_eq!(raw[0].tier, KvPrecision::F32);
    assert_eq!(raw[3].tier, KvPrecision::Fp8E4M3);
    // Rarity only: the rare token (3) goes high.
    let f = TokenFrequencies::from_tokens(&[0, 0, 0, 1, 1, 2], 4).unwrap();
    let opts = ImportanceOptions {
        rarity_weight: 1.0,
        ..Default::default()
    };
    let t = token_importance(&received, &[0, 1, 2, 3], &opts, &f).unwrap();
    assert_eq!(t[3].tier, KvPrecision::F32);
    assert_eq!(t[0].tier, KvPrecision::Fp8E4M3);
    assert!(token_importance(&received, &[0, 1], &opts, &f).is_err());
}

#[test]
fn all_f32_tiers_reproduce_the_f32_perplexity_exactly() {
    let m = model();
    let tokens = corpus(m.config().vocab_size);
    let opts = ImportanceOptions {
        tiers: [KvPrecision::F32; 3],
        compare_uniform: false,
        ..Default::default()
    };
    let r = evaluate_importance(&m, &tokens, &opts, &ppl_opts(3), None).unwrap();
    assert_eq!(r.chunks, 3);
    assert_eq!(r.ppl_tiered.to_bits(), r.ppl_f32.to_bits());
    assert_eq!(r.delta_ppl_pct.to_bits(), 0f64.to_bits());
    assert_eq!(r.kv_bits.to_bits(), 32f64.to_bits());
    assert!(r.uniform.is_empty());
    for c in &r.per_chunk {
        assert_eq!(c.ppl_tiered.to_bits(), c.ppl_f32.to_bits());
    }
    // The f32-cache perplexity is perplexity::evaluate's (summed in another order).
    let p =
        perplexity::evaluate(&[&m], Reference::None, &tokens, &ppl_opts(3), &mut |_| {}).unwrap();
    assert!(Tolerance::rel_abs(1e-12, 0.0).allows(p[0].ppl, r.ppl_f32));
    assert_eq!(r.tokens_scored, p[0].tokens_scored);
}

#[test]
fn tiered_cache_reports_bits_tiers_and_json() {
    let m = model();
    let c = m.config().clone();
    let tokens = corpus(c.vocab_size);
    let opts = ImportanceOptions::default();
    let r = evaluate_importance(&m, &tokens, &opts, &ppl_opts(2), None).unwrap();
    let bits = |p: KvPrecision| p.bits_per_element(c.head_dim);
    let (lo, hi) = (bits(KvPrecision::Fp8E4M3), bits(KvPrecision::F32));
    assert!(lo <= r.kv_bits && r.kv_bits <= hi, "{}", r.kv_bits);
    // The average is exactly the tier counts' (same element count per position).
    let n: usize = r.tier_counts.iter().map(|t| t.tokens).sum();
    assert_eq!(n, 2 * N_CTX);
    let expected: f64 = r
        .tier_counts
        .iter()
        .map(|t| t.tokens as f64 * bits(t.tier))
        .sum::<f64>()
        / n as f64;
    assert!(Tolerance::rel_abs(1e-12, 0.0).allows(expected, r.kv_bits));
    assert!(r.ppl_tiered.is_finite() && r.ppl_f32.is_finite());
    for ch in &r.per_chunk {
        assert_eq!(ch.tokens.len(), N_CTX);
        assert_eq!(ch.layers.len(), c.n_layers);
        for (t, tok) in ch.tokens.iter().enumerate() {
            assert_eq!(tok.position, t);
            assert!((0.0..=1.0).contains(&tok.blended));
            assert_eq!(tok.tier, assign_tiers(&[tok.blended], &opts)[0]);
        }
        let counted: usize = ch.tier_counts.iter().map(|t| t.tokens).sum();
        assert_eq!(counted, N_CTX);
        assert!(ch.layers.iter().all(|l| l.mean_norm > 0.0));
    }
    // Uniform comparisons at the non-f32 tiers.
    let u: Vec<(KvPrecision, f64)> = r.uniform.iter().map(|u| (u.precision, u.kv_bits)).collect();
    assert_eq!(
        u.iter().map(|x| x.0).collect::<Vec<_>>(),
        [KvPrecision::F16, KvPrecision::Fp8E4M3]
    );
    for (p, b) in u {
        assert_eq!(b.to_bits(), bits(p).to_bits());
    }
    let json = serde_json::to_string(&r).unwrap();
    for key in [
        "\"tier\":\"fp8-e4m3\"",
        "\"tiers\":[\"f32\",\"f16\",\"fp8-e4m3\"]",
        "\"attention\":\"received\"",
        "\"layers\":[{\"layer\":0",
        "\"kv_bits\"",
    ] {
        assert!(json.contains(key), "{key} not in the JSON");
    }
}

#[test]
fn evaluate_rejects_bad_inputs() {
    let m = model();
    let vocab = m.config().vocab_size;
    let tokens = corpus(vocab);
    let wrong = TokenFrequencies::from_tokens(&tokens, vocab + 1).unwrap();
    let opts = ImportanceOptions::default();
    assert!(evaluate_importance(&m, &tokens, &opts, &ppl_opts(2), Some(&wrong)).is_err());
    assert!(evaluate_importance(&m, &tokens[..N_CTX], &opts, &ppl_opts(2), None).is_err());
    let bad = ImportanceOptions {
        thresholds: (0.2, 0.9),
        ..Default::default()
    };
    assert!(evaluate_importance(&m, &tokens, &bad, &ppl_opts(2), None).is_err());
}
