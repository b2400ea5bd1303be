//! Benches of `attention::adaptive_rank`, one thread (`FlashParams::parallel = false`;
//! the low-rank paths are single-threaded; run with `OPENBLAS_NUM_THREADS=1` so that the
//! small LAPACK calls of the randomized SVD stay on one core too).
//!
//! - `attention/adaptive_rank/{nystrom,rsvd}/<n>`: adaptive-rank attention on diffuse
//!   inputs (2 heads, `d = 64`, `Q`, `K` entries of standard deviation 0.3, so scores of
//!   standard deviation 0.09: near-uniform attention), default parameters but the method;
//!   the time includes the statistics, the rank search and the holdout check;
//! - `attention/adaptive_rank/dense-flash/<n>`: dense flash attention on the same inputs,
//!   the baseline of the speedup;
//! - `attention/adaptive_rank/peaked-nystrom/4096`: peaked inputs (each query a large
//!   multiple of one key), which fall back to dense: the overhead of deciding.
//!
//! `n = 4K, 8K, 16K, 32K`. Before the group, `bench` prints each configuration's decisions
//! (rank, estimated and actual error) and the whole-output error against flash.

use std::hint::black_box;
use std::time::Duration;

use attention::adaptive_rank::{LowRankMethod, RankParams, RankReport, attention};
use attention::flash::{self, FlashParams};
use attention::{Mask, Shape};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One thread: flash's blocks run in order on the caller.
const SEQ: FlashParams = FlashParams {
    block_q: 96,
    block_k: 256,
    parallel: false,
};

const HEADS: usize = 2;
const D: usize = 64;

fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normal(rng: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n).map(|_| std * gaussian(rng)).collect()
}

fn diffuse(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        normal(&mut rng, shape.q_len(), 0.3),
        normal(&mut rng, shape.kv_len(), 0.3),
        normal(&mut rng, shape.kv_len(), 1.0),
    )
}

fn peaked(shape: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = normal(&mut rng, shape.kv_len(), 1.0);
    let v = normal(&mut rng, shape.kv_len(), 1.0);
    let mut q = vec![0.0f32; shape.q_len()];
    for h in 0..shape.heads {
        for i in 0..shape.n_q {
            let j = rng.random_range(0..shape.n_k);
            for c in 0..shape.d {
                q[(h * shape.n_q + i) * shape.d + c] = 20.0 * k[(h * shape.n_k + j) * shape.d + c];
            }
        }
    }
    (q, k, v)
}

fn params(method: LowRankMethod) -> RankParams {
    RankParams {
        method,
        ..RankParams::default()
    }
}

fn rel_l2(exact: &[f32], approx: &[f32]) -> f64 {
    let num: f64 = exact
        .iter()
        .zip(approx)
        .map(|(&e, &a)| (f64::from(a) - f64::from(e)).powi(2))
        .sum();
    let den: f64 = exact.iter().map(|&e| f64::from(e).powi(2)).sum();
    (num / den).sqrt()
}

fn describe(report: &RankReport) -> String {
    report
        .heads
        .iter()
        .map(|h| {
            format!(
                "h{} {:?} rank {:?} est {:.4} act {:.4} decide {:.1} ms",
                h.head,
                h.reason,
                h.rank,
                h.estimated_error,
                h.actual_error,
                h.decide_seconds * 1e3
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention/adaptive_rank");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    for n in [4096usize, 8192, 16384, 32768] {
        let shape = Shape::self_attention(HEADS, n, D);
        let (q, k, v) = diffuse(shape, n as u64);
        let dense = flash::attention(&q, &k, &v, shape, Mask::NONE, None, &SEQ).expect("flash");
        for (name, method) in [
            ("nystrom", LowRankMethod::Nystrom),
            ("rsvd", LowRankMethod::RandomizedSvd),
        ] {
            let p = params(method);
            let (o, report) =
                attention(&q, &k, &v, shape, Mask::NONE, None, &p, &SEQ).expect("valid call");
            eprintln!(
                "adaptive_rank {name} n={n}: error vs flash {:.4}; {}",
                rel_l2(&dense.out, &o.out),
                describe(&report)
            );
            g.throughput(Throughput::Elements((HEADS * n) as u64));
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &p, &SEQ)
                        .expect("valid call")
                });
            });
        }
        g.bench_function(BenchmarkId::new("dense-flash", n), |b| {
            b.iter(|| {
                flash::attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &SEQ)
                    .expect("valid call")
            });
        });
        if n == 4096 {
            let (q, k, v) = peaked(shape, 7);
            let p = params(LowRankMethod::Nystrom);
            let (_, report) =
                attention(&q, &k, &v, shape, Mask::NONE, None, &p, &SEQ).expect("valid call");
            eprintln!("adaptive_rank peaked n={n}: {}", describe(&report));
            g.bench_function(BenchmarkId::new("peaked-nystrom", n), |b| {
                b.iter(|| {
                    attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &p, &SEQ)
                        .expect("valid call")
                });
            });
            g.bench_function(BenchmarkId::new("peaked-dense-flash", n), |b| {
                b.iter(|| {
                    flash::attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &SEQ)
                        .expect("valid call")
                });
            });
        }
    }
    g.finish();
}
