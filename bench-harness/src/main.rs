//! `adaprec`: the command line of the workspace, at the top of the crate DAG
//! (`numerics` ← … ← `models` ← `bench-harness`).
//!
//! - `adaprec formats [--value X] [--format NAME]…` prints every number format's parameters
//!   (generated from the definitions in `numerics`), or how one value encodes in each.
//! - `adaprec reproduce [--out DIR] [--samples N] [--seed S] [--only TABLE]…` regenerates the
//!   ablation tables (markdown + CSV) and their index into `docs/results/`.
//! - `adaprec perplexity | generate | tokenize | inspect | sensitivity | importance` run the
//!   real model (SmolLM2-135M-Instruct, fetched and verified on first use, or `--model`).
//! - `adaprec embed TEXT… | fidelity` run the fp32 encoder (all-MiniLM-L6-v2, safetensors,
//!   fetched on first use, or `--model DIR`) under a precision policy.
//!
//! ```sh
//! cargo run --release -p bench-harness --bin adaprec -- formats --value 3.14159
//! cargo run --release -p bench-harness --bin adaprec -- reproduce
//! ```
//!
//! This file holds the CLI only: the tables live in `scenarios/` (one module per table),
//! their rendering in `report.rs` and the format listing in `catalog.rs`.
//!
//! # Cargo features
//!
//! None.

mod catalog;
mod encoder;
mod gpu;
mod llm;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use numerics::{Format, Par};

use scenarios::{Ctx, DEFAULT_SAMPLES, DEFAULT_SEED, MAX_SAMPLES};

/// Counts heap bytes so the attention tables can report each call's peak memory.
#[global_allocator]
pub(crate) static PEAK: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// Adaptive-precision workspace tools: number formats and the ablation tables.
#[derive(Debug, Parser)]
#[command(name = "adaprec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print every number format's parameters, or how one value encodes in each.
    Formats(FormatsArgs),
    /// Regenerate the ablation tables (markdown + CSV) and their index.
    Reproduce(ReproduceArgs),
    /// Perplexity of a GGUF model on a corpus, as llama.cpp's `llama-perplexity` computes it.
    Perplexity(llm::PerplexityArgs),
    /// Generate text after a prompt (greedy or sampled), streaming it.
    Generate(llm::GenerateArgs),
    /// Print the token ids of a text (like llama.cpp's `llama-tokenize`).
    Tokenize(llm::TokenizeArgs),
    /// Print a GGUF file's metadata and tensor table.
    Inspect(llm::InspectArgs),
    /// Rank tensor groups by the damage quantizing each alone does; allocate under a budget.
    Sensitivity(llm::SensitivityArgs),
    /// Token-importance KV precision: tiers, per-token/per-layer metadata, average KV bits.
    Importance(llm::ImportanceArgs),
    /// Write a GGUF with a precision policy applied (GGML types only), loadable by llama.cpp.
    Export(llm::ExportArgs),
    /// Sentence embeddings of texts with the fp32 encoder (all-MiniLM-L6-v2) under a policy.
    Embed(encoder::EmbedArgs),
    /// Embedding fidelity of a precision policy on the encoder: cosine and retrieval vs fp32.
    Fidelity(encoder::FidelityArgs),
    /// Print the GPU adapter wgpu finds (honours WGPU_BACKEND / WGPU_ADAPTER_NAME).
    Gpu,
    /// Time our WGSL matmul or flash attention on the GPU (for scripts/gpu_compare.py).
    GpuBench(gpu::GpuBenchArgs),
}

#[derive(Debug, Args)]
struct FormatsArgs {
    /// Show how this value encodes in each format (decimal, `nan`, `inf` or `-inf`).
    #[arg(long, value_parser = parse_value, allow_hyphen_values = true)]
    value: Option<f32>,
    /// Restrict to these formats (repeat the flag or separate names by commas).
    #[arg(long = "format", value_name = "NAME", value_parser = parse_format, value_delimiter = ',')]
    formats: Vec<Format>,
}

#[derive(Debug, Args)]
struct ReproduceArgs {
    /// Output directory (created if missing).
    #[arg(long, default_value = "docs/results")]
    out: PathBuf,
    /// Samples per distribution (1 to 1e8; `1e6` and `1_000_000` are accepted).
    #[arg(long, default_value_t = DEFAULT_SAMPLES, value_parser = parse_samples)]
    samples: usize,
    /// Base seed of every random stream.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Regenerate only these tables (repeat the flag or separate names by commas).
    #[arg(
        long,
        value_name = "TABLE",
        value_delimiter = ',',
        value_parser = clap::builder::PossibleValuesParser::new(scenarios::names())
    )]
    only: Vec<String>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Add a GPU column (our WGSL kernels through wgpu) to the attention tables where an
    /// adapter exists (a software adapter's times are correctness runs, not GPU figures).
    #[arg(long)]
    gpu: bool,
}

/// `--format`: a name `numerics` knows (its `FromStr` error lists the accepted names).
fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

/// `--value`: any `f32` literal, including `nan`, `inf` and `-inf`; finite text that
/// overflows `f32` is refused rather than silently turned into infinity.
fn parse_value(s: &str) -> Result<f32, String> {
    let t = s.trim();
    let x: f32 = t
        .parse()
        .map_err(|_| format!("{s:?} is not a number (try 3.14159, 1e-3, nan, inf, -inf)"))?;
    let lower = t.to_ascii_lowercase();
    if x.is_infinite() && !lower.trim_start_matches(['+', '-']).starts_with("inf") {
        return Err(format!(
            "{s:?} is outside the f32 range (max {:e})",
            f32::MAX
        ));
    }
    Ok(x)
}

