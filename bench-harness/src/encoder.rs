//! The encoder commands: `embed` and `fidelity`, on the real all-MiniLM-L6-v2 (fetched and
//! verified on first use) or any BERT sentence-transformers folder given with `--model`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use models::bert::Encoder;
use models::fidelity::{self, FidelityReport};
use models::policy::Policy;
use serde_json::json;

/// Options the encoder commands share.
#[derive(Debug, Args, Clone)]
pub(crate) struct EncoderArgs {
    /// `minilm` (all-MiniLM-L6-v2, f32 safetensors, fetched into the cache on first use) or
    /// a sentence-transformers / Hugging Face BERT folder (config.json, model.safetensors,
    /// tokenizer.json).
    #[arg(short = 'm', long, default_value = "minilm")]
    pub(crate) model: String,
    /// Precision policy: a preset (stored, fp32, fp16, bf16, int8, conservative, aggressive,
    /// attn16-ffn8-emb4) or a TOML file.
    #[arg(long, default_value = "fp32")]
    pub(crate) policy: String,
    /// Threads for the products (default: all cores).
    #[arg(short = 't', long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON value (the last line of output) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

impl EncoderArgs {
    fn threads(&self) -> Result<usize> {
        crate::llm::threads_arg(self.threads)
    }

    /// The model folder.
    pub(crate) fn dir(&self) -> Result<PathBuf> {
        model_dir(&self.model)
    }

    fn load(&self, policy: &Policy) -> Result<Encoder> {
        let dir = self.dir()?;
        Encoder::load(&dir, policy, self.threads()?)
            .with_context(|| format!("loading the encoder in {}", dir.display()))
    }
}

/// `minilm` → the cached all-MiniLM-L6-v2 folder; anything else is a folder path.
pub(crate) fn model_dir(model: &str) -> Result<PathBuf> {
    if model.eq_ignore_ascii_case("minilm") {
        return Ok(models::fetch::minilm_model()?);
    }
    let p = PathBuf::from(model);
    if !p.is_dir() {
        bail!(
            "--model {model:?}: expected `minilm` or a model folder (config.json, model.safetensors, tokenizer.json)"
        );
    }
    Ok(p)
}

/// `adaprec embed`.
#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    #[command(flatten)]
    pub(crate) model: EncoderArgs,
    /// The texts to embed (an empty string is valid input; put `--` before texts that
    /// start with `-`).
    #[arg(required = true, num_args = 1..)]
    pub(crate) texts: Vec<String>,
}

pub(crate) fn run_embed(a: &EmbedArgs) -> Result<()> {
    let policy = Policy::load(&a.model.policy)?;
    let enc = a.model.load(&policy)?;
    let ids = a
        .texts
        .iter()
        .map(|t| enc.tokenizer().encode(t))
        .collect::<models::Result<Vec<_>>>()?;
    let emb = enc.embed_ids(&ids)?;
    let mut out = std::io::stdout().lock();
    if a.model.json {
        writeln!(out, "{}", serde_json::to_string(&emb)?)?;
        return Ok(());
    }
    for (i, ((t, e), ids)) in a.texts.iter().zip(&emb).zip(&ids).enumerate() {
        writeln!(out, "# {i}: {t:?} ({} tokens, {} dims)", ids.len(), e.len())?;
        let line: Vec<String> = e.iter().map(|v| format!("{v:.7}")).collect();
        writeln!(out, "{}", line.join(" "))?;
    }
    Ok(())
}

/// `adaprec fidelity`.
#[derive(Debug, Args)]
pub(crate) struct FidelityArgs {
    #[command(flatten)]
    pub(crate) model: EncoderArgs,
    /// Sentences: the first N non-empty, non-heading lines of the corpus.
    #[arg(short = 'n', long, default_value_t = 256)]
    pub(crate) sentences: usize,
    /// The corpus (default: WikiText-2 raw test split from shared/data).
    #[arg(short = 'f', long)]
    pub(crate) corpus: Option<PathBuf>,
}

/// What `fidelity` measures for one policy against `fp32`.
pub(crate) struct FidelityRun {
    pub(crate) report: FidelityReport,
    pub(crate) weight_bytes: usize,
    pub(crate) f32_bytes: usize,
    pub(crate) sentences_per_second: f64,
    pub(crate) fp32_sentences_per_second: f64,
    pub(crate) tokens: usize,
}

/// Embeds `sentences` with the `fp32` reference and `policy`, and compares.
pub(crate) fn fidelity_run(
    dir: &std::path::Path,
    policy: &Policy,
    sentences: &[String],
    threads: usize,
) -> Result<FidelityRun> {
    let reference = Encoder::load(dir, &Policy::preset("fp32")?, threads)?;
    let base = fidelity::embed_timed(&reference, sentences)?;
    drop(reference);
    let enc = Encoder::load(dir, policy, threads)?;
    let got = fidelity::embed_timed(&enc, sentences)?;
    Ok(FidelityRun {
        report: fidelity::compare(&base.embeddings, &got.embeddings)?,
        weight_bytes: enc.weight_bytes(),
        f32_bytes: enc.f32_bytes(),
        sentences_per_second: got.sentences_per_second(),
        fp32_sentences_per_second: base.sentences_per_second(),
        tokens: got.tokens,
    })
}

pub(crate) fn run_fidelity(a: &FidelityArgs) -> Result<()> {
    let dir = a.model.dir()?;
    let policy = Policy::load(&a.model.policy)?;
    let (cpath, text) = crate::llm::corpus(&a.corpus)?;
    let sentences = fidelity::corpus_sentences(&text, a.sentences)?;
    let threads = a.model.threads()?;
    if !a.model.json {
        eprintln!(
            "model {}, policy {}, {threads} threads; {} sentences of {}",
            dir.display(),
            policy.name,
            sentences.len(),
            cpath.display()
        );
    }
    let r = fidelity_run(&dir, &policy, &sentences, threads)?;
    let f = &r.report;
    if a.model.json {
        println!(
            "{}",
            json!({
                "policy": policy.name,
                "sentences": f.sentences,
                "tokens": r.tokens,
                "mean_cosine": f.mean_cosine,
                "min_cosine": f.min_cosine,
                "top1_agreement": f.top1_agreement,
                "top5_agreement": f.top5_agreement,
                "weight_bytes": r.weight_bytes,
                "f32_bytes": r.f32_bytes,
                "compression_vs_f32": r.f32_bytes as f64 / r.weight_bytes as f64,
                "sentences_per_second": r.sentences_per_second,
                "fp32_sentences_per_second": r.fp32_sentences_per_second,
            })
        );
    } else {
        println!(
            "cosine to fp32: mean {:.6}, min {:.6}; nearest-neighbour agreement: top-1 {:.2} %, top-5 {:.2} %",
            f.mean_cosine,
            f.min_cosine,
            100.0 * f.top1_agreement,
            100.0 * f.top5_agreement
        );
        println!(
            "weights: {} bytes ({:.2} MiB), {:.2}x smaller than f32",
            r.weight_bytes,
            r.weight_bytes as f64 / f64::from(1u32 << 20),
            r.f32_bytes as f64 / r.weight_bytes as f64
        );
        println!(
            "throughput: {:.1} sentences/s ({} tokens); fp32: {:.1} sentences/s",
            r.sentences_per_second, r.tokens, r.fp32_sentences_per_second
        );
    }
    Ok(())
}
