//! The forward pass of the tiny random model against the `f64` reference, causality, the KV
//! cache against full recomputation, threads, and error cases.

use models::gguf::GgufFile;
use models::llama::{KvCache, KvMode, Model, reference};
use models::perplexity::{self, PerplexityOptions, Reference};
use models::policy::{Policy, Target};
use models::testing::{TinySpec, tiny_gguf};
use numerics::testing::rng;
use quant::QuantFormat;
use quant::kv::KvPrecision;
use rand::RngExt;

fn tiny(spec: &TinySpec) -> GgufFile {
    GgufFile::from_bytes(tiny_gguf(spec).expect("tiny model")).expect("parses")
}

fn keep() -> Policy {
    Policy::single("*", Target::Keep).expect("valid")
}

fn load(spec: &TinySpec, threads: usize) -> Model {
    Model::load(&tiny(spec), &keep(), threads).expect("loads")
}

fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut r = rng::seeded(seed);
    (0..n).map(|_| r.random_range(0..vocab as u32)).collect()
}

/// Largest |a − b| / (1 + |b|) over two logit tables.
fn max_err(fast: &[f32], reference: &[Vec<f64>]) -> f64 {
    let vocab = reference[0].len();
    reference
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(move |(j, &r)| (f64::from(fast[i * vocab + j]) - r).abs() / (1.0 + r.abs()))
        })
        .fold(0.0, f64::max)
}

/// The forward pass accumulates in `f32` (16-lane sums, `f32` softmax) against an `f64`
/// reference over the same decoded weights; through 2 blocks of width 64 the logits agree
/// to about 1e-5 relative. The budget leaves a 10× margin.
const FORWARD_TOLERANCE: f64 = 1e-4;

#[test]
fn forward_matches_f64_reference_for_every_storage() {
    for (matrix_format, tied) in [
        (QuantFormat::F32, true),
        (QuantFormat::Q4_1, true),
        (QuantFormat::Q8_0, false),
        (QuantFormat::F16, false),
    ] {
        let spec = TinySpec {
            matrix_format,
            tied,
            ..TinySpec::default()
        };
        let model = load(&spec, 2);
        assert_eq!(model.is_tied(), tied);
        let ids = tokens(19, model.config().vocab_size, 3);
        let mut cache = model.new_cache(32).unwrap();
        let out = model.forward(&mut cache, &ids, 0, None).unwrap();
        let r = reference::forward(&model, &ids).unwrap();
        let err = max_err(&out.logits, &r);
        assert!(
            err < FORWARD_TOLERANCE,
            "{matrix_format} tied={tied}: max rel error {err:e} > {FORWARD_TOLERANCE:e}"
        );
    }
}

#[test]
fn changing_a_future_token_leaves_earlier_logits_unchanged() {
    let model = load(&TinySpec::default(), 2);
    let vocab = model.config().vocab_size;
    let a = tokens(24, vocab, 5);
    let mut b = a.clone();
    b[17] = (b[17] + 1) % vocab as u32;
    let run = |ids: &[u32]| {
        let mut cache = model.new_cache(32).unwrap();
        model.forward(&mut cache, ids, 0, None).unwrap()
    };
    let (la, lb) = (run(&a), run(&b));
    for t in 0..17 {
        assert_eq!(la.row(t), lb.row(t), "position {t} depends on position 17");
    }
    assert_ne!(la.row(17), lb.row(17));
}

