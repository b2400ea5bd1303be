//! Benches of `attention::adaptive_precision` (being written).

use criterion::Criterion;

pub(crate) fn bench(_c: &mut Criterion) {}
