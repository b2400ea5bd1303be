//! `smollm2/prefill-512`: one forward pass over 512 tokens of WikiText-2 (throughput in
//! tokens), for the model as stored (Q4_1/Q8_0) and under the `fp32` policy, at 1 and 2
//! threads.
//!
//! `smollm2/decode`: one single-token step at position 128 (the cache rewound after each
//! step), same models and threads, beside `memcpy` of the stored model's weight bytes — the
//! bound a memory-bound decoder approaches (throughput in tokens: one "token" of memcpy is one
//! copy of the weights).
//!
//! The model is fetched into the cache on first use (`models::fetch::default_model`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use models::gguf::GgufFile;
use models::llama::Model;
use models::policy::Policy;
use models::tokenizer::Tokenizer;

const PREFILL: usize = 512;
const DECODE_AT: usize = 128;

fn bench(c: &mut Criterion) {
    let path = models::fetch::default_model().expect("the real model");
    let file = GgufFile::open(&path).expect("GGUF");
    let tok = Tokenizer::from_gguf(file.metadata()).expect("tokenizer");
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).expect("corpus");
    let text = models::fetch::read_corpus(&corpus).expect("corpus text");
    let end = (0..=20_000.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let tokens = tok.encode(&text[..end], true, false).expect("tokens");
    let mut models = Vec::new();
    for policy in ["stored", "fp32"] {
        for threads in [1, 2] {
            let m = Model::load(&file, &Policy::preset(policy).unwrap(), threads).unwrap();
            models.push((format!("{policy}/t{threads}"), m));
        }
    }

    let mut g = c.benchmark_group("smollm2/prefill-512");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(PREFILL as u64));
    for (id, m) in &models {
        let mut cache = m.new_cache(PREFILL).unwrap();
        g.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| {
                cache.clear();
                black_box(m.forward(&mut cache, &tokens[..PREFILL], PREFILL - 1, None))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("smollm2/decode");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1));
    let bytes = models[0].1.weight_bytes();
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    g.bench_function(BenchmarkId::from_parameter("memcpy-weights"), |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)))
    });
    for (id, m) in &models {
        let mut cache = m.new_cache(DECODE_AT + 1).unwrap();
        m.forward(&mut cache, &tokens[..DECODE_AT], DECODE_AT - 1, None)
            .unwrap();
        let next = [tokens[DECODE_AT]];
        g.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| {
                cache.truncate(DECODE_AT);
                black_box(m.forward(&mut cache, &next, 0, None))
            })
        });
    }
    g.finish();
}

criterion::criterion_group!(benches, bench);
