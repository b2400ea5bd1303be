//! The model commands: `perplexity`, `generate`, `tokenize`, `inspect`, `sensitivity` and
//! `importance`, on the real SmolLM2-135M-Instruct (fetched and verified on first use) or any
//! LLaMA-family GGUF given with `--model`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use models::gguf::GgufFile;
use models::llama::Model;
use models::perplexity::{self, PerplexityOptions, PerplexityReport, Reference};
use models::policy::Policy;
use models::tokenizer::Tokenizer;
use quant::QuantFormat;
use serde_json::json;

/// Options every model command shares.
#[derive(Debug, Args, Clone)]
pub(crate) struct ModelArgs {
    /// A LLaMA-family GGUF file (default: SmolLM2-135M-Instruct Q4_1, fetched into the cache
    /// on first use).
    #[arg(short = 'm', long)]
    pub(crate) model: Option<PathBuf>,
    /// Precision policy: a preset (stored, fp32, fp16, bf16, int8, conservative, aggressive,
    /// attn16-ffn8-emb4) or a TOML file.
    #[arg(long, default_value = "stored")]
    pub(crate) policy: String,
    /// Threads for the products (default: all cores).
    #[arg(short = 't', long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON object (the last line of output) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ModelArgs {
    pub(crate) fn threads(&self) -> Result<usize> {
        threads_arg(self.threads)
    }

    /// The model file: `--model`, or the cached (fetched on first use) default.
    pub(crate) fn path(&self) -> Result<PathBuf> {
        model_path(&self.model)
    }

    pub(crate) fn open(&self) -> Result<(PathBuf, GgufFile)> {
        let path = self.path()?;
        let file = GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok((path, file))
    }

    pub(crate) fn policy(&self) -> Result<Policy> {
        Ok(Policy::load(&self.policy)?)
    }
}

/// `--threads`: at least 1; all cores when not given.
pub(crate) fn threads_arg(threads: Option<usize>) -> Result<usize> {
    match threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// `--model PATH`, or the default model (cached, fetched on first use).
fn model_path(model: &Option<PathBuf>) -> Result<PathBuf> {
    match model {
        Some(p) => Ok(p.clone()),
        None => Ok(models::fetch::default_model()?),
    }
}

/// `--corpus`: the file, or the default search for WikiText-2's test split.
pub(crate) fn corpus(path: &Option<PathBuf>) -> Result<(PathBuf, String)> {
    let path = match path {
        Some(p) => p.clone(),
        None => models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST)?,
    };
    let text = models::fetch::read_corpus(&path)?;
    Ok((path, text))
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// `adaprec perplexity`.
#[derive(Debug, Args)]
pub(crate) struct PerplexityArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub(crate) ctx_size: usize,
    /// Evaluate at most this many chunks (default: all).
    #[arg(long)]
    pub(crate) chunks: Option<usize>,
    /// The text to score (default: WikiText-2 raw test split from shared/data).
    #[arg(short = 'f', long)]
    pub(crate) corpus: Option<PathBuf>,
    /// Also run the fp32 policy as a reference: ΔPPL, KL divergence and top-1 agreement.
    #[arg(long)]
    pub(crate) kl: bool,
    /// Round as llama.cpp's CPU backend does: 8-bit activations into Q4/Q8 products, f16
    /// queries and KV cache (`Model::set_llama_cpp_arithmetic`).
    #[arg(long)]
    pub(crate) llama_cpp_arith: bool,
    /// Swap an attention variant into layers: `VARIANT[@LAYERS]`, e.g.
    /// `dilated:w=64,128,256;r=1,2,4`, `infini:seg=128;update=delta@0-14`, `flash`,
    /// `rank:tol=0.05`, `precision:format=e4m3`. Repeat for different layers (later wins).
    #[arg(long = "attention", value_name = "SPEC")]
    pub(crate) attention: Vec<String>,
}

