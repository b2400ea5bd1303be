//! Tests of `attention::flash` (being written).
