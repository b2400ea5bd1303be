//! Tests of `attention::infini`: the fast path against the `f64` token-by-token reference,
//! decoding, streaming in random chunks, the first-segment convention, the gate limits,
//! memory retrieval (Linear against Delta) and parameter checks.

use attention::infini::{self, InfiniParams, InfiniStream, MemoryUpdate};
use attention::{Mask, Output, Shape, reference};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

/// Fast (`f32` memory, `f32` flash local attention) against the `f64` reference, on
/// outputs: values are in `[−1, 1]`, so this is relative to `max |v|`. 6000 random cases of
/// the properties below (up to 40 segments of updates) stayed under `1e-6`; 5× margin.
const OUT_TOL: f32 = 5e-6;
/// Local log-sum-exps, absolute (nats); same measurement and margin.
const LSE_TOL: f64 = 5e-6;
/// Two `f32` computations of the same rows by different chunkings (stream against
/// stateless, decode against prefill). They were bit-identical in the same 6000 cases; the
/// tolerance only keeps the test independent of the kernels' internal blocking.
const SAME_TOL: f32 = 1e-6;

fn data(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Largest `|got − want|`, with its index.
fn worst(got: &[f32], want: &[f32]) -> (f32, usize) {
    assert_eq!(got.len(), want.len(), "lengths");
    let mut w = (0.0f32, 0);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let e = (a - b).abs();
        if e > w.0 || e.is_nan() {
            w = (e, i);
        }
    }
    w
}

fn assert_out_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let (e, i) = worst(got, want);
    assert!(
        e <= tol,
        "{what}: out[{i}] = {} vs {} (error {e:e} > {tol:e})",
        got[i],
        want[i]
    );
}

fn assert_lse_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        if a.is_infinite() || b.is_infinite() {
            assert!(
                a.is_infinite() && b.is_infinite(),
                "{what}: lse[{i}] = {a} vs {b}"
            );
        } else {
            assert!((a - b).abs() <= tol, "{what}: lse[{i}] = {a} vs {b}");
        }
    }
}

/// Rows `lo..lo + n` of every head of a `[heads, n_q, d]` array.
fn rows(x: &[f32], heads: usize, n_q: usize, d: usize, lo: usize, n: usize) -> Vec<f32> {
    (0..heads)
        .flat_map(|h| x[(h * n_q + lo) * d..][..n * d].iter().copied())
        .collect()
}

#[derive(Clone, Debug)]
struct Case {
    heads: usize,
    kv_heads: usize,
    n: usize,
    d: usize,
    segment: usize,
    update: MemoryUpdate,
    beta: Vec<f32>,
    padded: bool,
    seed: u64,
}

impl Case {
    fn shape(&self) -> Shape {
        Shape {
            heads: self.heads,
            kv_heads: self.kv_heads,
            n_q: self.n,
            n_k: self.n,
            d: self.d,
        }
    }

    fn params(&self) -> InfiniParams {
        InfiniParams {
            segment: self.segment,
            update: self.update,
            beta: self.beta.clone(),
        }
    }

    fn inputs(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let s = self.shape();
        let q = data(s.q_len(), &mut rng);
        let k = data(s.kv_len(), &mut rng);
        let v = data(s.kv_len(), &mut rng);
        let valid = (0..self.n)
            .map(|_| !self.padded || rng.random_range(0..4) > 0)
            .collect();
        (q, k, v, valid)
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=3, 1usize..=3),
        1usize..=40,
        1usize..=12,
        1usize..=9,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_flat_map(|((kv, g), n, d, segment, delta, gated, padded, seed)| {
            let heads = kv * g;
            let beta = if gated {
                prop::collection::vec(-3.0f32..3.0, heads).boxed()
            } else {
                Just(Vec::new()).boxed()
            };
            (beta, Just((kv, heads, n, d, segment, delta, padded, seed)))
        })
        .prop_map(
            |(beta, (kv_heads, heads, n, d, segment, delta, padded, seed))| Case {
                heads,
                kv_heads,
                n,
                d,
                segment,
                update: if delta {
                    MemoryUpdate::Delta
                } else {
                    MemoryUpdate::Linear
                },
                beta,
                padded,
                seed,
            },
        )
}

