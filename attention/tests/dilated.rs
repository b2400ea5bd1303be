//! Tests of `attention::dilated`: the fast path against the dense-mask oracle, the oracle
//! against dense attention, head offsets, uncovered rows, decoding and parameter checks.

use attention::dilated::{self, DilatedParams, head_offset};
use attention::flash::FlashParams;
use attention::{Mask, Output, Shape, reference};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Fast (`f32` flash blocks, `f32` merge) against the `f64` oracle, on outputs: values are
/// in `[−1, 1]`, so this is an error relative to `max |v|`. Flash alone is a few `1e-7`, the
/// merge adds one rounding per pair; 6000 random cases of the properties below stayed
/// under `5e-7`, this keeps a 4× margin.
const OUT_TOL: f32 = 2e-6;
/// The same for log-sum-exps (absolute, in nats; same measurement, same margin).
const LSE_TOL: f64 = 2e-6;

fn data(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Asserts `got ≈ want` within `tol` elementwise (outputs) and `lse_tol` (lse; `−∞` must
/// match exactly), reporting the worst element.
fn assert_close(got: &Output, want: &Output, tol: f32, lse_tol: f64, what: &str) {
    assert_eq!(got.out.len(), want.out.len(), "{what}: output length");
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (a, b)) in got.out.iter().zip(&want.out).enumerate() {
        let e = (a - b).abs();
        if e > worst || e.is_nan() {
            (worst, at) = (e, i);
        }
    }
    assert!(
        worst <= tol,
        "{what}: out[{at}] = {} vs {} (error {worst:e} > {tol:e})",
        got.out[at],
        want.out[at]
    );
    for (i, (a, b)) in got.lse.iter().zip(&want.lse).enumerate() {
        if a.is_infinite() || b.is_infinite() {
            assert!(
                a.is_infinite() && b.is_infinite() && a.signum() == b.signum(),
                "{what}: lse[{i}] = {a} vs {b}"
            );
        } else {
            assert!(
                (a - b).abs() <= lse_tol,
                "{what}: lse[{i}] = {a} vs {b} (tolerance {lse_tol:e})"
            );
        }
    }
}

/// Rows `lo..lo + n` of every head of a `[heads, n_q, d]` output.
fn rows(o: &Output, heads: usize, n_q: usize, d: usize, lo: usize, n: usize) -> Output {
    let mut out = Vec::new();
    let mut lse = Vec::new();
    for h in 0..heads {
        out.extend_from_slice(&o.out[(h * n_q + lo) * d..][..n * d]);
        lse.extend_from_slice(&o.lse[h * n_q + lo..][..n]);
    }
    Output { out, lse }
}

#[derive(Clone, Debug)]
struct Case {
    heads: usize,
    kv_heads: usize,
    n_k: usize,
    n_q: usize,
    q_offset: usize,
    d: usize,
    pairs: Vec<(usize, usize)>,
    causal: bool,
    padded: bool,
    flash: FlashParams,
    seed: u64,
}

impl Case {
    fn shape(&self) -> Shape {
        Shape {
            heads: self.heads,
            kv_heads: self.kv_heads,
            n_q: self.n_q,
            n_k: self.n_k,
            d: self.d,
        }
    }

    /// Q, K, V and the key mask.
    fn inputs(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let s = self.shape();
        let q = data(s.q_len(), &mut rng);
        let k = data(s.kv_len(), &mut rng);
        let v = data(s.kv_len(), &mut rng);
        let valid = (0..self.n_k)
            .map(|_| !self.padded || rng.random_range(0..5) > 0)
            .collect();
        (q, k, v, valid)
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=6, 1usize..=3),
        1usize..=70,
        1usize..=17,
        prop::collection::vec((1usize..=24, 1usize..=6), 1..=3),
        any::<bool>(),
        any::<bool>(),
        (1usize..=9, 1usize..=70, any::<bool>()),
        any::<u64>(),
    )
        .prop_flat_map(|((kv, g), n_k, d, pairs, causal, padded, fl, seed)| {
            (
                0..=n_k,
                Just((kv, g, n_k, d, pairs, causal, padded, fl, seed)),
            )
        })
        .prop_flat_map(|(q_offset, rest)| (0..=rest.2 - q_offset + 2, Just((q_offset, rest))))
        .prop_map(
            |(n_q, (q_offset, (kv, g, n_k, d, pairs, causal, padded, fl, seed)))| Case {
                heads: kv * g,
                kv_heads: kv,
                n_k,
                n_q,
                q_offset,
                d,
                pairs: pairs.into_iter().map(|(w, r)| (w, r.min(w))).collect(),
                causal,
                padded,
                flash: FlashParams {
                    block_q: fl.0,
                    block_k: fl.1,
                    parallel: fl.2,
                },
                seed,
            },
        )
}

