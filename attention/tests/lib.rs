//! Integration tests of `attention`, one binary: each variant against the `f64` reference
//! (or its own oracle) on random shapes, block-straddling sizes, masks and GQA.

mod adaptive_precision;
mod adaptive_rank;
mod common;
mod dilated;
mod flash;
mod gpu;
mod gpu_attention;
mod gpu_linear;
mod infini;
mod reference;
mod variant;