/// The query rows `lo..lo + n_q` of a case's `Q` with the matching shape and mask.
fn decode_inputs(c: &Case, q: &[f32], lo: usize, n_q: usize) -> (Vec<f32>, Shape) {
    (
        rows(q, c.heads, c.n, c.d, lo, n_q),
        Shape { n_q, ..c.shape() },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Fast against reference on the full prefill and on a decode window: GQA, segments
    /// not dividing `n`, both update rules, random gates, padding.
    #[test]
    fn infini_matches_reference(c in case(), window in (0usize..40, 1usize..=8)) {
        let (q, k, v, valid) = c.inputs();
        let key_valid = c.padded.then_some(&valid[..]);
        let p = c.params();
        let mask = Mask { causal: true, q_offset: 0, key_valid };
        let fast = infini::attention(&q, &k, &v, c.shape(), mask, None, &p).unwrap();
        let slow = infini::reference(&q, &k, &v, c.shape(), mask, None, &p).unwrap();
        assert_out_close(&fast.out, &slow.out, OUT_TOL, &format!("{c:?}"));
        assert_lse_close(&fast.lse, &slow.lse, LSE_TOL, "lse");

        // Decode window [lo, lo + n_q): the matching rows of the prefill.
        let n_q = window.1.min(c.n);
        let lo = window.0 % (c.n - n_q + 1);
        let (qd, shape) = decode_inputs(&c, &q, lo, n_q);
        let mask = Mask { q_offset: lo, ..mask };
        let dec = infini::attention(&qd, &k, &v, shape, mask, None, &p).unwrap();
        let dec_ref = infini::reference(&qd, &k, &v, shape, mask, None, &p).unwrap();
        let want = rows(&fast.out, c.heads, c.n, c.d, lo, n_q);
        assert_out_close(&dec.out, &want, SAME_TOL, "decode vs prefill");
        let want_ref = rows(&slow.out, c.heads, c.n, c.d, lo, n_q);
        assert_out_close(&dec_ref.out, &want_ref, 0.0, "reference decode");
    }

    /// Pushing a sequence in random chunks (with empty pushes between) equals one
    /// stateless call over the whole sequence.
    #[test]
    fn stream_in_random_chunks_equals_stateless(
        c in case(),
        chunks in prop::collection::vec(1usize..=11, 1..=40),
    ) {
        let c = Case { padded: false, ..c };
        let (q, k, v, _) = c.inputs();
        let p = c.params();
        let whole = infini::attention(&q, &k, &v, c.shape(), Mask::causal(0), None, &p).unwrap();
        let mut s = InfiniStream::new(c.heads, c.kv_heads, c.d, None, p).unwrap();
        let bytes = s.state_bytes();
        let mut got = vec![0.0f32; whole.out.len()];
        let (mut t, mut i) = (0, 0);
        while t < c.n {
            let len = chunks[i % chunks.len()].min(c.n - t);
            i += 1;
            let o = s
                .push(
                    &rows(&q, c.heads, c.n, c.d, t, len),
                    &rows(&k, c.kv_heads, c.n, c.d, t, len),
                    &rows(&v, c.kv_heads, c.n, c.d, t, len),
                    len,
                )
                .unwrap();
            for h in 0..c.heads {
                got[(h * c.n + t) * c.d..][..len * c.d]
                    .copy_from_slice(&o[h * len * c.d..][..len * c.d]);
            }
            t += len;
            if i % 2 == 0 {
                prop_assert!(s.push(&[], &[], &[], 0).unwrap().is_empty());
            }
        }
        prop_assert_eq!(s.tokens_seen(), c.n as u64);
        prop_assert_eq!(s.state_bytes(), bytes);
        assert_out_close(&got, &whole.out, SAME_TOL, &format!("stream {c:?}"));
    }
}

/// Sequence with one query head; returns (q, k, v).
fn seq(n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        data(n * d, &mut rng),
        data(n * d, &mut rng),
        data(n * d, &mut rng),
    )
}

