//! Tests of the KV-cache stores: per-precision error bounds, exact cases, indexing over many
//! tokens, mixed-precision agreement with single-precision stores, precision changes, memory
//! accounting, errors, and property tests over random layouts and operation sequences.

use half::f16;
use numerics::testing::rng;
use numerics::testing::strategies::finite_f32;
use proptest::prelude::*;
use rand::RngExt;

use super::*;
use crate::pack;

const ALL: [KvPrecision; 5] = KvPrecision::ALL;

fn layout(n_heads: usize, head_dim: usize) -> KvLayout {
    KvLayout::new(n_heads, head_dim).expect("valid test layout")
}

/// A token of `len` values whose heads have varied offsets and spreads.
fn token(r: &mut rng::StdRng, layout: KvLayout) -> Vec<f32> {
    let mut x = rng::normal_vec(r, layout.token_len());
    for head in x.chunks_exact_mut(layout.head_dim()) {
        let offset: f32 = r.random_range(-10.0..10.0);
        let spread = [1e-3f32, 1.0, 100.0][r.random_range(0..3)];
        for v in head {
            *v = offset + spread * *v;
        }
    }
    x
}

/// The largest error the module documentation allows for `x` in the vector `src` stored at
/// precision `p` (F16 inside its range only).
fn error_bound(p: KvPrecision, src: &[f32], x: f32) -> f64 {
    let x = f64::from(x);
    let lo = src.iter().fold(f64::INFINITY, |a, &v| a.min(f64::from(v)));
    let hi = src
        .iter()
        .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
    let amax = lo.abs().max(hi.abs());
    // One least subnormal: two distinct f32 values differ by at least this much.
    let tiny = 2f64.powi(-149);
    match p {
        KvPrecision::F32 => 0.0,
        // Half an f16 ulp: 2^-11 relative in the normal range, 2^-25 in the subnormal one.
        KvPrecision::F16 => 2f64.powi(-11) * x.abs() + 2f64.powi(-25),
        // Half an E4M3 ulp (2^-4 relative), the subnormal step times the scale, and a few
        // f32 roundings.
        KvPrecision::Fp8E4M3 => {
            2f64.powi(-4) * x.abs() * (1.0 + 2f64.powi(-18)) + amax / 448.0 * 2f64.powi(-9) + tiny
        }
        // scale / 2 with scale = (max - min) / L, plus the f32 roundings of the scale and of
        // the decode `min + scale · code`.
        KvPrecision::Int8 | KvPrecision::Int4 => {
            let levels = if p == KvPrecision::Int8 { 255.0 } else { 15.0 };
            (hi - lo) / levels / 2.0 + 2f64.powi(-23) * (lo.abs() + hi.abs()) + tiny
        }
    }
}

/// Panics unless `got` is within the documented error of `src` at precision `p`.
#[track_caller]
fn check_vector(p: KvPrecision, src: &[f32], got: &[f32]) {
    assert_eq!(src.len(), got.len());
    for (i, (&x, &y)) in src.iter().zip(got).enumerate() {
        assert!(y.is_finite(), "{p}: element {i}: {x} decoded to {y}");
        match p {
            KvPrecision::F32 => assert_eq!(x.to_bits(), y.to_bits(), "f32 element {i}"),
            KvPrecision::F16 if x.abs() > 65504.0 => {
                assert_eq!(
                    y.to_bits(),
                    65504f32.copysign(x).to_bits(),
                    "f16 saturation {i}"
                );
            }
            _ => {
                if p == KvPrecision::F16 {
                    assert_eq!(y.to_bits(), f16::from_f32(x).to_f32().to_bits(), "f16 {i}");
                }
                let err = (f64::from(y) - f64::from(x)).abs();
                let bound = error_bound(p, src, x);
                assert!(
                    err <= bound,
                    "{p}: element {i} of {src:?}: {x} decoded to {y}, error {err:e} > bound {bound:e}"
                );
            }
        }
    }
}