/// `--samples`: a positive integer up to [`MAX_SAMPLES`]; `_` separators and integral
/// scientific notation (`1e6`) are accepted.
fn parse_samples(s: &str) -> Result<usize, String> {
    let t = s.trim().replace('_', "");
    let n: u128 = match t.parse::<u128>() {
        Ok(n) => n,
        Err(_) => {
            let f: f64 = t
                .parse()
                .map_err(|_| format!("{s:?} is not a sample count"))?;
            if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0) {
                return Err(format!("{s:?} is not a whole, non-negative sample count"));
            }
            // Saturates for huge values, which the range check below then refuses.
            f as u128
        }
    };
    if n == 0 {
        return Err("the sample count must be at least 1".to_string());
    }
    if n > MAX_SAMPLES as u128 {
        return Err(format!(
            "{s} samples is more than the limit of {MAX_SAMPLES} (1e8: about 1.2 GB of buffers per distribution)"
        ));
    }
    Ok(n as usize)
}

fn run_formats(args: &FormatsArgs) {
    let formats: Vec<Format> = if args.formats.is_empty() {
        Format::ALL.to_vec()
    } else {
        args.formats.clone()
    };
    match args.value {
        Some(x) => print!("{}", catalog::value_table(x, &formats)),
        None => {
            print!("{}", catalog::format_table(&formats));
            if args.formats.is_empty() {
                println!();
                print!("{}", catalog::mx_table());
            }
        }
    }
}

fn run_reproduce(args: &ReproduceArgs) -> Result<()> {
    let start = Instant::now();
    let ctx = Ctx {
        samples: args.samples,
        seed: args.seed,
        par: Par::rayon(0),
        progress: !args.quiet,
        gpu: args.gpu,
    };
    let written = scenarios::reproduce(&args.out, &args.only, &ctx)?;
    if !args.quiet {
        for p in &written {
            eprintln!("wrote {}", p.display());
        }
        eprintln!(
            "done: {} files in {:.2} s",
            written.len(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Formats(args) => {
            run_formats(args);
            Ok(())
        }
        Command::Reproduce(args) => run_reproduce(args),
        Command::Perplexity(args) => llm::run_perplexity(args),
        Command::Generate(args) => llm::run_generate(args),
        Command::Tokenize(args) => llm::run_tokenize(args),
        Command::Inspect(args) => llm::run_inspect(args),
        Command::Sensitivity(args) => llm::run_sensitivity(args),
        Command::Importance(args) => llm::run_importance(args),
        Command::Export(args) => llm::run_export(args),
        Command::Embed(args) => encoder::run_embed(args),
        Command::Fidelity(args) => encoder::run_fidelity(args),
        Command::Gpu => gpu::run_gpu_info(),
        Command::GpuBench(args) => gpu::run_gpu_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`adaprec embed … | head`) is the reader's choice, not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line with the whole context chain, like clap's errors (no backtrace).
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("adaprec").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    #[allow(clippy::approx_constant)] // the value of the issue's example, not π
    fn values_parse_including_specials() {
        assert_eq!(
            parse_value("3.14159").unwrap().to_bits(),
            3.14159f32.to_bits()
        );
        assert!(parse_value("nan").unwrap().is_nan());
        assert_eq!(
            parse_value("inf").unwrap().to_bits(),
            f32::INFINITY.to_bits()
        );
        assert_eq!(
            parse_value("-inf").unwrap().to_bits(),
            f32::NEG_INFINITY.to_bits()
        );
        assert!(parse_value("1e39").is_err());
        assert!(parse_value("pi").is_err());
        let cli = parse(&["formats", "--value", "-inf"]).unwrap();
        let Command::Formats(a) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(a.value.map(f32::to_bits), Some(f32::NEG_INFINITY.to_bits()));
    }

    #[test]
    fn garbage_is_a_clap_error() {
        let e = parse(&["formats", "--value", "abc"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        let e = parse(&["formats", "--format", "f9e9"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("f8e4m3fn"), "{e}");
        let e = parse(&["reproduce", "--only", "nope"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn formats_accept_aliases_and_lists() {
        let cli = parse(&[
            "formats",
            "--format",
            "bfloat16,float8_e4m3fn",
            "--format",
            "F16",
        ])
        .unwrap();
        let Command::Formats(a) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(a.formats, [Format::BF16, Format::F8E4M3FN, Format::F16]);
    }

    #[test]
    fn sample_counts_are_bounded() {
        assert_eq!(parse_samples("4096").unwrap(), 4096);
        assert_eq!(parse_samples("1e6").unwrap(), 1_000_000);
        assert_eq!(parse_samples("1_000").unwrap(), 1000);
        assert!(parse_samples("0").unwrap_err().contains("at least 1"));
        assert!(parse_samples("1000000001").unwrap_err().contains("limit"));
        assert!(parse_samples("1e300").unwrap_err().contains("limit"));
        assert!(parse_samples("99999999999999999999999999999999999999999").is_err());
        assert!(parse_samples("-5").is_err());
        assert!(parse_samples("2.5").is_err());
        assert!(parse_samples("nan").is_err());
        let e = parse(&["reproduce", "--samples", "0"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = parse(&["reproduce"]).unwrap();
        let Command::Reproduce(a) = cli.command else {
            panic!("wrong subcommand")
        };
        assert_eq!(a.out, PathBuf::from("docs/results"));
        assert_eq!(a.samples, 1_000_000);
        assert_eq!(a.seed, 20_261_123);
        assert!(a.only.is_empty());
    }
}