/// Plain causal attention restricted to each query's own segment (the `A_dot` term).
fn local_only(q: &[f32], k: &[f32], v: &[f32], shape: Shape, seg: usize) -> Output {
    reference::attention_with(q, k, v, shape, None, &|_, i, j| {
        j <= i && j / seg == i / seg
    })
    .unwrap()
}

#[test]
fn first_segment_convention_memory_term_is_zero() {
    // Before any complete segment σ(q)·z = 0 and the retrieved value is taken as 0:
    // segment 0's rows are (1 − sigmoid(β))·A_dot.
    let (n, d, seg) = (7, 5, 7);
    let shape = Shape::self_attention(3, n, d);
    let mut rng = StdRng::seed_from_u64(1);
    let q = data(shape.q_len(), &mut rng);
    let k = data(shape.kv_len(), &mut rng);
    let v = data(shape.kv_len(), &mut rng);
    let local = local_only(&q, &k, &v, shape, seg);
    for update in [MemoryUpdate::Linear, MemoryUpdate::Delta] {
        let beta = vec![0.0, 1.5, f32::INFINITY];
        let p = InfiniParams {
            segment: seg,
            update,
            beta: beta.clone(),
        };
        for o in [
            infini::attention(&q, &k, &v, shape, Mask::causal(0), None, &p).unwrap(),
            infini::reference(&q, &k, &v, shape, Mask::causal(0), None, &p).unwrap(),
        ] {
            for (h, b) in beta.iter().enumerate() {
                let keep = 1.0 - 1.0 / (1.0 + (-b).exp());
                let want: Vec<f32> = local.out[h * n * d..][..n * d]
                    .iter()
                    .map(|x| keep * x)
                    .collect();
                assert_out_close(&o.out[h * n * d..][..n * d], &want, OUT_TOL, "segment 0");
            }
            assert_lse_close(&o.lse, &local.lse, LSE_TOL, "segment 0 lse");
        }
    }
}

#[test]
fn beta_minus_infinity_is_plain_local_attention() {
    let (n, d, seg) = (29, 8, 6);
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: n,
        n_k: n,
        d,
    };
    let mut rng = StdRng::seed_from_u64(2);
    let q = data(shape.q_len(), &mut rng);
    let k = data(shape.kv_len(), &mut rng);
    let v = data(shape.kv_len(), &mut rng);
    let local = local_only(&q, &k, &v, shape, seg);
    for update in [MemoryUpdate::Linear, MemoryUpdate::Delta] {
        let p = InfiniParams {
            segment: seg,
            update,
            beta: vec![f32::NEG_INFINITY; 4],
        };
        let o = infini::attention(&q, &k, &v, shape, Mask::causal(0), None, &p).unwrap();
        assert_out_close(&o.out, &local.out, OUT_TOL, "beta = -inf");
        assert_lse_close(&o.lse, &local.lse, LSE_TOL, "beta = -inf lse");
        // A very negative finite β is the same up to rounding.
        let p = InfiniParams {
            beta: vec![-40.0; 4],
            ..p
        };
        let o = infini::attention(&q, &k, &v, shape, Mask::causal(0), None, &p).unwrap();
        assert_out_close(&o.out, &local.out, OUT_TOL, "beta = -40");
    }
}

