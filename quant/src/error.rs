//! The error type of `quant`.

/// Errors reported by `quant` where it reads user data: format strings, configurations,
/// tensor shapes and values handed to tensor-level entry points.
///
/// Slice-level kernels (`ggml::quantize_row_q8_0`, `qat::fake_quantize_per_tensor_affine`,
/// …) treat bad arguments as caller bugs and panic with a documented message instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from `numerics`.
    #[error(transparent)]
    Numerics(#[from] numerics::Error),
    /// A format string could not be parsed; `token` is the offending part.
    #[error("cannot parse quantization format {input:?}: bad token {token:?} ({reason})")]
    Parse {
        /// The whole string.
        input: String,
        /// The token that was rejected.
        token: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A parameter is outside its valid range.
    #[error("{op}: invalid {name} = {value} ({reason})")]
    InvalidParameter {
        /// The operation that was called.
        op: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// The valid range, in words.
        reason: &'static str,
    },
    /// Tensor shapes do not fit the operation.
    #[error("{op}: shape mismatch (expected {expected:?}, got {got:?})")]
    ShapeMismatch {
        /// The operation that was called.
        op: &'static str,
        /// The shape (or length) expected.
        expected: Vec<usize>,
        /// The shape (or length) given.
        got: Vec<usize>,
    },
    /// A NaN or infinity where the operation needs finite values.
    #[error("{op}: non-finite value {value} at index {index}")]
    NonFinite {
        /// The operation that was called.
        op: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// The input is empty where the result would be meaningless.
    #[error("{op}: empty input")]
    Empty {
        /// The operation that was called.
        op: &'static str,
    },
    /// The operation does not support this format or combination.
    #[error("{op}: unsupported {what}")]
    Unsupported {
        /// The operation that was called.
        op: &'static str,
        /// What is not supported, in words.
        what: String,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
