//! Byte-level BPE tokenizer built from a GGUF vocabulary, producing the same token ids as
//! llama.cpp's `llama_tokenize` and the same bytes as its `llama_token_to_piece`.
//!
//! Reference: llama.cpp `src/llama-vocab.cpp` (`llm_tokenizer_bpe`, `tokenizer_st_partition`,
//! `token_to_piece`) and `src/unicode.cpp` (`unicode_regex_split`), at commit `0c1e570`.
//!
//! # How text becomes ids
//!
//! 1. **Special-token partition.** The text is cut around occurrences of special tokens, longest
//!    first: user-defined tokens (GGUF token type 4) always, control (3) and unknown (2) tokens
//!    only with `parse_special = true`. With `parse_special = false` a control token's text,
//!    such as `<|im_start|>`, is plain text.
//! 2. **Pre-tokenization.** Each remaining fragment is cut into words by the pre-tokenizer
//!    named in the GGUF metadata (`tokenizer.ggml.pre`). llama.cpp does not hand its patterns
//!    to a regex engine: the GPT-2 and LLaMA-3 patterns run through hand-written matchers, the
//!    others through `std::regex` on a text where each non-ASCII code point is collapsed to a
//!    byte naming its class, all with llama.cpp's own Unicode 15.1 class table. We port those
//!    matchers (module `pretokenize`) instead of using the `tokenizers` crate's
//!    `Split`/`Digits`/`ByteLevel` pre-tokenizers, whose regex engine has Unicode 16 classes
//!    and whose `Digits` uses [`char::is_numeric`]; module `unicode` rebuilds llama.cpp's class
//!    table exactly (checked against it for every code point).
//! 3. **Byte-level BPE.** Each word's UTF-8 bytes are mapped to GPT-2's byte characters and
//!    merged by the `tokenizers` crate's [`BPE`] model (lowest merge rank first, leftmost first:
//!    the same order as llama.cpp's `llm_tokenizer_bpe_session`), with its per-thread word cache.
//!    A byte with no byte-level token in the vocabulary (SmolLM2 has none for 0x04, 0x06,
//!    0x13, 0x14, 0x16, 0x1D) is dropped and ends the merge run there, as in llama.cpp.
//! 4. BOS/EOS are added only when `add_special` is set *and* the model asks for them
//!    (`tokenizer.ggml.add_bos_token` / `add_eos_token`), as llama.cpp does. SmolLM2 asks for
//!    neither.
//!
//! Supported pre-tokenizers (llama.cpp names): `smollm` (also `starcoder`, `refact`,
//! `command-r`, `codeshell`, `exaone`, `minerva-7b`: each number character alone, then GPT-2),
//! `gpt-2` / `gpt2` (also `mpt`, `olmo`: GPT-2), `default` or empty (llama.cpp's fallback list)
//! and `llama3` / `llama-v3` / `llama-bpe` (LLaMA 3, with llama.cpp's `ignore_merges`).
//!
//! Not modelled: the `lstrip`/`rstrip` attributes llama.cpp sets on special tokens for a few
//! model names (Phi-3, Jina, ModernBERT); llama.cpp promotes only the first fill-in-the-middle
//! token of each kind it finds by text to control type, we promote all of them.
//!
//! Speed: the class table is built once per process (about 0.1 s); after that, WikiText-2's
//! 1.3 MB test split encodes in about 0.15 s on one core (release build).
//!
//! # Ids back to bytes
//!
//! [`Tokenizer::token_piece`] is `llama_token_to_piece(lstrip = 0)`: normal tokens map back
//! through the GPT-2 byte table; user-defined tokens are their text; control and unknown tokens
//! are their text with `special = true` and nothing otherwise; unused and undefined tokens are
//! nothing. [`Tokenizer::decode`] concatenates pieces with `special = false` (no space cleanup:
//! it is the concatenation of pieces, as a streaming generator prints them), and
//! [`StreamDecoder`] turns a stream of ids into UTF-8 text.
//!
//! # Example
//!
//! ```
//! use models::tokenizer::{Tokenizer, TokenizerSpec};
//!
//! # fn main() -> models::Result<()> {
//! // The 256 byte tokens, plus one merge "h e" -> "he".
//! let mut spec = TokenizerSpec::byte_level("smollm");
//! spec.tokens.push("he".into());
//! spec.token_types.push(1);
//! spec.merges.push("h e".into());
//! let tokenizer = Tokenizer::new(spec)?;
//!
//! let ids = tokenizer.encode("hehe 42", false, false)?;
//! assert_eq!(ids.len(), 5); // "he" "he" " " "4" "2": digits are split one by one
//! assert_eq!(tokenizer.decode(&ids)?, b"hehe 42");
//! # Ok(())
//! # }
//! ```

