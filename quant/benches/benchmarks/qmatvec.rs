//! `qmatvec/16384x4096`: `y = W·x` for a 16384×4096 weight in every layout, with two rayon
//! tasks and on one thread, throughput in weight bytes streamed (codes + scales + zero
//! points), beside a 64 MiB memcpy in the same group (its throughput is the bytes copied).
//! Decoding is memory-bound, so the figure of merit is each layout's bytes/s against the
//! memcpy's, and the f32 time against the 4-bit times.
//!
//! `qmatvec/model-shapes`: the projections of a small model (SmolLM-135M: hidden 576,
//! MLP 1536, vocabulary 49152) in every layout, two tasks; for reference only.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use half::f16;
use numerics::Par;
use quant::fp8::Fp8Kind;
use quant::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0};
use quant::qmatvec::{QWeight, matvec};

/// The NF4 code values (QLoRA, appendix E).
const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// A xorshift64 stream: random bytes for codes, fast enough for a 256 MiB matrix.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// Uniform on `[lo, hi)`.
    fn f32s(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32))
            .collect()
    }

    fn f16(&mut self, lo: f32, hi: f32) -> f16 {
        f16::from_f32(self.f32s(1, lo, hi)[0])
    }
}

/// The benchmarked layouts.
#[derive(Clone, Copy)]
enum Layout {
    Int8PerChannel,
    Int4G32,
    Nf4B64,
    Q8_0,
    Q4_0,
    Q4_1,
    Fp8E4M3,
    F32,
}

const LAYOUTS: [Layout; 8] = [
    Layout::Int8PerChannel,
    Layout::Int4G32,
    Layout::Nf4B64,
    Layout::Q8_0,
    Layout::Q4_0,
    Layout::Q4_1,
    Layout::Fp8E4M3,
    Layout::F32,
];

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Int8PerChannel => "int8-per-channel",
            Layout::Int4G32 => "int4-g32-asym",
            Layout::Nf4B64 => "nf4-b64",
            Layout::Q8_0 => "q8_0",
            Layout::Q4_0 => "q4_0",
            Layout::Q4_1 => "q4_1",
            Layout::Fp8E4M3 => "fp8-e4m3",
            Layout::F32 => "f32",
        }
    }
}

/// Random weights in one layout (codes uniform, plausible scales).
enum Owned {
    U8(Vec<u8>, Vec<f32>, Vec<u8>, usize),
    U4(Vec<u8>, Vec<f32>, Vec<u8>, usize),
    Codebook4(Vec<u8>, Vec<f32>, usize),
    Q8_0(Vec<BlockQ8_0>),
    Q4_0(Vec<BlockQ4_0>),
    Q4_1(Vec<BlockQ4_1>),
    Fp8(Vec<u8>, Vec<f32>),
    F32(Vec<f32>),
}

impl Owned {
    fn new(layout: Layout, rows: usize, cols: usize) -> Owned {
        let mut g = Bits(0x9E37_79B9_7F4A_7C15 ^ (rows * cols) as u64);
        let n = rows * cols;
        match layout {
            Layout::Int8PerChannel => {
                Owned::U8(g.bytes(n), g.f32s(rows, 1e-3, 1e-2), vec![128; rows], cols)
            }
            Layout::Int4G32 => Owned::U4(
                g.bytes(n / 2),
                g.f32s(n / 32, 1e-3, 1e-2),
                g.bytes(n / 32).iter().map(|b| b & 15).collect(),
                32,
            ),
            Layout::Nf4B64 => Owned::Codebook4(g.bytes(n / 2), g.f32s(n / 64, 0.01, 0.1), 64),
            Layout::Q8_0 => Owned::Q8_0(
                (0..n / 32)
                    .map(|_| BlockQ8_0 {
                        d: g.f16(1e-3, 1e-2),
                        qs: bytemuck::cast(<[u8; 32]>::try_from(g.bytes(32)).unwrap()),
                    })
                    .collect(),
            ),
            Layout::Q4_0 => Owned::Q4_0(
                (0..n / 32)
                    .map(|_| BlockQ4_0 {
                        d: g.f16(1e-3, 1e-2),
                        qs: g.bytes(16).try_into().unwrap(),
                    })
                    .collect(),
            ),
            Layout::Q4_1 => Owned::Q4_1(
                (0..n / 32)
                    .map(|_| BlockQ4_1 {
                        d: g.f16(1e-3, 1e-2),
                        m: g.f16(-0.05, 0.0),
                        qs: g.bytes(16).try_into().unwrap(),
                    })
                    .collect(),
            ),
            // Finite E4M3 codes only (0x7F/0xFF are NaN).
            Layout::Fp8E4M3 => Owned::Fp8(
                g.bytes(n)
                    .iter()
                    .map(|&b| if b & 0x7F == 0x7F { b ^ 1 } else { b })
                    .collect(),
                g.f32s(rows, 1e-3, 1e-2),
            ),
            Layout::F32 => Owned::F32(g.f32s(n, -0.05, 0.05)),
        }
    }

