//! Tests of `attention::adaptive_precision`: each operand format against the `f64` oracle
//! on the same rounded operands, error ordering across formats, the policy's decisions on
//! crafted inputs, and the token-importance score.

use attention::adaptive_precision::importance::attention_received;
use attention::adaptive_precision::{
    OperandFormat, PrecisionParams, PrecisionPolicy, attention, attention_with_formats,
    reference_with_formats,
};
use attention::flash::FlashParams;
use attention::{Error, Mask, Shape, reference};
use proptest::prelude::*;

use crate::common::{assert_close, qkv as inputs, rel_l2};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// `F32` operands against the `f64` reference, relative to `max |v|`: `f32` GEMMs of length
/// `d` and `n_k` and an `f32` softmax (a few `1e-7`), with margin.
const F32_ABS_TOL: f32 = 2e-5;

/// Fast path against [`reference_with_formats`] (same rounded operands), relative to
/// `max |v|`, per format. The two compute the probabilities in `f32` and `f64`; where `p`
/// falls on a rounding boundary of the format they round it to neighbouring values, one
/// format ulp apart, moving the output by up to `ulp(p) · |v|` — for `p < 1` at most `2⁻¹¹`
/// (F16) or `2⁻⁸` (BF16) of `max |v|`. A straddle needs the `f32` and `f64` values of `p`
/// (a few `f32` ulps apart) to lie on both sides of a boundary, so it happens with odds of
/// about `f32 ulp / format ulp` per probability: often enough in F16 that the random-shape
/// test met one on a large `p` (a fresh-clone CI run: `1.26e-4 · max |v|` against the former
/// F16 bound `1e-4`), rarely in BF16, and practically never on the FP8 grids, whose bounds
/// are the accumulated rounding of `PV` instead. F16 and BF16 therefore allow two flips on
/// the largest `p` of a row: `2 · 2⁻¹¹` and `2 · 2⁻⁸`.
fn format_tol(f: OperandFormat) -> f32 {
    match f {
        OperandFormat::F32 => F32_ABS_TOL,
        OperandFormat::F16 => 2.0 / 2048.0,
        OperandFormat::Bf16 => 2.0 / 256.0,
        OperandFormat::E4M3 => 1e-2,
        OperandFormat::E5M2 => 2e-2,
    }
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn f32_equals_the_reference_and_flash() {
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: 65,
        n_k: 130,
        d: 24,
    };
    let (q, k, v) = inputs(shape, 1.0, 1);
    let valid: Vec<bool> = (0..shape.n_k).map(|j| j % 5 != 0).collect();
    for mask in [
        Mask::NONE,
        Mask::causal(70),
        Mask {
            causal: true,
            q_offset: 3,
            key_valid: Some(&valid),
        },
    ] {
        let f = [OperandFormat::F32; 4];
        let o = attention_with_formats(&q, &k, &v, shape, mask, None, &f).unwrap();
        let exact = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
        let tol = F32_ABS_TOL * max_abs(&v);
        assert_close("f32 vs reference", &exact.out, &o.out, tol);
        let flash =
            attention::flash::attention(&q, &k, &v, shape, mask, None, &FlashParams::default())
                .unwrap();
        assert_close("f32 vs flash", &flash.out, &o.out, tol);
        for (e, g) in exact.lse.iter().zip(&o.lse) {
            let both_masked = e.is_infinite() && g.is_infinite() && e.signum() == g.signum();
            assert!(
                both_masked || (e - g).abs() < 1e-4 * e.abs().max(1.0),
                "lse {e} vs {g}"
            );
        }
        let r = reference_with_formats(&q, &k, &v, shape, mask, None, &f).unwrap();
        assert_close("f32 oracle vs reference", &exact.out, &r.out, 1e-6);
    }
}

