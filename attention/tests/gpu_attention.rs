//! The GPU attention kernels (`attention::gpu::{flash, dilated, infini}`) against the CPU
//! references, on sizes straddling the kernel's query block (64) and key tiles
//! (`block_k(d)`: 64 for `d ≤ 32`, 32 at `d = 64`, 16 at `d = 128`).

use attention::gpu::{adapter_or_skip, flash as gflash};
use attention::{Mask, Shape, reference};

use crate::common::{assert_close, qkv};

/// Flash vs the `f64` reference: `f32` accumulation over `d`-term dot products and
/// `n_k`-term sums, relative to `max |v|` (the outputs are convex combinations of `V`).
const FLASH_TOL: f32 = 1e-5;

/// `lse` vs the reference: absolute, in `f32` (the values are O(1..10)).
const LSE_TOL: f64 = 2e-5;

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn assert_lse(what: &str, expected: &[f64], got: &[f64], tol: f64) {
    assert_eq!(expected.len(), got.len(), "{what}: lse lengths");
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e.is_infinite() || g.is_infinite() {
            assert!(
                e.is_infinite() && g.is_infinite() && e.is_sign_negative() == g.is_sign_negative(),
                "{what}: lse[{i}] {e} vs {g}"
            );
        } else {
            assert!((e - g).abs() <= tol, "{what}: lse[{i}] {e} vs {g}");
        }
    }
}

fn check_flash(what: &str, shape: Shape, mask: Mask<'_>, seed: u64) {
    let Some(gpu) = adapter_or_skip(what) else {
        return;
    };
    let (q, k, v) = qkv(shape, 1.0, seed);
    let want = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
    let got = gflash::attention(gpu, &q, &k, &v, shape, mask, None).unwrap();
    let tol = FLASH_TOL * max_abs(&v).max(1.0);
    assert_close(&format!("{what} {shape:?}"), &want.out, &got.out, tol);
    assert_lse(&format!("{what} {shape:?}"), &want.lse, &got.lse, LSE_TOL);
}

#[test]
fn gpu_flash_matches_reference_across_block_edges() {
    for &d in &[1usize, 31, 64, 128] {
        let bk = gflash::block_k(d);
        for &n_q in &[1usize, 63, 64, 65, 130] {
            for &n_k in &[1usize, bk - 1, bk, bk + 1, 3 * bk + 5] {
                if n_k == 0 {
                    continue;
                }
                let shape = Shape {
                    heads: 2,
                    kv_heads: 2,
                    n_q,
                    n_k,
                    d,
                };
                check_flash(
                    "gpu_flash_blocks",
                    shape,
                    Mask::NONE,
                    (d * 1000 + n_q) as u64,
                );
            }
        }
    }
}

#[test]
fn gpu_flash_causal_with_offsets_and_decode() {
    for &(n_q, n_k, off) in &[
        (65usize, 65usize, 0usize),
        (130, 130, 0),
        (1, 100, 99),
        (1, 1, 0),
        (17, 80, 63),
        (40, 20, 0),   // queries past the keys see every key
        (5, 10, 1000), // offset past n_k
    ] {
        for &d in &[31usize, 64] {
            let shape = Shape {
                heads: 2,
                kv_heads: 1,
                n_q,
                n_k,
                d,
            };
            check_flash(
                "gpu_flash_causal",
                shape,
                Mask::causal(off),
                (n_q * n_k + off) as u64,
            );
        }
    }
}

#[test]
fn gpu_flash_gqa_and_padding() {
    let shape = Shape {
        heads: 6,
        kv_heads: 2,
        n_q: 70,
        n_k: 90,
        d: 64,
    };
    check_flash("gpu_flash_gqa", shape, Mask::NONE, 7);
    let valid: Vec<bool> = (0..90).map(|j| j % 3 != 1 && j < 80).collect();
    let mask = Mask {
        causal: false,
        q_offset: 0,
        key_valid: Some(&valid),
    };
    check_flash("gpu_flash_padding", shape, mask, 8);
    // Causal + padding: the first query sees only key 0, which is valid.
    let causal_pad = Mask {
        causal: true,
        q_offset: 0,
        key_valid: Some(&valid),
    };
    check_flash("gpu_flash_causal_padding", shape, causal_pad, 9);
    // Causal where the first rows see only invalid keys: fully masked rows.
    let late: Vec<bool> = (0..90).map(|j| j >= 5).collect();
    let m = Mask {
        causal: true,
        q_offset: 0,
        key_valid: Some(&late),
    };
    check_flash("gpu_flash_partly_masked", shape, m, 10);
}