    fn view(&self) -> QWeight<'_> {
        match self {
            Owned::U8(codes, scales, zeros, group) => QWeight::U8 {
                codes,
                scales,
                zeros,
                group: *group,
            },
            Owned::U4(packed, scales, zeros, group) => QWeight::U4 {
                packed,
                scales,
                zeros,
                group: *group,
            },
            Owned::Codebook4(packed, absmax, block) => QWeight::Codebook4 {
                packed,
                absmax,
                block: *block,
                codebook: &NF4,
            },
            Owned::Q8_0(b) => QWeight::Q8_0(b),
            Owned::Q4_0(b) => QWeight::Q4_0(b),
            Owned::Q4_1(b) => QWeight::Q4_1(b),
            Owned::Fp8(codes, scales) => QWeight::Fp8 {
                codes,
                scales,
                kind: Fp8Kind::E4M3,
            },
            Owned::F32(w) => QWeight::F32(w),
        }
    }
}

/// Benchmarks `matvec` of one weight under `id`, throughput in its weight bytes.
fn bench_matvec(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    w: &QWeight<'_>,
    rows: usize,
    cols: usize,
    par: Par,
) {
    let x = Bits(7).f32s(cols, -1.0, 1.0);
    let mut y = vec![0.0f32; rows];
    g.throughput(Throughput::Bytes(w.weight_bytes() as u64));
    g.bench_function(id, |b| {
        b.iter(|| matvec(w, rows, cols, black_box(&x), black_box(&mut y), par))
    });
}

fn big(c: &mut Criterion) {
    let (rows, cols) = (16384, 4096);
    let mut g = c.benchmark_group(format!("qmatvec/{rows}x{cols}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let len = 64 << 20;
    let src = Bits(3).bytes(len);
    let mut dst = vec![0u8; len];
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(BenchmarkId::new("memcpy", "64MiB"), |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)))
    });
    drop((src, dst));
    for layout in LAYOUTS {
        let owned = Owned::new(layout, rows, cols);
        let w = owned.view();
        for (par, label) in [(Par::rayon(2), "rayon2"), (Par::Seq, "seq")] {
            let id = BenchmarkId::new(layout.name(), label);
            bench_matvec(&mut g, id, &w, rows, cols, par);
        }
    }
    g.finish();
}

fn model_shapes(c: &mut Criterion) {
    let mut g = c.benchmark_group("qmatvec/model-shapes");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(700));
    for (rows, cols) in [(576, 576), (576, 1536), (1536, 576), (49152, 576)] {
        for layout in LAYOUTS {
            let owned = Owned::new(layout, rows, cols);
            let id = BenchmarkId::new(layout.name(), format!("{rows}x{cols}"));
            bench_matvec(&mut g, id, &owned.view(), rows, cols, Par::rayon(2));
        }
    }
    g.finish();
}

criterion::criterion_group!(benches, big, model_shapes);