pub(crate) fn run_perplexity(a: &PerplexityArgs) -> Result<()> {
    let threads = a.model.threads()?;
    let (path, file) = a.model.open()?;
    let tok = Tokenizer::from_gguf(file.metadata())?;
    let (cpath, text) = corpus(&a.corpus)?;
    let t0 = Instant::now();
    let tokens = tok.encode(&text, true, false)?;
    let tok_seconds = t0.elapsed().as_secs_f64();
    let policy = a.model.policy()?;
    let mut model = Model::load(&file, &policy, threads)?;
    model.set_llama_cpp_arithmetic(a.llama_cpp_arith);
    for spec in &a.attention {
        let (variant, layers) = models::llama::parse_attention_spec(spec, model.config().n_layers)?;
        model.set_attention(&layers, Some(variant))?;
    }
    let reference = if a.kl {
        Some(Model::load(&file, &Policy::preset("fp32")?, threads)?)
    } else {
        None
    };
    let opts = PerplexityOptions {
        n_ctx: a.ctx_size,
        chunks: a.chunks,
        bos: tok.bos_to_add(),
    };
    let n_chunk = perplexity::chunk_count(tokens.len(), &opts)?;
    if !a.model.json {
        eprintln!(
            "model {} ({} params), policy {}, {threads} threads",
            path.display(),
            model.n_params(),
            policy.name
        );
        eprintln!(
            "corpus {}: {} tokens in {tok_seconds:.2} s; {n_chunk} chunks of {}{}",
            cpath.display(),
            tokens.len(),
            a.ctx_size,
            if opts.bos.is_some() {
                ", BOS first"
            } else {
                ""
            }
        );
    }
    let pb = bar(n_chunk as u64, "perplexity");
    let json = a.model.json;
    let reference_arg = match &reference {
        Some(r) => Reference::Model(r),
        None => Reference::None,
    };
    let reports = perplexity::evaluate(&[&model], reference_arg, &tokens, &opts, &mut |p| {
        pb.inc(1);
        if !json {
            pb.suspend(|| {
                print!("[{}]{:.4},", p.chunk + 1, p.ppl);
                let _ = std::io::stdout().flush();
            });
        }
    })?;
    pb.finish_and_clear();
    let r = &reports[0];
    let decode = decode_speed(&model, &tokens)?;
    print_ppl(&model, &policy, r, decode, json)
}

/// Greedy decode tokens/s: 32 single-token steps after a 64-token prompt from the corpus.
pub(crate) fn decode_speed(model: &Model, tokens: &[u32]) -> Result<f64> {
    let prompt = &tokens[..64.min(tokens.len())];
    let opts = models::generate::GenerateOptions {
        max_tokens: 32,
        sampling: models::generate::SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        stop: None,
    };
    let (_, stats) = models::generate::generate(model, prompt, &opts, &mut |_| true)?;
    Ok(stats.decode_tokens_per_second())
}

fn print_ppl(
    model: &Model,
    policy: &Policy,
    r: &PerplexityReport,
    decode: f64,
    json: bool,
) -> Result<()> {
    let (w, f32b, stored) = (
        model.weight_bytes(),
        model.f32_bytes(),
        model.stored_bytes(),
    );
    if json {
        let mut o = json!({
            "ppl": r.ppl,
            "ppl_stderr": r.ppl_stderr,
            "chunks": r.chunks,
            "n_ctx": r.n_ctx,
            "tokens_scored": r.tokens_scored,
            "weight_bytes": w,
            "f32_bytes": f32b,
            "stored_bytes": stored,
            "compression_vs_f32": f32b as f64 / w as f64,
            "policy": policy.name,
            "prefill_tokens_per_second": r.prefill_tokens_per_second,
            "decode_tokens_per_second": decode,
            "running": r.running,
        });
        if let Some(kl) = r.kl {
            o["kl_mean"] = json!(kl.mean);
            o["kl_stderr"] = json!(kl.stderr);
            o["top1_agreement"] = json!(kl.top1_agreement);
        }
        if let Some(p) = r.reference_ppl {
            o["fp32_ppl"] = json!(p);
            o["delta_ppl_pct_vs_fp32"] = json!(100.0 * (r.ppl / p - 1.0));
        }
        println!("{o}");
    } else {
        println!();
        println!("Final estimate: PPL = {:.4} +/- {:.5}", r.ppl, r.ppl_stderr);
        println!(
            "weights: {w} bytes ({:.2} MiB), {:.2}x smaller than f32 ({:.2} MiB), {:.3}x the stored file's tensors ({:.2} MiB)",
            mib(w),
            f32b as f64 / w as f64,
            mib(f32b),
            w as f64 / stored as f64,
            mib(stored)
        );
        if let (Some(kl), Some(p)) = (r.kl, r.reference_ppl) {
            println!(
                "vs fp32 (PPL {p:.4}): ΔPPL {:+.3} %, KL = {:.6} +/- {:.6} nats, top-1 agreement {:.2} %",
                100.0 * (r.ppl / p - 1.0),
                kl.mean,
                kl.stderr,
                100.0 * kl.top1_agreement
            );
        }
        println!(
            "prefill: {:.1} tokens/s ({} tokens scored); decode: {decode:.1} tokens/s",
            r.prefill_tokens_per_second, r.tokens_scored
        );
    }
    Ok(())
}