mod from_gguf;
mod pretokenize;
mod stream;
mod unicode;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use tokenizers::Model;
use tokenizers::models::bpe::{BPE, Vocab};

use self::pretokenize::Step;
pub use self::stream::StreamDecoder;
use crate::{Error, Result};

/// GGUF token types (`tokenizer.ggml.token_type`, llama.cpp `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TokenType {
    /// Type 0: undefined; decodes to nothing.
    Undefined = 0,
    /// Type 1: an ordinary byte-level token.
    Normal = 1,
    /// Type 2: the unknown token.
    Unknown = 2,
    /// Type 3: a control token such as `<|im_start|>`.
    Control = 3,
    /// Type 4: a user-defined token, matched as a whole even in plain text.
    UserDefined = 4,
    /// Type 5: unused; decodes to nothing.
    Unused = 5,
    /// Type 6: a byte token written `<0xAB>`.
    Byte = 6,
}

/// Everything the tokenizer needs from a GGUF file's `tokenizer.ggml.*` metadata, as plain data
/// (so it can be filled from any reader, or written by hand in tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.tokens`: token texts in GPT-2 byte-level form (`Ġ` for a space), id =
    /// index.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: one [`TokenType`] value per token; empty means all normal.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`: `"left right"` pairs, highest priority first.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.model`: must be `"gpt2"` (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer (see the [module docs](self) for the list).
    pub pre: String,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`: prepend BOS when encoding with `add_special`.
    pub add_bos: bool,
    /// `tokenizer.ggml.add_eos_token`: append EOS when encoding with `add_special`.
    pub add_eos: bool,
}

impl TokenizerSpec {
    /// A spec holding just the 256 byte tokens (id = byte value, all normal), no merges, model
    /// `gpt2`, the given pre-tokenizer, no BOS/EOS: the smallest valid vocabulary, to extend in
    /// tests and examples.
    pub fn byte_level(pre: &str) -> Self {
        Self {
            tokens: unicode::BYTE_TO_CHAR
                .iter()
                .map(|c| c.to_string())
                .collect(),
            token_types: vec![TokenType::Normal as i32; 256],
            merges: Vec::new(),
            model: "gpt2".into(),
            pre: pre.into(),
            bos: None,
            eos: None,
            add_bos: false,
            add_eos: false,
        }
    }
}

/// Pre-tokenizer names llama.cpp maps to each list of steps.
const PRE_TYPES: &[(&[&str], &[Step], bool)] = &[
    (
        &[
            "smollm",
            "starcoder",
            "refact",
            "command-r",
            "codeshell",
            "exaone",
            "minerva-7b",
        ],
        &[Step::EachNumber, Step::Gpt2],
        false,
    ),
    (&["gpt-2", "gpt2", "mpt", "olmo"], &[Step::Gpt2], false),
    (
        &["default", ""],
        &[
            Step::PunctuationRuns,
            Step::Gpt2,
            Step::NumberRuns,
            Step::AsciiDigitTriples,
        ],
        false,
    ),
    (&["llama3", "llama-v3", "llama-bpe"], &[Step::Llama3], true),
];

/// Token attributes (llama.cpp `llama_token_attr` bits we use).
mod attr {
    pub(super) const UNKNOWN: u8 = 1 << 0;
    pub(super) const UNUSED: u8 = 1 << 1;
    pub(super) const NORMAL: u8 = 1 << 2;
    pub(super) const CONTROL: u8 = 1 << 3;
    pub(super) const USER_DEFINED: u8 = 1 << 4;
    pub(super) const BYTE: u8 = 1 << 5;
}

/// Token texts llama.cpp treats as end of generation, forcing them to control type at load
/// (`special_eog_ids` in `llama_vocab::impl::load`).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
    // fill-in-the-middle pad / repo / file separator, also end of generation
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// Fill-in-the-middle prefix / suffix / middle texts llama.cpp forces to control type.
const FIM_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];

/// Token texts llama.cpp always renders (gpt-oss), forced to user-defined type.
const USER_DEFINED_TEXTS: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// A byte-level BPE tokenizer equal to llama.cpp's for the supported pre-tokenizers.
///
/// Build it with [`Tokenizer::new`]; it is `Send + Sync` and cheap to share by reference.
#[derive(Clone)]
pub struct Tokenizer {
    /// Token texts (empty texts renamed `[EMPTY_<id>]`, as llama.cpp does).
    tokens: Vec<String>,
    /// `attr` bits per token.
    attrs: Vec<u8>,
    /// `llama_token_to_piece(special = true)` per token.
    pieces: Vec<Box<[u8]>>,
    /// Control, user-defined and unknown tokens, longest text first (ties by id).
    specials: Vec<u32>,
    /// End-of-generation tokens.
    eog: HashSet<u32>,
    /// The merge model.
    bpe: BPE,
    /// The pre-tokenizer steps.
    steps: &'static [Step],
    /// A word that is a token is that token, whatever the merges say (llama.cpp
    /// `ignore_merges`, LLaMA 3).
    ignore_merges: bool,
    /// Which bytes have a byte-level token.
    byte_known: [bool; 256],
    /// The pre-tokenizer name as given.
    pre: String,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("pre", &self.pre)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish_non_exhaustive()
    }
}

/// A piece of text after the special-token partition.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

fn invalid(reason: impl Into<Cow<'static, str>>) -> Error {
    Error::Tokenizer {
        reason: reason.into(),
    }
}

impl Tokenizer {
    /// Builds the tokenizer, validating the spec.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] if the model is not `gpt2`, the pre-tokenizer is unknown (the
    /// message lists the supported ones), the vocabulary is empty or has duplicate texts,
    /// `token_types` has the wrong length, a byte-type token is not written `<0xHH>`, a merge is not `"left right"` with both sides and their concatenation
    /// in the vocabulary, or BOS/EOS is requested but not set; [`Error::TokenOutOfRange`] if
    /// BOS or EOS is outside the vocabulary.
    pub fn new(spec: TokenizerSpec) -> Result<Self> {
        let TokenizerSpec {
            tokens,
            token_types,
            merges,
            model,
            pre,
            bos,
            eos,
            add_bos,
            add_eos,
        } = spec;

        if model != "gpt2" {
            return Err(invalid(format!(
                "tokenizer model `{model}` is not supported (only `gpt2`, byte-level BPE)"
            )));
        }
        let Some(&(_, steps, ignore_merges)) = PRE_TYPES
            .iter()
            .find(|(names, _, _)| names.contains(&pre.as_str()))
        else {
            let names: Vec<&str> = PRE_TYPES
                .iter()
                .flat_map(|(names, _, _)| names.iter().copied())
                .filter(|n| !n.is_empty())
                .collect();
            return Err(invalid(format!(
                "pre-tokenizer `{pre}` is not supported (supported: {})",
                names.join(", ")
            )));
        };
        if tokens.is_empty() {
            return Err(invalid("the vocabulary is empty"));
        }
        let n = tokens.len();
        if u32::try_from(n).is_err() {
            return Err(invalid(format!("{n} tokens do not fit 32-bit ids")));
        }
        if !token_types.is_empty() && token_types.len() != n {
            return Err(invalid(format!(
                "{} token types for {n} tokens",
                token_types.len()
            )));
        }
        for id in [bos, eos].into_iter().flatten() {
            if id as usize >= n {
                return Err(Error::TokenOutOfRange { id, vocab: n });
            }
        }
        if add_bos && bos.is_none() {
            return Err(invalid("add_bos is set but the BOS token is not"));
        }
        if add_eos && eos.is_none() {
            return Err(invalid("add_eos is set but the EOS token is not"));
        }

        // Texts: llama.cpp renames empty tokens and rejects duplicates.
        let tokens: Vec<String> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    format!("[EMPTY_{i}]")
                } else {
                    t
                }
            })
            .collect();
        let mut vocab: Vocab = Vocab::default();
        vocab.reserve(n);
        for (id, text) in tokens.iter().enumerate() {
            if let Some(first) = vocab.insert(text.clone(), id as u32) {
                return Err(invalid(format!(
                    "duplicate token {text:?} (ids {first} and {id})"
                )));
            }
        }
        // Bytes without a token (SmolLM2 lacks 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, and bytes
        // that never occur in UTF-8) are dropped by llama.cpp, and cut the word there.
        let byte_known: [bool; 256] = std::array::from_fn(|b| {
            vocab.contains_key(unicode::BYTE_TO_CHAR[b].to_string().as_str())
        });

        // Attributes, with llama.cpp's promotions by token text.
        let mut attrs: Vec<u8> = (0..n)
            .map(|i| match token_types.get(i).copied().unwrap_or(1) {
                1 => attr::NORMAL,
                2 => attr::UNKNOWN,
                3 => attr::CONTROL,
                4 => attr::USER_DEFINED,
                5 => attr::UNUSED,
                6 => attr::BYTE,
                _ => 0,
            })
            .collect();
        let mut eog = HashSet::new();
        for text in EOG_TEXTS.iter().chain(FIM_TEXTS) {
            if let Some(&id) = vocab.get(*text) {
                attrs[id as usize] |= attr::CONTROL;
                if EOG_TEXTS.contains(text) {
                    eog.insert(id);
                }
            }
        }
        for text in USER_DEFINED_TEXTS {
            if let Some(&id) = vocab.get(*text) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        if let Some(eos) = eos {
            eog.insert(eos);
        }

        let pieces = tokens
            .iter()
            .zip(&attrs)
            .enumerate()
            .map(|(id, (text, &a))| piece(id, text, a))
            .collect::<Result<Vec<_>>>()?;

        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                attrs[id as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        specials.sort_by_key(|&id| (std::cmp::Reverse(tokens[id as usize].len()), id));

        // Merges: llama.cpp splits at the first space after the first byte and keeps the first
        // rank of a repeated pair.
        let mut seen = HashSet::with_capacity(merges.len());
        let mut pairs = Vec::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let split = merge
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b' ')
                .map(|i| i + 1)
                .ok_or_else(|| invalid(format!("merge {rank} ({merge:?}) has no space")))?;
            let (left, right) = (&merge[..split], &merge[split + 1..]);
            for side in [left, right] {
                if !vocab.contains_key(side) {
                    return Err(invalid(format!(
                        "merge {rank} ({merge:?}) uses {side:?}, which is not in the vocabulary"
                    )));
                }
            }
            if !vocab.contains_key(format!("{left}{right}").as_str()) {
                return Err(invalid(format!(
                    "merge {rank} ({merge:?}) makes {:?}, which is not in the vocabulary",
                    format!("{left}{right}")
                )));
            }
            if seen.insert((left, right)) {
                pairs.push((left.to_owned(), right.to_owned()));
            }
        }

        let bpe = BPE::builder()
            .vocab_and_merges(vocab, pairs)
            .build()
            .map_err(|e| invalid(format!("building the BPE model: {e}")))?;

        Ok(Self {
            tokens,
            attrs,
            pieces,
            specials,
            eog,
            bpe,
            steps,
            ignore_merges,
            byte_known,
            pre,
            bos,
            eos,
            add_bos,
            add_eos,
        })
    }

    /// Tokenizes `text` as `llama_tokenize(text, add_special, parse_special)`.
    ///
    /// `add_special` adds BOS/EOS where the model asks for them (see
    /// [`TokenizerSpec::add_bos`]); `parse_special` lets control tokens written in the text
    /// (`<|im_start|>`) become their ids instead of being tokenized as plain text.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] if the BPE model fails (it does not for a vocabulary that
    /// [`Tokenizer::new`] accepted).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && let Some(bos) = self.bos_to_add() {
            out.push(bos);
        }
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Text(t) => self.encode_text(t, &mut out)?,
                Fragment::Token(id) => out.push(id),
            }
        }
        if add_special
            && self.add_eos
            && let Some(eos) = self.eos
        {
            out.push(eos);
        }
        Ok(out)
    }

    /// llama.cpp `tokenizer_st_partition`: cuts `text` around special tokens, longest first.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let mut fragments = Vec::new();
        if !text.is_empty() {
            fragments.push(Fragment::Text(text));
        }
        for &id in &self.specials {
            if !parse_special && self.attrs[id as usize] & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = self.tokens[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(needle) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + needle.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// Pre-tokenizes and merges one text fragment, appending ids to `out`.
    fn encode_text(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let chars: Vec<char> = text.chars().collect();
        let table = unicode::table();
        let classes: Vec<u8> = chars.iter().map(|&c| table[c as usize]).collect();
        let mut word = String::new();
        let mut utf8 = [0u8; 4];
        for (start, end) in pretokenize::split(self.steps, &chars, &classes) {
            word.clear();
            let mut complete = true;
            for c in &chars[start..end] {
                for &b in c.encode_utf8(&mut utf8).as_bytes() {
                    if self.byte_known[b as usize] {
                        word.push(unicode::BYTE_TO_CHAR[b as usize]);
                    } else {
                        // llama.cpp keeps the unknown symbol (nothing merges with it) and
                        // finally drops it: merge the part before it on its own.
                        self.merge(&word, out)?;
                        word.clear();
                        complete = false;
                    }
                }
            }
            if complete
                && self.ignore_merges
                && let Some(id) = self.bpe.token_to_id(&word)
            {
                out.push(id);
                continue;
            }
            self.merge(&word, out)?;
        }
        Ok(())
    }

    /// Byte-level BPE of one word (given in GPT-2 byte characters), appending ids to `out`.
    fn merge(&self, word: &str, out: &mut Vec<u32>) -> Result<()> {
        if word.is_empty() {
            return Ok(());
        }
        let tokens = self
            .bpe
            .tokenize(word)
            .map_err(|e| invalid(format!("BPE on {word:?}: {e}")))?;
        out.extend(tokens.iter().map(|t| t.id));
        Ok(())
    }

    /// The bytes of the ids, as the concatenation of [`Tokenizer::token_bytes`] (control tokens
    /// contribute nothing).
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            out.extend_from_slice(self.token_piece(id, false)?);
        }
        Ok(out)
    }

    /// `llama_token_to_piece(id, lstrip = 0, special)`: the bytes this token stands for.
    ///
    /// Normal tokens map back through GPT-2's byte table (a character outside it gives
    /// llama.cpp's `[UNK_BYTE_0x…]` marker); user-defined tokens are their text; control and
    /// unknown tokens are their text if `special`, nothing otherwise; byte tokens (`<0xAB>`)
    /// are their byte; unused and undefined tokens are nothing.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn token_piece(&self, id: u32, special: bool) -> Result<&[u8]> {
        let i = self.check(id)?;
        if !special && self.attrs[i] & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return Ok(&[]);
        }
        Ok(&self.pieces[i])
    }

    /// [`Tokenizer::token_piece`] with `special = false`: what [`Tokenizer::decode`] emits for
    /// this token.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Result<&[u8]> {
        self.token_piece(id, false)
    }

    /// The token's text as stored in the vocabulary (byte-level form, e.g. `Ġthe`).
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] for an id outside the vocabulary.
    pub fn token_text(&self, id: u32) -> Result<&str> {
        let i = self.check(id)?;
        Ok(&self.tokens[i])
    }

    /// The id of the token whose vocabulary text is `text`, e.g. `<|im_start|>`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.bpe.token_to_id(text)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The BOS token, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The EOS token, if the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The BOS id that encoding with `add_special` prepends: `Some` only when the model asks
    /// to add BOS and has one (what perplexity puts first in each chunk).
    pub fn bos_to_add(&self) -> Option<u32> {
        self.bos.filter(|_| self.add_bos)
    }

    /// Whether encoding with `add_special` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether encoding with `add_special` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// The pre-tokenizer name.
    pub fn pre(&self) -> &str {
        &self.pre
    }

    /// Whether `id` is a control token (GGUF type 3, or promoted to it by its text as llama.cpp
    /// does for end-of-generation and fill-in-the-middle tokens); `false` outside the
    /// vocabulary.
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & attr::CONTROL != 0)
    }

    /// Whether `id` ends generation (`llama_vocab_is_eog`): EOS, and the tokens llama.cpp
    /// recognises by text (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, …).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// A decoder for a stream of generated ids; `special` renders control tokens as their text.
    pub fn stream_decoder(&self, special: bool) -> StreamDecoder<'_> {
        StreamDecoder::new(self, special)
    }

    fn check(&self, id: u32) -> Result<usize> {
        let i = id as usize;
        if i < self.tokens.len() {
            Ok(i)
        } else {
            Err(Error::TokenOutOfRange {
                id,
                vocab: self.tokens.len(),
            })
        }
    }
}

/// `llama_token_to_piece(special = true)` of one token (llama.cpp's piece cache).
fn piece(id: usize, text: &str, a: u8) -> Result<Box<[u8]>> {
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        return Ok(text.as_bytes().into());
    }
    if a & attr::NORMAL != 0 {
        return Ok(decode_byte_level(text).into());
    }
    if a & attr::BYTE != 0 {
        let byte = text
            .strip_prefix("<0x")
            .and_then(|h| h.strip_suffix('>'))
            .filter(|h| h.len() == 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "byte token {id} is {text:?}, expected the form <0xAB>"
                ))
            })?;
        return Ok(Box::new([byte]));
    }
    Ok(Box::default())
}

/// llama.cpp `llama_decode_text`: GPT-2 byte characters back to bytes.
fn decode_byte_level(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut utf8 = [0u8; 4];
                for b in c.encode_utf8(&mut utf8).as_bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}