/// Reads every (token, head) of K and V of `store` and checks them against `ks`, `vs`.
fn check_store(store: &KvStore, ks: &[Vec<f32>], vs: &[Vec<f32>]) {
    let l = store.layout();
    let mut out = vec![0.0; l.head_dim()];
    for (t, (k, v)) in ks.iter().zip(vs).enumerate() {
        for h in 0..l.n_heads() {
            let head = h * l.head_dim()..(h + 1) * l.head_dim();
            store.read_k_into(t, h, &mut out).unwrap();
            check_vector(store.precision(), &k[head.clone()], &out);
            store.read_v_into(t, h, &mut out).unwrap();
            check_vector(store.precision(), &v[head], &out);
        }
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Every K and V read of a store, token by token then head by head.
fn all_reads(
    len: usize,
    layout: KvLayout,
    read: impl Fn(Part, usize, usize, &mut [f32]) -> Result<()>,
) -> Vec<u32> {
    let mut all = Vec::new();
    let mut out = vec![0.0; layout.head_dim()];
    for t in 0..len {
        for part in [Part::K, Part::V] {
            for h in 0..layout.n_heads() {
                read(part, t, h, &mut out).unwrap();
                all.extend(bits(&out));
            }
        }
    }
    all
}

fn kv_reads(s: &KvStore) -> Vec<u32> {
    all_reads(s.len(), s.layout(), |part, t, h, out| match part {
        Part::K => s.read_k_into(t, h, out),
        Part::V => s.read_v_into(t, h, out),
    })
}

fn mixed_reads(s: &MixedKvStore) -> Vec<u32> {
    all_reads(s.len(), s.layout(), |part, t, h, out| match part {
        Part::K => s.read_k_into(t, h, out),
        Part::V => s.read_v_into(t, h, out),
    })
}

/// What a one-token store at `p` reads for (`k`, `v`), K heads then V heads.
fn single_token_reads(layout: KvLayout, p: KvPrecision, k: &[f32], v: &[f32]) -> Vec<u32> {
    let mut s = KvStore::new(layout, p);
    s.append(k, v).unwrap();
    kv_reads(&s)
}

/// The dequantized (k, v) of a one-token store at `p`.
fn dequantized(layout: KvLayout, p: KvPrecision, k: &[f32], v: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut s = KvStore::new(layout, p);
    s.append(k, v).unwrap();
    let hd = layout.head_dim();
    let (mut dk, mut dv) = (vec![0.0; layout.token_len()], vec![0.0; layout.token_len()]);
    for h in 0..layout.n_heads() {
        s.read_k_into(0, h, &mut dk[h * hd..(h + 1) * hd]).unwrap();
        s.read_v_into(0, h, &mut dv[h * hd..(h + 1) * hd]).unwrap();
    }
    (dk, dv)
}

#[test]
fn layout_validation() {
    let l = layout(4, 128);
    assert_eq!((l.n_heads(), l.head_dim(), l.token_len()), (4, 128, 512));
    for (n, d, name) in [
        (0, 8, "n_heads"),
        (8, 0, "head_dim"),
        (usize::MAX, 2, "n_heads * head_dim"),
        (MAX_TOKEN_ELEMENTS + 1, 1, "n_heads * head_dim"),
        (1 << 12, (1 << 12) + 1, "n_heads * head_dim"),
    ] {
        match KvLayout::new(n, d) {
            Err(Error::InvalidParameter { op, name: got, .. }) => {
                assert_eq!((op, got), ("KvLayout::new", name), "({n}, {d})");
            }
            other => panic!("({n}, {d}): expected InvalidParameter, got {other:?}"),
        }
    }
    assert!(KvLayout::new(1 << 12, 1 << 12).is_ok()); // exactly the cap
    assert!(KvLayout::new(1, MAX_TOKEN_ELEMENTS).is_ok());
    assert!(KvLayout::new(3, 5).is_ok()); // odd head_dim works even for int4
}

#[test]
fn precision_sizes() {
    let expected_bytes = [512, 256, 132, 136, 72];
    let expected_bits = [32.0, 16.0, 8.25, 8.5, 4.5];
    for ((p, bytes), bpe) in ALL.iter().zip(expected_bytes).zip(expected_bits) {
        assert_eq!(p.vector_bytes(128), bytes, "{p}");
        assert_eq!(p.bits_per_element(128).to_bits(), f64::to_bits(bpe), "{p}");
        assert_eq!(
            KvStore::new(layout(2, 128), *p)
                .bits_per_element()
                .to_bits(),
            f64::to_bits(bpe)
        );
        assert_eq!(p.token_bytes(layout(3, 128)), 2 * 3 * bytes);
    }
    assert_eq!(
        ALL.map(|p| p.element_bits()),
        [32, 16, 8, 8, 4],
        "element bits"
    );
    assert_eq!(KvPrecision::Int4.payload_bytes(5), 3); // padded to whole bytes
    assert_eq!(KvPrecision::Int4.vector_bytes(1), 1 + 8);
    assert_eq!(
        ALL.map(|p| p.to_string()),
        ["f32", "f16", "fp8-e4m3", "int8", "int4"]
    );
    for (i, p) in ALL.iter().enumerate() {
        assert_eq!(p.index(), i);
    }
}

#[test]
fn round_trip_within_bounds() {
    let mut r = rng::seeded(0x6b76);
    for (n, d) in [
        (1, 1),
        (1, 2),
        (2, 3),
        (3, 7),
        (2, 8),
        (1, 64),
        (2, 65),
        (4, 128),
    ] {
        let l = layout(n, d);
        for p in ALL {
            let mut s = KvStore::new(l, p);
            let (mut ks, mut vs) = (Vec::new(), Vec::new());
            for _ in 0..12 {
                let (k, v) = (token(&mut r, l), token(&mut r, l));
                s.append(&k, &v).unwrap();
                ks.push(k);
                vs.push(v);
            }
            check_store(&s, &ks, &vs);
        }
    }
}

/// The error bounds are attained to within a factor of two on uniform data: the checks
/// are not vacuous.
#[test]
fn round_trip_bounds_are_tight() {
    let l = layout(1, 256);
    let mut r = rng::seeded(9);
    let x = rng::uniform_vec(&mut r, 256, -1.0, 3.0);
    for (p, expect) in [
        (KvPrecision::Int8, 0.5 * 4.0 / 255.0),
        (KvPrecision::Int4, 0.5 * 4.0 / 15.0),
    ] {
        let (got, _) = dequantized(l, p, &x, &x);
        let max_err = x
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            f64::from(max_err) > 0.5 * expect && f64::from(max_err) <= 1.01 * expect,
            "{p}: max error {max_err} vs scale/2 ≈ {expect}"
        );
    }
    let (got, _) = dequantized(l, KvPrecision::Fp8E4M3, &x, &x);
    let max_rel = x
        .iter()
        .zip(&got)
        .filter(|(a, _)| a.abs() > 0.1)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_rel > 2f32.powi(-6) && max_rel <= 2f32.powi(-4) * 1.001,
        "fp8: {max_rel}"
    );
}

#[test]
fn constant_and_zero_vectors_are_exact() {
    let l = layout(2, 5);
    let constants = [
        0.0f32,
        -0.0,
        1.0,
        -3.7,
        0.1,
        12345.678,
        1e-40, // subnormal
        -f32::from_bits(1),
        f32::MIN_POSITIVE,
        f32::MAX,
        -f32::MAX,
    ];
    for p in [
        KvPrecision::F32,
        KvPrecision::Fp8E4M3,
        KvPrecision::Int8,
        KvPrecision::Int4,
    ] {
        for &c in &constants {
            let k = vec![c; l.token_len()];
            let mut v = k.clone();
            v[5..].fill(-c); // head 1 of V holds the negated constant
            let (dk, dv) = dequantized(l, p, &k, &v);
            assert_eq!(bits(&dk), bits(&k), "{p}: constant {c:e} (k)");
            assert_eq!(bits(&dv), bits(&v), "{p}: constant {c:e} (v)");
        }
    }
    // F16 is exact on constants it can represent.
    for c in [
        0.0f32,
        -0.0,
        1.0,
        -3.75,
        65504.0,
        -65504.0,
        2f32.powi(-24),
        6.1035156e-5,
    ] {
        let k = vec![c; l.token_len()];
        let (dk, _) = dequantized(l, KvPrecision::F16, &k, &k);
        assert_eq!(bits(&dk), bits(&k), "f16: constant {c:e}");
    }
}

