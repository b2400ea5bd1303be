//! Benches of `attention::dilated`, one thread, throughput in tokens (query rows).
//!
//! - `attention/dilated/longnet-3pairs/<n>`: LongNet pairs `w = 512, 1024, 2048`,
//!   `r = 1, 2, 4`, 4 heads, `d = 64`, causal self-attention at `n = 4K … 256K`. The cost is
//!   linear in `n`, so the time per token should stay flat across `n`;
//! - `attention/dilated/dense-flash/4096`: dense causal flash attention at `n = 4096`, same
//!   heads and `d`, for the ratio (dense is `O(n²)`: its time per token grows with `n`).
//!
//! Before the group, when the bench filter is empty or matches `attention/dilated`, `bench`
//! prints to stderr the best-of-3 *on-CPU* time per token of the same calls
//! (`/proc/thread-self/schedstat`: unaffected by other processes sharing the machine) and
//! the spread `max/min` across `n`.

use std::hint::black_box;
use std::time::Duration;

use attention::dilated::{self, DilatedParams};
use attention::flash::{self, FlashParams};
use attention::{Mask, Shape};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// One thread: the blocks run in order on the caller. `128 × 128` tiles were the fastest
/// of `{32, 64, 96, 128, 256}²` tried at `n = 16K` (each sparse segment here has 256 rows).
const SEQ: FlashParams = FlashParams {
    block_q: 128,
    block_k: 128,
    parallel: false,
};

/// The dense baseline at flash's own tuned defaults, one thread.
const DENSE: FlashParams = FlashParams {
    block_q: 96,
    block_k: 256,
    parallel: false,
};

const HEADS: usize = 4;
const D: usize = 64;
const SIZES: [usize; 4] = [4096, 16384, 65536, 262_144];

fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn inputs(n: usize) -> (Shape, Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = Shape::self_attention(HEADS, n, D);
    let mut rng = StdRng::seed_from_u64(n as u64);
    let q = data(&mut rng, shape.q_len());
    let k = data(&mut rng, shape.kv_len());
    let v = data(&mut rng, shape.kv_len());
    (shape, q, k, v)
}

fn longnet() -> DilatedParams {
    DilatedParams::new(&[512, 1024, 2048], &[1, 2, 4]).expect("valid LongNet pairs")
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`).
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether the command line's bench filter (if any) can match this group.
fn filter_matches() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| "attention/dilated".contains(f.as_str()) || f.contains("dilated"))
}

/// The on-CPU time-per-token table (see the module docs).
fn per_token_table(params: &DilatedParams) {
    let mut per_token = Vec::new();
    for n in SIZES {
        let (shape, q, k, v) = inputs(n);
        let mut best = u64::MAX;
        for _ in 0..3 {
            let (Some(t0), out, Some(t1)) = (
                cpu_ns(),
                dilated::attention(&q, &k, &v, shape, Mask::causal(0), None, params, &SEQ),
                cpu_ns(),
            ) else {
                eprintln!("attention/dilated: no /proc/thread-self/schedstat, no CPU-time table");
                return;
            };
            black_box(out.expect("valid call"));
            best = best.min(t1 - t0);
        }
        let us = best as f64 / n as f64 / 1e3;
        eprintln!("attention/dilated on-CPU time per token, n = {n}: {us:.3} µs");
        per_token.push(us);
    }
    let max = per_token.iter().copied().fold(f64::MIN, f64::max);
    let min = per_token.iter().copied().fold(f64::MAX, f64::min);
    eprintln!(
        "attention/dilated per-token spread across n = 4K…256K: max/min = {:.3}",
        max / min
    );
}

pub(crate) fn bench(c: &mut Criterion) {
    let params = longnet();
    if filter_matches() {
        per_token_table(&params);
    }
    let mut g = c.benchmark_group("attention/dilated");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let (shape, q, k, v) = inputs(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("longnet-3pairs", n), |b| {
            b.iter(|| {
                dilated::attention(
                    black_box(&q),
                    &k,
                    &v,
                    shape,
                    Mask::causal(0),
                    None,
                    &params,
                    &SEQ,
                )
                .expect("valid call")
            });
        });
        if n == 4096 {
            g.bench_function(BenchmarkId::new("dense-flash", n), |b| {
                b.iter(|| {
                    flash::attention(black_box(&q), &k, &v, shape, Mask::causal(0), None, &DENSE)
                        .expect("valid call")
                });
            });
        }
    }
    g.finish();
}
