//! The byte-level BPE tokenizer on synthetic vocabularies: known answers, round trips, the
//! special-token rules, errors, streaming, and the llama.cpp fixture comparison
//! ([`check_against_fixture`], which the real-model suite runs on SmolLM2's vocabulary against
//! `tests/data/llama_tokenize.json`).

use std::path::Path;
use std::sync::LazyLock;

use models::Error;
use models::tokenizer::{TokenType, Tokenizer, TokenizerSpec};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------
// Fixture comparison (llama.cpp's ids for the real model)
// ---------------------------------------------------------------------------------------

/// One fixture case whose ids differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaseMismatch {
    /// Index in the fixture's `cases`.
    pub(crate) index: usize,
    /// The text.
    pub(crate) text: String,
    /// llama.cpp's ids.
    pub(crate) expected: Vec<u32>,
    /// Ours.
    pub(crate) got: Vec<u32>,
}

/// The whole-corpus comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CorpusCheck {
    /// The corpus file's SHA-256 is the one the fixture was made from.
    pub(crate) file_matches: bool,
    /// llama.cpp's token count.
    pub(crate) expected_tokens: usize,
    /// Ours.
    pub(crate) got_tokens: usize,
    /// The SHA-256 of our ids (little-endian `i32`s) equals llama.cpp's.
    pub(crate) ids_sha256_matches: bool,
    /// Our first ids equal the fixture's `corpus_first_ids`.
    pub(crate) first_ids_match: bool,
}

impl CorpusCheck {
    /// Everything agrees.
    pub(crate) fn ok(&self) -> bool {
        self.file_matches
            && self.expected_tokens == self.got_tokens
            && self.ids_sha256_matches
            && self.first_ids_match
    }
}

/// The outcome of [`check_against_fixture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FixtureReport {
    /// Cases compared.
    pub(crate) cases: usize,
    /// The cases that differ.
    pub(crate) mismatches: Vec<CaseMismatch>,
    /// The corpus comparison, when a corpus was given.
    pub(crate) corpus: Option<CorpusCheck>,
}

impl FixtureReport {
    /// Panics with a readable summary unless every case and the corpus agree.
    pub(crate) fn assert_ok(&self) {
        let corpus_ok = self.corpus.as_ref().is_none_or(CorpusCheck::ok);
        assert!(
            self.mismatches.is_empty() && corpus_ok,
            "{} of {} cases differ from llama.cpp (first: {:?}); corpus: {:?}",
            self.mismatches.len(),
            self.cases,
            self.mismatches.first(),
            self.corpus
        );
    }
}

/// Compares `tokenizer` with a llama.cpp fixture file (`tests/data/llama_tokenize.json`) and,
/// if `corpus` is given, with the fixture's whole-corpus ids (the corpus file read as
/// `llama-perplexity -f` reads it: one trailing `\n` removed).
///
/// # Panics
///
/// If a file cannot be read or the fixture is malformed.
pub(crate) fn check_against_fixture(
    tokenizer: &Tokenizer,
    fixture: &Path,
    corpus: Option<&Path>,
) -> FixtureReport {
    let text = std::fs::read_to_string(fixture)
        .unwrap_or_else(|e| panic!("reading {}: {e}", fixture.display()));
    let fixture: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing the fixture: {e}"));
    let corpus =
        corpus.map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    compare_with_fixture(tokenizer, &fixture, corpus.as_deref())
}