#[test]
fn every_format_matches_its_f64_oracle() {
    // Sizes straddling the 64-row query block.
    for (n_q, n_k, seed) in [
        (1, 1, 2),
        (63, 70, 3),
        (64, 64, 4),
        (65, 129, 5),
        (130, 33, 6),
    ] {
        let shape = Shape {
            heads: 5,
            kv_heads: 5,
            n_q,
            n_k,
            d: 16,
        };
        let (q, k, v) = inputs(shape, 1.0, seed);
        let formats = OperandFormat::ALL;
        for mask in [Mask::NONE, Mask::causal(n_k.saturating_sub(n_q))] {
            let o = attention_with_formats(&q, &k, &v, shape, mask, None, &formats).unwrap();
            let r = reference_with_formats(&q, &k, &v, shape, mask, None, &formats).unwrap();
            for (h, &f) in formats.iter().enumerate() {
                let rows = h * n_q * 16..(h + 1) * n_q * 16;
                let tol = format_tol(f) * max_abs(&v);
                assert_close(
                    &format!("{f} n_q {n_q} n_k {n_k}"),
                    &r.out[rows.clone()],
                    &o.out[rows],
                    tol,
                );
            }
        }
    }
}

#[test]
fn error_grows_as_the_format_narrows() {
    let shape = Shape::self_attention(1, 256, 64);
    let (q, k, v) = inputs(shape, 1.0, 7);
    let exact = reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap();
    let err = |f: OperandFormat| {
        let o = attention_with_formats(&q, &k, &v, shape, Mask::NONE, None, &[f]).unwrap();
        rel_l2(&exact.out, &o.out)
    };
    let [f32_, f16, bf16, e4m3, e5m2] = [
        OperandFormat::F32,
        OperandFormat::F16,
        OperandFormat::Bf16,
        OperandFormat::E4M3,
        OperandFormat::E5M2,
    ]
    .map(err);
    eprintln!("f32 {f32_:.2e} f16 {f16:.2e} bf16 {bf16:.2e} e4m3 {e4m3:.2e} e5m2 {e5m2:.2e}");
    assert!(f32_ < f16 && f16 < bf16 && bf16 < e4m3 && e4m3 < e5m2);
    // Each narrowing costs at least a factor 2 in error (2 to 8 mantissa bits fewer).
    assert!(f16 > 2.0 * f32_ && bf16 > 2.0 * f16 && e4m3 > 2.0 * bf16);
}

/// Operands for the policy tests: diffuse `Q`, `K` (std 0.1) and unit `V`, `heads` heads.
fn policy_case(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    inputs(shape, 0.1, seed)
}

fn decide(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: Shape,
    policy: PrecisionPolicy,
) -> Vec<OperandFormat> {
    let p = PrecisionParams {
        policy,
        ..PrecisionParams::default()
    };
    attention(q, k, v, shape, Mask::NONE, None, &p)
        .unwrap()
        .1
        .formats()
}

#[test]
fn policy_narrows_diffuse_heads_with_a_small_range() {
    let shape = Shape::self_attention(2, 256, 32);
    let (q, k, v) = policy_case(shape, 10);
    use OperandFormat::{E4M3, F16};
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Quality),
        [F16, F16]
    );
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Balanced),
        [E4M3, E4M3]
    );
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Speed),
        [E4M3, E4M3]
    );
}

#[test]
fn policy_keeps_a_huge_dynamic_range_wide() {
    // V spans 1e-6 .. 1e4 in magnitude (200 dB), log-uniformly: beyond FP16 and FP8.
    let shape = Shape::self_attention(1, 256, 32);
    let (q, k, _) = policy_case(shape, 11);
    let mut rng = StdRng::seed_from_u64(12);
    let v: Vec<f32> = (0..shape.kv_len())
        .map(|_| {
            let mag = 10f32.powf(rng.random_range(-6.0f32..4.0));
            if rng.random::<bool>() { mag } else { -mag }
        })
        .collect();
    let p = PrecisionParams {
        policy: PrecisionPolicy::Quality,
        ..PrecisionParams::default()
    };
    let (_, report) = attention(&q, &k, &v, shape, Mask::NONE, None, &p).unwrap();
    assert!(report.heads[0].dynamic_range_db > 170.0, "{report:?}");
    assert_eq!(report.heads[0].format, OperandFormat::F32);
    // The faster policies fall back to BF16, whose exponent range holds it.
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Balanced),
        [OperandFormat::Bf16]
    );
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Speed),
        [OperandFormat::Bf16]
    );
}

