//! Benches of the linear-algebra GPU kernels, each id labelled with the adapter's name:
//!
//! - `gpu/matmul/{adapter}`: `C = A·B` at `256³` and `1024³` in f32, native f16 (when the
//!   adapter has `SHADER_F16`) and packed bf16; throughput in elements/s where one element is
//!   one FLOP (`2·m·n·k` per product), so criterion's `Gelem/s` reads as GFLOP/s;
//! - `gpu/qmatvec/{adapter}`: `y = W·x` at `4096 × 4096` per weight format; throughput in
//!   bytes of quantized weight storage per second (GB/s).
//!
//! Operands stay on the device; an iteration is one dispatch and a wait for the queue.
//! On a software adapter (Mesa's lavapipe, `device_type` `Cpu`) these are correctness runs of
//! the dispatch path, not GPU figures: sample counts and times are kept short, and `1024³`
//! runs in f32 only.

use std::hint::black_box;
use std::time::Duration;

use attention::gpu::Gpu;
use attention::gpu::matmul::{self, Storage};
use attention::gpu::qmatvec::QWeights;
use criterion::{BenchmarkId, Criterion, Throughput};
use quant::QuantizedTensor;

fn data(n: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic spread in [−1, 1).
    (0..n)
        .map(|i| {
            let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

pub(crate) fn bench(c: &mut Criterion) {
    let gpu = match Gpu::shared() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("SKIP gpu/matmul, gpu/qmatvec: {e}");
            return;
        }
    };
    let adapter = gpu.info().name.clone();
    let software = gpu.info().is_software();

    let mut g = c.benchmark_group(format!("gpu/matmul/{adapter}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(if software { 2 } else { 3 }));
    let mut storages = vec![Storage::F32, Storage::PackedBf16];
    if gpu.info().shader_f16 {
        storages.insert(1, Storage::F16Native);
    }
    // 1024³ takes over a second per product on lavapipe: software adapters run it in f32
    // only.
    for n in [256usize, 1024] {
        let a = data(n * n, 1);
        let b = data(n * n, 2);
        for &storage in &storages {
            if software && n > 256 && storage != Storage::F32 {
                continue;
            }
            let ab = matmul::upload(gpu, "bench A", &a, storage);
            let bb = matmul::upload(gpu, "bench B", &b, storage);
            let cb = gpu.zeros("bench C", 4 * n * n);
            g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
            g.bench_function(BenchmarkId::new(format!("{storage:?}"), n), |it| {
                it.iter(|| {
                    matmul::matmul_buffers_with(gpu, storage, &ab, &bb, &cb, n, n, n)
                        .expect("matmul dispatch");
                    gpu.wait().expect("wait");
                    black_box(&cb);
                });
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group(format!("gpu/qmatvec/{adapter}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let (rows, cols) = (4096usize, 4096usize);
    let w = data(rows * cols, 3);
    let x = gpu.upload("bench x", &data(cols, 4));
    let y = gpu.zeros("bench y", 4 * rows);
    for format in ["int8", "int4-g32", "q4_0", "q4_1", "q8_0", "fp8-e4m3"] {
        let q = QuantizedTensor::quantize(format.parse().expect("format"), &w, &[rows, cols])
            .expect("quantize");
        let prepared = QWeights::upload(gpu, &q).expect("upload");
        g.throughput(Throughput::Bytes(prepared.weight_bytes() as u64));
        g.bench_function(BenchmarkId::new(format, format!("{rows}x{cols}")), |it| {
            it.iter(|| {
                prepared
                    .matvec_buffers(gpu, &x, &y)
                    .expect("qmatvec dispatch");
                gpu.wait().expect("wait");
                black_box(&y);
            });
        });
    }
    g.finish();
}
