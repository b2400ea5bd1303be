//! `quantize/<format>` and `dequantize/<format>` on 64 MiB of f32 (a 4096 × 4096 weight),
//! throughput in f32-side bytes, beside a 64 MiB memcpy in the same group.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use quant::{QuantFormat, QuantizedTensor};

const ROWS: usize = 4096;
const COLS: usize = 4096;

/// Formats benched: one per quantizer family and the common granularities.
const FORMATS: &[&str] = &[
    "f16",
    "bf16",
    "fp8-e4m3",
    "int8",
    "int4-g32",
    "int4-g32-asym",
    "int2-g64-asym",
    "nf4",
    "fp4",
    "q8_0",
    "q4_0",
    "q4_1",
    "mxfp8-e4m3",
    "mxfp4",
];

fn data() -> Vec<f32> {
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    (0..ROWS * COLS)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

fn formats(c: &mut Criterion) {
    let x = data();
    let mut g = c.benchmark_group("formats");
    g.throughput(Throughput::Bytes((ROWS * COLS * 4) as u64));
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2));
    let mut copy = vec![0.0f32; x.len()];
    g.bench_function(BenchmarkId::new("memcpy", "64MiB"), |b| {
        b.iter(|| copy.copy_from_slice(black_box(&x)))
    });
    let mut out = vec![0.0f32; x.len()];
    for name in FORMATS {
        let format: QuantFormat = name.parse().expect("bench formats parse");
        g.bench_function(BenchmarkId::new(format!("quantize/{name}"), "64MiB"), |b| {
            b.iter(|| QuantizedTensor::quantize(format, black_box(&x), &[ROWS, COLS]).unwrap())
        });
        let q = QuantizedTensor::quantize(format, &x, &[ROWS, COLS]).unwrap();
        g.bench_function(
            BenchmarkId::new(format!("dequantize/{name}"), "64MiB"),
            |b| b.iter(|| q.dequantize_into(black_box(&mut out)).unwrap()),
        );
    }
    g.finish();
}

criterion::criterion_group!(benches, formats);
