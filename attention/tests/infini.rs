//! Tests of `attention::infini` (being written).
