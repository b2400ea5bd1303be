//! The encoder's WordPiece tokenizer, read from a Hugging Face `tokenizer.json` by the
//! `tokenizers` crate (normalizer, pre-tokenizer, WordPiece model and `[CLS] … [SEP]`
//! template exactly as the file says).

use std::borrow::Cow;
use std::path::Path;

use tokenizers::{PaddingParams, TruncationParams};

use crate::{Error, Result};

/// Largest `tokenizer.json` read (all-MiniLM-L6-v2's is 466 KB).
const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// A WordPiece tokenizer with truncation at the encoder's `max_seq_len` and no padding
/// (batches are packed, see [`super::Encoder::forward`]).
#[derive(Clone)]
pub struct WordPiece {
    inner: tokenizers::Tokenizer,
    max_len: usize,
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPiece")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("max_len", &self.max_len)
            .finish()
    }
}

fn tok_err(reason: impl Into<Cow<'static, str>>) -> Error {
    Error::Tokenizer {
        reason: reason.into(),
    }
}

impl WordPiece {
    /// Reads `path` and sets truncation to `max_len` tokens (special tokens included,
    /// longest-first, as sentence-transformers asks its tokenizer), replacing whatever
    /// padding and truncation the file sets.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read; [`Error::Tokenizer`] if it is too large or
    /// not a tokenizer the `tokenizers` crate can build, or `max_len` is below 2.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_TOKENIZER_BYTES {
            return Err(tok_err(format!(
                "{}: {len} bytes (at most {MAX_TOKENIZER_BYTES})",
                path.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| tok_err(format!("{}: {e}", path.display())))?;
        Self::new(inner, max_len)
    }

    fn new(mut inner: tokenizers::Tokenizer, max_len: usize) -> Result<Self> {
        if max_len < 2 {
            return Err(tok_err(format!(
                "max length {max_len}: need room for [CLS] and [SEP]"
            )));
        }
        inner.with_padding(None::<PaddingParams>);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        Ok(Self { inner, max_len })
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The truncation length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids of `text` with the file's special tokens (`[CLS] … [SEP]`), truncated to
    /// [`max_len`](Self::max_len). An empty text gives just the special tokens.
    ///
    /// # Errors
    ///
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| tok_err(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The token string of `id`, if any.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
