//! Tests of `attention::adaptive_rank` (being written).