/// `adaprec generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// The prompt.
    pub(crate) prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    pub(crate) n_predict: usize,
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.0)]
    pub(crate) temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    pub(crate) top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub(crate) top_p: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Wrap the prompt in the ChatML turn this instruct model was trained on.
    #[arg(long)]
    pub(crate) chat: bool,
}

pub(crate) fn run_generate(a: &GenerateArgs) -> Result<()> {
    let threads = a.model.threads()?;
    let (_, file) = a.model.open()?;
    let tok = Tokenizer::from_gguf(file.metadata())?;
    let model = Model::load(&file, &a.model.policy()?, threads)?;
    let (text, special) = if a.chat {
        (
            format!(
                "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
                a.prompt
            ),
            true,
        )
    } else {
        (a.prompt.clone(), false)
    };
    let prompt = tok.encode(&text, true, special)?;
    let stop = if a.chat {
        tok.token_id("<|im_end|>").or(tok.eos())
    } else {
        tok.eos()
    };
    let opts = models::generate::GenerateOptions {
        max_tokens: a.n_predict,
        sampling: models::generate::SamplingParams {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            seed: a.seed,
        },
        stop,
    };
    let mut dec = tok.stream_decoder(false);
    let mut out = String::new();
    let json = a.model.json;
    if !json {
        print!("{}", a.prompt);
    }
    let mut err = None;
    let (ids, stats) =
        models::generate::generate(&model, &prompt, &opts, &mut |id| match dec.push(id) {
            Ok(s) => {
                out.push_str(&s);
                if !json {
                    print!("{s}");
                    let _ = std::io::stdout().flush();
                }
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    let rest = dec.finish();
    out.push_str(&rest);
    if json {
        println!(
            "{}",
            json!({
                "text": out,
                "ids": ids,
                "prompt_tokens": stats.prompt_tokens,
                "generated": ids.len(),
                "prefill_tokens_per_second": stats.prefill_tokens_per_second(),
                "decode_tokens_per_second": stats.decode_tokens_per_second(),
            })
        );
    } else {
        println!("{rest}");
        eprintln!(
            "prompt {} tokens at {:.1} tokens/s; {} generated, decode {:.1} tokens/s",
            stats.prompt_tokens,
            stats.prefill_tokens_per_second(),
            ids.len(),
            stats.decode_tokens_per_second()
        );
    }
    Ok(())
}

/// `adaprec tokenize`.
#[derive(Debug, Args)]
pub(crate) struct TokenizeArgs {
    /// The text (special tokens such as `<|im_start|>` are plain text unless
    /// `--parse-special`).
    pub(crate) text: String,
    /// A GGUF file (default: SmolLM2-135M-Instruct).
    #[arg(short = 'm', long)]
    pub(crate) model: Option<PathBuf>,
    /// Recognize control tokens written in the text.
    #[arg(long)]
    pub(crate) parse_special: bool,
    /// Print only the ids, as a list (like `llama-tokenize --ids`).
    #[arg(long)]
    pub(crate) ids: bool,
    /// Print a JSON array of ids.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_tokenize(a: &TokenizeArgs) -> Result<()> {
    let path = model_path(&a.model)?;
    let file = GgufFile::open(&path)?;
    let tok = Tokenizer::from_gguf(file.metadata())?;
    let ids = tok.encode(&a.text, true, a.parse_special)?;
    if a.json {
        println!("{}", serde_json::to_string(&ids)?);
    } else if a.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        println!("[{}]", list.join(", "));
    } else {
        for &id in &ids {
            let piece = tok.token_piece(id, true)?;
            println!("{id:6} -> '{}'", String::from_utf8_lossy(piece));
        }
    }
    Ok(())
}

/// `adaprec inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A GGUF file (default: SmolLM2-135M-Instruct).
    #[arg(short = 'm', long)]
    pub(crate) model: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_inspect(a: &InspectArgs) -> Result<()> {
    let path = model_path(&a.model)?;
    let file = GgufFile::open(&path)?;
    inspect(&path, &file, a.json);
    Ok(())
}

fn inspect(path: &Path, file: &GgufFile, json: bool) {
    if json {
        let meta: serde_json::Map<String, serde_json::Value> = file
            .metadata()
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v.to_string())))
            .collect();
        let tensors: Vec<_> = file
            .tensors()
            .iter()
            .map(|t| {
                json!({"name": t.name, "type": t.ggml_type.name(), "shape": t.shape(),
                       "bytes": t.n_bytes(), "offset": t.offset})
            })
            .collect();
        println!(
            "{}",
            json!({"path": path.display().to_string(), "version": file.version(),
                   "alignment": file.alignment(), "metadata": meta, "tensors": tensors})
        );
        return;
    }
    println!(
        "{}: GGUF v{}, {} metadata keys, {} tensors, alignment {}",
        path.display(),
        file.version(),
        file.metadata().len(),
        file.tensors().len(),
        file.alignment()
    );
    for (k, v) in file.metadata().iter() {
        println!("  {k:45} {v}");
    }
    println!(
        "  {:32} {:>6} {:>16} {:>12}",
        "tensor", "type", "shape", "bytes"
    );
    let mut total = 0u64;
    for t in file.tensors() {
        total += t.n_bytes();
        println!(
            "  {:32} {:>6} {:>16} {:>12}",
            t.name,
            t.ggml_type.name(),
            format!("{:?}", t.shape()),
            t.n_bytes()
        );
    }
    println!("  total tensor bytes: {total}");
}

