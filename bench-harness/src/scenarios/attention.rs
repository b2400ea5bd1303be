//! Attention tables:
//!
//! - `attention_variants`: every variant of the `attention` crate at several sequence
//!   lengths on seeded Gaussian inputs: error against dense attention (max and relative),
//!   time and peak memory of the call;
//! - `attention_rank`: adaptive-rank decisions per head (entropy, chosen rank, estimated and
//!   actual error) on heads of graded temperature, with the speedup over flash;
//! - `attention_model`: zero-shot perplexity of SmolLM2-135M with each variant swapped into
//!   all layers or a subset (these variants were not trained into the model: the change is
//!   what they cost as drop-in replacements).

use std::time::Instant;

use anyhow::Result;
use attention::adaptive_rank::{self, RankParams};
use attention::flash::{self, FlashParams};
use attention::{Mask, Shape, Variant};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::{Ctx, Scenario};
use crate::report::{Column, Table, fixed, sci3};

/// Heads and head dimension of the synthetic tables.
const HEADS: usize = 4;
/// Head dimension.
const D: usize = 64;

/// See the module docs.
pub(crate) const VARIANTS: Scenario = Scenario {
    name: "attention_variants",
    description: "Attention variants vs dense on seeded Gaussian inputs (4 heads, d 64, \
                  causal): max/relative error, time, peak memory, n = 512…8192",
    run: run_variants,
};
/// See the module docs.
pub(crate) const RANK: Scenario = Scenario {
    name: "attention_rank",
    description: "Adaptive-rank attention per head: entropy, chosen rank, estimated vs actual \
                  error and speedup over flash on heads of graded temperature",
    run: run_rank,
};
/// See the module docs.
pub(crate) const MODEL: Scenario = Scenario {
    name: "attention_model",
    description: "Zero-shot PPL of SmolLM2-135M with each attention variant swapped into all \
                  layers or a subset (WikiText-2, ctx 512)",
    run: run_model,
};

/// Seeded `N(0, σ²)` samples.
fn gaussian(n: usize, sigma: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let x: f32 = StandardNormal.sample(&mut rng);
            x * sigma
        })
        .collect()
}

/// Time (best of `reps`) and peak bytes allocated above the start of the call.
fn measure<T>(reps: usize, mut f: impl FnMut() -> Result<T>) -> Result<(T, f64, usize)> {
    let mut best = f64::INFINITY;
    let mut peak = 0usize;
    let mut out = None;
    for _ in 0..reps.max(1) {
        let base = crate::PEAK.current_usage();
        crate::PEAK.reset_peak_usage();
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        peak = peak.max(crate::PEAK.peak_usage().saturating_sub(base));
        out = Some(r);
    }
    Ok((out.expect("at least one run"), best, peak))
}

fn errors(got: &[f32], want: &[f32]) -> (f64, f64) {
    let (mut max, mut num, mut den) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in got.iter().zip(want) {
        let d = f64::from(*a) - f64::from(*b);
        max = max.max(d.abs());
        num += d * d;
        den += f64::from(*b) * f64::from(*b);
    }
    (max, (num / den.max(f64::MIN_POSITIVE)).sqrt())
}

/// The variants of the table, as `attention::Variant` specs.
const SPECS: [&str; 9] = [
    "reference",
    "flash",
    "dilated:w=128,256,512;r=1,2,4",
    "infini:seg=256;update=linear",
    "infini:seg=256;update=delta",
    "rank:tol=0.05",
    "precision:format=bf16",
    "precision:format=e4m3",
    "precision:policy=balanced",
];