#[test]
fn gpu_flash_fully_masked_rows_and_empty_keys() {
    let Some(gpu) = adapter_or_skip("gpu_flash_fully_masked_rows_and_empty_keys") else {
        return;
    };
    let shape = Shape {
        heads: 2,
        kv_heads: 1,
        n_q: 3,
        n_k: 40,
        d: 8,
    };
    let (q, k, v) = qkv(shape, 1.0, 11);
    let none = vec![false; 40];
    let mask = Mask {
        causal: false,
        q_offset: 0,
        key_valid: Some(&none),
    };
    let o = gflash::attention(gpu, &q, &k, &v, shape, mask, None).unwrap();
    assert!(o.out.iter().all(|&x| x == 0.0));
    assert!(o.lse.iter().all(|&l| l == f64::NEG_INFINITY));
    // n_k = 0.
    let empty = Shape { n_k: 0, ..shape };
    let o = gflash::attention(gpu, &q, &[], &[], empty, Mask::NONE, None).unwrap();
    assert_eq!(o.out.len(), shape.q_len());
    assert!(o.out.iter().all(|&x| x == 0.0));
    assert!(o.lse.iter().all(|&l| l == f64::NEG_INFINITY));
    // n_q = 0.
    let o = gflash::attention(
        gpu,
        &[],
        &k,
        &v,
        Shape { n_q: 0, ..shape },
        Mask::NONE,
        None,
    )
    .unwrap();
    assert!(o.out.is_empty() && o.lse.is_empty());
}

#[test]
fn gpu_flash_rejects_bad_input() {
    let Some(gpu) = adapter_or_skip("gpu_flash_rejects_bad_input") else {
        return;
    };
    let shape = Shape::self_attention(1, 4, 129);
    let x = vec![0.0f32; shape.q_len()];
    assert!(matches!(
        gflash::attention(gpu, &x, &x, &x, shape, Mask::NONE, None),
        Err(attention::Error::Shape { .. })
    ));
    let shape = Shape::self_attention(1, 4, 8);
    let x = vec![0.0f32; shape.q_len()];
    assert!(matches!(
        gflash::attention(gpu, &x[1..], &x, &x, shape, Mask::NONE, None),
        Err(attention::Error::Shape { .. })
    ));
    assert!(matches!(
        gflash::attention(gpu, &x, &x, &x, shape, Mask::NONE, Some(f32::NAN)),
        Err(attention::Error::InvalidParams { .. })
    ));
    let short = [true; 3];
    let m = Mask {
        causal: false,
        q_offset: 0,
        key_valid: Some(&short),
    };
    assert!(gflash::attention(gpu, &x, &x, &x, shape, m, None).is_err());
}

#[test]
fn gpu_flash_matches_cpu_flash_with_scale() {
    let Some(gpu) = adapter_or_skip("gpu_flash_matches_cpu_flash_with_scale") else {
        return;
    };
    let shape = Shape::self_attention(3, 200, 48);
    let (q, k, v) = qkv(shape, 1.0, 12);
    let p = attention::flash::FlashParams::default();
    let want =
        attention::flash::attention(&q, &k, &v, shape, Mask::causal(0), Some(0.3), &p).unwrap();
    let got = gflash::attention(gpu, &q, &k, &v, shape, Mask::causal(0), Some(0.3)).unwrap();
    assert_close(
        "gpu vs cpu flash",
        &want.out,
        &got.out,
        FLASH_TOL * max_abs(&v),
    );
    assert_lse("gpu vs cpu flash", &want.lse, &got.lse, LSE_TOL);
}

mod dilated {
    use attention::dilated::{DilatedParams, oracle};
    use attention::gpu::{adapter_or_skip, dilated as gdilated};
    use attention::{Mask, Shape};

    use super::{assert_lse, max_abs};
    use crate::common::{assert_close, qkv};

    /// GPU dilated vs the `f64` oracle, relative to `max |v|`: flash's error plus the `f32`
    /// log-sum-exp merge of up to three pairs.
    const DILATED_TOL: f32 = 2e-5;

    /// Merged `lse` vs the oracle (absolute).
    const DILATED_LSE_TOL: f64 = 5e-5;

    fn check(what: &str, shape: Shape, mask: Mask<'_>, params: &DilatedParams, seed: u64) {
        let Some(gpu) = adapter_or_skip(what) else {
            return;
        };
        let (q, k, v) = qkv(shape, 1.0, seed);
        let want = oracle(&q, &k, &v, shape, mask, None, params).unwrap();
        let got = gdilated::attention(gpu, &q, &k, &v, shape, mask, None, params).unwrap();
        let tol = DILATED_TOL * max_abs(&v).max(1.0);
        let ctx = format!("{what} {shape:?} {params:?}");
        assert_close(&ctx, &want.out, &got.out, tol);
        assert_lse(&ctx, &want.lse, &got.lse, DILATED_LSE_TOL);
        // And the CPU fast path agrees.
        let fp = attention::flash::FlashParams::default();
        let cpu =
            attention::dilated::attention(&q, &k, &v, shape, mask, None, params, &fp).unwrap();
        assert_close(&format!("{ctx} vs cpu"), &cpu.out, &got.out, tol);
    }

