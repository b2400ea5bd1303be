//! Integration tests of `numerics` through its public API only.

mod ml_dtypes;
mod public_api;