/// Each end of an int vector's range decodes to itself, up to f32 rounding.
#[test]
fn int_range_ends_are_kept() {
    let l = layout(1, 9);
    let x = [0.3f32, -2.0, 1.0, 7.5, 0.0, 3.3, 7.0, -1.9, 2.2];
    for p in [KvPrecision::Int8, KvPrecision::Int4] {
        let (d, _) = dequantized(l, p, &x, &x);
        assert_eq!(d[1].to_bits(), (-2.0f32).to_bits(), "{p}: min");
        // The scale is rounded up, so the top code may overshoot the maximum by up to
        // `L` roundings of the scale (2^-23 of the range) plus the decode's rounding: a few
        // ulps of 7.5 (2^-21).
        assert!(
            (d[3] - 7.5).abs() <= 4.0 * 2f32.powi(-21),
            "{p}: max {:e}",
            d[3]
        );
    }
}

#[test]
fn extreme_values_stay_finite_and_bounded() {
    let l = layout(1, 6);
    let vectors: [[f32; 6]; 7] = [
        [-f32::MAX, f32::MAX, 0.0, 1e30, -1e30, 1.0],
        [f32::MAX, f32::MAX * 0.5, f32::MAX * 0.999, 3e38, 1e38, 2e38],
        [-f32::MAX, -1.0, -3e38, -2e38, -f32::MAX, -1e-30],
        [
            0.0,
            f32::from_bits(3),
            f32::from_bits(1),
            0.0,
            -f32::from_bits(2),
            0.0,
        ],
        [1000.0, 1000.0001, 1000.00006, 1000.0, 1000.0001, 1000.00006],
        // Ranges of a few subnormal steps: the int scale must be rounded up, or the top of
        // the range lies several steps past the last code (found by proptest).
        [
            9.470449e-39,
            9.444186e-39,
            9.45e-39,
            9.46e-39,
            9.444186e-39,
            9.470449e-39,
        ],
        [
            0.0,
            f32::from_bits(22),
            f32::from_bits(5),
            f32::from_bits(11),
            0.0,
            f32::from_bits(21),
        ],
    ];
    for x in &vectors {
        for p in ALL {
            let (d, _) = dequantized(l, p, x, x);
            check_vector(p, x, &d);
        }
    }
    // F16 saturates instead of overflowing.
    let x = [1e6f32, -1e6, 70000.0, 65519.0, -65520.0, 1.0];
    let (d, _) = dequantized(l, KvPrecision::F16, &x, &x);
    assert_eq!(
        bits(&d),
        bits(&[65504.0, -65504.0, 65504.0, 65504.0, -65504.0, 1.0])
    );
}

#[test]
fn int4_codes_follow_the_pack_layout() {
    let l = layout(2, 5);
    // Head 0 spans [0, 15], so scale 1 and the codes are the values; head 1 is constant.
    let k = [0.0, 15.0, 3.0, 7.0, 15.0, 2.0, 2.0, 2.0, 2.0, 2.0];
    let mut s = KvStore::new(l, KvPrecision::Int4);
    s.append(&k, &k).unwrap();
    let codes = s.k.int4_codes().unwrap();
    assert_eq!(codes, [0xF0, 0x73, 0x0F, 0x00, 0x00, 0x00]);
    for (i, c) in [0u8, 15, 3, 7, 15].into_iter().enumerate() {
        assert_eq!(pack::get(&codes[..3], 4, i), c);
    }
    assert_eq!(bits(s.k.params()), bits(&[1.0, 0.0, 0.0, 2.0]));
    let mut out = [0.0f32; 5];
    s.read_k_into(0, 0, &mut out).unwrap();
    assert_eq!(bits(&out), bits(&[0.0, 15.0, 3.0, 7.0, 15.0]));
}

#[test]
fn many_tokens_read_back() {
    let l = layout(3, 5);
    let mut r = rng::seeded(42);
    let tokens: Vec<(Vec<f32>, Vec<f32>)> = (0..700)
        .map(|_| (token(&mut r, l), token(&mut r, l)))
        .collect();
    for p in ALL {
        let mut s = KvStore::with_capacity(l, p, 16); // grows past its capacity
        for (k, v) in &tokens {
            s.append(k, v).unwrap();
        }
        assert_eq!(s.len(), tokens.len());
        let all = kv_reads(&s);
        let per_token = 2 * l.token_len();
        for (t, (k, v)) in tokens.iter().enumerate() {
            assert_eq!(
                all[t * per_token..(t + 1) * per_token],
                single_token_reads(l, p, k, v),
                "{p}: token {t}"
            );
        }
        // Range reads agree with single reads, including empty and full ranges.
        for (a, b) in [(0, 0), (0, 1), (5, 5), (17, 300), (0, 700), (699, 700)] {
            for h in 0..l.n_heads() {
                let kr = s.read_k_range(a..b, h).unwrap();
                let vr = s.read_v_range(a..b, h).unwrap();
                assert_eq!(kr.len(), (b - a) * l.head_dim());
                for (i, t) in (a..b).enumerate() {
                    let base = t * per_token;
                    let hd = l.head_dim();
                    let k_at = base + h * hd;
                    let v_at = base + l.token_len() + h * hd;
                    assert_eq!(bits(&kr[i * hd..(i + 1) * hd]), all[k_at..k_at + hd]);
                    assert_eq!(bits(&vr[i * hd..(i + 1) * hd]), all[v_at..v_at + hd]);
                }
            }
        }
        // Truncation then appending again.
        s.truncate(300);
        assert_eq!(s.len(), 300);
        s.truncate(400); // no-op
        assert_eq!(s.len(), 300);
        let (k, v) = &tokens[0];
        s.append(k, v).unwrap();
        assert_eq!(
            kv_reads(&s)[300 * per_token..],
            single_token_reads(l, p, k, v)
        );
        assert_eq!(s.storage_bytes(), 301 * p.token_bytes(l));
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.storage_bytes(), 0);
    }
}