#[test]
fn memory_state_matches_hand_computation() {
    // d = 1, segment 1: σ(k) = e^k for k ≤ 0, and the memory after one token is
    // M = σ(k₀)v₀, z = σ(k₀), so the second query retrieves v₀ exactly (any q), and the
    // gate β = +∞ returns it.
    let (k0, v0) = (-0.5f32, 0.75f32);
    let p = InfiniParams {
        segment: 1,
        update: MemoryUpdate::Delta,
        beta: vec![f32::INFINITY],
    };
    let shape = Shape::self_attention(1, 3, 1);
    let o = infini::attention(
        &[0.3, -2.0, 1.0],
        &[k0, 0.2, 0.0],
        &[v0, -1.0, 0.0],
        shape,
        Mask::causal(0),
        None,
        &p,
    )
    .unwrap();
    assert_eq!(o.out[0].abs().to_bits(), 0, "{:?}", o.out);
    assert!((o.out[1] - v0).abs() < 1e-6, "{:?}", o.out);
    // Third query: Delta wrote σ(0.2)·(−1 − v0) on top: M = σ(k0)v0 + σ(k1)(v1 − v0),
    // z = σ(k0) + σ(k1); σ(q)·M/(σ(q)·z) = M/z for d = 1.
    let (s0, s1) = ((k0).exp(), 1.2f32);
    let want = (s0 * v0 + s1 * (-1.0 - v0)) / (s0 + s1);
    assert!((o.out[2] - want).abs() < 1e-6, "{} vs {want}", o.out[2]);
}

/// `d`-dimensional keys whose `σ` images are nearly orthogonal: a random partition of the
/// dimensions into groups of `d / count`, key `a` large (`+3`) on its group and very
/// negative (`−8 ± 1`, `σ ≈ 3e-4`) elsewhere.
fn orthogonalish_keys(count: usize, d: usize, rng: &mut StdRng) -> Vec<Vec<f32>> {
    let mut dims: Vec<usize> = (0..d).collect();
    dims.shuffle(rng);
    let per = d / count;
    (0..count)
        .map(|a| {
            let mut key: Vec<f32> = (0..d).map(|_| rng.random_range(-9.0f32..-7.0)).collect();
            for &c in &dims[a * per..(a + 1) * per] {
                key[c] = 3.0;
            }
            key
        })
        .collect()
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let mb = b.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-30)
}

/// Writes `keys` with fresh random values in each of the first `writes` segments (one key
/// per token, shuffled), then `filler` segments whose keys are `−20` everywhere (`σ ≈ 2e-9`:
/// they barely write), then queries every key with `β = +∞` (memory only). Returns the mean
/// correlation of the recalled values with the latest written ones, and with the latest
/// values of the other keys (chance).
fn recall(update: MemoryUpdate, writes: usize, filler: usize, seed: u64) -> (f64, f64) {
    let (d, count) = (64, 16);
    let seg = count;
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = orthogonalish_keys(count, d, &mut rng);
    let n = seg * (writes + filler + 1);
    let mut q = vec![0.0f32; n * d];
    let mut k = vec![-20.0f32; n * d];
    let mut v = data(n * d, &mut rng);
    let mut latest = vec![vec![0.0f32; d]; count];
    for w in 0..writes {
        let mut order: Vec<usize> = (0..count).collect();
        order.shuffle(&mut rng);
        for (t, &a) in order.iter().enumerate() {
            let pos = w * seg + t;
            k[pos * d..][..d].copy_from_slice(&keys[a]);
            let val = data(d, &mut rng);
            v[pos * d..][..d].copy_from_slice(&val);
            latest[a] = val;
        }
    }
    let q0 = (writes + filler) * seg;
    for (a, key) in keys.iter().enumerate() {
        q[(q0 + a) * d..][..d].copy_from_slice(key);
    }
    let p = InfiniParams {
        segment: seg,
        update,
        beta: vec![f32::INFINITY],
    };
    let shape = Shape::self_attention(1, n, d);
    let o = infini::attention(&q, &k, &v, shape, Mask::causal(0), None, &p).unwrap();
    let got = |a: usize| &o.out[(q0 + a) * d..][..d];
    let hit = (0..count)
        .map(|a| correlation(got(a), &latest[a]))
        .sum::<f64>()
        / count as f64;
    let chance = (0..count)
        .map(|a| correlation(got(a), &latest[(a + 1) % count]))
        .sum::<f64>()
        / count as f64;
    (hit, chance)
}

