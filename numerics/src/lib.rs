//! `numerics`: bit-exact number formats, fast slice conversion, and information and error
//! metrics.
//!
//! This crate sits at the bottom of the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`) and owns:
//!
//! - the minifloat formats of the OCP 8-bit floating point spec (E4M3FN, E5M2), the FNUZ
//!   variants, the OCP Microscaling (MX) v1.0 element formats (FP6 E2M3/E3M2, FP4 E2M1) and
//!   its E8M0 scale, each a `#[repr(transparent)]` newtype over `u8`
//!   ([`F8E4M3FN`], [`F8E5M2`], [`F8E4M3FNUZ`], [`F8E5M2FNUZ`], [`F8E8M0FNU`], [`F6E2M3FN`],
//!   [`F6E3M2FN`], [`F4E2M1FN`]), all driven by one generic engine, [`MiniFloat`], which
//!   also defines arbitrary ExMy formats at run time;
//! - IEEE half and bfloat16, re-exported from the `half` crate ([`struct@f16`], [`bf16`]);
//! - bulk slice conversion with runtime-detected SIMD ([`encode_slice`], [`decode_slice`]);
//! - OCP MX block formats ([`mx`]);
//! - entropy and divergence ([`entropy`]) and error metrics ([`metrics`]);
//! - the explicit parallelism argument of the whole workspace, [`Par`].
//!
//! Conversions are bit-exact with ml_dtypes 0.6.0's casts (round to nearest, ties to even,
//! subnormals kept, per-format overflow); the rules are tabulated in [`formats`].
//!
//! # Example
//!
//! ```
//! use numerics::{decode_slice, encode_slice, Par, F8E4M3FN};
//! # fn main() -> Result<(), numerics::Error> {
//! assert_eq!(F8E4M3FN::from_f32(1.0).to_bits(), 0x38);
//! assert_eq!(F8E4M3FN::from_f32(464.0).to_f32(), 448.0); // the tie rounds to even
//! assert!(F8E4M3FN::from_f32(465.0).is_nan()); // E4M3FN has no infinity
//! assert_eq!(F8E4M3FN::from_f32_saturating(1e9), F8E4M3FN::MAX);
//!
//! let x = [0.1f32, -2.5, 300.0, 1e-3];
//! let mut codes = [F8E4M3FN::ZERO; 4];
//! encode_slice(&x, &mut codes, Par::Seq)?;
//! let mut y = [0.0f32; 4];
//! decode_slice(&codes, &mut y, Par::Seq)?;
//! assert_eq!(y, [0.1015625, -2.5, 288.0, 0.001953125]); // 1e-3 rounds to the least subnormal, 2^-9
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//!
//! - `testing`: test helpers shared across the workspace: named tolerances, seeded RNG,
//!   proptest strategies.
#![doc(test(attr(deny(warnings))))]

mod arch;
pub mod entropy;
mod error;
pub mod formats;
pub mod metrics;
pub mod minifloat;
pub mod mx;
mod par;
mod slice;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};
pub use formats::{
    F4E2M1FN, F6E2M3FN, F6E3M2FN, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0FNU, Format,
};
pub use half::{bf16, f16};
pub use minifloat::{MiniFloat, Special};
pub use mx::{MxFormat, NonFinite};
pub use par::Par;
pub use slice::{Element, decode_slice, encode_slice, encode_slice_saturating};