#[test]
fn storage_bytes_match_the_formula() {
    let l = layout(4, 128);
    let mut r = rng::seeded(3);
    // 10 tokens: 10 · 2 (K, V) · 4 heads · bytes per vector.
    let expected = [
        10 * 2 * 4 * 512,
        10 * 2 * 4 * 256,
        10 * 2 * 4 * (128 + 4),
        10 * 2 * 4 * (128 + 8),
        10 * 2 * 4 * (64 + 8),
    ];
    assert_eq!(expected, [40960, 20480, 10560, 10880, 5760]);
    for (p, bytes) in ALL.into_iter().zip(expected) {
        let mut s = KvStore::new(l, p);
        assert_eq!(s.storage_bytes(), 0);
        for _ in 0..10 {
            s.append(&token(&mut r, l), &token(&mut r, l)).unwrap();
        }
        assert_eq!(s.storage_bytes(), bytes, "{p}");
    }
    // Odd head_dim: int4 vectors pad to whole bytes.
    let mut s = KvStore::new(layout(3, 7), KvPrecision::Int4);
    s.append(&[0.5; 21], &[0.5; 21]).unwrap();
    assert_eq!(s.storage_bytes(), 2 * 3 * (4 + 8));
    // Mixed: one token per precision, plus two more int4.
    let mut m = MixedKvStore::new(l);
    for p in ALL
        .into_iter()
        .chain([KvPrecision::Int4, KvPrecision::Int4])
    {
        m.append_with(&token(&mut r, l), &token(&mut r, l), p)
            .unwrap();
    }
    let per_token = expected.map(|b| b / 10);
    assert_eq!(
        m.storage_bytes(),
        per_token.iter().sum::<usize>() + 2 * per_token[4]
    );
    assert_eq!(m.allocated_bytes(), m.storage_bytes());
    assert_eq!(
        m.usage(KvPrecision::Int4),
        KvUsage {
            tokens: 3,
            bytes: 3 * 576
        }
    );
    let bpe = 8.0 * m.storage_bytes() as f64 / (2.0 * 7.0 * 512.0);
    assert_eq!(m.bits_per_element().to_bits(), bpe.to_bits());
    assert_eq!(
        MixedKvStore::new(l).bits_per_element().to_bits(),
        0f64.to_bits()
    );
}

