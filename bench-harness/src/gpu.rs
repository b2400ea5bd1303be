//! `adaprec gpu` (which adapter wgpu finds) and `adaprec gpu-bench` (our WGSL matmul and
//! flash attention timed on it, for `scripts/gpu_compare.py`, which runs PyTorch on the same
//! shapes and prints the ratios). Runs from a prebuilt release binary plus the Vulkan loader:
//! no Rust toolchain needed on the GPU machine.

use std::time::Instant;

use anyhow::{Result, bail};
use attention::gpu::Gpu;
use attention::{Mask, Shape};
use clap::Args;
use serde_json::json;

/// `adaprec gpu-bench`.
#[derive(Debug, Args)]
pub(crate) struct GpuBenchArgs {
    /// `matmul` (n×n×n f32) or `flash` (flash attention forward, non-causal, f32).
    #[arg(long, value_parser = ["matmul", "flash"])]
    pub(crate) op: String,
    /// Matrix size (matmul) or sequence length (flash).
    #[arg(long, default_value_t = 1024)]
    pub(crate) n: usize,
    /// Head dimension (flash).
    #[arg(long, default_value_t = 64)]
    pub(crate) d: usize,
    /// Heads (flash).
    #[arg(long, default_value_t = 8)]
    pub(crate) heads: usize,
    /// Timed repetitions after one warm-up (the best is reported).
    #[arg(long, default_value_t = 5)]
    pub(crate) reps: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Seeded values in [−1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(0x9E37_79B9);
            (h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

pub(crate) fn run_gpu_info() -> Result<()> {
    let gpu = Gpu::shared()?;
    let i = gpu.info();
    println!("{i}");
    if i.is_software() {
        println!("(a software adapter: timings are correctness runs, not GPU figures)");
    }
    Ok(())
}

pub(crate) fn run_gpu_bench(a: &GpuBenchArgs) -> Result<()> {
    if a.n == 0 || a.n > 65_536 || a.d == 0 || a.d > 256 || a.heads == 0 || a.heads > 256 {
        bail!("sizes out of range (n 1..=65536, d 1..=256, heads 1..=256)");
    }
    if a.reps == 0 || a.reps > 1000 {
        bail!("--reps must be 1..=1000");
    }
    let gpu = Gpu::shared()?;
    let (flops, best) = match a.op.as_str() {
        "matmul" => {
            let n = a.n;
            let (x, y) = (values(n * n, 1), values(n * n, 2));
            let (ab, bb, cb) = (
                gpu.upload("a", &x),
                gpu.upload("b", &y),
                gpu.zeros("c", 4 * n * n),
            );
            let mut best = f64::INFINITY;
            for r in 0..=a.reps {
                let t = Instant::now();
                attention::gpu::matmul::matmul_buffers(gpu, &ab, &bb, &cb, n, n, n)?;
                gpu.wait()?;
                if r > 0 {
                    best = best.min(t.elapsed().as_secs_f64());
                }
            }
            (2.0 * (n as f64).powi(3), best)
        }
        _ => {
            let shape = Shape::self_attention(a.heads, a.n, a.d);
            let (q, k, v) = (
                values(shape.q_len(), 1),
                values(shape.kv_len(), 2),
                values(shape.kv_len(), 3),
            );
            let mut best = f64::INFINITY;
            for r in 0..=a.reps {
                let t = Instant::now();
                let o = attention::gpu::flash::attention(gpu, &q, &k, &v, shape, Mask::NONE, None)?;
                std::hint::black_box(o);
                if r > 0 {
                    best = best.min(t.elapsed().as_secs_f64());
                }
            }
            (
                4.0 * (a.n as f64).powi(2) * a.d as f64 * a.heads as f64,
                best,
            )
        }
    };
    let gflops = flops / best / 1e9;
    if a.json {
        println!(
            "{}",
            json!({
                "op": a.op, "n": a.n, "d": a.d, "heads": a.heads,
                "seconds": best, "gflops": gflops,
                "adapter": gpu.info().to_string(),
                "includes_transfers": a.op == "flash",
            })
        );
    } else {
        println!(
            "{} n={} d={} heads={}: {:.3} ms, {gflops:.1} GFLOP/s on {}{}",
            a.op,
            a.n,
            a.d,
            a.heads,
            best * 1e3,
            gpu.info(),
            if a.op == "flash" {
                " (upload + readback included)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
