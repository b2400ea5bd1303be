//! Tests of `attention::dilated` (being written).