/// The GPU (WGSL) version of `variant`, if it has one, as a table cell: best-of-3 time
/// (upload and readback included) and relative error against the CPU variant's output `cpu`;
/// `–` without a GPU version, `refused` when the adapter refuses the size (llvmpipe's loop
/// budget, `attention::gpu::Gpu::loop_budget`).
fn gpu_cell(
    gpu: &attention::gpu::Gpu,
    variant: &Variant,
    (q, k, v): (&[f32], &[f32], &[f32]),
    shape: Shape,
    mask: Mask<'_>,
    cpu: &attention::Output,
) -> Result<String> {
    use attention::gpu as g;
    let run = || -> attention::Result<Option<attention::Output>> {
        Ok(match variant {
            Variant::Flash(_) => Some(g::flash::attention(gpu, q, k, v, shape, mask, None)?),
            Variant::Dilated(p) => Some(g::dilated::attention(gpu, q, k, v, shape, mask, None, p)?),
            Variant::Infini(p) => Some(g::infini::attention(gpu, q, k, v, shape, mask, None, p)?),
            _ => None,
        })
    };
    match run() {
        Ok(None) => return Ok("–".into()),
        Err(attention::Error::Gpu { reason }) if reason.contains("budget") => {
            return Ok("refused (loop budget)".into());
        }
        Err(e) => return Err(e.into()),
        Ok(Some(_)) => {}
    }
    let (out, secs, _) = measure(3, || Ok(run()?))?;
    let out = out.expect("has a GPU version");
    Ok(format!(
        "{:.2} ({:.1e})",
        secs * 1e3,
        errors(&out.out, &cpu.out).1
    ))
}

fn run_variants(ctx: &Ctx) -> Result<Table> {
    let gpu = if ctx.gpu {
        match attention::gpu::Gpu::shared() {
            Ok(g) => {
                ctx.note(&format!("GPU column on {}", g.info()));
                Some(g)
            }
            Err(e) => {
                ctx.note(&format!("--gpu: no GPU column ({e})"));
                None
            }
        }
    } else {
        None
    };
    let mut rows = Vec::new();
    for (ni, n) in [512usize, 2048, 8192].into_iter().enumerate() {
        let shape = Shape::self_attention(HEADS, n, D);
        let seed = ctx.seed ^ ((ni as u64 + 1) * 0x9E37);
        let (q, k, v) = (
            gaussian(shape.q_len(), 1.0, seed),
            gaussian(shape.kv_len(), 1.0, seed + 1),
            gaussian(shape.kv_len(), 1.0, seed + 2),
        );
        let mask = Mask::causal(0);
        let mut times = Vec::new();
        // The dense output every variant is compared with; its time is taken again in the
        // `flash` row, which the ratios use (same conditions as the other rows).
        let (dense, _, _) = measure(1, || {
            Ok(flash::attention(
                &q,
                &k,
                &v,
                shape,
                mask,
                None,
                &FlashParams::default(),
            )?)
        })?;
        for spec in SPECS {
            if spec == "reference" && n > 2048 {
                continue; // O(n²·d) in f64: minutes at 8192
            }
            let variant: Variant = spec.parse()?;
            let reps = if n >= 8192 { 1 } else { 3 };
            let (out, secs, peak) =
                measure(reps, || Ok(variant.run(&q, &k, &v, shape, mask, None)?))?;
            let (max, rel) = errors(&out.out, &dense.out);
            times.push(secs);
            ctx.note(&format!(
                "n={n} {spec}: rel {rel:.2e}, {:.1} ms",
                secs * 1e3
            ));
            let mut row = vec![
                format!("`{spec}`"),
                n.to_string(),
                sci3(max),
                sci3(rel),
                fixed(secs * 1e3, 2),
                String::new(), // the ratio, once the flash row's time is known
                fixed(peak as f64 / f64::from(1u32 << 20), 2),
            ];
            if let Some(gpu) = gpu {
                row.push(gpu_cell(gpu, &variant, (&q, &k, &v), shape, mask, &out)?);
            }
            rows.push(row);
        }
        let first = rows.len() - times.len();
        let flash_row = SPECS
            .iter()
            .filter(|s| **s != "reference" || n <= 2048)
            .position(|s| *s == "flash")
            .expect("flash is a spec");
        let flash_time = times[flash_row];
        for (row, t) in rows[first..].iter_mut().zip(&times) {
            row[5] = fixed(t / flash_time, 2);
        }
    }
    Ok(Table {
        name: VARIANTS.name,
        title: "Attention variants against dense attention".to_string(),
        intro: vec![format!(
            "Q, K, V ~ N(0, 1), seeded, {HEADS} heads, d = {D}, causal self-attention, one \
             call per variant (`attention::Variant::run`) on all cores. The error is against \
             flash attention (the dense path; `reference`, the f64 oracle, shows flash's own \
             error). Dilated, Infini-attention and low-rank attention compute *different* \
             functions from dense attention: their error is how far they move the output, not \
             a bug. Time is the best of 3 calls (1 at n = 8192); peak memory is the largest \
             heap growth during the call (counted by the harness's allocator)."
        )],
        columns: [
            Column::text("variant", "variant", "`attention::Variant` spec"),
            Column::num("n", "n", "sequence length (queries = keys)"),
            Column::num(
                "max_abs_err",
                "max |Δ|",
                "largest absolute difference from flash",
            ),
            Column::num(
                "rel_err",
                "rel. error",
                "‖o − o_flash‖₂ / ‖o_flash‖₂ (above 1 when a variant sees far fewer keys: \
                 dense causal rows average many values and have small norms)",
            ),
            Column::num("ms", "ms", "wall time of the call (varies run to run)"),
            Column::num(
                "time_vs_flash",
                "× flash time",
                "time / flash's time at the same n",
            ),
            Column::num("peak_mib", "peak MiB", "heap growth during the call"),
        ]
        .into_iter()
        .chain(gpu.map(|g| {
            Column::text(
                "gpu_ms",
                "GPU ms (rel. err. vs CPU)",
                if g.info().is_software() {
                    "WGSL kernel through wgpu on a SOFTWARE adapter (correctness run, not a \
                     GPU figure): best of 3, upload and readback included"
                } else {
                    "WGSL kernel through wgpu: best of 3, upload and readback included"
                },
            )
        }))
        .collect(),
        rows,
        notes: vec![
            "Random Gaussian inputs give diffuse attention (near-uniform rows), the regime \
             where low-rank approximations are accurate and where dilated attention's \
             missing keys matter least; real models' heads are often peaked (see \
             `attention_rank` and `attention_model`)."
                .to_string(),
        ],
    })
}