/// [`check_against_fixture`] on a parsed fixture and the corpus bytes.
///
/// # Panics
///
/// If the fixture is malformed or the corpus is not UTF-8.
pub(crate) fn compare_with_fixture(
    tokenizer: &Tokenizer,
    fixture: &serde_json::Value,
    corpus: Option<&[u8]>,
) -> FixtureReport {
    let flag = |key: &str| {
        fixture[key]
            .as_bool()
            .unwrap_or_else(|| panic!("fixture `{key}`"))
    };
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("an id list")
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .expect("an id")
            })
            .collect()
    };
    let (add_special, parse_special) = (flag("add_special"), flag("parse_special"));
    let cases = fixture["cases"].as_array().expect("fixture `cases`");
    let mut mismatches = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().expect("case `text`");
        let expected = ids(&case["ids"]);
        let got = tokenizer
            .encode(text, add_special, parse_special)
            .expect("encoding a fixture case");
        if got != expected {
            mismatches.push(CaseMismatch {
                index,
                text: text.to_owned(),
                expected,
                got,
            });
        }
    }
    let corpus = corpus.map(|bytes| {
        let file_matches = hex(&Sha256::digest(bytes))
            == fixture["corpus_file_sha256"]
                .as_str()
                .expect("corpus_file_sha256");
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).expect("the corpus is UTF-8");
        let got = tokenizer
            .encode(text, add_special, parse_special)
            .expect("encoding the corpus");
        let le: Vec<u8> = got
            .iter()
            .flat_map(|&id| (id as i32).to_le_bytes())
            .collect();
        let first = ids(&fixture["corpus_first_ids"]);
        CorpusCheck {
            file_matches,
            expected_tokens: fixture["corpus_tokens"].as_u64().expect("corpus_tokens") as usize,
            got_tokens: got.len(),
            ids_sha256_matches: hex(&Sha256::digest(&le))
                == fixture["corpus_ids_sha256"]
                    .as_str()
                    .expect("corpus_ids_sha256"),
            first_ids_match: got.get(..first.len()) == Some(&first[..]),
        }
    });
    FixtureReport {
        cases: cases.len(),
        mismatches,
        corpus,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Synthetic vocabularies
// ---------------------------------------------------------------------------------------

/// GPT-2's byte character for each byte.
fn byte_chars() -> Vec<char> {
    TokenizerSpec::byte_level("gpt2")
        .tokens
        .iter()
        .map(|t| t.chars().next().unwrap())
        .collect()
}

/// Appends a token, returning its id.
fn push(spec: &mut TokenizerSpec, text: &str, ty: TokenType) -> u32 {
    spec.tokens.push(text.into());
    spec.token_types.push(ty as i32);
    (spec.tokens.len() - 1) as u32
}

/// Text to learn merges from: prose, code, numbers, several scripts.
const TRAINING_TEXT: &str = "The quick brown fox jumps over the lazy dog. It's the fox's \
    den, and they're there; we've seen it. The theory of the thing: there is nothing there \
    that the other three think through. In 2024 the 3 foxes ran 42 km. \
    fn main() { println!(\"hello, world\"); } // the end\n\
    def hello(x):\n    return x * 2\n\
    Café, naïve, résumé: été à Paris. Привет, мир! Привет всем. 日本語のテキスト。\
    hello hello hello world world wide web";

/// A SmolLM2-shaped vocabulary: control tokens first (`<|endoftext|>` 0, `<|im_start|>` 1 =
/// BOS, `<|im_end|>` 2 = EOS), a user-defined `<tool>` 3, an unused token 4, the 256 bytes,
/// then tokens and merges learned greedily from [`TRAINING_TEXT`].
fn synthetic_spec(pre: &str, n_merges: usize) -> TokenizerSpec {
    let mut spec = TokenizerSpec {
        model: "gpt2".into(),
        pre: pre.into(),
        bos: Some(1),
        eos: Some(2),
        ..TokenizerSpec::default()
    };
    push(&mut spec, "<|endoftext|>", TokenType::Control);
    push(&mut spec, "<|im_start|>", TokenType::Control);
    push(&mut spec, "<|im_end|>", TokenType::Control);
    push(&mut spec, "<tool>", TokenType::UserDefined);
    push(&mut spec, "<unused0>", TokenType::Unused);
    let chars = byte_chars();
    for c in &chars {
        push(&mut spec, &c.to_string(), TokenType::Normal);
    }
    // Words: split at spaces, the space kept in front (as GPT-2's ` ?\p{L}+` does).
    let mut words: Vec<Vec<String>> = TRAINING_TEXT
        .split_inclusive(' ')
        .map(|w| {
            let w = w.trim_end_matches(' ');
            let w = format!(" {w}");
            w.bytes().map(|b| chars[b as usize].to_string()).collect()
        })
        .collect();
    for _ in 0..n_merges {
        let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for w in &words {
            for pair in w.windows(2) {
                *counts
                    .entry((pair[0].clone(), pair[1].clone()))
                    .or_default() += 1;
            }
        }
        // Most frequent pair, ties by the pair itself: deterministic.
        let Some(((a, b), _)) = counts
            .into_iter()
            .max_by(|x, y| x.1.cmp(&y.1).then_with(|| y.0.cmp(&x.0)))
        else {
            break;
        };
        let merged = format!("{a}{b}");
        spec.merges.push(format!("{a} {b}"));
        if !spec.tokens.contains(&merged) {
            push(&mut spec, &merged, TokenType::Normal);
        }
        for w in &mut words {
            let mut out = Vec::with_capacity(w.len());
            let mut i = 0;
            while i < w.len() {
                if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
                    out.push(merged.clone());
                    i += 2;
                } else {
                    out.push(w[i].clone());
                    i += 1;
                }
            }
            *w = out;
        }
    }
    spec
}

