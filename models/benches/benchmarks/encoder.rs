//! `minilm/embed-32`: sentence embeddings of 32 WikiText-2 lines (throughput in sentences)
//! by all-MiniLM-L6-v2 under the `fp32` policy (the baseline of the group), `fp16`, `int8`
//! and `attn16-ffn8-emb4`, at 1 and 2 threads. Read the ratios against `fp32` at the same
//! thread count; the absolute numbers move with the machine.
//!
//! `minilm/embed-1`: one short sentence (latency-bound: 8 tokens, the fused-kernel path
//! below 16 rows) under the same policies.
//!
//! The model is fetched into the cache on first use (`models::fetch::minilm_model`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use models::bert::Encoder;
use models::policy::Policy;

const SENTENCES: usize = 32;

fn bench(c: &mut Criterion) {
    let dir = models::fetch::minilm_model().expect("all-MiniLM-L6-v2");
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).expect("corpus");
    let text = models::fetch::read_corpus(&corpus).expect("corpus text");
    let lines = models::fidelity::corpus_sentences(&text, SENTENCES).expect("lines");
    let mut encoders = Vec::new();
    for policy in ["fp32", "fp16", "int8", "attn16-ffn8-emb4"] {
        for threads in [1, 2] {
            let e = Encoder::load(&dir, &Policy::preset(policy).unwrap(), threads).unwrap();
            encoders.push((format!("{policy}/t{threads}"), e));
        }
    }
    let ids: Vec<Vec<u32>> = lines
        .iter()
        .map(|l| encoders[0].1.tokenizer().encode(l).unwrap())
        .collect();
    let short = vec![
        encoders[0]
            .1
            .tokenizer()
            .encode("This is an example sentence.")
            .unwrap(),
    ];

    let mut g = c.benchmark_group("minilm/embed-32");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(SENTENCES as u64));
    for (id, e) in &encoders {
        g.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| black_box(e.embed_ids(black_box(&ids)).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("minilm/embed-1");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    for (id, e) in &encoders {
        g.bench_function(BenchmarkId::from_parameter(id), |b| {
            b.iter(|| black_box(e.embed_ids(black_box(&short)).unwrap()))
        });
    }
    g.finish();
}

criterion::criterion_group!(benches, bench);
