//! Streaming detokenization: ids in, complete UTF-8 text out.

use super::Tokenizer;
use crate::Result;

/// Turns generated ids into text as they arrive.
///
/// A byte-level token can end in the middle of a multi-byte character (an emoji is often two
/// or more tokens), so [`StreamDecoder::push`] returns only the text completed so far and
/// keeps the trailing partial character for the next id. Bytes that can never become valid
/// UTF-8 are replaced by `U+FFFD`, as [`String::from_utf8_lossy`] does, so the stream never
/// stalls; [`StreamDecoder::finish`] flushes a trailing partial character the same way.
///
/// ```
/// use models::tokenizer::{Tokenizer, TokenizerSpec};
///
/// # fn main() -> models::Result<()> {
/// let tokenizer = Tokenizer::new(TokenizerSpec::byte_level("gpt-2"))?;
/// let ids = tokenizer.encode("é!", false, false)?; // bytes C3 A9 21, one token each
/// let mut stream = tokenizer.stream_decoder(false);
/// assert_eq!(stream.push(ids[0])?, "");
/// assert_eq!(stream.push(ids[1])?, "é");
/// assert_eq!(stream.push(ids[2])?, "!");
/// assert_eq!(stream.finish(), "");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    special: bool,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    pub(super) fn new(tokenizer: &'a Tokenizer, special: bool) -> Self {
        Self {
            tokenizer,
            special,
            pending: Vec::new(),
        }
    }

    /// Adds one id; returns the text it completes (possibly empty).
    ///
    /// # Errors
    ///
    /// [`crate::Error::TokenOutOfRange`] for an id outside the vocabulary (the decoder is left
    /// unchanged).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let piece = self.tokenizer.token_piece(id, self.special)?;
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // A partial character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Bytes that can never be valid: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Ends the stream, returning any buffered partial character as `U+FFFD`.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}