#[test]
fn policy_keeps_peaked_heads_wide() {
    // Each query is a large multiple of one key: one dominant key per row.
    let shape = Shape::self_attention(1, 128, 16);
    let (_, k, v) = inputs(shape, 1.0, 13);
    let q: Vec<f32> = (0..shape.n_q)
        .flat_map(|i| k[i * 16..(i + 1) * 16].iter().map(|x| 8.0 * x))
        .collect();
    let p = PrecisionParams {
        policy: PrecisionPolicy::Quality,
        ..PrecisionParams::default()
    };
    let (_, report) = attention(&q, &k, &v, shape, Mask::NONE, None, &p).unwrap();
    assert!(report.heads[0].entropy < 0.3, "{report:?}");
    use OperandFormat::{Bf16, F16, F32};
    assert_eq!(report.heads[0].format, F32);
    assert_eq!(decide(&q, &k, &v, shape, PrecisionPolicy::Balanced), [F16]);
    assert_eq!(decide(&q, &k, &v, shape, PrecisionPolicy::Speed), [Bf16]);
}

#[test]
fn policy_widens_fp8_for_long_diffuse_rows() {
    // 4096 keys attended almost uniformly: typical p ≈ 2.4e-4, 72 dB below 1 — with the
    // 20 dB margin beyond E4M3's 89 dB normal range, so Balanced takes FP16 instead.
    let shape = Shape {
        heads: 1,
        kv_heads: 1,
        n_q: 8,
        n_k: 4096,
        d: 16,
    };
    let (q, k, v) = policy_case(shape, 14);
    assert_eq!(
        decide(&q, &k, &v, shape, PrecisionPolicy::Balanced),
        [OperandFormat::F16]
    );
    let short = Shape { n_k: 256, ..shape };
    let n = short.kv_len();
    assert_eq!(
        decide(&q, &k[..n], &v[..n], short, PrecisionPolicy::Balanced),
        [OperandFormat::E4M3]
    );
}

#[test]
fn fixed_format_and_report_counts() {
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: 40,
        n_k: 50,
        d: 8,
    };
    let (q, k, v) = inputs(shape, 1.0, 15);
    let p = PrecisionParams {
        fixed: Some(OperandFormat::E5M2),
        ..PrecisionParams::default()
    };
    let (o, report) = attention(&q, &k, &v, shape, Mask::NONE, None, &p).unwrap();
    assert_eq!(report.count(OperandFormat::E5M2), 4);
    assert_eq!(report.count(OperandFormat::F32), 0);
    let counts = report.counts();
    assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 4);
    let direct =
        attention_with_formats(&q, &k, &v, shape, Mask::NONE, None, &report.formats()).unwrap();
    assert_eq!(o, direct);
}

#[test]
fn decoding_with_an_offset_matches_the_full_rows() {
    // Per-tensor scales depend on the rows present, so only the unscaled formats (F32,
    // BF16) round the decode rows exactly as the full call does.
    let shape = Shape::self_attention(2, 97, 16);
    let (q, k, v) = inputs(shape, 1.0, 16);
    let formats = [OperandFormat::F32, OperandFormat::Bf16];
    let full = attention_with_formats(&q, &k, &v, shape, Mask::causal(0), None, &formats).unwrap();
    let (n, d, tail) = (97, 16, 5);
    let mut q_tail = Vec::new();
    for h in 0..2 {
        q_tail.extend_from_slice(&q[(h * n + n - tail) * d..(h + 1) * n * d]);
    }
    let dec_shape = Shape { n_q: tail, ..shape };
    let dec = attention_with_formats(
        &q_tail,
        &k,
        &v,
        dec_shape,
        Mask::causal(n - tail),
        None,
        &formats,
    )
    .unwrap();
    for h in 0..2 {
        assert_close(
            "decode rows",
            &full.out[(h * n + n - tail) * d..(h + 1) * n * d],
            &dec.out[h * tail * d..(h + 1) * tail * d],
            1e-6,
        );
    }
}

