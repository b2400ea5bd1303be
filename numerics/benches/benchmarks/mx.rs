//! `mx/quantize/<format>` and `mx/dequantize/<format>` on 64 MiB of f32, one thread,
//! throughput in f32-side bytes, beside `memcpy`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use numerics::{MxFormat, NonFinite, Par, mx};

use super::{N, config, data};

fn mx_bench(c: &mut Criterion) {
    let src = data(N);
    let mut g = c.benchmark_group("mx");
    g.throughput(Throughput::Bytes((N * 4) as u64));
    let mut copy = vec![0.0f32; N];
    g.bench_function(BenchmarkId::new("memcpy", "64MiB"), |b| {
        b.iter(|| copy.copy_from_slice(black_box(&src)))
    });
    for format in [MxFormat::Fp8E4M3, MxFormat::Fp4E2M1, MxFormat::Int8] {
        g.bench_function(
            BenchmarkId::new(format!("quantize/{format}"), "64MiB"),
            |b| {
                b.iter(|| {
                    mx::quantize(format, black_box(&src), NonFinite::Error, Par::Seq).unwrap()
                })
            },
        );
        let q = mx::quantize(format, &src, NonFinite::Error, Par::Seq).unwrap();
        let mut out = vec![0.0f32; N];
        g.bench_function(
            BenchmarkId::new(format!("dequantize/{format}"), "64MiB"),
            |b| b.iter(|| q.dequantize_into(black_box(&mut out), Par::Seq).unwrap()),
        );
    }
    g.finish();
}

criterion::criterion_group! {
    name = benches;
    config = config();
    targets = mx_bench
}