#[test]
fn append_errors_leave_the_store_unchanged() {
    let l = layout(2, 3);
    let good = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    for p in ALL {
        let mut s = KvStore::new(l, p);
        let mut m = MixedKvStore::new(l);
        s.append(&good, &good).unwrap();
        m.append_with(&good, &good, p).unwrap();
        let (before, mixed_before) = (kv_reads(&s), mixed_reads(&m));

        let cases: [(&[f32], &[f32], &str); 2] =
            [(&good[..5], &good, "k"), (&good, &[0.0; 7], "v")];
        for (k, v, which) in cases {
            match s.append(k, v) {
                Err(Error::ShapeMismatch { op, expected, got }) => {
                    assert_eq!(op, format!("KvStore::append: {which}"));
                    assert_eq!(expected, [2, 3]);
                    assert_eq!(got, [if which == "k" { 5 } else { 7 }]);
                }
                other => panic!("{p}: expected ShapeMismatch, got {other:?}"),
            }
            assert!(matches!(
                m.append_with(k, v, p),
                Err(Error::ShapeMismatch { op, .. }) if op == format!("MixedKvStore::append_with: {which}")
            ));
        }
        let mut bad_k = good;
        bad_k[3] = f32::NAN;
        let mut bad_v = good;
        bad_v[5] = f32::NEG_INFINITY;
        for (k, v, which, index) in [(&bad_k, &good, "k", 3), (&good, &bad_v, "v", 5)] {
            match s.append(k, v) {
                Err(Error::NonFinite {
                    op,
                    index: i,
                    value,
                }) => {
                    assert_eq!(op, format!("KvStore::append: {which}"));
                    assert_eq!(i, index);
                    assert!(!value.is_finite());
                }
                other => panic!("{p}: expected NonFinite, got {other:?}"),
            }
            assert!(matches!(
                m.append_with(k, v, p),
                Err(Error::NonFinite { index: i, .. }) if i == index
            ));
        }
        // A wrong length is reported before a non-finite value.
        assert!(matches!(
            s.append(&bad_k, &good[..1]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert_eq!((s.len(), m.len()), (1, 1));
        assert_eq!(s.storage_bytes(), p.token_bytes(l));
        assert_eq!(m.allocated_bytes(), p.token_bytes(l));
        assert_eq!(kv_reads(&s), before);
        assert_eq!(mixed_reads(&m), mixed_before);
        s.append(&good, &good).unwrap();
        assert_eq!(kv_reads(&s)[before.len()..], before);
    }
}

#[test]
fn read_errors() {
    let l = layout(2, 3);
    let mut s = KvStore::new(l, KvPrecision::Int8);
    let mut m = MixedKvStore::new(l);
    for _ in 0..3 {
        s.append(&[1.0; 6], &[2.0; 6]).unwrap();
        m.append_with(&[1.0; 6], &[2.0; 6], KvPrecision::Int8)
            .unwrap();
    }
    let mut out3 = [0.0f32; 3];
    let mut out4 = [0.0f32; 4];
    let is_invalid = |r: Result<()>, name: &str| match r {
        Err(Error::InvalidParameter { name: n, .. }) => n == name,
        _ => false,
    };
    let is_shape = |r: Result<()>| matches!(r, Err(Error::ShapeMismatch { .. }));
    // Single reads.
    assert!(is_invalid(s.read_k_into(3, 0, &mut out3), "token"));
    assert!(is_invalid(s.read_v_into(0, 2, &mut out3), "head"));
    assert!(is_shape(s.read_k_into(0, 0, &mut out4)));
    assert!(is_invalid(m.read_k_into(3, 0, &mut out3), "token"));
    assert!(is_invalid(m.read_v_into(0, 2, &mut out3), "head"));
    assert!(is_shape(m.read_v_into(0, 0, &mut out4)));
    // Range reads.
    let mut out6 = [0.0f32; 6];
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 2..1;
    assert!(is_invalid(
        s.read_k_range_into(reversed.clone(), 0, &mut []),
        "tokens"
    ));
    assert!(is_invalid(
        s.read_k_range_into(2..4, 0, &mut out6),
        "tokens"
    ));
    assert!(is_invalid(s.read_v_range_into(1..3, 2, &mut out6), "head"));
    assert!(is_shape(s.read_v_range_into(1..3, 0, &mut out4)));
    assert!(s.read_k_range(0..usize::MAX, 0).is_err());
    assert!(s.read_v_range(reversed.clone(), 0).is_err());
    assert!(is_invalid(
        m.read_k_range_into(reversed, 0, &mut []),
        "tokens"
    ));
    assert!(is_invalid(
        m.read_k_range_into(2..4, 0, &mut out6),
        "tokens"
    ));
    assert!(is_invalid(m.read_v_range_into(1..3, 2, &mut out6), "head"));
    assert!(is_shape(m.read_v_range_into(1..3, 0, &mut out4)));
    assert!(m.read_k_range(0..usize::MAX, 0).is_err());
    assert!(m.read_v_range(0..1, 2).is_err());
    s.read_k_range_into(1..3, 1, &mut out6).unwrap();
    assert_eq!(bits(&out6), bits(&[1.0; 6]));
    m.read_v_range_into(3..3, 1, &mut []).unwrap();
    // Precision queries and changes.
    assert!(matches!(
        m.precision(3),
        Err(Error::InvalidParameter { name: "token", .. })
    ));
    assert!(is_invalid(m.set_precision(3, KvPrecision::F32), "token"));
    assert_eq!(m.precision(2).unwrap(), KvPrecision::Int8);
    // The error message names the operation and the value.
    let msg = s.read_k_into(7, 0, &mut out3).unwrap_err().to_string();
    assert!(
        msg.contains("KvStore::read_k_into") && msg.contains("7 (len 3)"),
        "{msg}"
    );
}

#[test]
fn mixed_store_matches_single_precision_stores() {
    let l = layout(3, 6);
    let mut r = rng::seeded(11);
    let mut singles = ALL.map(|p| KvStore::new(l, p));
    let mut mixed = MixedKvStore::new(l);
    let mut precisions = Vec::new();
    for _ in 0..250 {
        let (k, v) = (token(&mut r, l), token(&mut r, l));
        let p = ALL[r.random_range(0..ALL.len())];
        for s in &mut singles {
            s.append(&k, &v).unwrap();
        }
        mixed.append_with(&k, &v, p).unwrap();
        precisions.push(p);
    }
    let single_reads = singles.each_ref().map(kv_reads);
    let mixed_all = mixed_reads(&mixed);
    let per_token = 2 * l.token_len();
    for (t, p) in precisions.iter().enumerate() {
        assert_eq!(mixed.precision(t).unwrap(), *p);
        let at = t * per_token..(t + 1) * per_token;
        assert_eq!(
            mixed_all[at.clone()],
            single_reads[p.index()][at],
            "token {t} at {p}"
        );
    }
    // A range read spanning every precision agrees with the single reads.
    for h in 0..l.n_heads() {
        let mut got = vec![0.0; 250 * l.head_dim()];
        mixed.read_k_range_into(0..250, h, &mut got).unwrap();
        for (t, p) in precisions.iter().enumerate() {
            let want = singles[p.index()].read_k_range(t..t + 1, h).unwrap();
            assert_eq!(bits(&got[t * 6..(t + 1) * 6]), bits(&want), "token {t}");
            let want = singles[p.index()].read_v_range(t..t + 1, h).unwrap();
            let got = mixed.read_v_range(t..t + 1, h).unwrap();
            assert_eq!(bits(&got), bits(&want), "token {t}");
        }
    }
    for p in ALL {
        let n = precisions.iter().filter(|q| **q == p).count();
        assert_eq!(mixed.usage(p).tokens, n);
    }
    assert_eq!(mixed.allocated_bytes(), mixed.storage_bytes());
}

#[test]
fn set_precision_requantizes_the_stored_values() {
    let l = layout(2, 8);
    let mut r = rng::seeded(5);
    let (k, v) = (token(&mut r, l), token(&mut r, l));
    let mut m = MixedKvStore::new(l);
    m.append_with(&k, &v, KvPrecision::F32).unwrap();
    m.append_with(&k, &v, KvPrecision::F16).unwrap();

    // Demoting an F32 token equals storing the original at the new precision.
    for p in [KvPrecision::Int8, KvPrecision::Fp8E4M3, KvPrecision::Int4] {
        let mut fresh = MixedKvStore::new(l);
        fresh.append_with(&k, &v, KvPrecision::F32).unwrap();
        fresh.set_precision(0, p).unwrap();
        assert_eq!(fresh.precision(0).unwrap(), p);
        assert_eq!(mixed_reads(&fresh), single_token_reads(l, p, &k, &v), "{p}");
        assert_eq!(fresh.storage_bytes(), p.token_bytes(l));
        assert_eq!(fresh.allocated_bytes(), p.token_bytes(l)); // the F32 pool shrank
    }

    // F16 -> FP8 quantizes the F16 values, not the originals.
    let (k16, v16) = dequantized(l, KvPrecision::F16, &k, &v);
    m.set_precision(1, KvPrecision::Fp8E4M3).unwrap();
    let reads = mixed_reads(&m);
    let half = reads.len() / 2;
    assert_eq!(
        reads[half..],
        single_token_reads(l, KvPrecision::Fp8E4M3, &k16, &v16)
    );

    // Down then up: the int4 values come back exactly, the originals do not.
    m.set_precision(0, KvPrecision::Int4).unwrap();
    let int4 = mixed_reads(&m)[..half].to_vec();
    m.set_precision(0, KvPrecision::F32).unwrap();
    assert_eq!(mixed_reads(&m)[..half], int4);
    assert_ne!(
        mixed_reads(&m)[..half],
        single_token_reads(l, KvPrecision::F32, &k, &v)
    );

    // Same precision: nothing moves.
    let slot = m.slot(0);
    let before = mixed_reads(&m);
    m.set_precision(0, KvPrecision::F32).unwrap();
    assert_eq!((m.slot(0), mixed_reads(&m)), (slot, before));
}

#[test]
fn freed_slots_are_reused_and_compacted() {
    let l = layout(2, 4);
    let mut r = rng::seeded(8);
    let toks: Vec<_> = (0..6)
        .map(|_| (token(&mut r, l), token(&mut r, l)))
        .collect();
    let (f16b, i8b, i4b) = (
        KvPrecision::F16.token_bytes(l),
        KvPrecision::Int8.token_bytes(l),
        KvPrecision::Int4.token_bytes(l),
    );
    let mut m = MixedKvStore::new(l);
    for (k, v) in &toks[..4] {
        m.append_with(k, v, KvPrecision::F16).unwrap();
    }
    // A hole in the middle of the F16 pool stays allocated.
    m.set_precision(1, KvPrecision::Int8).unwrap();
    assert_eq!(m.usage(KvPrecision::F16).tokens, 3);
    assert_eq!(m.storage_bytes(), 3 * f16b + i8b);
    assert_eq!(m.allocated_bytes(), 4 * f16b + i8b);
    // The next F16 token takes it.
    m.append_with(&toks[4].0, &toks[4].1, KvPrecision::F16)
        .unwrap();
    assert_eq!(m.slot(4), 1);
    assert_eq!(m.allocated_bytes(), m.storage_bytes());
    // Freeing the last slot shrinks the pool at once.
    m.set_precision(3, KvPrecision::Int4).unwrap();
    assert_eq!(m.allocated_bytes(), 3 * f16b + i8b + i4b);
    assert_eq!(m.allocated_bytes(), m.storage_bytes());
    // Holes, then compaction: reads are unchanged and no byte is wasted.
    m.append_with(&toks[5].0, &toks[5].1, KvPrecision::F16)
        .unwrap();
    m.set_precision(0, KvPrecision::Int4).unwrap();
    m.set_precision(2, KvPrecision::Int4).unwrap();
    assert!(m.allocated_bytes() > m.storage_bytes());
    let before = mixed_reads(&m);
    let precisions: Vec<_> = (0..m.len()).map(|t| m.precision(t).unwrap()).collect();
    m.compact();
    assert_eq!(mixed_reads(&m), before);
    assert_eq!(m.allocated_bytes(), m.storage_bytes());
    for (t, p) in precisions.iter().enumerate() {
        assert_eq!(m.precision(t).unwrap(), *p);
    }
    // Each pool now holds its tokens in token order.
    assert_eq!((m.slot(0), m.slot(2), m.slot(3)), (0, 1, 2)); // int4
    assert_eq!((m.slot(4), m.slot(5)), (0, 1)); // f16
    // Truncation frees everything past the new end.
    m.truncate(2);
    assert_eq!(m.len(), 2);
    assert_eq!(m.allocated_bytes(), i4b + i8b);
    m.truncate(5); // no-op
    assert_eq!(m.len(), 2);
    m.clear();
    assert_eq!((m.len(), m.allocated_bytes(), m.storage_bytes()), (0, 0, 0));
    assert!(format!("{m:?}").contains("MixedKvStore"));
}

/// One step of a random mixed-store session.
#[derive(Clone, Debug)]
enum Op {
    Append(usize, u64),
    SetPrecision(usize, usize),
    Truncate(usize),
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..5usize, any::<u64>()).prop_map(|(p, seed)| Op::Append(p, seed)),
        3 => (any::<usize>(), 0..5usize).prop_map(|(t, p)| Op::SetPrecision(t, p)),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => Just(Op::Compact),
    ]
}

/// A token from `seed`: random heads, with constant heads and tiny or huge spreads mixed in.
fn seeded_token(seed: u64, layout: KvLayout) -> Vec<f32> {
    let mut r = rng::seeded(seed);
    let mut x = token(&mut r, layout);
    for head in x.chunks_exact_mut(layout.head_dim()) {
        match r.random_range(0..6) {
            0 => head.fill(r.random_range(-5.0..5.0)),
            1 => head.iter_mut().for_each(|v| *v *= 1e-30),
            2 => head.iter_mut().for_each(|v| *v *= 1e30),
            _ => {}
        }
    }
    x
}

/// 64 cases, or `PROPTEST_CASES` when set (for long runs).
fn proptest_config() -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(64)
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Any finite values, any layout and precision: every read is within its bound.
    #[test]
    fn any_finite_values_round_trip(
        n_heads in 1usize..=3,
        head_dim in 1usize..=9,
        p in 0..5usize,
        raw in prop::collection::vec(finite_f32(), 1..=81 * 4),
    ) {
        let l = layout(n_heads, head_dim);
        let p = ALL[p];
        let tl = l.token_len();
        let mut s = KvStore::new(l, p);
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        for pair in raw.chunks_exact(2 * tl) {
            s.append(&pair[..tl], &pair[tl..]).unwrap();
            ks.push(pair[..tl].to_vec());
            vs.push(pair[tl..].to_vec());
        }
        prop_assert_eq!(s.len(), raw.len() / (2 * tl));
        prop_assert_eq!(s.storage_bytes(), s.len() * p.token_bytes(l));
        check_store(&s, &ks, &vs);
    }

    /// Random sessions of appends, precision changes, truncations and compactions: every
    /// token reads what a one-token store of its precision reads for its current source
    /// values (the originals, or the values it held when its precision last changed).
    #[test]
    fn mixed_sessions_match_a_model(
        n_heads in 1usize..=3,
        head_dim in 1usize..=9,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let l = layout(n_heads, head_dim);
        let mut m = MixedKvStore::new(l);
        // Per token: precision and source (k, v).
        let mut model: Vec<(KvPrecision, Vec<f32>, Vec<f32>)> = Vec::new();
        for op in ops {
            match op {
                Op::Append(p, seed) => {
                    let (k, v) = (seeded_token(seed, l), seeded_token(!seed, l));
                    m.append_with(&k, &v, ALL[p]).unwrap();
                    model.push((ALL[p], k, v));
                }
                Op::SetPrecision(t, p) => {
                    if model.is_empty() {
                        prop_assert!(m.set_precision(t, ALL[p]).is_err());
                        continue;
                    }
                    let t = t % model.len();
                    m.set_precision(t, ALL[p]).unwrap();
                    let (old, k, v) = &model[t];
                    if *old != ALL[p] {
                        let (dk, dv) = dequantized(l, *old, k, v);
                        model[t] = (ALL[p], dk, dv);
                    }
                }
                Op::Truncate(n) => {
                    let n = n % (model.len() + 2);
                    m.truncate(n);
                    model.truncate(n);
                }
                Op::Compact => m.compact(),
            }
            prop_assert_eq!(m.len(), model.len());
            let mut expected = Vec::new();
            for (t, (p, k, v)) in model.iter().enumerate() {
                prop_assert_eq!(m.precision(t).unwrap(), *p);
                expected.extend(single_token_reads(l, *p, k, v));
            }
            prop_assert_eq!(mixed_reads(&m), expected);
            let bytes: usize = model.iter().map(|(p, ..)| p.token_bytes(l)).sum();
            prop_assert_eq!(m.storage_bytes(), bytes);
            prop_assert!(m.allocated_bytes() >= bytes);
            for p in ALL {
                let n = model.iter().filter(|(q, ..)| *q == p).count();
                prop_assert_eq!(m.usage(p), KvUsage { tokens: n, bytes: n * p.token_bytes(l) });
            }
        }
        // And the reads are within each precision's bound of the source values.
        let mut out = vec![0.0; head_dim];
        for (t, (p, k, v)) in model.iter().enumerate() {
            for h in 0..n_heads {
                let head = h * head_dim..(h + 1) * head_dim;
                m.read_k_into(t, h, &mut out).unwrap();
                check_vector(*p, &k[head.clone()], &out);
                m.read_v_into(t, h, &mut out).unwrap();
                check_vector(*p, &v[head], &out);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// KIVI: keys per channel over groups of tokens.

fn kivi(l: KvLayout, group: usize, key_bits: u32, values: KvPrecision) -> KiviKvStore {
    KiviKvStore::new(
        l,
        KiviParams {
            group,
            key_bits,
            values,
        },
    )
    .expect("valid KIVI params")
}

/// Checks every key read of `s` against `keys` (the keys as appended, or as they were
/// restored on truncation): residual tokens exactly, quantized ones within `scale / 2` of
/// their group's per-channel range.
fn check_kivi_keys(s: &KiviKvStore, keys: &[Vec<f32>]) {
    let l = s.layout();
    let (hd, group) = (l.head_dim(), s.params().group);
    let levels = f64::from((1u32 << s.params().key_bits) - 1);
    let q = s.quantized_len();
    let mut out = vec![0.0; hd];
    for (t, k) in keys.iter().enumerate() {
        for h in 0..l.n_heads() {
            s.read_k_into(t, h, &mut out).unwrap();
            let src = &k[h * hd..(h + 1) * hd];
            if t >= q {
                assert_eq!(bits(&out), bits(src), "residual token {t}");
                continue;
            }
            let g = t / group;
            for (d, (&x, &y)) in src.iter().zip(&out).enumerate() {
                let column = keys[g * group..(g + 1) * group]
                    .iter()
                    .map(|k| f64::from(k[h * hd + d]));
                let lo = column.clone().fold(f64::INFINITY, f64::min);
                let hi = column.fold(f64::NEG_INFINITY, f64::max);
                let bound = (hi - lo) / levels / 2.0
                    + 2f64.powi(-23) * (lo.abs() + hi.abs())
                    + 2f64.powi(-149);
                let err = (f64::from(y) - f64::from(x)).abs();
                assert!(
                    y.is_finite() && err <= bound,
                    "token {t} head {h} channel {d}: {x} -> {y}, error {err:e} > {bound:e}"
                );
            }
        }
    }
}

#[test]
fn kivi_params_are_validated() {
    let l = layout(2, 4);
    let p = KiviParams::default();
    assert_eq!((p.group, p.key_bits, p.values), (32, 4, KvPrecision::Int4));
    for (group, key_bits, name) in [
        (0, 4, "group"),
        (MAX_KIVI_GROUP + 1, 4, "group"),
        (8, 3, "key_bits"),
        (8, 1, "key_bits"),
        (8, 16, "key_bits"),
    ] {
        let params = KiviParams {
            group,
            key_bits,
            ..p
        };
        assert!(
            matches!(
                KiviKvStore::new(l, params),
                Err(Error::InvalidParameter { name: n, .. }) if n == name
            ),
            "({group}, {key_bits})"
        );
    }
    assert!(
        KiviKvStore::new(
            l,
            KiviParams {
                group: MAX_KIVI_GROUP,
                ..p
            }
        )
        .is_ok()
    );
}

#[test]
fn kivi_keys_are_quantized_per_channel_once_a_group_fills() {
    let l = layout(2, 5);
    let mut r = rng::seeded(21);
    for key_bits in [2, 4, 8] {
        for group in [1, 2, 3, 8] {
            let mut s = kivi(l, group, key_bits, KvPrecision::Int8);
            let mut vals = KvStore::new(l, KvPrecision::Int8);
            let mut keys = Vec::new();
            for t in 0..(3 * group + 2) {
                let (k, v) = (token(&mut r, l), token(&mut r, l));
                s.append(&k, &v).unwrap();
                vals.append(&k, &v).unwrap();
                keys.push(k);
                assert_eq!(s.len(), t + 1);
                assert_eq!(s.quantized_len(), (t + 1) / group * group);
                check_kivi_keys(&s, &keys);
            }
            // Values are exactly a per-token store's.
            let mut a = vec![0.0; 5];
            let mut b = vec![0.0; 5];
            for t in 0..s.len() {
                for h in 0..2 {
                    s.read_v_into(t, h, &mut a).unwrap();
                    vals.read_v_into(t, h, &mut b).unwrap();
                    assert_eq!(bits(&a), bits(&b));
                }
            }
        }
    }
}

/// With outlier channels, per-channel keys lose much less than per-token keys at the same
/// bit width, which is KIVI's point.
#[test]
fn kivi_beats_per_token_keys_on_channel_outliers() {
    let l = layout(1, 64);
    let mut r = rng::seeded(77);
    let mut s = kivi(l, 32, 4, KvPrecision::Int4);
    let mut per_token = KvStore::new(l, KvPrecision::Int4);
    let mut keys = Vec::new();
    for _ in 0..64 {
        let mut k = rng::normal_vec(&mut r, 64);
        for (d, x) in k.iter_mut().enumerate() {
            if d % 16 == 3 {
                *x += 50.0; // a fixed outlier channel, as in real keys
            }
        }
        s.append(&k, &k).unwrap();
        per_token.append(&k, &k).unwrap();
        keys.push(k);
    }
    assert_eq!(s.quantized_len(), 64);
    let mean_err = |read: &dyn Fn(usize, &mut [f32])| {
        let mut out = vec![0.0; 64];
        let mut total = 0.0f64;
        for (t, k) in keys.iter().enumerate() {
            read(t, &mut out);
            total += k
                .iter()
                .zip(&out)
                .map(|(a, b)| f64::from((a - b).abs()))
                .sum::<f64>();
        }
        total / (64.0 * 64.0)
    };
    let kivi_err = mean_err(&|t, out| s.read_k_into(t, 0, out).unwrap());
    let token_err = mean_err(&|t, out| per_token.read_k_into(t, 0, out).unwrap());
    assert!(
        kivi_err * 4.0 < token_err,
        "per-channel {kivi_err} vs per-token {token_err}"
    );
}

#[test]
fn kivi_ranges_truncation_and_accounting() {
    let l = layout(3, 7);
    let mut r = rng::seeded(4);
    let group = 4;
    let mut s = kivi(l, group, 2, KvPrecision::Fp8E4M3);
    let mut keys = Vec::new();
    for _ in 0..11 {
        let (k, v) = (token(&mut r, l), token(&mut r, l));
        s.append(&k, &v).unwrap();
        keys.push(k);
    }
    // 2 groups + 3 residual tokens; keys of 2-bit rows are ⌈7 · 2 / 8⌉ = 2 bytes.
    let expected = 2 * 3 * (4 * 2 + 8 * 7) + 3 * 3 * 7 * 4 + 11 * 3 * (7 + 4);
    assert_eq!(s.storage_bytes(), expected);
    // Range reads agree with single reads, across groups and the residual.
    for h in 0..3 {
        let mut got = vec![0.0; 11 * 7];
        s.read_k_range_into(0..11, h, &mut got).unwrap();
        assert_eq!(bits(&got), bits(&s.read_k_range(0..11, h).unwrap()));
        assert_eq!(
            bits(&s.read_v_range(3..5, h).unwrap()).len(),
            2 * 7,
            "owned value range"
        );
        let mut gv = vec![0.0; 9 * 7];
        s.read_v_range_into(2..11, h, &mut gv).unwrap();
        let mut one = vec![0.0; 7];
        for t in 0..11 {
            s.read_k_into(t, h, &mut one).unwrap();
            assert_eq!(bits(&got[t * 7..(t + 1) * 7]), bits(&one));
            if t >= 2 {
                s.read_v_into(t, h, &mut one).unwrap();
                assert_eq!(bits(&gv[(t - 2) * 7..(t - 1) * 7]), bits(&one));
            }
        }
    }
    let key_of = |s: &KiviKvStore, t: usize| {
        let mut k = vec![0.0; 21];
        for h in 0..3 {
            s.read_k_into(t, h, &mut k[h * 7..(h + 1) * 7]).unwrap();
        }
        k
    };
    // Truncating inside the residual keeps everything else.
    let before: Vec<Vec<f32>> = (0..11).map(|t| key_of(&s, t)).collect();
    s.truncate(9);
    assert_eq!((s.len(), s.quantized_len()), (9, 8));
    // Truncating into a quantized group: survivors read the same (dequantized) keys, now
    // from the f32 residual.
    s.truncate(6);
    assert_eq!((s.len(), s.quantized_len()), (6, 4));
    for (t, want) in before.iter().take(6).enumerate() {
        assert_eq!(bits(&key_of(&s, t)), bits(want), "token {t}");
    }
    assert_eq!(
        s.storage_bytes(),
        3 * (4 * 2 + 8 * 7) + 2 * 3 * 7 * 4 + 6 * 3 * (7 + 4)
    );
    // Refilling the group quantizes the restored keys with the new ones.
    let mut sources: Vec<Vec<f32>> = keys[..4].to_vec();
    sources.extend((4..6).map(|t| key_of(&s, t)));
    for _ in 0..2 {
        let k = token(&mut r, l);
        s.append(&k, &k).unwrap();
        sources.push(k);
    }
    assert_eq!(s.quantized_len(), 8);
    check_kivi_keys(&s, &sources);
    s.clear();
    assert_eq!((s.len(), s.storage_bytes()), (0, 0));
    assert!(format!("{s:?}").contains("KiviKvStore"));
}

#[test]
fn kivi_errors() {
    let l = layout(2, 3);
    let mut s = kivi(l, 2, 4, KvPrecision::F16);
    s.append(&[1.0; 6], &[1.0; 6]).unwrap();
    let mut bad = [1.0f32; 6];
    bad[4] = f32::INFINITY;
    assert!(matches!(
        s.append(&bad, &[1.0; 6]),
        Err(Error::NonFinite {
            op: "KiviKvStore::append: k",
            index: 4,
            ..
        })
    ));
    assert!(matches!(
        s.append(&[1.0; 6], &bad),
        Err(Error::NonFinite {
            op: "KiviKvStore::append: v",
            index: 4,
            ..
        })
    ));
    assert!(matches!(
        s.append(&[1.0; 5], &[1.0; 6]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!((s.len(), s.quantized_len()), (1, 0));
    let mut out = [0.0f32; 3];
    assert!(s.read_k_into(1, 0, &mut out).is_err());
    assert!(s.read_v_into(0, 2, &mut out).is_err());
    assert!(matches!(
        s.read_k_into(0, 0, &mut [0.0; 2]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(s.read_k_range_into(0..2, 0, &mut [0.0; 6]).is_err());
    assert!(s.read_k_range(0..2, 0).is_err());
    assert!(s.read_v_range(0..1, 2).is_err());
    assert!(s.read_v_range_into(0..1, 0, &mut [0.0; 4]).is_err());
    // The failed appends left no trace: the group fills on the next good one.
    s.append(&[2.0; 6], &[2.0; 6]).unwrap();
    assert_eq!(s.quantized_len(), 2);
    s.read_k_into(1, 1, &mut out).unwrap();
    assert_eq!(bits(&out), bits(&[2.0; 3]));
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Any finite keys, layouts, groups and bit widths: reads stay within the per-channel
    /// bound, and values match a per-token store.
    #[test]
    fn kivi_round_trips_any_finite_values(
        n_heads in 1usize..=2,
        head_dim in 1usize..=6,
        group in 1usize..=5,
        key_bits in prop::sample::select(vec![2u32, 4, 8]),
        p in 0..5usize,
        raw in prop::collection::vec(finite_f32(), 1..=12 * 14),
    ) {
        let l = layout(n_heads, head_dim);
        let tl = l.token_len();
        let mut s = kivi(l, group, key_bits, ALL[p]);
        let mut vals = KvStore::new(l, ALL[p]);
        let mut keys = Vec::new();
        for pair in raw.chunks_exact(2 * tl) {
            s.append(&pair[..tl], &pair[tl..]).unwrap();
            vals.append(&pair[..tl], &pair[tl..]).unwrap();
            keys.push(pair[..tl].to_vec());
        }
        check_kivi_keys(&s, &keys);
        let mut a = vec![0.0; head_dim];
        let mut b = vec![0.0; head_dim];
        for t in 0..s.len() {
            for h in 0..n_heads {
                s.read_v_into(t, h, &mut a).unwrap();
                vals.read_v_into(t, h, &mut b).unwrap();
                prop_assert_eq!(bits(&a), bits(&b));
            }
        }
    }
}