/// `adaprec sensitivity`.
#[derive(Debug, Args)]
pub(crate) struct SensitivityArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// The format each group is quantized to in turn.
    #[arg(long, default_value = "int4-g32")]
    pub(crate) format: QuantFormat,
    /// Calibration chunks (from the end of the corpus, never the scored chunks).
    #[arg(long, default_value_t = 2)]
    pub(crate) calib_chunks: usize,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub(crate) ctx_size: usize,
    /// Then allocate precision under this weight budget in bytes, or the size of a preset
    /// (e.g. `aggressive`).
    #[arg(long)]
    pub(crate) budget: Option<String>,
    /// The text (default: WikiText-2 raw test split).
    #[arg(short = 'f', long)]
    pub(crate) corpus: Option<PathBuf>,
}

pub(crate) fn run_sensitivity(a: &SensitivityArgs) -> Result<()> {
    let threads = a.model.threads()?;
    let (_, file) = a.model.open()?;
    let tok = Tokenizer::from_gguf(file.metadata())?;
    let (_, text) = corpus(&a.corpus)?;
    let tokens = tok.encode(&text, true, false)?;
    // `--policy` is the baseline the groups are quantized from.
    let base = if a.model.policy == "stored" {
        Policy::preset("fp32")?
    } else {
        a.model.policy()?
    };
    let calib = models::sensitivity::calibration_tokens(&tokens, a.ctx_size, a.calib_chunks, 0)?;
    let mut opts = models::sensitivity::SensitivityOptions::new(a.format, base.clone());
    opts.n_ctx = a.ctx_size;
    opts.calib_chunks = a.calib_chunks;
    opts.threads = threads;
    opts.bos = tok.bos_to_add();
    let pb = bar(0, "sensitivity");
    let report = models::sensitivity::analyze(&file, calib, &opts, &mut |p| {
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
    })?;
    pb.finish_and_clear();
    let budget = match &a.budget {
        None => None,
        Some(b) => Some(match b.parse::<usize>() {
            Ok(n) => n,
            Err(_) => Model::load(&file, &Policy::load(b)?, 1)?.weight_bytes(),
        }),
    };
    let alloc = budget
        .map(|b| models::sensitivity::allocate(&report, b))
        .transpose()?;
    if a.model.json {
        let mut o = serde_json::to_value(&report)?;
        if let Some(al) = &alloc {
            o["allocation"] = json!({"policy": al.policy, "weight_bytes": al.weight_bytes,
                                     "quantized": al.quantized});
        }
        println!("{o}");
        return Ok(());
    }
    println!(
        "baseline {} ({} bytes), PPL {:.4} on {} calibration chunks; groups → {}",
        base.name, report.base_weight_bytes, report.base_ppl, a.calib_chunks, a.format
    );
    println!(
        "{:>4} {:14} {:>12} {:>10} {:>8} {:>12}",
        "rank", "group", "ΔKL", "ΔPPL %", "top-1", "bytes saved"
    );
    for (i, g) in report.groups.iter().enumerate() {
        println!(
            "{:>4} {:14} {:>12.3e} {:>10.3} {:>8.4} {:>12}",
            i + 1,
            g.group.name,
            g.delta_kl,
            g.delta_ppl_pct,
            g.top1_agreement,
            g.bytes_saved
        );
    }
    if let Some(al) = alloc {
        println!(
            "allocation under {} bytes: {} groups quantized, {} bytes",
            budget.unwrap_or(0),
            al.quantized.len(),
            al.weight_bytes
        );
        print!("{}", al.policy.to_toml());
    }
    Ok(())
}