static SMOLLM: LazyLock<Tokenizer> =
    LazyLock::new(|| Tokenizer::new(synthetic_spec("smollm", 300)).unwrap());

/// The id of a vocabulary text.
fn id(t: &Tokenizer, text: &str) -> u32 {
    t.token_id(text)
        .unwrap_or_else(|| panic!("{text:?} is not a token"))
}

/// Byte-level form of a text (`Ġ` for a space).
fn byte_level(text: &str) -> String {
    let chars = byte_chars();
    text.bytes().map(|b| chars[b as usize]).collect()
}

// ---------------------------------------------------------------------------------------
// Known answers
// ---------------------------------------------------------------------------------------

/// Bytes, plus `he`, `ll`, `hell`, `hello`, `Ġw` with merges in this order of priority.
fn hello_tokenizer(pre: &str) -> Tokenizer {
    let mut spec = TokenizerSpec::byte_level(pre);
    for t in ["ll", "he", "hell", "hello", "el", "Ġw"] {
        push(&mut spec, t, TokenType::Normal);
    }
    spec.merges = ["l l", "h e", "e l", "he ll", "hell o", "Ġ w"]
        .map(String::from)
        .to_vec();
    Tokenizer::new(spec).unwrap()
}

#[test]
fn merges_apply_lowest_rank_first_then_leftmost() {
    let t = hello_tokenizer("gpt2");
    let ids = |s: &str| t.encode(s, false, false).unwrap();
    assert_eq!(ids("hello"), [id(&t, "hello")]);
    assert_eq!(ids("hell"), [id(&t, "hell")]);
    // `l l` outranks `e l`.
    assert_eq!(ids("ell"), [b'e' as u32, id(&t, "ll")]);
    // Equal ranks: leftmost first.
    assert_eq!(ids("lll"), [id(&t, "ll"), b'l' as u32]);
    assert_eq!(
        ids("hello world"),
        [id(&t, "hello"), id(&t, "Ġw"), 111, 114, 108, 100]
    );
    assert_eq!(ids(""), Vec::<u32>::new());
}

#[test]
fn smollm_splits_digits_and_gpt2_does_not() {
    let mut spec = TokenizerSpec::byte_level("smollm");
    push(&mut spec, "12", TokenType::Normal);
    spec.merges.push("1 2".into());
    let smollm = Tokenizer::new(spec.clone()).unwrap();
    spec.pre = "gpt-2".into();
    let gpt2 = Tokenizer::new(spec).unwrap();
    assert_eq!(
        smollm.encode("12", false, false).unwrap(),
        [b'1' as u32, b'2' as u32]
    );
    assert_eq!(gpt2.encode("12", false, false).unwrap(), [256]);
}

#[test]
fn llama3_ignore_merges_takes_whole_words() {
    // `hello` is a token, but no merge chain builds it from `h e l l o` here.
    let mut spec = TokenizerSpec::byte_level("llama3");
    push(&mut spec, "hello", TokenType::Normal);
    let llama3 = Tokenizer::new(spec.clone()).unwrap();
    assert_eq!(llama3.encode("hello", false, false).unwrap(), [256]);
    spec.pre = "gpt2".into();
    let gpt2 = Tokenizer::new(spec).unwrap();
    assert_eq!(gpt2.encode("hello", false, false).unwrap().len(), 5);
}

#[test]
fn a_missing_byte_token_is_dropped_and_cuts_the_word() {
    // Like SmolLM2, which has no token for byte 0x04: llama.cpp keeps such a byte as a symbol
    // that nothing merges with, then drops it. Here `é` (C3 A9) has no byte tokens, so in the
    // one word `aéb` the merge `a b` must not join `a` and `b` across it.
    let mut spec = TokenizerSpec::byte_level("gpt2");
    let ab = push(&mut spec, "ab", TokenType::Normal);
    spec.merges.push("a b".into());
    spec.tokens[0xC3] = "<removed C3>".into();
    spec.tokens[0xA9] = "<removed A9>".into();
    let t = Tokenizer::new(spec).unwrap();
    assert_eq!(t.encode("ab", false, false).unwrap(), [ab]);
    assert_eq!(
        t.encode("aéb", false, false).unwrap(),
        [b'a' as u32, b'b' as u32]
    );
}