    #[test]
    fn gpu_dilated_matches_oracle() {
        let p = DilatedParams::new(&[16, 32, 64], &[1, 2, 4]).unwrap();
        for &n in &[1usize, 63, 65, 100, 150] {
            for &d in &[16usize, 64] {
                let shape = Shape::self_attention(4, n, d);
                check("gpu_dilated", shape, Mask::NONE, &p, n as u64);
                check(
                    "gpu_dilated_causal",
                    shape,
                    Mask::causal(0),
                    &p,
                    n as u64 + 1,
                );
            }
        }
    }

    #[test]
    fn gpu_dilated_gqa_offsets_and_padding() {
        // Pairs without r = 1: some rows stay uncovered (zeros, lse −∞).
        let p = DilatedParams::new(&[8, 130], &[2, 3]).unwrap();
        let shape = Shape {
            heads: 6,
            kv_heads: 2,
            n_q: 150,
            n_k: 150,
            d: 32,
        };
        check("gpu_dilated_gqa", shape, Mask::NONE, &p, 3);
        check("gpu_dilated_gqa_causal", shape, Mask::causal(0), &p, 4);
        let valid: Vec<bool> = (0..150).map(|j| j % 5 != 2).collect();
        let m = Mask {
            causal: true,
            q_offset: 0,
            key_valid: Some(&valid),
        };
        check("gpu_dilated_padding", shape, m, &p, 5);
        // Decode: the last 3 queries against 150 keys.
        let dec = Shape { n_q: 3, ..shape };
        check("gpu_dilated_decode", dec, Mask::causal(147), &p, 6);
        let geo = DilatedParams::geometric(4, 1, 2, 4).unwrap();
        check("gpu_dilated_geometric", shape, Mask::causal(0), &geo, 7);
    }
}

mod infini {
    use attention::gpu::{adapter_or_skip, infini as ginfini};
    use attention::infini::{InfiniParams, MemoryUpdate, reference};
    use attention::{Mask, Shape};

    use super::assert_lse;
    use crate::common::assert_close;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// GPU Infini-attention vs the `f64` reference (absolute, values in `[−1, 1]`): the
    /// `f32` memory sums over up to a few hundred keys and the retrieval's division.
    const INFINI_TOL: f32 = 2e-5;

    /// Local `lse` vs the reference (absolute).
    const INFINI_LSE_TOL: f64 = 2e-5;