fn run(c: &Case) -> (Output, Output) {
    let (q, k, v, valid) = c.inputs();
    let mask = Mask {
        causal: c.causal,
        q_offset: c.q_offset,
        key_valid: c.padded.then_some(&valid[..]),
    };
    let p = DilatedParams {
        pairs: c.pairs.clone(),
    };
    let fast = dilated::attention(&q, &k, &v, c.shape(), mask, None, &p, &c.flash).unwrap();
    let slow = dilated::oracle(&q, &k, &v, c.shape(), mask, None, &p).unwrap();
    (fast, slow)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random pairs, heads, GQA, `n` not a multiple of `w`, causal or not, padding, query
    /// offsets (including queries past the keys when not causal), tiny flash blocks.
    #[test]
    fn dilated_matches_oracle(c in case()) {
        let (fast, slow) = run(&c);
        assert_close(&fast, &slow, OUT_TOL, LSE_TOL, &format!("{c:?}"));
    }

    /// Decoding the last `n_q` positions (q_offset = n_k − n_q) gives the full prefill's
    /// rows.
    #[test]
    fn decode_rows_equal_full_prefill(c in case(), tail in 1usize..=9) {
        let c = Case { q_offset: 0, n_q: c.n_k, ..c };
        let (q, k, v, valid) = c.inputs();
        let p = DilatedParams { pairs: c.pairs.clone() };
        let key_valid = c.padded.then_some(&valid[..]);
        let mask = Mask { causal: c.causal, q_offset: 0, key_valid };
        let full = dilated::attention(&q, &k, &v, c.shape(), mask, None, &p, &c.flash).unwrap();
        let n_q = tail.min(c.n_k);
        let lo = c.n_k - n_q;
        let q_dec: Vec<f32> = (0..c.heads)
            .flat_map(|h| q[(h * c.n_k + lo) * c.d..][..n_q * c.d].iter().copied())
            .collect();
        let shape = Shape { n_q, ..c.shape() };
        let mask = Mask { q_offset: lo, ..mask };
        let fast = dilated::attention(&q_dec, &k, &v, shape, mask, None, &p, &c.flash).unwrap();
        let slow = dilated::oracle(&q_dec, &k, &v, shape, mask, None, &p).unwrap();
        let want = rows(&full, c.heads, c.n_k, c.d, lo, n_q);
        assert_close(&fast, &want, 1e-6, 1e-9, "decode vs prefill");
        assert_close(&slow, &want, OUT_TOL, LSE_TOL, "oracle decode vs prefill");
    }
}

#[test]
fn single_full_pair_equals_dense_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    for (n, w) in [(1, 1), (37, 37), (37, 64), (130, 130)] {
        for causal in [false, true] {
            let shape = Shape {
                heads: 4,
                kv_heads: 2,
                n_q: n,
                n_k: n,
                d: 16,
            };
            let q = data(shape.q_len(), &mut rng);
            let k = data(shape.kv_len(), &mut rng);
            let v = data(shape.kv_len(), &mut rng);
            let valid: Vec<bool> = (0..n).map(|j| j % 7 != 3).collect();
            let mask = Mask {
                causal,
                q_offset: 0,
                key_valid: Some(&valid),
            };
            let p = DilatedParams::new(&[w], &[1]).unwrap();
            let dense = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
            let oracle = dilated::oracle(&q, &k, &v, shape, mask, None, &p).unwrap();
            let fast =
                dilated::attention(&q, &k, &v, shape, mask, None, &p, &FlashParams::default())
                    .unwrap();
            let what = format!("n {n}, w {w}, causal {causal}");
            assert_close(&oracle, &dense, 1e-6, 1e-12, &what);
            assert_close(&fast, &dense, OUT_TOL, LSE_TOL, &what);
        }
    }
}