#[test]
fn add_special_adds_bos_and_eos_only_when_the_model_asks() {
    let mut spec = synthetic_spec("smollm", 20);
    let plain = Tokenizer::new(spec.clone()).unwrap();
    assert_eq!(
        plain.encode("hi", true, false).unwrap(),
        plain.encode("hi", false, false).unwrap()
    );
    spec.add_bos = true;
    spec.add_eos = true;
    let t = Tokenizer::new(spec).unwrap();
    let body = t.encode("hi", false, false).unwrap();
    let with = t.encode("hi", true, false).unwrap();
    assert_eq!(with.first(), Some(&1));
    assert_eq!(with.last(), Some(&2));
    assert_eq!(&with[1..with.len() - 1], &body[..]);
    assert_eq!(t.encode("", true, false).unwrap(), [1, 2]);
}

#[test]
fn control_tokens_are_text_unless_parse_special() {
    let t = &*SMOLLM;
    let text = "<|im_start|>user\nhi<|im_end|>";
    let parsed = t.encode(text, false, true).unwrap();
    assert_eq!(parsed.first(), Some(&1));
    assert_eq!(parsed.last(), Some(&2));
    assert_eq!(
        &parsed[1..parsed.len() - 1],
        &t.encode("user\nhi", false, false).unwrap()[..]
    );
    let plain = t.encode(text, false, false).unwrap();
    assert!(plain.iter().all(|&id| !t.is_control(id)));
    assert_eq!(t.decode(&plain).unwrap(), text.as_bytes());
    // Decoding drops control tokens; their piece with `special` is their text.
    assert_eq!(t.decode(&parsed).unwrap(), b"user\nhi");
    assert_eq!(t.token_piece(1, true).unwrap(), b"<|im_start|>");
    assert_eq!(t.token_bytes(1).unwrap(), b"");
}

#[test]
fn user_defined_tokens_are_matched_even_in_plain_text() {
    let t = &*SMOLLM;
    let ids = t.encode("call <tool> now", false, false).unwrap();
    assert!(ids.contains(&3));
    assert_eq!(t.decode(&ids).unwrap(), b"call <tool> now");
    assert_eq!(t.token_bytes(3).unwrap(), b"<tool>");
    // Unused tokens decode to nothing.
    assert_eq!(t.token_piece(4, true).unwrap(), b"");
}

#[test]
fn token_accessors() {
    let t = &*SMOLLM;
    assert_eq!(t.bos(), Some(1));
    assert_eq!(t.eos(), Some(2));
    assert_eq!(t.pre(), "smollm");
    assert!(t.is_control(0) && t.is_control(1) && t.is_control(2));
    assert!(!t.is_control(3) && !t.is_control(100) && !t.is_control(u32::MAX));
    assert!(t.is_eog(2) && t.is_eog(0) && !t.is_eog(1));
    let the = id(t, &byte_level(" the"));
    assert_eq!(t.token_text(the).unwrap(), "Ġthe");
    assert_eq!(t.token_bytes(the).unwrap(), b" the");
    assert_eq!(t.vocab_size(), synthetic_spec("smollm", 300).tokens.len());
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn build_error(spec: TokenizerSpec) -> Error {
    Tokenizer::new(spec).expect_err("the spec is invalid")
}

fn reason(e: &Error) -> String {
    match e {
        Error::Tokenizer { reason } => reason.to_string(),
        other => panic!("expected Error::Tokenizer, got {other:?}"),
    }
}

#[test]
fn out_of_range_ids_are_errors() {
    let t = &*SMOLLM;
    let n = t.vocab_size();
    let bad = n as u32;
    for e in [
        t.decode(&[5, bad]).unwrap_err(),
        t.token_bytes(bad).unwrap_err(),
        t.token_piece(u32::MAX, true).unwrap_err(),
        t.token_text(bad).unwrap_err(),
        t.stream_decoder(false).push(bad).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::TokenOutOfRange { vocab, .. } if vocab == n),
            "{e:?}"
        );
    }
}