#[test]
fn memory_recalls_associations_many_segments_later_delta_beats_linear_on_rewrites() {
    // Written once, recalled 12 segments later through the memory alone: both rules return
    // the value.
    let (lin1, lin1_chance) = recall(MemoryUpdate::Linear, 1, 12, 21);
    let (del1, del1_chance) = recall(MemoryUpdate::Delta, 1, 12, 21);
    // Each key rewritten with a new value in each of 2 (then 3) segments. Linear returns the
    // average of the values (correlation ≈ 1/√2, 1/√3 with the latest). Delta subtracts
    // what the memory returns before writing: the second write replaces the first exactly;
    // the third only nearly, because the normalizer z keeps counting every write of the
    // key (retrieval returns v₂/2 at that point, so v₂/2 + v₃ is stored: ≈ 0.89).
    let (lin2, lin2_chance) = recall(MemoryUpdate::Linear, 2, 12, 22);
    let (del2, del2_chance) = recall(MemoryUpdate::Delta, 2, 12, 22);
    let (lin3, lin3_chance) = recall(MemoryUpdate::Linear, 3, 12, 23);
    let (del3, del3_chance) = recall(MemoryUpdate::Delta, 3, 12, 23);
    eprintln!(
        "recall correlation (chance): written once: linear {lin1:.3} ({lin1_chance:.3}), \
         delta {del1:.3} ({del1_chance:.3}); rewritten 2x: linear {lin2:.3} ({lin2_chance:.3}), \
         delta {del2:.3} ({del2_chance:.3}); rewritten 3x: linear {lin3:.3} ({lin3_chance:.3}), \
         delta {del3:.3} ({del3_chance:.3})"
    );
    for (what, hit, chance) in [
        ("linear once", lin1, lin1_chance),
        ("delta once", del1, del1_chance),
        ("linear 2x", lin2, lin2_chance),
        ("delta 2x", del2, del2_chance),
        ("linear 3x", lin3, lin3_chance),
        ("delta 3x", del3, del3_chance),
    ] {
        assert!(chance.abs() < 0.15, "{what}: chance correlation {chance}");
        assert!(hit > chance + 0.4, "{what}: {hit} vs chance {chance}");
    }
    assert!(lin1 > 0.95 && del1 > 0.95, "once: {lin1} {del1}");
    assert!(
        del2 > 0.95 && lin2 < 0.85,
        "2x: delta {del2}, linear {lin2}"
    );
    assert!(del3 > 0.8 && lin3 < 0.7, "3x: delta {del3}, linear {lin3}");
    assert!(del3 > lin3 + 0.2, "3x: delta {del3} vs linear {lin3}");
}

