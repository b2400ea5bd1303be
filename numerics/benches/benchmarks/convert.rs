//! `convert/encode/<format>` and `convert/decode/<format>` on 64 MiB of f32, one thread,
//! throughput in f32-side bytes (4 per element, whichever direction), beside `memcpy`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use numerics::{Element, F4E2M1FN, F8E4M3FN, F8E5M2, Par, bf16, decode_slice, encode_slice, f16};

use super::{N, config, data};

fn encode_one<T: Element>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    src: &[f32],
) {
    let mut dst = vec![T::zeroed(); src.len()];
    c.bench_function(BenchmarkId::new(T::FORMAT.name(), "64MiB"), |b| {
        b.iter(|| encode_slice(black_box(src), black_box(&mut dst), Par::Seq).unwrap())
    });
}

fn decode_one<T: Element>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    src: &[f32],
) {
    let mut codes = vec![T::zeroed(); src.len()];
    encode_slice(src, &mut codes, Par::Seq).unwrap();
    let mut out = vec![0.0f32; src.len()];
    c.bench_function(BenchmarkId::new(T::FORMAT.name(), "64MiB"), |b| {
        b.iter(|| decode_slice(black_box(&codes), black_box(&mut out), Par::Seq).unwrap())
    });
}

fn memcpy(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, src: &[f32]) {
    let mut dst = vec![0.0f32; src.len()];
    c.bench_function(BenchmarkId::new("memcpy", "64MiB"), |b| {
        b.iter(|| dst.copy_from_slice(black_box(src)))
    });
}

fn encode(c: &mut Criterion) {
    let src = data(N);
    let mut g = c.benchmark_group("convert/encode");
    g.throughput(Throughput::Bytes((N * 4) as u64));
    memcpy(&mut g, &src);
    encode_one::<f16>(&mut g, &src);
    encode_one::<bf16>(&mut g, &src);
    encode_one::<F8E4M3FN>(&mut g, &src);
    encode_one::<F8E5M2>(&mut g, &src);
    encode_one::<F4E2M1FN>(&mut g, &src);
    // The per-element scalar cast, for the speed-up of the slice path.
    let mut dst = vec![F8E4M3FN::ZERO; N];
    g.bench_function(BenchmarkId::new("f8e4m3fn-scalar-loop", "64MiB"), |b| {
        b.iter(|| {
            for (d, &x) in dst.iter_mut().zip(black_box(&src)) {
                *d = F8E4M3FN::from_f32(x);
            }
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let src = data(N);
    let mut g = c.benchmark_group("convert/decode");
    g.throughput(Throughput::Bytes((N * 4) as u64));
    memcpy(&mut g, &src);
    decode_one::<f16>(&mut g, &src);
    decode_one::<bf16>(&mut g, &src);
    decode_one::<F8E4M3FN>(&mut g, &src);
    decode_one::<F8E5M2>(&mut g, &src);
    decode_one::<F4E2M1FN>(&mut g, &src);
    g.finish();
}

criterion::criterion_group! {
    name = benches;
    config = config();
    targets = encode, decode
}
