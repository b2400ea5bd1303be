//! Benches of `attention::dilated` (being written).

use criterion::Criterion;

pub(crate) fn bench(_c: &mut Criterion) {}
