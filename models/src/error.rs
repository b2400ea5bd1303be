//! The error type of `models`.

use std::borrow::Cow;
use std::path::PathBuf;

/// Errors reported by `models`: everything that touches user data (GGUF files, text,
/// policy files, command-line values, downloads) returns one of these instead of panicking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A GGUF file is malformed: what is wrong, and the byte offset where it was found.
    #[error("GGUF: {reason} (at byte offset {offset})")]
    Gguf {
        /// Byte offset in the file where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// A safetensors file is malformed (header length, JSON, dtype, shape or offsets).
    #[error("safetensors: {reason}")]
    SafeTensors {
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// A model configuration file (`config.json` and friends) is unreadable or unusable.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// A metadata key the model needs is missing.
    #[error("GGUF metadata key `{key}` is missing")]
    MissingMetadata {
        /// The key.
        key: String,
    },
    /// A metadata value has the wrong type or an unusable value.
    #[error("GGUF metadata key `{key}`: expected {expected}")]
    BadMetadata {
        /// The key.
        key: String,
        /// What was expected.
        expected: Cow<'static, str>,
    },
    /// A tensor the model needs is missing.
    #[error("tensor `{name}` is missing")]
    MissingTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor has the wrong shape.
    #[error("tensor `{name}`: expected shape {expected:?}, found {got:?}")]
    TensorShape {
        /// The tensor name.
        name: String,
        /// The expected shape (GGUF order: fastest-varying axis first).
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A tensor is stored in a GGML type this crate does not read or write.
    #[error("tensor `{name}`: unsupported GGML type {ggml_type}")]
    UnsupportedTensorType {
        /// The tensor name.
        name: String,
        /// The GGML type id (or name).
        ggml_type: String,
    },
    /// The tokenizer could not be built or could not encode/decode.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// What went wrong.
        reason: Cow<'static, str>,
    },
    /// A token id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// A precision policy (preset name, TOML file or pattern) is invalid.
    #[error("precision policy{}: {reason}", location.as_deref().map(|l| format!(" ({l})")).unwrap_or_default())]
    Policy {
        /// Where: a file, line or pattern.
        location: Option<String>,
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// Fetching or unpacking the default model failed.
    #[error("fetching the model ({step}): {reason}")]
    Fetch {
        /// The step that failed (download, unzip, verify).
        step: &'static str,
        /// What went wrong.
        reason: Cow<'static, str>,
    },
    /// A file's SHA-256 digest is not the expected one.
    #[error("{}: SHA-256 {got} does not match the expected {expected}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The expected digest, hex.
        expected: String,
        /// The digest found, hex.
        got: String,
    },
    /// An argument (context size, chunk count, sampling parameter, text) is unusable.
    #[error("{what}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it is unusable.
        reason: Cow<'static, str>,
    },
    /// The model produced a non-finite value (a precision policy overflowed, say).
    #[error("{what}: non-finite value at position {position}")]
    NonFinite {
        /// What was being computed.
        what: &'static str,
        /// The token position.
        position: usize,
    },
    /// An error from `quant`.
    #[error(transparent)]
    Quant(#[from] quant::Error),
    /// An error from `numerics`.
    #[error(transparent)]
    Numerics(#[from] numerics::Error),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Gguf`] at `offset`.
    pub(crate) fn gguf(offset: u64, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::Gguf {
            offset,
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub(crate) fn invalid(what: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }
}