#[test]
fn head_offsets_follow_the_torchscale_rule() {
    // Heads split into r contiguous groups of ⌈heads/r⌉, group j uses offset j.
    let offs = |heads: usize, r: usize| {
        (0..heads)
            .map(|h| head_offset(h, heads, r))
            .collect::<Vec<_>>()
    };
    assert_eq!(offs(4, 1), [0, 0, 0, 0]);
    assert_eq!(offs(4, 2), [0, 0, 1, 1]);
    assert_eq!(offs(3, 2), [0, 0, 1]);
    assert_eq!(offs(8, 4), [0, 0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(offs(6, 4), [0, 0, 1, 1, 2, 2]);
    assert_eq!(offs(2, 4), [0, 1]);

    // A single pair (w, r) covers, for head h, exactly the rows with (p mod w) mod r = o_h.
    let (heads, n, w, r) = (3, 23, 8, 3);
    let shape = Shape::self_attention(heads, n, 4);
    let mut rng = StdRng::seed_from_u64(3);
    let q = data(shape.q_len(), &mut rng);
    let k = data(shape.kv_len(), &mut rng);
    let v = data(shape.kv_len(), &mut rng);
    let p = DilatedParams::new(&[w], &[r]).unwrap();
    let o = dilated::attention(
        &q,
        &k,
        &v,
        shape,
        Mask::causal(0),
        None,
        &p,
        &FlashParams::default(),
    )
    .unwrap();
    for h in 0..heads {
        for i in 0..n {
            let covered = (i % w) % r == head_offset(h, heads, r);
            assert_eq!(o.lse[h * n + i].is_finite(), covered, "head {h} row {i}");
            let zero = o.out[(h * n + i) * 4..][..4]
                .iter()
                .all(|x| x.to_bits() == 0);
            assert_eq!(zero, !covered, "head {h} row {i}");
        }
    }
}

#[test]
fn duplicated_pair_gives_the_same_output_and_lse_plus_ln2() {
    let shape = Shape::self_attention(2, 50, 8);
    let mut rng = StdRng::seed_from_u64(11);
    let q = data(shape.q_len(), &mut rng);
    let k = data(shape.kv_len(), &mut rng);
    let v = data(shape.kv_len(), &mut rng);
    let fl = FlashParams::default();
    let one = DilatedParams::new(&[16], &[2]).unwrap();
    let two = DilatedParams::new(&[16, 16], &[2, 2]).unwrap();
    let a = dilated::attention(&q, &k, &v, shape, Mask::causal(0), None, &one, &fl).unwrap();
    let b = dilated::attention(&q, &k, &v, shape, Mask::causal(0), None, &two, &fl).unwrap();
    let shifted = Output {
        out: a.out.clone(),
        lse: a.lse.iter().map(|l| l + 2f64.ln()).collect(),
    };
    assert_close(&b, &shifted, 1e-6, 1e-9, "duplicated pair");
}

#[test]
fn block_boundaries_and_geometric_configs_match_oracle() {
    // n around multiples of the segment lengths, LongNet-style geometric pairs.
    let p = DilatedParams::geometric(8, 1, 2, 3).unwrap();
    assert_eq!(p.pairs, [(8, 1), (16, 2), (32, 4)]);
    let mut rng = StdRng::seed_from_u64(5);
    for n in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 65] {
        for causal in [false, true] {
            let shape = Shape {
                heads: 4,
                kv_heads: 2,
                n_q: n,
                n_k: n,
                d: 8,
            };
            let q = data(shape.q_len(), &mut rng);
            let k = data(shape.kv_len(), &mut rng);
            let v = data(shape.kv_len(), &mut rng);
            let mask = Mask {
                causal,
                ..Mask::NONE
            };
            let fl = FlashParams {
                block_q: 3,
                block_k: 5,
                parallel: false,
            };
            let fast = dilated::attention(&q, &k, &v, shape, mask, None, &p, &fl).unwrap();
            let slow = dilated::oracle(&q, &k, &v, shape, mask, None, &p).unwrap();
            assert_close(
                &fast,
                &slow,
                OUT_TOL,
                LSE_TOL,
                &format!("n {n} causal {causal}"),
            );
            // r = 1 in the first pair covers every row.
            assert!(fast.lse.iter().all(|l| l.is_finite()));
        }
    }
}

#[test]
fn fully_masked_rows_are_zero() {
    // All keys of the first segment padded: with one pair (4, 1) its rows see nothing.
    let shape = Shape::self_attention(1, 10, 2);
    let valid: Vec<bool> = (0..10).map(|j| j >= 4).collect();
    let mask = Mask {
        causal: false,
        q_offset: 0,
        key_valid: Some(&valid),
    };
    let p = DilatedParams::new(&[4], &[1]).unwrap();
    let x = vec![0.5f32; 20];
    let o = dilated::attention(&x, &x, &x, shape, mask, None, &p, &FlashParams::default()).unwrap();
    for i in 0..10 {
        assert_eq!(o.lse[i].is_finite(), i >= 4, "row {i}");
    }
    assert!(o.out[..8].iter().all(|x| x.to_bits() == 0));
}

#[test]
fn parallel_equals_sequential_bit_for_bit() {
    let shape = Shape {
        heads: 4,
        kv_heads: 1,
        n_q: 300,
        n_k: 300,
        d: 32,
    };
    let mut rng = StdRng::seed_from_u64(9);
    let q = data(shape.q_len(), &mut rng);
    let k = data(shape.kv_len(), &mut rng);
    let v = data(shape.kv_len(), &mut rng);
    let p = DilatedParams::new(&[32, 64, 128], &[1, 2, 4]).unwrap();
    let run = |parallel| {
        let fl = FlashParams {
            parallel,
            ..FlashParams::default()
        };
        dilated::attention(&q, &k, &v, shape, Mask::causal(0), None, &p, &fl).unwrap()
    };
    let (a, b) = (run(false), run(true));
    assert!(
        a.out
            .iter()
            .zip(&b.out)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!(
        a.lse
            .iter()
            .zip(&b.lse)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
}

#[test]
fn bad_params_are_errors() {
    assert!(DilatedParams::new(&[], &[]).is_err());
    assert!(DilatedParams::new(&[4, 8], &[1]).is_err());
    assert!(DilatedParams::new(&[0], &[1]).is_err());
    assert!(DilatedParams::new(&[4], &[0]).is_err());
    assert!(DilatedParams::new(&[4], &[5]).is_err());
    assert!(DilatedParams::new(&[dilated::MAX_SEGMENT + 1], &[1]).is_err());
    assert!(
        DilatedParams::new(&[4; dilated::MAX_PAIRS + 1], &[1; dilated::MAX_PAIRS + 1]).is_err()
    );
    assert!(DilatedParams::geometric(8, 1, 0, 3).is_err());
    assert!(DilatedParams::geometric(8, 1, 2, 0).is_err());
    assert!(DilatedParams::geometric(8, 1, usize::MAX, 3).is_err());
    assert!(DilatedParams::geometric(4, 8, 2, 2).is_err());
    assert!(DilatedParams::new(&[4, 8], &[4, 8]).is_ok());

    let shape = Shape::self_attention(1, 4, 2);
    let x = vec![0.0f32; 8];
    let fl = FlashParams::default();
    let bad = DilatedParams {
        pairs: vec![(4, 0)],
    };
    assert!(dilated::attention(&x, &x, &x, shape, Mask::NONE, None, &bad, &fl).is_err());
    assert!(dilated::oracle(&x, &x, &x, shape, Mask::NONE, None, &bad).is_err());
    let ok = DilatedParams::new(&[4], &[1]).unwrap();
    assert!(dilated::attention(&x[..6], &x, &x, shape, Mask::NONE, None, &ok, &fl).is_err());
    let zero_block = FlashParams { block_q: 0, ..fl };
    assert!(dilated::attention(&x, &x, &x, shape, Mask::NONE, None, &ok, &zero_block).is_err());
    let short = [true; 3];
    let m = Mask {
        key_valid: Some(&short),
        ..Mask::NONE
    };
    assert!(dilated::attention(&x, &x, &x, shape, m, None, &ok, &fl).is_err());
}
