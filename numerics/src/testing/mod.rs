//! Test helpers shared across the workspace (the `testing` feature): named tolerances with
//! worst-element reporting, a seeded RNG with normal and uniform fills, and proptest
//! strategies for `f32` data and probability vectors.
//!
//! Downstream crates enable it in their dev-dependencies:
//! `numerics = { workspace = true, features = ["testing"] }`.
//!
//! # Example
//!
//! ```
//! use numerics::testing::{Tolerance, assert_close, rng};
//!
//! let mut r = rng::seeded(42);
//! let x = rng::normal_vec(&mut r, 1000);
//! let doubled: Vec<f32> = x.iter().map(|v| v + v).collect();
//! let expected: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
//! assert_close("double", &expected, &doubled, Tolerance::EXACT);
//! ```

pub mod rng;
pub mod strategies;
mod tolerance;

pub use tolerance::{Tolerance, assert_close, assert_close_f64};
