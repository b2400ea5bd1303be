//! Integration tests of `quant`.
mod ggml;
