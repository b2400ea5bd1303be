//! Building a [`Tokenizer`] from a GGUF file's `tokenizer.ggml.*` metadata.

use super::{Tokenizer, TokenizerSpec};
use crate::Result;
use crate::gguf::Metadata;

impl TokenizerSpec {
    /// Reads `tokenizer.ggml.{model, pre, tokens, token_type, merges, bos_token_id,
    /// eos_token_id, add_bos_token, add_eos_token}`. Absent optional keys: no token types (all
    /// normal), pre-tokenizer `default`, no BOS/EOS, `add_bos`/`add_eos` false.
    ///
    /// # Errors
    ///
    /// [`crate::Error::MissingMetadata`] for a missing `tokenizer.ggml.model` or `tokens`,
    /// [`crate::Error::BadMetadata`] for values of the wrong type.
    pub fn from_metadata(meta: &Metadata) -> Result<Self> {
        let opt_u32 =
            |k: &str| -> Result<Option<u32>> { meta.get(k).map(|_| meta.get_u32(k)).transpose() };
        let opt_bool = |k: &str| -> Result<bool> {
            Ok(meta
                .get(k)
                .map(|_| meta.get_bool(k))
                .transpose()?
                .unwrap_or(false))
        };
        let strings = |k: &str| -> Result<Vec<String>> {
            Ok(meta
                .get_str_array(k)?
                .into_iter()
                .map(str::to_owned)
                .collect())
        };
        Ok(Self {
            tokens: strings("tokenizer.ggml.tokens")?,
            token_types: match meta.get("tokenizer.ggml.token_type") {
                Some(_) => meta.get_i32_array("tokenizer.ggml.token_type")?,
                None => Vec::new(),
            },
            merges: match meta.get("tokenizer.ggml.merges") {
                Some(_) => strings("tokenizer.ggml.merges")?,
                None => Vec::new(),
            },
            model: meta.get_str("tokenizer.ggml.model")?.to_owned(),
            pre: match meta.get("tokenizer.ggml.pre") {
                Some(_) => meta.get_str("tokenizer.ggml.pre")?.to_owned(),
                None => "default".to_owned(),
            },
            bos: opt_u32("tokenizer.ggml.bos_token_id")?,
            eos: opt_u32("tokenizer.ggml.eos_token_id")?,
            add_bos: opt_bool("tokenizer.ggml.add_bos_token")?,
            add_eos: opt_bool("tokenizer.ggml.add_eos_token")?,
        })
    }
}

impl Tokenizer {
    /// The tokenizer a GGUF file describes ([`TokenizerSpec::from_metadata`] then
    /// [`Tokenizer::new`]).
    ///
    /// # Errors
    ///
    /// As those two.
    pub fn from_gguf(meta: &Metadata) -> Result<Self> {
        Tokenizer::new(TokenizerSpec::from_metadata(meta)?)
    }
}
