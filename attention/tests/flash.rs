//! Tests of `attention::flash` against the `f64` reference, and its own invariants: block
//! boundaries, decoding, GQA, fully-masked rows, determinism across threads, bad params.
//!
//! The SIMD kernels are tested against their scalar twins bit for bit by the unit tests in
//! `src/flash/tests.rs` (`cargo test -p attention --lib flash`).

use attention::flash::{FlashParams, MAX_BLOCK, attention};
use attention::{Error, Mask, Output, Shape, reference};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Output tolerance against the `f64` reference: max `|flash − reference|` over all
/// elements, relative to `max |v|` (the output is a convex combination of `V`'s rows). The
/// error is that of `f32` dot products over `d ≤ 130` (scores) and `f32` sums over
/// `n_k ≤ 300` keys (outputs); measured at most 1.4e-7 on these tests.
const OUT_TOL_REL_V: f64 = 2e-6;

/// Log-sum-exp tolerance: `|lse − lse_ref| ≤ LSE_TOL · (1 + |lse_ref|)`. The scores are
/// `f32` dot products (relative error a few `1e-7` of `Σ|q_c·k_c|`), plus the `f32`
/// running sum; measured at most 4.3e-8 · (1 + |lse|) on these tests.
const LSE_TOL: f64 = 1e-6;

/// Seeded uniform data on `[-1, 1)`, as `f32`.
fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Q, K and V for `shape`, from `seed`, with `q` scaled by `q_gain` (sharper softmax).
fn qkv(shape: Shape, seed: u64, q_gain: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let q = data(&mut rng, shape.q_len())
        .into_iter()
        .map(|x| x * q_gain)
        .collect();
    let k = data(&mut rng, shape.kv_len());
    let v = data(&mut rng, shape.kv_len());
    (q, k, v)
}

/// Asserts `got` within the named tolerances of the reference, printing the worst element.
fn assert_matches_reference(what: &str, want: &Output, got: &Output, v: &[f32]) {
    assert_eq!(want.out.len(), got.out.len(), "{what}: output length");
    assert_eq!(want.lse.len(), got.lse.len(), "{what}: lse length");
    let vmax = v.iter().fold(0.0f64, |m, x| m.max(f64::from(x.abs())));
    let bound = OUT_TOL_REL_V * vmax.max(f64::MIN_POSITIVE);
    let mut worst = (0usize, 0.0f64);
    for (i, (w, g)) in want.out.iter().zip(&got.out).enumerate() {
        assert!(g.is_finite(), "{what}: out[{i}] = {g}");
        let e = (f64::from(*w) - f64::from(*g)).abs();
        if e > worst.1 {
            worst = (i, e);
        }
    }
    assert!(
        worst.1 <= bound,
        "{what}: out[{}] = {} vs reference {}: |error| {:e} > {OUT_TOL_REL_V:e} · max|v| = {bound:e}",
        worst.0,
        got.out[worst.0],
        want.out[worst.0],
        worst.1
    );
    for (i, (w, g)) in want.lse.iter().zip(&got.lse).enumerate() {
        if *w == f64::NEG_INFINITY {
            assert!(
                *g == f64::NEG_INFINITY,
                "{what}: lse[{i}] = {g}, reference −∞ (fully masked)"
            );
            let row =
                &got.out[i * (got.out.len() / got.lse.len())..][..got.out.len() / got.lse.len()];
            assert!(
                row.iter().all(|x| x.to_bits() == 0),
                "{what}: masked row {i} not +0"
            );
        } else {
            let e = (w - g).abs();
            assert!(
                e <= LSE_TOL * (1.0 + w.abs()),
                "{what}: lse[{i}] = {g} vs reference {w}: |error| {e:e} > {LSE_TOL:e} · (1 + |lse|)"
            );
        }
    }
}

/// Runs flash and the reference on the same inputs and compares them.
fn check(what: &str, shape: Shape, mask: Mask<'_>, params: &FlashParams, seed: u64) {
    let (q, k, v) = qkv(shape, seed, 2.0);
    let want = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
    let got = attention(&q, &k, &v, shape, mask, None, params).unwrap();
    assert_matches_reference(what, &want, &got, &v);
}

/// Bitwise equality of two outputs (no float comparison: NaN-safe and zero-sign exact).
fn assert_bitwise(what: &str, a: &Output, b: &Output) {
    let bits32 = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let bits64 = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits32(&a.out) == bits32(&b.out), "{what}: outputs differ");
    assert!(bits64(&a.lse) == bits64(&b.lse), "{what}: lse differ");
}