    fn uniform(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn check(what: &str, shape: Shape, mask: Mask<'_>, params: &InfiniParams, seed: u64) {
        let Some(gpu) = adapter_or_skip(what) else {
            return;
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let q = uniform(&mut rng, shape.q_len());
        let k = uniform(&mut rng, shape.kv_len());
        let v = uniform(&mut rng, shape.kv_len());
        let want = reference(&q, &k, &v, shape, mask, None, params).unwrap();
        let got = ginfini::attention(gpu, &q, &k, &v, shape, mask, None, params).unwrap();
        let ctx = format!("{what} {shape:?} {params:?}");
        assert_close(&ctx, &want.out, &got.out, INFINI_TOL);
        assert_lse(&ctx, &want.lse, &got.lse, INFINI_LSE_TOL);
        let cpu = attention::infini::attention(&q, &k, &v, shape, mask, None, params).unwrap();
        assert_close(&format!("{ctx} vs cpu"), &cpu.out, &got.out, INFINI_TOL);
    }

    #[test]
    fn gpu_infini_linear_and_delta() {
        for update in [MemoryUpdate::Linear, MemoryUpdate::Delta] {
            for &(n, seg, d) in &[(100usize, 32usize, 16usize), (130, 64, 64), (70, 70, 8)] {
                let p = InfiniParams {
                    segment: seg,
                    update,
                    beta: vec![0.3, -1.0, 2.0, 0.0],
                };
                let shape = Shape {
                    heads: 4,
                    kv_heads: 2,
                    n_q: n,
                    n_k: n,
                    d,
                };
                check("gpu_infini", shape, Mask::causal(0), &p, n as u64);
            }
        }
    }

    #[test]
    fn gpu_infini_decode_padding_and_gates() {
        for update in [MemoryUpdate::Linear, MemoryUpdate::Delta] {
            let p = InfiniParams {
                segment: 24,
                update,
                beta: vec![f32::INFINITY],
            };
            let shape = Shape {
                heads: 2,
                kv_heads: 1,
                n_q: 5,
                n_k: 110,
                d: 32,
            };
            check("gpu_infini_decode", shape, Mask::causal(105), &p, 1);
            let valid: Vec<bool> = (0..110).map(|j| j % 7 != 3).collect();
            let m = Mask {
                causal: true,
                q_offset: 0,
                key_valid: Some(&valid),
            };
            let full = Shape { n_q: 110, ..shape };
            let p = InfiniParams {
                beta: vec![-0.5],
                ..p
            };
            check("gpu_infini_padding", full, m, &p, 2);
        }
    }

    #[test]
    fn gpu_infini_rejects_bad_input() {
        let Some(gpu) = adapter_or_skip("gpu_infini_rejects_bad_input") else {
            return;
        };
        let shape = Shape::self_attention(2, 8, 4);
        let x = vec![0.0f32; shape.q_len()];
        let p = InfiniParams::new(4, MemoryUpdate::Linear).unwrap();
        assert!(ginfini::attention(gpu, &x, &x, &x, shape, Mask::NONE, None, &p).is_err());
        assert!(ginfini::attention(gpu, &x, &x, &x, shape, Mask::causal(1), None, &p).is_err());
        let bad = InfiniParams {
            beta: vec![0.0; 3],
            ..p.clone()
        };
        assert!(ginfini::attention(gpu, &x, &x, &x, shape, Mask::causal(0), None, &bad).is_err());
        let bad = InfiniParams { segment: 0, ..p };
        assert!(ginfini::attention(gpu, &x, &x, &x, shape, Mask::causal(0), None, &bad).is_err());
    }
}

/// Whole attention at sizes where a plain per-element loop would have exhausted llvmpipe's
/// loop budget (`tests/gpu.rs::llvmpipe_loop_budget`; found by `adaprec reproduce --gpu`:
/// every row was wrong from n_k·d ≈ 31 000 on before the head-dimension loops were chunked).
#[test]
fn flash_long_sequences_match_the_reference() {
    let Some(gpu) = attention::gpu::adapter_or_skip("flash_long_sequences") else {
        return;
    };
    for (n, causal, heads, dd) in [
        (512usize, true, 2usize, 64usize),
        (1024, false, 1, 32),
        (1024, true, 1, 16),
        (600, false, 1, 128),
    ] {
        let shape = attention::Shape::self_attention(heads, n, dd);
        let f = |len: usize, s: u32| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    (((i as u32).wrapping_mul(2_654_435_761) ^ s) % 2000) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        let (q, k, v) = (
            f(shape.q_len(), 1),
            f(shape.kv_len(), 2),
            f(shape.kv_len(), 3),
        );
        let mask = if causal {
            attention::Mask::causal(0)
        } else {
            attention::Mask::NONE
        };
        let want = attention::reference::attention(&q, &k, &v, shape, mask, None).unwrap();
        let got = attention::gpu::flash::attention(gpu, &q, &k, &v, shape, mask, None).unwrap();
        let err = got
            .out
            .iter()
            .zip(&want.out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "n={n} d={dd} causal={causal}: {err}");
    }
}

/// Single rows over long key ranges (decode against a long cache), up to llvmpipe's loop
/// budget; past it the call is refused there, never truncated.
#[test]
fn flash_long_key_ranges_match_the_reference_or_are_refused() {
    let Some(gpu) = attention::gpu::adapter_or_skip("flash_long_key_ranges") else {
        return;
    };
    for (nk, dd) in [
        (1024usize, 32usize),
        (2048, 16),
        (8192, 4),
        (1000, 32),
        (3000, 64),
    ] {
        let shape = attention::Shape {
            heads: 1,
            kv_heads: 1,
            n_q: 1,
            n_k: nk,
            d: dd,
        };
        let f = |len: usize, s: u32| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    (((i as u32).wrapping_mul(2_654_435_761) ^ s) % 2000) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        let (q, k, v) = (
            f(shape.q_len(), 1),
            f(shape.kv_len(), 2),
            f(shape.kv_len(), 3),
        );
        let r = attention::reference::attention(&q, &k, &v, shape, attention::Mask::NONE, None)
            .unwrap();
        let got =
            attention::gpu::flash::attention(gpu, &q, &k, &v, shape, attention::Mask::NONE, None)
                .unwrap();
        let e = got
            .out
            .iter()
            .zip(&r.out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(e < 1e-5, "n_k={nk} d={dd}: {e}");
        assert!((got.lse[0] - r.lse[0]).abs() < 2e-5 * (1.0 + r.lse[0].abs()));
    }
    if gpu.loop_budget().is_some() {
        let shape = attention::Shape::self_attention(1, 8192, 128);
        let x = vec![0.0f32; shape.q_len()];
        let e =
            attention::gpu::flash::attention(gpu, &x, &x, &x, shape, attention::Mask::NONE, None)
                .unwrap_err();
        assert!(
            matches!(e, attention::Error::Gpu { .. }) && e.to_string().contains("budget"),
            "{e}"
        );
    }
}