#[test]
fn fully_masked_rows_are_zero() {
    let shape = Shape::self_attention(2, 10, 4);
    let (q, k, v) = inputs(shape, 1.0, 17);
    // Key 0 invalid: under a causal mask from offset 0, query 0 sees nothing.
    let valid: Vec<bool> = (0..10).map(|j| j != 0).collect();
    let mask = Mask {
        causal: true,
        q_offset: 0,
        key_valid: Some(&valid),
    };
    for f in OperandFormat::ALL {
        let o = attention_with_formats(&q, &k, &v, shape, mask, None, &[f, f]).unwrap();
        for h in 0..2 {
            assert!(
                o.out[h * 40..h * 40 + 4].iter().all(|x| x.to_bits() == 0),
                "{f}"
            );
            assert!(o.lse[h * 10] == f64::NEG_INFINITY);
            assert!(o.lse[h * 10 + 1].is_finite());
        }
    }
}

#[test]
fn bad_params_and_shapes_are_errors() {
    let shape = Shape::self_attention(2, 4, 4);
    let (q, k, v) = inputs(shape, 1.0, 18);
    let p = PrecisionParams {
        sample_rows: 0,
        ..PrecisionParams::default()
    };
    let e = attention(&q, &k, &v, shape, Mask::NONE, None, &p);
    assert!(matches!(e, Err(Error::InvalidParams { .. })), "{e:?}");
    let one = [OperandFormat::F32];
    let e = attention_with_formats(&q, &k, &v, shape, Mask::NONE, None, &one);
    assert!(matches!(e, Err(Error::InvalidParams { .. })), "{e:?}");
    let e = reference_with_formats(&q, &k, &v, shape, Mask::NONE, None, &one);
    assert!(matches!(e, Err(Error::InvalidParams { .. })), "{e:?}");
    let two = [OperandFormat::F32; 2];
    let e = attention_with_formats(&q, &k[1..], &v, shape, Mask::NONE, None, &two);
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
    let e = attention_received(&q[1..], &k, shape, Mask::NONE, None);
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
    let short = [true; 2];
    let m = Mask {
        key_valid: Some(&short),
        ..Mask::NONE
    };
    let e = attention_received(&q, &k, shape, m, None);
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");
}

