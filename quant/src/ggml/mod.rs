//! GGML's block quantization formats, byte-compatible with GGUF files and bit-exact with
//! ggml's reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`,
//! `quantize_row_q4_1_ref` in ggml's `ggml-quants.c`).
//!
//! Every format packs [`QK`] = 32 consecutive values of a row into one block with an `f16`
//! scale (and, for Q4_1, an `f16` minimum):
//!
//! | block | bytes | bits/weight | value of element `j` |
//! |---|---:|---:|---|
//! | [`BlockQ8_0`] | 34 | 8.5 | `d · qs[j]` (`qs` are `i8`) |
//! | [`BlockQ4_0`] | 18 | 4.5 | `d · (nibble_j − 8)` |
//! | [`BlockQ4_1`] | 20 | 5.0 | `d · nibble_j + m` |
//!
//! Nibble order (Q4_0, Q4_1): byte `qs[j]` holds element `j` in its low nibble and element
//! `j + 16` in its high nibble.

mod q4_0;
mod q4_1;
mod q8_0;

pub use q4_0::*;
pub use q4_1::*;
pub use q8_0::*;

/// Elements per block, for every format here.
pub const QK: usize = 32;
