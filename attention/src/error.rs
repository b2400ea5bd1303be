//! The error type of `attention`.

use std::borrow::Cow;

/// Errors from `attention`: shapes, parameters and variant strings that come from users.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tensors do not have the shapes the call describes.
    #[error("shape: {reason}")]
    Shape {
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// A parameter (block size, segment length, rank, tolerance, variant string) is unusable.
    #[error("{what}: {reason}")]
    InvalidParams {
        /// The parameter.
        what: &'static str,
        /// Why.
        reason: Cow<'static, str>,
    },
    /// A linear-algebra routine (LAPACK through ndarray-linalg) failed.
    #[error("linear algebra: {reason}")]
    Linalg {
        /// What failed.
        reason: Cow<'static, str>,
    },
    /// The GPU (adapter, device, shader validation, dispatch, readback) failed.
    #[error("GPU: {reason}")]
    Gpu {
        /// What failed.
        reason: Cow<'static, str>,
    },
    /// An error from `numerics`.
    #[error(transparent)]
    Numerics(#[from] numerics::Error),
    /// An error from `quant`.
    #[error(transparent)]
    Quant(#[from] quant::Error),
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Shape`].
    pub(crate) fn shape(reason: impl Into<Cow<'static, str>>) -> Self {
        Error::Shape {
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidParams`].
    pub(crate) fn params(what: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidParams {
            what,
            reason: reason.into(),
        }
    }
}