fn run_rank(ctx: &Ctx) -> Result<Table> {
    let n = 4096;
    // One head per temperature: Q scaled by t, so scores spread as t.
    let temps = [0.05f32, 0.2, 0.5, 1.0, 2.0, 4.0];
    let heads = temps.len();
    let shape = Shape::self_attention(heads, n, D);
    let mut q = gaussian(shape.q_len(), 1.0, ctx.seed ^ 0x51);
    for (h, t) in temps.iter().enumerate() {
        q[h * n * D..(h + 1) * n * D]
            .iter_mut()
            .for_each(|x| *x *= t);
    }
    let k = gaussian(shape.kv_len(), 1.0, ctx.seed ^ 0x52);
    let v = gaussian(shape.kv_len(), 1.0, ctx.seed ^ 0x53);
    let fl = FlashParams::default();
    let (dense, t_flash, _) = measure(2, || {
        Ok(flash::attention(&q, &k, &v, shape, Mask::NONE, None, &fl)?)
    })?;
    let params = RankParams::default();
    let ((out, rep), t_rank, _) = measure(2, || {
        Ok(adaptive_rank::attention(
            &q,
            &k,
            &v,
            shape,
            Mask::NONE,
            None,
            &params,
            &fl,
        )?)
    })?;
    let mut rows = Vec::new();
    for (d, t) in rep.heads.iter().zip(temps) {
        let h = d.head;
        let (_, rel) = errors(
            &out.out[h * n * D..(h + 1) * n * D],
            &dense.out[h * n * D..(h + 1) * n * D],
        );
        rows.push(vec![
            h.to_string(),
            fixed(f64::from(t), 2),
            fixed(d.global_entropy, 3),
            fixed(d.local_entropy_mean, 3),
            sci3(d.local_entropy_var),
            d.rank.map_or("dense".into(), |r| r.to_string()),
            sci3(d.estimated_error),
            sci3(d.actual_error),
            sci3(rel),
            fixed(d.decide_seconds * 1e3, 2),
        ]);
    }
    Ok(Table {
        name: RANK.name,
        title: "Adaptive-rank attention: per-head decisions".to_string(),
        intro: vec![format!(
            "n = {n}, d = {D}, non-causal; head h's queries are N(0, 1) scaled by its \
             temperature, so low temperatures give diffuse (high-entropy) attention and high \
             ones peaked attention. `attention::adaptive_rank` with its default parameters \
             ({params:?}) decides per head from entropies estimated on sampled query rows. \
             Whole call: {:.1} ms against flash {:.1} ms ({:.2}× speedup).",
            t_rank * 1e3,
            t_flash * 1e3,
            t_flash / t_rank
        )],
        columns: vec![
            Column::num("head", "head", "head index"),
            Column::num(
                "temperature",
                "temp.",
                "scale applied to the head's queries",
            ),
            Column::num(
                "global_entropy",
                "H global",
                "normalized entropy of the mean attention row",
            ),
            Column::num(
                "local_entropy",
                "H local",
                "mean normalized entropy of sampled rows",
            ),
            Column::num(
                "local_entropy_var",
                "var H",
                "variance of the sampled rows' entropy",
            ),
            Column::text("rank", "rank", "chosen rank, or dense"),
            Column::num(
                "est_err",
                "est. error",
                "error estimated on the sampled rows",
            ),
            Column::num(
                "actual_err",
                "actual (sample)",
                "error on the sampled rows after the fact",
            ),
            Column::num(
                "rel_err_all",
                "rel. error (all rows)",
                "‖o − o_flash‖/‖o_flash‖ over the head",
            ),
            Column::num("decide_ms", "decide ms", "time spent deciding"),
        ],
        rows,
        notes: {
            let mut notes = vec![
                "Times vary run to run; decisions and errors are deterministic for a seed."
                    .to_string(),
            ];
            notes.extend(rank_sweep(ctx)?);
            notes
        },
    })
}