fn small_blocks(block_q: usize, block_k: usize) -> FlashParams {
    FlashParams {
        block_q,
        block_k,
        ..FlashParams::default()
    }
}

/// A random shape, mask and block sizes: heads 1–4 with kv_heads dividing them, n_q and
/// n_k in 0–300, d in 1–130, causal or not with a query offset, a key mask (sometimes all
/// false), blocks from tiny to the defaults.
#[derive(Clone, Debug)]
struct Case {
    shape: Shape,
    causal: bool,
    q_offset: usize,
    /// 0: no key mask, 1: random key mask, 2: all keys invalid.
    key_mask: u8,
    block_q: usize,
    block_k: usize,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=4, 0usize..3),
        0usize..=300,
        0usize..=300,
        prop_oneof![1usize..=130, Just(16usize), Just(64), Just(128)],
        any::<bool>(),
        0usize..=40,
        prop_oneof![4 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8)],
        prop_oneof![1usize..=100, Just(FlashParams::default().block_q)],
        prop_oneof![
            1usize..=300,
            Just(64usize),
            Just(FlashParams::default().block_k)
        ],
        any::<u64>(),
    )
        .prop_map(
            |((heads, g), n_q, n_k, d, causal, q_offset, key_mask, block_q, block_k, seed)| {
                let divisors: Vec<usize> = (1..=heads).filter(|k| heads % k == 0).collect();
                let kv_heads = divisors[g % divisors.len()];
                Case {
                    shape: Shape {
                        heads,
                        kv_heads,
                        n_q,
                        n_k,
                        d,
                    },
                    causal,
                    q_offset,
                    key_mask,
                    block_q,
                    block_k,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn flash_matches_reference_on_random_shapes(c in case()) {
        let mut rng = StdRng::seed_from_u64(c.seed ^ 0x5eed);
        let valid: Vec<bool> = match c.key_mask {
            1 => (0..c.shape.n_k).map(|_| rng.random_range(0..4) != 0).collect(),
            _ => vec![c.key_mask == 0; c.shape.n_k],
        };
        let mask = Mask {
            causal: c.causal,
            q_offset: c.q_offset,
            key_valid: (c.key_mask != 0).then_some(&valid[..]),
        };
        check(&format!("{c:?}"), c.shape, mask, &small_blocks(c.block_q, c.block_k), c.seed);
    }
}

#[test]
fn flash_matches_reference_straddling_block_boundaries() {
    // Tile sizes shrunk so that the blocked paths run at small sizes: sizes at block − 1,
    // block and block + 1 for both blocks, the 16-lane vectors, the 64-key panels and the
    // 6-row register tiles, with d around the vector width.
    for (bq, bk) in [(6, 16), (7, 64), (13, 80), (32, 48)] {
        for n in [1, bq - 1, bq, bq + 1, bk - 1, bk, bk + 1, 2 * bk + 1, 65] {
            for d in [1, 15, 16, 17, 64] {
                for causal in [false, true] {
                    let shape = Shape::self_attention(2, n, d);
                    let mask = Mask {
                        causal,
                        ..Mask::NONE
                    };
                    let what = format!("blocks {bq}×{bk}, n {n}, d {d}, causal {causal}");
                    check(&what, shape, mask, &small_blocks(bq, bk), n as u64);
                }
            }
        }
    }
}

#[test]
fn flash_matches_reference_with_default_blocks_and_long_rows() {
    // Several default-sized key blocks (and a ragged one), GQA, both head dimensions the
    // benches use.
    for (d, causal) in [(64, false), (128, true), (80, false)] {
        let shape = Shape {
            heads: 4,
            kv_heads: 2,
            n_q: 200,
            n_k: 700,
            d,
        };
        let mask = Mask {
            causal,
            q_offset: 500,
            key_valid: None,
        };
        check(
            &format!("d {d}, causal {causal}"),
            shape,
            mask,
            &FlashParams::default(),
            d as u64,
        );
    }
}

#[test]
fn decoding_one_query_equals_the_last_row_of_full_causal_attention() {
    for (n, d, bk) in [(1, 8, 64), (37, 64, 16), (300, 48, 256), (129, 130, 64)] {
        let full_shape = Shape {
            heads: 4,
            kv_heads: 2,
            n_q: n,
            n_k: n,
            d,
        };
        let (q, k, v) = qkv(full_shape, n as u64, 2.0);
        let params = small_blocks(32, bk);
        let full = attention(&q, &k, &v, full_shape, Mask::causal(0), None, &params).unwrap();
        let step_shape = Shape {
            n_q: 1,
            ..full_shape
        };
        let last_q: Vec<f32> = q
            .chunks(n * d)
            .flat_map(|head| head[(n - 1) * d..].to_vec())
            .collect();
        let step = attention(
            &last_q,
            &k,
            &v,
            step_shape,
            Mask::causal(n - 1),
            None,
            &params,
        )
        .unwrap();
        let last_rows = Output {
            out: full
                .out
                .chunks(n * d)
                .flat_map(|head| head[(n - 1) * d..].to_vec())
                .collect(),
            lse: full.lse.chunks(n).map(|head| head[n - 1]).collect(),
        };
        // The last row sees the same key blocks either way, so the result is the same bits.
        assert_bitwise(&format!("decode n {n} d {d}"), &step, &last_rows);
    }
}

#[test]
fn decoding_a_chunk_matches_the_rows_of_full_causal_attention() {
    // Queries n − 5 .. n at offset n − 5: the same rows as the full computation (up to the
    // tolerance: rows of an earlier query block skip fully-masked key tiles).
    let (n, d) = (150, 32);
    let full_shape = Shape::self_attention(2, n, d);
    let (q, k, v) = qkv(full_shape, 3, 2.0);
    let params = small_blocks(16, 32);
    let full = attention(&q, &k, &v, full_shape, Mask::causal(0), None, &params).unwrap();
    let chunk_shape = Shape {
        n_q: 5,
        ..full_shape
    };
    let pick = |x: &[f32]| -> Vec<f32> {
        x.chunks(n * d)
            .flat_map(|head| head[(n - 5) * d..].to_vec())
            .collect()
    };
    let chunk = attention(
        &pick(&q),
        &k,
        &v,
        chunk_shape,
        Mask::causal(n - 5),
        None,
        &params,
    )
    .unwrap();
    let rows = Output {
        out: pick(&full.out),
        lse: full
            .lse
            .chunks(n)
            .flat_map(|h| h[n - 5..].to_vec())
            .collect(),
    };
    assert_matches_reference("decode chunk", &rows, &chunk, &v);
}

#[test]
fn grouped_query_attention_equals_repeated_kv_heads_bitwise() {
    let gqa = Shape {
        heads: 6,
        kv_heads: 2,
        n_q: 40,
        n_k: 90,
        d: 24,
    };
    let (q, k, v) = qkv(gqa, 11, 1.0);
    let repeat = |x: &[f32]| -> Vec<f32> {
        x.chunks(gqa.n_k * gqa.d)
            .flat_map(|head| head.repeat(3))
            .collect()
    };
    let mha = Shape { kv_heads: 6, ..gqa };
    let params = small_blocks(16, 32);
    for mask in [Mask::NONE, Mask::causal(50)] {
        let a = attention(&q, &k, &v, gqa, mask, None, &params).unwrap();
        let b = attention(&q, &repeat(&k), &repeat(&v), mha, mask, None, &params).unwrap();
        assert_bitwise("gqa vs repeated heads", &a, &b);
    }
}

#[test]
fn fully_masked_rows_are_zero_with_minus_infinite_lse() {
    let shape = Shape::self_attention(2, 40, 20);
    // Key 0 invalid: under the causal mask, query 0 sees nothing.
    let mut valid = vec![true; 40];
    valid[0] = false;
    let none = vec![false; 40];
    for (valid, causal) in [(&valid, true), (&none, false), (&none, true)] {
        let mask = Mask {
            causal,
            q_offset: 0,
            key_valid: Some(valid),
        };
        check("masked rows", shape, mask, &small_blocks(8, 16), 5);
        let (q, k, v) = qkv(shape, 5, 1.0);
        let o = attention(&q, &k, &v, shape, mask, None, &small_blocks(8, 16)).unwrap();
        assert!(o.out.iter().all(|x| !x.is_nan()));
        assert!(o.lse[0] == f64::NEG_INFINITY);
    }
}

#[test]
fn empty_queries_and_empty_keys() {
    let params = FlashParams::default();
    let no_q = Shape {
        heads: 2,
        kv_heads: 1,
        n_q: 0,
        n_k: 5,
        d: 4,
    };
    let o = attention(&[], &[0.5; 20], &[0.5; 20], no_q, Mask::NONE, None, &params).unwrap();
    assert!(o.out.is_empty() && o.lse.is_empty());
    let no_k = Shape {
        n_q: 3,
        n_k: 0,
        ..no_q
    };
    for mask in [Mask::NONE, Mask::causal(2)] {
        let o = attention(&[1.0; 24], &[], &[], no_k, mask, None, &params).unwrap();
        assert!(o.out.len() == 24 && o.out.iter().all(|x| x.to_bits() == 0));
        assert!(o.lse.iter().all(|l| *l == f64::NEG_INFINITY));
    }
}

#[test]
fn parallel_equals_sequential_bitwise_for_any_thread_count() {
    let shape = Shape {
        heads: 3,
        kv_heads: 1,
        n_q: 130,
        n_k: 257,
        d: 40,
    };
    let (q, k, v) = qkv(shape, 9, 3.0);
    let valid: Vec<bool> = (0..257).map(|j| j % 7 != 3).collect();
    let mask = Mask {
        causal: true,
        q_offset: 100,
        key_valid: Some(&valid),
    };
    let seq = FlashParams {
        block_q: 16,
        block_k: 64,
        parallel: false,
    };
    let want = attention(&q, &k, &v, shape, mask, None, &seq).unwrap();
    for threads in [1, 2, 3, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let par = FlashParams {
            parallel: true,
            ..seq
        };
        let got = pool.install(|| attention(&q, &k, &v, shape, mask, None, &par).unwrap());
        assert_bitwise(&format!("{threads} threads"), &want, &got);
    }
}

#[test]
fn an_explicit_scale_matches_the_reference() {
    let shape = Shape::self_attention(1, 50, 16);
    let (q, k, v) = qkv(shape, 2, 1.0);
    for scale in [0.0, 1.0, -0.7, 3.5] {
        let want = reference::attention(&q, &k, &v, shape, Mask::causal(0), Some(scale)).unwrap();
        let got = attention(
            &q,
            &k,
            &v,
            shape,
            Mask::causal(0),
            Some(scale),
            &FlashParams::default(),
        )
        .unwrap();
        assert_matches_reference(&format!("scale {scale}"), &want, &got, &v);
    }
}

#[test]
fn bad_params_and_shapes_are_errors() {
    let shape = Shape::self_attention(1, 4, 2);
    let x = [0.25f32; 8];
    let run = |shape: Shape, mask: Mask<'_>, scale: Option<f32>, params: FlashParams| {
        attention(
            &x[..shape.q_len().min(8)],
            &x,
            &x,
            shape,
            mask,
            scale,
            &params,
        )
    };
    let ok = FlashParams::default();
    assert!(run(shape, Mask::NONE, None, ok).is_ok());
    for (params, what) in [
        (small_blocks(0, 64), "block_q"),
        (small_blocks(64, 0), "block_k"),
        (small_blocks(MAX_BLOCK + 1, 64), "block_q"),
        (small_blocks(64, MAX_BLOCK + 1), "block_k"),
    ] {
        let e = run(shape, Mask::NONE, None, params).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParams { what: w, .. } if w == what),
            "{params:?}: {e}"
        );
    }
    assert!(run(shape, Mask::NONE, None, small_blocks(MAX_BLOCK, MAX_BLOCK)).is_ok());
    for scale in [f32::NAN, f32::INFINITY, f32::MAX] {
        let e = run(shape, Mask::NONE, Some(scale), ok).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParams { what: "scale", .. }),
            "{scale}: {e}"
        );
    }
    let e = run(shape, Mask::causal(usize::MAX), None, ok).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParams {
                what: "q_offset",
                ..
            }
        ),
        "{e}"
    );
    let short = [true; 3];
    let mask = Mask {
        key_valid: Some(&short),
        ..Mask::NONE
    };
    assert!(matches!(
        run(shape, mask, None, ok),
        Err(Error::Shape { .. })
    ));
    let gqa = Shape {
        heads: 3,
        kv_heads: 2,
        n_q: 1,
        n_k: 1,
        d: 2,
    };
    assert!(matches!(
        run(gqa, Mask::NONE, None, ok),
        Err(Error::Shape { .. })
    ));
    let e = attention(&x[..7], &x, &x, shape, Mask::NONE, None, &ok).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}
