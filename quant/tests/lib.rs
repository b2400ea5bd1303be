//! Integration tests of `quant`.
