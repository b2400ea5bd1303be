//! Tests of `attention::adaptive_precision` (being written).
