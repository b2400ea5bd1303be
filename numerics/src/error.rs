//! The error type of `numerics`.

/// Errors reported by `numerics` at its API edge.
///
/// Conversions of single values are total and never fail; errors come from slice and block
/// APIs (mismatched lengths, empty input where an answer would be meaningless, values a
/// format cannot hold) and from invalid run-time format definitions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two inputs that must have the same length do not.
    #[error("{op}: length mismatch ({left} vs {right})")]
    LengthMismatch {
        /// The operation that was called.
        op: &'static str,
        /// Length of the first argument.
        left: usize,
        /// Length of the second argument.
        right: usize,
    },
    /// The input is empty where the result would be meaningless (entropy of nothing, say).
    #[error("{op}: empty input")]
    Empty {
        /// The operation that was called.
        op: &'static str,
    },
    /// A value that must be finite (or non-negative, or a probability) is not.
    #[error("{op}: invalid value {value} at index {index} ({reason})")]
    InvalidValue {
        /// The operation that was called.
        op: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The offending value.
        value: f64,
        /// What the value violates.
        reason: &'static str,
    },
    /// A probability vector does not sum to one within the stated tolerance.
    #[error("{op}: probabilities sum to {sum}, not 1 (tolerance {tolerance})")]
    NotNormalized {
        /// The operation that was called.
        op: &'static str,
        /// The sum that was found.
        sum: f64,
        /// The tolerance the sum was checked against.
        tolerance: f64,
    },
    /// A NaN input reached a format that has no NaN encoding (the 4- and 6-bit formats).
    #[error("{format}: NaN at index {index} has no encoding in this format")]
    NanNotRepresentable {
        /// Name of the target format.
        format: &'static str,
        /// Position of the first NaN.
        index: usize,
    },
    /// A NaN or infinity reached a block format under [`crate::NonFinite::Error`].
    #[error("{format}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Name of the target format.
        format: &'static str,
        /// Position of the first non-finite value.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// A run-time minifloat definition is not a format this crate can encode exactly.
    #[error("invalid minifloat spec E{exponent_bits}M{mantissa_bits} bias {bias}: {reason}")]
    InvalidSpec {
        /// Exponent field width.
        exponent_bits: u32,
        /// Mantissa field width.
        mantissa_bits: u32,
        /// Exponent bias.
        bias: i32,
        /// Which rule the spec breaks.
        reason: &'static str,
    },
    /// A format or parameter name given as text was not recognised.
    #[error("unknown {what} {name:?} (expected one of: {expected})")]
    UnknownName {
        /// What kind of name it was ("format", "MX format").
        what: &'static str,
        /// The text that was given.
        name: String,
        /// The accepted names, comma separated.
        expected: String,
    },
    /// A size argument is outside what the operation accepts.
    #[error("{op}: {what} = {value} is out of range ({reason})")]
    OutOfRange {
        /// The operation that was called.
        op: &'static str,
        /// The argument's name.
        what: &'static str,
        /// The value given.
        value: f64,
        /// The accepted range, in words.
        reason: &'static str,
    },
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