#[test]
fn incremental_decode_matches_full_recompute() {
    let model = load(&TinySpec::default(), 2);
    let ids = tokens(20, model.config().vocab_size, 9);
    let mut full_cache = model.new_cache(32).unwrap();
    let full = model.forward(&mut full_cache, &ids, 0, None).unwrap();
    // Prompt of 7, then one token at a time.
    let mut cache = model.new_cache(32).unwrap();
    let mut rows = model
        .forward(&mut cache, &ids[..7], 0, None)
        .unwrap()
        .logits;
    for &id in &ids[7..] {
        rows.extend(model.forward(&mut cache, &[id], 0, None).unwrap().logits);
    }
    assert_eq!(cache.len(), ids.len());
    // The cache is exact; only the products' blocking differs (one input vs many).
    let r: Vec<Vec<f64>> = full
        .logits
        .chunks(full.vocab)
        .map(|row| row.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let err = max_err(&rows, &r);
    assert!(err < FORWARD_TOLERANCE, "decode vs prefill: {err:e}");
}

#[test]
fn threads_do_not_change_results() {
    let spec = TinySpec::default();
    let (m1, m2) = (load(&spec, 1), load(&spec, 2));
    let ids = tokens(30, m1.config().vocab_size, 1);
    let run = |m: &Model| {
        let mut c = m.new_cache(32).unwrap();
        m.forward(&mut c, &ids, 0, None).unwrap().logits
    };
    assert_eq!(run(&m1), run(&m2));
}

#[test]
fn tiered_cache_with_f32_tiers_is_the_f32_cache() {
    let model = load(&TinySpec::default(), 2);
    let ids = tokens(16, model.config().vocab_size, 2);
    let mut plain = model.new_cache(16).unwrap();
    let mut tiered = KvCache::new(
        model.config(),
        16,
        KvMode::Tiered(vec![KvPrecision::F32; 16]),
    )
    .unwrap();
    let a = model.forward(&mut plain, &ids, 0, None).unwrap();
    let b = model.forward(&mut tiered, &ids, 0, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(plain.storage_bytes(), tiered.storage_bytes());
    // FP8 keys and values change the logits a little, and cost a quarter plus scales.
    let mut fp8 = KvCache::new(model.config(), 16, KvMode::Uniform(KvPrecision::Fp8E4M3)).unwrap();
    let c = model.forward(&mut fp8, &ids, 0, None).unwrap();
    assert_ne!(a, c);
    let head_dim = model.config().head_dim;
    let expected = KvPrecision::Fp8E4M3.bits_per_element(head_dim);
    assert!((fp8.bits_per_element() - expected).abs() < 1e-12);
    assert!((plain.bits_per_element() - 32.0).abs() < 1e-12);
}

#[test]
fn forward_errors_are_typed() {
    let model = load(&TinySpec::default(), 1);
    let vocab = model.config().vocab_size;
    let mut cache = model.new_cache(4).unwrap();
    assert!(matches!(
        model.forward(&mut cache, &[vocab as u32], 0, None),
        Err(models::Error::TokenOutOfRange { .. })
    ));
    assert!(matches!(
        model.forward(&mut cache, &[], 0, None),
        Err(models::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        model.forward(&mut cache, &[1, 2, 3, 4, 5], 0, None),
        Err(models::Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        model.forward(&mut cache, &[1, 2], 3, None),
        Err(models::Error::InvalidArgument { .. })
    ));
    assert!(cache.is_empty(), "failed calls leave the cache as it was");
    assert!(model.new_cache(0).is_err());
}

#[test]
fn perplexity_follows_the_reference_nll() {
    let model = load(&TinySpec::default(), 2);
    let n_ctx = 16;
    let ids = tokens(3 * n_ctx + 5, model.config().vocab_size, 4);
    let opts = PerplexityOptions {
        n_ctx,
        chunks: None,
        bos: None,
    };
    let report = &perplexity::evaluate(
        &[&model],
        Reference::Model(&model),
        &ids,
        &opts,
        &mut |_| {},
    )
    .unwrap()[0];
    assert_eq!(report.chunks, 3);
    assert_eq!(report.tokens_scored, 3 * (n_ctx - 1 - n_ctx / 2));
    // Same computation from the f64 reference.
    let mut nll = 0.0;
    for c in 0..3 {
        let chunk = &ids[c * n_ctx..(c + 1) * n_ctx];
        let logits = reference::forward(&model, chunk).unwrap();
        for i in n_ctx / 2..n_ctx - 1 {
            let row = &logits[i];
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            nll += lse - row[chunk[i + 1] as usize];
        }
    }
    let ppl = (nll / report.tokens_scored as f64).exp();
    assert!(
        (report.ppl - ppl).abs() / ppl < 1e-4,
        "{} vs {ppl}",
        report.ppl
    );
    assert!(report.ppl_stderr > 0.0);
    let kl = report.kl.unwrap();
    assert!(
        kl.mean.abs() < 1e-12,
        "a model against itself: KL {}",
        kl.mean
    );
    assert!((kl.top1_agreement - 1.0).abs() < f64::EPSILON);
    assert_eq!(
        report.reference_ppl,
        Some(report.ppl),
        "the reference is the same model"
    );
    assert_eq!(report.running.len(), 3);
    assert!((report.running[2] - report.ppl).abs() < 1e-9);
    // Too short a corpus, zero chunks.
    assert!(
        perplexity::evaluate(&[&model], Reference::None, &ids[..20], &opts, &mut |_| {}).is_err()
    );
    let zero = PerplexityOptions {
        chunks: Some(0),
        ..opts
    };
    assert!(perplexity::evaluate(&[&model], Reference::None, &ids, &zero, &mut |_| {}).is_err());
}

#[test]
fn policies_requantize_and_count_bytes() {
    let file = tiny(&TinySpec::default());
    let stored = Model::load(&file, &keep(), 1).unwrap();
    let fp32 = Model::load(&file, &Policy::load("fp32").unwrap(), 1).unwrap();
    let int8 = Model::load(&file, &Policy::load("int8").unwrap(), 1).unwrap();
    assert_eq!(fp32.weight_bytes(), fp32.f32_bytes());
    assert_eq!(stored.weight_bytes(), stored.stored_bytes());
    assert!(int8.weight_bytes() < fp32.weight_bytes() / 3);
    assert!(stored.weight_bytes() < int8.weight_bytes());
    // The fp32 policy dequantizes exactly: same logits as the stored model up to the
    // products' rounding.
    let ids = tokens(12, stored.config().vocab_size, 8);
    let run = |m: &Model| {
        let mut c = m.new_cache(12).unwrap();
        m.forward(&mut c, &ids, 0, None).unwrap().logits
    };
    let r: Vec<Vec<f64>> = run(&stored)
        .chunks(stored.config().vocab_size)
        .map(|row| row.iter().map(|&v| f64::from(v)).collect())
        .collect();
    assert!(max_err(&run(&fp32), &r) < FORWARD_TOLERANCE);
}

#[test]
fn llama_cpp_arithmetic_rounds_activations_queries_and_cache() {
    let mut model = load(&TinySpec::default(), 2);
    let ids = tokens(20, model.config().vocab_size, 6);
    let run = |m: &Model| {
        let mut c = m.new_cache(20).unwrap();
        let out = m.forward(&mut c, &ids, 0, None).unwrap();
        (out.logits, c.bits_per_element())
    };
    let (exact, bits) = run(&model);
    assert!((bits - 32.0).abs() < 1e-12);
    model.set_llama_cpp_arithmetic(true);
    assert!(model.llama_cpp_arithmetic());
    let (rounded, bits) = run(&model);
    assert!((bits - 16.0).abs() < 1e-12, "f16 cache: {bits}");
    assert_ne!(exact, rounded);
    // 8-bit activations move the logits by about 1 % of their scale, not more.
    let scale = exact.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let worst = exact
        .iter()
        .zip(&rounded)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 0.05 * scale, "{worst} vs scale {scale}");
}

#[test]
fn attention_variants_swap_into_layers() {
    use models::llama::parse_attention_spec;
    let spec = TinySpec::default();
    let ids = tokens(40, load(&spec, 1).config().vocab_size, 21);
    let logits = |m: &Model| {
        let mut c = m.new_cache(64).unwrap();
        m.forward(&mut c, &ids, 0, None).unwrap().logits
    };
    let base = logits(&load(&spec, 2));
    let as_rows = |l: &[f32]| -> Vec<Vec<f64>> {
        l.chunks(base.len() / ids.len())
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect()
    };
    // Dense flash (and the f64 reference) in every layer reproduce the built-in attention.
    for v in ["flash", "reference", "precision:format=f32", "rank"] {
        let mut m = load(&spec, 2);
        let (variant, layers) = parse_attention_spec(v, m.config().n_layers).unwrap();
        m.set_attention(&layers, Some(variant)).unwrap();
        let err = max_err(&logits(&m), &as_rows(&base));
        assert!(err < FORWARD_TOLERANCE, "{v}: {err:e}");
    }
    // A sparse variant in one layer changes the logits, but decode with the cache still
    // computes exactly the rows of the full pass.
    for v in [
        "dilated:w=8,16;r=1,2@1",
        "infini:seg=8;update=delta@0",
        "precision:format=e4m3@all",
    ] {
        let mut m = load(&spec, 2);
        let (variant, layers) = parse_attention_spec(v, m.config().n_layers).unwrap();
        m.set_attention(&layers, Some(variant)).unwrap();
        assert_eq!(
            m.attention_variants()
                .iter()
                .filter(|x| x.is_some())
                .count(),
            layers.len()
        );
        let full = logits(&m);
        assert!(
            max_err(&full, &as_rows(&base)) > 1e-4,
            "{v} changed nothing"
        );
        if v.starts_with("precision") {
            continue; // per-tensor FP8 scales depend on which rows are present
        }
        let mut cache = m.new_cache(64).unwrap();
        let mut rows = m.forward(&mut cache, &ids[..13], 0, None).unwrap().logits;
        for &id in &ids[13..] {
            rows.extend(m.forward(&mut cache, &[id], 0, None).unwrap().logits);
        }
        let err = max_err(&rows, &as_rows(&full));
        assert!(err < FORWARD_TOLERANCE, "{v}: decode vs prefill {err:e}");
    }
    // Bad specs and layers are typed errors.
    let mut m = load(&spec, 1);
    assert!(parse_attention_spec("dilated:w=8;r=9", 2).is_err());
    assert!(parse_attention_spec("flash@7", 2).is_err());
    assert!(m.set_attention(&[5], None).is_err());
}
