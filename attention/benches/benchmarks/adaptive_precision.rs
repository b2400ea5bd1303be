//! Benches of `attention::adaptive_precision`, one thread.
//!
//! - `attention/adaptive_precision/<format>/2048`: [`attention_with_formats`] with every
//!   head in one format, 4 heads, `n = 2048`, `d = 64`, non-causal; `f32` is the baseline
//!   (same kernel, no rounding), so the ratio is the cost of rounding the operands and `P`
//!   (the CPU has no narrow-format arithmetic: it computes on the rounded values in `f32`);
//! - `attention/adaptive_precision/policy-balanced/2048`: [`attention`] with the default
//!   `Balanced` policy (statistics + decision + the kernel);
//! - `attention/adaptive_precision/importance/2048`: [`attention_received`];
//! - `attention/adaptive_precision/flash/2048`: flash attention (one thread) on the same
//!   inputs, for scale.
//!
//! Before the group, `bench` prints each format's relative L2 error against the `f32` path.

use std::hint::black_box;
use std::time::Duration;

use attention::adaptive_precision::importance::attention_received;
use attention::adaptive_precision::{
    OperandFormat, PrecisionParams, attention, attention_with_formats,
};
use attention::flash::{self, FlashParams};
use attention::{Mask, Shape};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const SEQ: FlashParams = FlashParams {
    block_q: 96,
    block_k: 256,
    parallel: false,
};

fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
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

pub(crate) fn bench(c: &mut Criterion) {
    let (heads, n, d) = (4usize, 2048usize, 64usize);
    let shape = Shape::self_attention(heads, n, d);
    let mut rng = StdRng::seed_from_u64(1);
    let q = data(&mut rng, shape.q_len());
    let k = data(&mut rng, shape.kv_len());
    let v = data(&mut rng, shape.kv_len());
    let base = attention_with_formats(
        &q,
        &k,
        &v,
        shape,
        Mask::NONE,
        None,
        &[OperandFormat::F32; 4],
    )
    .expect("valid call");
    let mut g = c.benchmark_group("attention/adaptive_precision");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements((heads * n) as u64));
    for f in OperandFormat::ALL {
        let formats = [f; 4];
        let o = attention_with_formats(&q, &k, &v, shape, Mask::NONE, None, &formats)
            .expect("valid call");
        eprintln!(
            "adaptive_precision {f}: rel L2 error vs f32 {:.3e}",
            rel_l2(&base.out, &o.out)
        );
        g.bench_function(BenchmarkId::new(f.name(), n), |b| {
            b.iter(|| {
                attention_with_formats(black_box(&q), &k, &v, shape, Mask::NONE, None, &formats)
                    .expect("valid call")
            });
        });
    }
    let p = PrecisionParams::default();
    let (_, report) = attention(&q, &k, &v, shape, Mask::NONE, None, &p).expect("valid call");
    eprintln!("adaptive_precision balanced: {:?}", report.counts());
    g.bench_function(BenchmarkId::new("policy-balanced", n), |b| {
        b.iter(|| attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &p).expect("valid"));
    });
    g.bench_function(BenchmarkId::new("importance", n), |b| {
        b.iter(|| attention_received(black_box(&q), &k, shape, Mask::NONE, None).expect("valid"));
    });
    g.bench_function(BenchmarkId::new("flash", n), |b| {
        b.iter(|| {
            flash::attention(black_box(&q), &k, &v, shape, Mask::NONE, None, &SEQ).expect("valid")
        });
    });
    g.finish();
}