#[test]
fn invalid_specs_are_typed_errors() {
    let base = || synthetic_spec("smollm", 10);

    let e = build_error(TokenizerSpec {
        pre: "qwen2".into(),
        ..base()
    });
    let r = reason(&e);
    assert!(
        r.contains("qwen2") && r.contains("smollm") && r.contains("llama3"),
        "{r}"
    );

    let e = build_error(TokenizerSpec {
        model: "llama".into(),
        ..base()
    });
    assert!(reason(&e).contains("llama"));

    let e = build_error(TokenizerSpec {
        tokens: vec![],
        token_types: vec![],
        merges: vec![],
        bos: None,
        eos: None,
        ..base()
    });
    assert!(reason(&e).contains("empty"));

    let mut spec = base();
    spec.merges.push("Ġthe zzz".into());
    assert!(reason(&build_error(spec)).contains("zzz"));

    let mut spec = base();
    spec.merges.push("x y".into()); // both sides exist, "xy" does not
    assert!(reason(&build_error(spec)).contains("\"xy\""));

    let mut spec = base();
    spec.merges.push("nospace".into());
    assert!(reason(&build_error(spec)).contains("no space"));

    let mut spec = base();
    let last = spec.tokens.len() - 1;
    spec.tokens[last] = spec.tokens[10].clone();
    assert!(reason(&build_error(spec)).contains("duplicate"));

    let mut spec = base();
    spec.token_types.pop();
    assert!(reason(&build_error(spec)).contains("token types"));

    let mut spec = base();
    spec.token_types[7] = TokenType::Byte as i32;
    assert!(reason(&build_error(spec)).contains("<0xAB>"));

    let mut spec = base();
    spec.bos = None;
    spec.add_bos = true;
    assert!(reason(&build_error(spec)).contains("BOS"));

    let mut spec = base();
    let n = spec.tokens.len();
    spec.eos = Some(n as u32);
    assert!(matches!(
        build_error(spec),
        Error::TokenOutOfRange { id, vocab } if id as usize == n && vocab == n
    ));
}

#[test]
fn byte_tokens_and_empty_texts_follow_llama_cpp() {
    let mut spec = TokenizerSpec::byte_level("gpt2");
    let byte = push(&mut spec, "<0x0A>", TokenType::Byte);
    let empty = push(&mut spec, "", TokenType::Normal);
    let t = Tokenizer::new(spec).unwrap();
    assert_eq!(t.token_bytes(byte).unwrap(), b"\n");
    assert_eq!(t.token_text(empty).unwrap(), format!("[EMPTY_{empty}]"));
}

// ---------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------

#[test]
fn stream_decoder_waits_for_whole_characters() {
    let t = &*SMOLLM;
    let text = "a😀é中 <|im_end|>!";
    let ids = t.encode(text, false, true).unwrap();
    let mut stream = t.stream_decoder(false);
    let mut out = String::new();
    for &id in &ids {
        let piece = stream.push(id).unwrap();
        out.push_str(&piece);
        assert!(text.starts_with(&out) || "a😀é中 !".starts_with(&out));
    }
    out.push_str(&stream.finish());
    assert_eq!(out, "a😀é中 !");

    let mut stream = t.stream_decoder(true);
    let all: String = ids.iter().map(|&id| stream.push(id).unwrap()).collect();
    assert_eq!(all + &stream.finish(), text);
}