#[test]
fn stream_state_is_constant_and_reset_restarts() {
    let (heads, kv, d, seg) = (4, 2, 8, 5);
    let p = InfiniParams {
        segment: seg,
        update: MemoryUpdate::Delta,
        beta: vec![0.3, -0.2, 1.0, 0.0],
    };
    let mut s = InfiniStream::new(heads, kv, d, None, p.clone()).unwrap();
    assert_eq!(s.state_bytes(), kv * (d * d + d + 2 * seg * d) * 4);
    let bytes = s.state_bytes();
    let mut rng = StdRng::seed_from_u64(4);
    let n = 13;
    let q = data(heads * n * d, &mut rng);
    let k = data(kv * n * d, &mut rng);
    let v = data(kv * n * d, &mut rng);
    let first = s.push(&q, &k, &v, n).unwrap();
    for _ in 0..20 {
        s.push(&q, &k, &v, n).unwrap();
    }
    assert_eq!(s.tokens_seen(), 21 * n as u64);
    assert_eq!(s.state_bytes(), bytes);
    s.reset();
    assert_eq!(s.tokens_seen(), 0);
    let again = s.push(&q, &k, &v, n).unwrap();
    assert!(
        first
            .iter()
            .zip(&again)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert!(s.push(&[], &[], &[], 0).unwrap().is_empty());
    // Bad lengths are errors and leave the stream as it was.
    assert!(s.push(&q[1..], &k, &v, n).is_err());
    assert!(s.push(&q, &k, &v, n + 1).is_err());
    assert_eq!(s.tokens_seen(), n as u64);
}

#[test]
fn bad_params_and_masks_are_errors() {
    assert!(InfiniParams::new(0, MemoryUpdate::Linear).is_err());
    assert!(InfiniParams::new(infini::MAX_SEGMENT + 1, MemoryUpdate::Linear).is_err());
    let p = InfiniParams::new(4, MemoryUpdate::Linear).unwrap();
    let (q, k, v) = seq(6, 2, 0);
    let shape = Shape::self_attention(1, 6, 2);
    let ok = infini::attention(&q, &k, &v, shape, Mask::causal(0), None, &p);
    assert!(ok.is_ok());
    for f in [infini::attention, infini::reference] {
        // Not causal.
        assert!(f(&q, &k, &v, shape, Mask::NONE, None, &p).is_err());
        // Queries past the keys.
        assert!(f(&q, &k, &v, shape, Mask::causal(1), None, &p).is_err());
        // Wrong number of gates, NaN gate.
        let bad = InfiniParams {
            beta: vec![0.0, 0.0],
            ..p.clone()
        };
        assert!(f(&q, &k, &v, shape, Mask::causal(0), None, &bad).is_err());
        let bad = InfiniParams {
            beta: vec![f32::NAN],
            ..p.clone()
        };
        assert!(f(&q, &k, &v, shape, Mask::causal(0), None, &bad).is_err());
        let bad = InfiniParams {
            segment: 0,
            ..p.clone()
        };
        assert!(f(&q, &k, &v, shape, Mask::causal(0), None, &bad).is_err());
        // Shapes.
        assert!(f(&q[1..], &k, &v, shape, Mask::causal(0), None, &p).is_err());
    }
    // One gate logit for every head equals the same logit repeated.
    let shape3 = Shape::self_attention(3, 6, 2);
    let (q3, k3, v3) = seq(18, 2, 1);
    let one = InfiniParams {
        segment: 2,
        update: MemoryUpdate::Delta,
        beta: vec![1.25],
    };
    let three = InfiniParams {
        beta: vec![1.25; 3],
        ..one.clone()
    };
    for f in [infini::attention, infini::reference] {
        let a = f(&q3, &k3, &v3, shape3, Mask::causal(0), None, &one).unwrap();
        let b = f(&q3, &k3, &v3, shape3, Mask::causal(0), None, &three).unwrap();
        assert!(
            a.out
                .iter()
                .zip(&b.out)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
    }
    assert_eq!(InfiniParams::default().segment, infini::DEFAULT_SEGMENT);
    // A d×d memory above the cap, for a stateless call with tiny inputs.
    let huge = Shape::self_attention(1, 0, 1 << 15);
    assert!(infini::attention(&[], &[], &[], huge, Mask::causal(0), None, &p).is_err());
    assert!(InfiniStream::new(1, 1, 1 << 15, None, p.clone()).is_err());
    assert!(InfiniStream::new(3, 2, 4, None, p.clone()).is_err());
    assert!(InfiniStream::new(1, 1, 0, None, p.clone()).is_err());
    assert!(InfiniStream::new(1, 1, 4, Some(f32::NAN), p.clone()).is_err());
    let big = InfiniParams {
        segment: infini::MAX_SEGMENT,
        ..p
    };
    assert!(InfiniStream::new(64, 64, 512, None, big).is_err());
}