/// `adaprec importance`.
#[derive(Debug, Args)]
pub(crate) struct ImportanceArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Chunks to evaluate.
    #[arg(long, default_value_t = 2)]
    pub(crate) chunks: usize,
    /// Tokens per chunk.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    pub(crate) ctx_size: usize,
    /// Weight of the rarity score in the blend (0 = attention only).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rarity: f64,
    /// Write the per-token and per-layer tier metadata (JSON) here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// The text (default: WikiText-2 raw test split).
    #[arg(short = 'f', long)]
    pub(crate) corpus: Option<PathBuf>,
}

pub(crate) fn run_importance(a: &ImportanceArgs) -> Result<()> {
    let threads = a.model.threads()?;
    let (_, file) = a.model.open()?;
    let tok = Tokenizer::from_gguf(file.metadata())?;
    let (_, text) = corpus(&a.corpus)?;
    let tokens = tok.encode(&text, true, false)?;
    let model = Model::load(&file, &a.model.policy()?, threads)?;
    let opts = models::importance::ImportanceOptions {
        rarity_weight: a.rarity,
        ..Default::default()
    };
    let freqs = models::importance::TokenFrequencies::from_tokens(&tokens, tok.vocab_size())?;
    let popts = PerplexityOptions {
        n_ctx: a.ctx_size,
        chunks: Some(a.chunks),
        bos: tok.bos_to_add(),
    };
    let report =
        models::importance::evaluate_importance(&model, &tokens, &opts, &popts, Some(&freqs))?;
    if let Some(out) = &a.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let summary = json!({
        "chunks": report.chunks, "n_ctx": report.n_ctx, "tokens_scored": report.tokens_scored,
        "ppl_f32_kv": report.ppl_f32, "ppl_tiered_kv": report.ppl_tiered,
        "delta_ppl_pct": report.delta_ppl_pct, "kv_bits": report.kv_bits,
        "tier_counts": report.tier_counts, "uniform": report.uniform,
    });
    if a.model.json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}

/// `adaprec export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// A GGUF file (default: SmolLM2-135M-Instruct).
    #[arg(short = 'm', long)]
    pub(crate) model: Option<PathBuf>,
    /// Precision policy (its formats must be GGML types: f32, f16, bf16, q8_0, q4_0, q4_1).
    #[arg(long)]
    pub(crate) policy: String,
    /// Output GGUF path.
    #[arg(short = 'o', long)]
    pub(crate) out: PathBuf,
}

pub(crate) fn run_export(a: &ExportArgs) -> Result<()> {
    let path = model_path(&a.model)?;
    let file = GgufFile::open(&path)?;
    let policy = Policy::load(&a.policy)?;
    let bytes = models::llama::export_gguf(&file, &policy, &a.out)?;
    eprintln!(
        "wrote {} ({bytes} bytes of tensors, policy {})",
        a.out.display(),
        policy.name
    );
    Ok(())
}
