//! Benches of `attention::infini`, one thread, throughput in tokens.
//!
//! - `attention/infini/stream-<update>/chunk-<c>`: [`InfiniStream`] at 4 heads, `d = 64`,
//!   segment 256, fed `c` tokens per push (`c = 1`: decoding; `c = 256`: one segment per
//!   push), in steady state (the stream keeps running across iterations);
//! - `attention/infini/stateless-linear/16384`: one stateless call over 16K tokens, same
//!   configuration, for the ratio.
//!
//! Before the groups, when the bench filter is empty or matches `attention/infini`,
//! `bench` streams 1K (warm-up), 16K and then 1M tokens (chunks of 256, Linear) through
//! fresh streams and prints `state_bytes()`, the growth of the process's peak resident set
//! (`VmHWM` in `/proc/self/status`, reset through `/proc/self/clear_refs` before each run)
//! and the throughput, by wall clock and on-CPU (`/proc/thread-self/schedstat`, unaffected
//! by other processes): state and growth should be the same for both lengths.

use std::hint::black_box;
use std::time::{Duration, Instant};

use attention::infini::{self, InfiniParams, InfiniStream, MemoryUpdate};
use attention::{Mask, Shape};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const HEADS: usize = 4;
const D: usize = 64;
const SEGMENT: usize = 256;
/// Tokens of pre-generated input the streams cycle through.
const POOL: usize = 4096;

fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Per-chunk inputs `[heads, chunk, d]` for `POOL / chunk` chunks.
struct Pool {
    chunk: usize,
    q: Vec<Vec<f32>>,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Pool {
    fn new(chunk: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(chunk as u64);
        let count = POOL / chunk;
        let len = HEADS * chunk * D;
        Self {
            chunk,
            q: (0..count).map(|_| data(&mut rng, len)).collect(),
            k: (0..count).map(|_| data(&mut rng, len)).collect(),
            v: (0..count).map(|_| data(&mut rng, len)).collect(),
        }
    }

    fn push(&self, s: &mut InfiniStream, i: usize) -> Vec<f32> {
        let i = i % self.q.len();
        s.push(&self.q[i], &self.k[i], &self.v[i], self.chunk)
            .expect("valid push")
    }
}

fn params(update: MemoryUpdate) -> InfiniParams {
    InfiniParams::new(SEGMENT, update).expect("valid segment")
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`): unaffected
/// by other processes sharing the machine.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Streams `tokens` tokens and prints the state size, the peak-RSS growth and the
/// throughput (wall clock and on-CPU).
fn peak_memory(tokens: usize, pool: &Pool) {
    let mut s = InfiniStream::new(HEADS, HEADS, D, None, params(MemoryUpdate::Linear))
        .expect("valid stream");
    // Reset the high-water mark to the current RSS (Linux ≥ 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = rss_kib();
    let (start, cpu0) = (Instant::now(), cpu_ns());
    let mut sink = 0.0f32;
    for i in 0..tokens / pool.chunk {
        sink += pool.push(&mut s, i)[0];
    }
    let (secs, cpu1) = (start.elapsed().as_secs_f64(), cpu_ns());
    let after = rss_kib();
    black_box(sink);
    let growth = match (before, after) {
        (Some((hwm0, _)), Some((hwm1, _))) => format!("{} KiB", hwm1.saturating_sub(hwm0)),
        _ => "n/a (no /proc/self/status)".to_owned(),
    };
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => format!(
            ", on-CPU {:.0} tokens/s",
            tokens as f64 / ((b - a) as f64 * 1e-9)
        ),
        _ => String::new(),
    };
    eprintln!(
        "attention/infini peak memory: {tokens} tokens streamed in {secs:.2} s \
         ({:.0} tokens/s{cpu}), state_bytes {} B, peak RSS growth {growth}{}",
        tokens as f64 / secs,
        s.state_bytes(),
        if reset {
            ""
        } else {
            " (VmHWM not reset: growth is a lower bound)"
        }
    );
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
            .any(|f| "attention/infini/peak-memory".contains(f.as_str()) || f.contains("infini"))
}

pub(crate) fn bench(c: &mut Criterion) {
    if filter_matches() {
        let pool = Pool::new(SEGMENT);
        // Warm-up: the allocator and the kernels' first buffers, outside the measurements.
        peak_memory(4 * SEGMENT, &pool);
        peak_memory(16_384, &pool);
        peak_memory(1 << 20, &pool);
    }

    let mut g = c.benchmark_group("attention/infini");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for update in [MemoryUpdate::Linear, MemoryUpdate::Delta] {
        let name = match update {
            MemoryUpdate::Linear => "stream-linear",
            MemoryUpdate::Delta => "stream-delta",
        };
        for chunk in [1usize, 256] {
            let pool = Pool::new(chunk);
            let mut s =
                InfiniStream::new(HEADS, HEADS, D, None, params(update)).expect("valid stream");
            // Tokens per iteration: one segment.
            let pushes = SEGMENT / chunk;
            g.throughput(Throughput::Elements(SEGMENT as u64));
            let mut i = 0;
            g.bench_function(BenchmarkId::new(name, format!("chunk-{chunk}")), |b| {
                b.iter(|| {
                    for _ in 0..pushes {
                        black_box(pool.push(&mut s, i));
                        i += 1;
                    }
                });
            });
        }
    }
    let n = 16_384;
    let shape = Shape::self_attention(HEADS, n, D);
    let mut rng = StdRng::seed_from_u64(5);
    let q = data(&mut rng, shape.q_len());
    let k = data(&mut rng, shape.kv_len());
    let v = data(&mut rng, shape.kv_len());
    let p = params(MemoryUpdate::Linear);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("stateless-linear", n), |b| {
        b.iter(|| {
            infini::attention(black_box(&q), &k, &v, shape, Mask::causal(0), None, &p)
                .expect("valid call")
        });
    });
    g.finish();
}