/// Speedup of adaptive rank over flash on diffuse inputs (Q, K ~ N(0, 0.3²)) as n grows.
fn rank_sweep(ctx: &Ctx) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let fl = FlashParams::default();
    let params = RankParams::default();
    for n in [4096usize, 8192, 16384] {
        let shape = Shape::self_attention(2, n, D);
        let q = gaussian(shape.q_len(), 0.3, ctx.seed ^ 0x61 ^ n as u64);
        let k = gaussian(shape.kv_len(), 0.3, ctx.seed ^ 0x62 ^ n as u64);
        let v = gaussian(shape.kv_len(), 1.0, ctx.seed ^ 0x63 ^ n as u64);
        let (dense, t_flash, _) = measure(1, || {
            Ok(flash::attention(&q, &k, &v, shape, Mask::NONE, None, &fl)?)
        })?;
        let ((o, rep), t_rank, _) = measure(1, || {
            Ok(adaptive_rank::attention(
                &q,
                &k,
                &v,
                shape,
                Mask::NONE,
                None,
                &params,
                &fl,
            )?)
        })?;
        let (_, rel) = errors(&o.out, &dense.out);
        let ranks: Vec<String> = rep
            .heads
            .iter()
            .map(|h| h.rank.map_or("dense".into(), |r| r.to_string()))
            .collect();
        ctx.note(&format!("rank sweep n={n}: {:.2}×", t_flash / t_rank));
        out.push(format!(
            "Diffuse inputs (Q, K ~ N(0, 0.3²), 2 heads, non-causal), n = {n}: ranks [{}], \
             relative error {rel:.2e}, {:.1} ms against flash {:.1} ms: {:.2}× speedup.",
            ranks.join(", "),
            t_rank * 1e3,
            t_flash * 1e3,
            t_flash / t_rank
        ));
    }
    Ok(out)
}

fn run_model(ctx: &Ctx) -> Result<Table> {
    super::llm::attention_model_table(ctx, MODEL.name)
}
