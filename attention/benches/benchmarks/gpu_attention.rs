//! Benches of `attention::gpu::flash`: flash attention on whatever adapter wgpu picks, in
//! FLOPs (`4·n²·d` per head, non-causal), at `n = 512` and `1024`, `d = 64`, 4 heads, in the
//! group `gpu/flash/{adapter}`. Each iteration includes the upload of `Q`, `K`, `V` and the
//! readback of the output (the API's full cost).
//!
//! On a software adapter (lavapipe, `device_type = Cpu`, the CI machine) these are
//! correctness runs of the dispatch path, not GPU figures; the sizes are kept small for it.
//! Without an adapter the bench prints a line and measures nothing.

use std::time::Duration;

use attention::gpu::{Gpu, flash};
use attention::{Mask, Shape};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn data(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub(crate) fn bench(c: &mut Criterion) {
    let gpu = match Gpu::shared() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("gpu/flash: no adapter ({e}), skipped");
            return;
        }
    };
    let info = gpu.info();
    let mut g = c.benchmark_group(format!("gpu/flash/{}", info.name));
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut rng = StdRng::seed_from_u64(7);
    for &n in &[512usize, 1024] {
        let shape = Shape::self_attention(4, n, 64);
        let (q, k, v) = (
            data(&mut rng, shape.q_len()),
            data(&mut rng, shape.kv_len()),
            data(&mut rng, shape.kv_len()),
        );
        let flops = 4 * shape.heads * n * n * shape.d;
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_with_input(BenchmarkId::new("h4-d64", n), &n, |b, _| {
            b.iter(|| {
                flash::attention(gpu, &q, &k, &v, shape, Mask::NONE, None)
                    .expect("gpu flash attention")
            });
        });
    }
    g.finish();
}
