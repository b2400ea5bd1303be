//! Benches of `attention::adaptive_rank` (being written).

use criterion::Criterion;

pub(crate) fn bench(_c: &mut Criterion) {}
