//! Benches of `attention::flash`, one thread, throughput in FLOPs (`4·n²·d` per head for
//! non-causal attention: `QKᵀ` and `PV`, two per multiply-add; about half that when causal).
//!
//! - `attention/flash/peak`: the one-core `f32` FMA peak of this CPU, measured in the same
//!   run (AVX-512: 16 independent `vfmadd` chains; AVX2 + FMA: 12), the denominator of the
//!   performance target (≥ 40 % of peak at `n = 4096`, `d = 64`);
//! - `attention/flash/f32-d64`, `attention/flash/f32-d128`: flash attention at
//!   `n = 512 … 8192`, one head, non-causal, plus causal at `n = 4096`;
//! - `attention/flash/reference-f64`: the `f64` reference at `n ≤ 1024` (it is `O(n²)` in
//!   memory traffic and computes its exponentials `d` times over), for the ratio;
//! - `attention/flash/decode`: one query against `4096` cached keys, 8 heads.
//!
//! Before the groups, `bench` prints to stderr the best-of-5 GFLOP/s at `n = 4096`, `d = 64`
//! and its ratio to the FMA peak measured just before it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use attention::flash::{FlashParams, attention};
use attention::{Mask, Shape, reference};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One thread: the tasks run in order on the caller.
const SEQ: FlashParams = FlashParams {
    block_q: 96,
    block_k: 256,
    parallel: false,
};

fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn inputs(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        data(&mut rng, shape.q_len()),
        data(&mut rng, shape.kv_len()),
        data(&mut rng, shape.kv_len()),
    )
}

/// FLOPs of one call: `4·d` per (query, key) pair the mask lets through.
fn flops(shape: Shape, causal: bool) -> u64 {
    let pairs = if causal {
        (shape.n_q * (shape.n_q + 1) / 2) as u64
    } else {
        (shape.n_q * shape.n_k) as u64
    };
    4 * pairs * shape.d as u64 * shape.heads as u64
}

/// The FMA peak probe: `iters` rounds of independent fused multiply-add chains; returns the
/// FLOPs done and a value that depends on all of them.
#[allow(unsafe_code)]
fn fma_probe(iters: u64) -> (u64, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            return (iters * 16 * 16 * 2, unsafe { peak::avx512(iters) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA were detected just above.
            return (iters * 12 * 8 * 2, unsafe { peak::avx2(iters) });
        }
    }
    let mut acc = [0.0f32; 4];
    for _ in 0..iters {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    (iters * 4 * 2, acc.iter().sum())
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use core::arch::x86_64::*;

    /// 16 independent chains of `zmm` FMAs (latency 4 × 2 pipes needs 8).
    #[target_feature(enable = "avx512f")]
    pub(super) fn avx512(iters: u64) -> f32 {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_setzero_ps(); 16];
        for _ in 0..iters {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut s = _mm512_setzero_ps();
        for x in acc {
            s = _mm512_add_ps(s, x);
        }
        _mm512_reduce_add_ps(s)
    }

    /// 12 independent chains of `ymm` FMAs.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2(iters: u64) -> f32 {
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_setzero_ps(); 12];
        for _ in 0..iters {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut s = _mm256_setzero_ps();
        for x in acc {
            s = _mm256_add_ps(s, x);
        }
        _mm256_cvtss_f32(s)
    }
}

/// Best of `runs` wall times of `f`.
fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Prints the GFLOP/s at `n = 4096`, `d = 64` (one thread, non-causal) and its ratio to the
/// FMA peak, both the best of 7 rounds that run the two alternately (so that both see the
/// same machine; on a shared machine the best round is the least disturbed).
fn report_ratio_to_peak() {
    let iters = 20_000_000;
    let shape = Shape::self_attention(1, 4096, 64);
    let (q, k, v) = inputs(shape, 1);
    let (mut peak, mut got, mut ms) = (0.0f64, 0.0f64, f64::MAX);
    for _ in 0..7 {
        let mut flop = 0;
        let t = best_of(1, || flop = black_box(fma_probe(black_box(iters))).0);
        peak = peak.max(flop as f64 / t.as_secs_f64() / 1e9);
        let t = best_of(1, || {
            black_box(attention(&q, &k, &v, shape, Mask::NONE, None, &SEQ).unwrap());
        });
        got = got.max(flops(shape, false) as f64 / t.as_secs_f64() / 1e9);
        ms = ms.min(t.as_secs_f64() * 1e3);
    }
    eprintln!(
        "attention/flash: n 4096, d 64, one thread: {got:.1} GFLOP/s = {:.1} % of the \
         measured one-core FMA peak {peak:.1} GFLOP/s ({ms:.1} ms)",
        100.0 * got / peak
    );
}

pub(crate) fn bench(c: &mut Criterion) {
    report_ratio_to_peak();

    let mut g = c.benchmark_group("attention/flash/peak");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    let iters = 10_000_000;
    g.throughput(Throughput::Elements(fma_probe(1).0 * iters));
    g.bench_function("fma-f32-one-core", |b| {
        b.iter(|| fma_probe(black_box(iters)))
    });
    g.finish();

    for (d, sizes) in [
        (64, &[512, 1024, 2048, 4096, 8192][..]),
        (128, &[512, 1024, 2048, 4096][..]),
    ] {
        let mut g = c.benchmark_group(format!("attention/flash/f32-d{d}"));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        for &n in sizes {
            let shape = Shape::self_attention(1, n, d);
            let (q, k, v) = inputs(shape, n as u64);
            let causal_too = if n == 4096 {
                &[false, true][..]
            } else {
                &[false][..]
            };
            for &causal in causal_too {
                let mask = Mask {
                    causal,
                    ..Mask::NONE
                };
                g.throughput(Throughput::Elements(flops(shape, causal)));
                let id = if causal { "causal" } else { "full" };
                g.bench_with_input(BenchmarkId::new(id, n), &n, |b, _| {
                    b.iter(|| attention(&q, &k, &v, shape, mask, None, &SEQ).unwrap())
                });
            }
        }
        g.finish();
    }

    let mut g = c.benchmark_group("attention/flash/reference-f64");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    for (n, d) in [(512, 64), (1024, 64), (512, 128)] {
        let shape = Shape::self_attention(1, n, d);
        let (q, k, v) = inputs(shape, n as u64);
        g.throughput(Throughput::Elements(flops(shape, false)));
        g.bench_with_input(BenchmarkId::new(format!("d{d}"), n), &n, |b, _| {
            b.iter(|| reference::attention(&q, &k, &v, shape, Mask::NONE, None).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("attention/flash/decode");
    g.sample_size(20).measurement_time(Duration::from_secs(1));
    let shape = Shape {
        heads: 8,
        kv_heads: 8,
        n_q: 1,
        n_k: 4096,
        d: 64,
    };
    let (q, k, v) = inputs(shape, 7);
    g.throughput(Throughput::Elements(4 * 4096 * 64 * 8));
    g.bench_function("h8-nk4096-d64", |b| {
        b.iter(|| attention(&q, &k, &v, shape, Mask::causal(4095), None, &SEQ).unwrap())
    });
    g.finish();
}