/// `Σ_h Σ_i A[h,i,j] / heads` in `f64`, row by row from the definition.
fn naive_importance(q: &[f32], k: &[f32], shape: Shape, mask: Mask<'_>) -> Vec<f64> {
    let (n_q, n_k, d) = (shape.n_q, shape.n_k, shape.d);
    let s = 1.0 / (d as f64).sqrt();
    let mut acc = vec![0.0f64; n_k];
    for h in 0..shape.heads {
        let g = shape.kv_head(h);
        for i in 0..n_q {
            let scores: Vec<f64> = (0..n_k)
                .map(|j| {
                    if mask.allows(i, j) {
                        s * (0..d)
                            .map(|c| {
                                f64::from(q[(h * n_q + i) * d + c])
                                    * f64::from(k[(g * n_k + j) * d + c])
                            })
                            .sum::<f64>()
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if m == f64::NEG_INFINITY {
                continue;
            }
            let z: f64 = scores.iter().map(|x| (x - m).exp()).sum();
            for (a, x) in acc.iter_mut().zip(&scores) {
                *a += (x - m).exp() / z;
            }
        }
    }
    acc.iter().map(|a| a / shape.heads as f64).collect()
}

/// Importance against the naive `f64` definition: `f32` scores and softmax, relative to
/// the largest entry (at most `n_q`).
const IMPORTANCE_REL_TOL: f64 = 1e-5;

#[test]
fn importance_sums_to_the_unmasked_rows_and_matches_the_definition() {
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: 70,
        n_k: 90,
        d: 16,
    };
    let (q, k, _) = inputs(shape, 1.0, 19);
    let valid: Vec<bool> = (0..90).map(|j| j != 0 && j % 6 != 2).collect();
    let cases = [
        (Mask::NONE, 70.0),
        (Mask::causal(20), 70.0),
        // Query 0 sees only key 0, which is invalid: 69 rows remain.
        (
            Mask {
                causal: true,
                q_offset: 0,
                key_valid: Some(&valid),
            },
            69.0,
        ),
    ];
    for (mask, rows) in cases {
        let imp = attention_received(&q, &k, shape, mask, None).unwrap();
        let sum: f64 = imp.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - rows).abs() < 1e-3, "sum {sum} vs {rows}");
        let naive = naive_importance(&q, &k, shape, mask);
        let top = naive.iter().copied().fold(0.0f64, f64::max);
        for (j, (&e, &g)) in naive.iter().zip(&imp).enumerate() {
            assert!(
                (e - f64::from(g)).abs() <= IMPORTANCE_REL_TOL * top,
                "key {j}: {e} vs {g}"
            );
            if !mask.allows(shape.n_q - 1, j) {
                assert!(g == 0.0, "masked key {j} received {g}");
            }
        }
    }
}

fn formats() -> impl Strategy<Value = OperandFormat> {
    prop_oneof![
        Just(OperandFormat::F32),
        Just(OperandFormat::Bf16),
        Just(OperandFormat::F16),
        Just(OperandFormat::E4M3),
        Just(OperandFormat::E5M2),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_shapes_match_the_oracle(
        (shape, causal, offset, valid, fmts, seed) in
            (1usize..=3, 1usize..=2, 1usize..=80, 1usize..=80, 1usize..=20)
                .prop_flat_map(|(kv, g, n_q, n_k, d)| {
                    let shape = Shape { heads: kv * g, kv_heads: kv, n_q, n_k, d };
                    (
                        Just(shape),
                        any::<bool>(),
                        0usize..=n_k,
                        proptest::option::of(proptest::collection::vec(any::<bool>(), n_k)),
                        proptest::collection::vec(formats(), kv * g),
                        any::<u64>(),
                    )
                })
    ) {
        let (q, k, v) = inputs(shape, 1.0, seed);
        let mask = Mask { causal, q_offset: offset, key_valid: valid.as_deref() };
        let o = attention_with_formats(&q, &k, &v, shape, mask, None, &fmts).unwrap();
        let r = reference_with_formats(&q, &k, &v, shape, mask, None, &fmts).unwrap();
        let (n, d) = (shape.n_q, shape.d);
        for (h, &f) in fmts.iter().enumerate() {
            let rows = h * n * d..(h + 1) * n * d;
            prop_assert!(o.out[rows.clone()].iter().all(|x| x.is_finite()));
            let tol = format_tol(f) * max_abs(&v);
            assert_close(&format!("{f}"), &r.out[rows.clone()], &o.out[rows], tol);
            for i in 0..n {
                let masked = r.lse[h * n + i] == f64::NEG_INFINITY;
                prop_assert_eq!(o.lse[h * n + i] == f64::NEG_INFINITY, masked);
            }
        }
        let params = PrecisionParams::default();
        let (_, report) = attention(&q, &k, &v, shape, mask, None, &params).unwrap();
        prop_assert_eq!(report.heads.len(), shape.heads);
        let imp = attention_received(&q, &k, shape, mask, None).unwrap();
        let rows = (0..n).filter(|&i| (0..shape.n_k).any(|j| mask.allows(i, j))).count();
        let sum: f64 = imp.iter().map(|&x| f64::from(x)).sum();
        prop_assert!((sum - rows as f64).abs() < 1e-3 * (rows.max(1) as f64));
    }
}