#[test]
fn stream_decoder_replaces_invalid_bytes() {
    let t = Tokenizer::new(TokenizerSpec::byte_level("gpt2")).unwrap();
    let mut stream = t.stream_decoder(false);
    // 0xE4 0xB8 starts 中 (E4 B8 AD); 'x' ends it early; a lone 0xFF is never valid.
    assert_eq!(stream.push(0xE4).unwrap(), "");
    assert_eq!(stream.push(0xB8).unwrap(), "");
    assert_eq!(stream.push(b'x' as u32).unwrap(), "\u{FFFD}x");
    assert_eq!(stream.push(0xFF).unwrap(), "\u{FFFD}");
    assert_eq!(stream.push(0xF0).unwrap(), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
}

// ---------------------------------------------------------------------------------------
// The fixture helper, on a synthetic fixture
// ---------------------------------------------------------------------------------------

#[test]
fn fixture_comparison_reports_mismatches() {
    let t = &*SMOLLM;
    let texts = ["Hello world", "It's 2024!", " \r\n x", ""];
    let corpus = b"The fox.\r\nThe end.\r\n".as_slice();
    let corpus_ids = t.encode("The fox.\r\nThe end.\r", true, false).unwrap();
    let le: Vec<u8> = corpus_ids
        .iter()
        .flat_map(|&id| (id as i32).to_le_bytes())
        .collect();
    let mut fixture = serde_json::json!({
        "add_special": true,
        "parse_special": false,
        "cases": texts.iter().map(|s| serde_json::json!({
            "text": s,
            "ids": t.encode(s, true, false).unwrap(),
        })).collect::<Vec<_>>(),
        "corpus_file_sha256": hex(&Sha256::digest(corpus)),
        "corpus_tokens": corpus_ids.len(),
        "corpus_ids_sha256": hex(&Sha256::digest(&le)),
        "corpus_first_ids": corpus_ids[..3],
    });
    let report = compare_with_fixture(t, &fixture, Some(corpus));
    report.assert_ok();
    assert_eq!(report.cases, 4);

    fixture["cases"][1]["ids"][0] = serde_json::json!(7);
    fixture["corpus_tokens"] = serde_json::json!(corpus_ids.len() + 1);
    let report = compare_with_fixture(t, &fixture, Some(corpus));
    assert_eq!(report.mismatches.len(), 1);
    assert_eq!(report.mismatches[0].index, 1);
    assert!(!report.corpus.unwrap().ok());

    // The file wrapper reads the same thing.
    let dir = std::env::temp_dir().join(format!("models-tokenizer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (fixture_path, corpus_path) = (dir.join("fixture.json"), dir.join("corpus.txt"));
    std::fs::write(&fixture_path, fixture.to_string()).unwrap();
    std::fs::write(&corpus_path, corpus).unwrap();
    let from_files = check_against_fixture(t, &fixture_path, Some(&corpus_path));
    assert_eq!(from_files, compare_with_fixture(t, &fixture, Some(corpus)));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Strings dense in the characters the pre-tokenizer treats specially.
fn tricky_string() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        ' ', ' ', '\t', '\n', '\r', '\u{A0}', '\u{85}', '\u{3000}', 'a', 'T', 'h', 'e', 's', '\'',
        '0', '7', '½', '²', '!', '.', '$', '`', 'é', '\u{301}', '中', '😀', '<', '|', '>', '_',
        't', 'o', 'l', 'm', '\u{0}', '\u{1C89}',
    ]);
    prop::collection::vec(chars, 0..48).prop_map(|v| v.into_iter().collect())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), tricky_string()]
}

fn non_whitespace() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        prop::sample::select(vec!['a', '1', '.', '\'', '😀', 'é'])
    ]
    .prop_filter("not whitespace", |c| !c.is_whitespace())
}

proptest! {
    #[test]
    fn decode_inverts_encode(text in any_text()) {
        let t = &*SMOLLM;
        let ids = t.encode(&text, false, false).unwrap();
        prop_assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
        prop_assert_eq!(t.decode(&ids).unwrap(), text.as_bytes());
    }

    #[test]
    fn special_pieces_invert_encode_with_parse_special(
        parts in prop::collection::vec(
            prop_oneof![any_text(), Just("<|im_start|>".to_string()), Just("<|im_end|>".to_string())],
            0..4,
        ),
    ) {
        let t = &*SMOLLM;
        let text = parts.concat();
        let ids = t.encode(&text, false, true).unwrap();
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| t.token_piece(id, true).unwrap().to_vec())
            .collect();
        prop_assert_eq!(bytes, text.as_bytes());
    }

    #[test]
    fn a_newline_between_non_whitespace_is_a_word_boundary(
        a in any_text(),
        a_end in non_whitespace(),
        b_start in non_whitespace(),
        b in any_text(),
    ) {
        let t = &*SMOLLM;
        let left = format!("{a}{a_end}\n");
        let right = format!("{b_start}{b}");
        let mut split = t.encode(&left, false, false).unwrap();
        split.extend(t.encode(&right, false, false).unwrap());
        prop_assert_eq!(t.encode(&format!("{left}{right}"), false, false).unwrap(), split);
    }

    #[test]
    fn decode_is_the_concatenation_of_token_bytes(
        ids in prop::collection::vec(0u32..SMOLLM.vocab_size() as u32, 0..32),
    ) {
        let t = &*SMOLLM;
        let concat: Vec<u8> = ids.iter().flat_map(|&id| t.token_bytes(id).unwrap().to_vec()).collect();
        prop_assert_eq!(t.decode(&ids).unwrap(), concat);
    }

    #[test]
    fn stream_decoder_agrees_with_lossy_decode(
        ids in prop::collection::vec(0u32..SMOLLM.vocab_size() as u32, 0..32),
    ) {
        let t = &*SMOLLM;
        let mut stream = t.stream_decoder(false);
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&stream.push(id).unwrap());
        }
        out.push_str(&stream.finish());
        prop_assert_eq!(out, String::from_utf8_lossy(&t.decode(&ids).unwrap()).into_owned());
    }
}
