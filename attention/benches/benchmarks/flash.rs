//! Benches of `attention::flash` (being written).

use criterion::Criterion;

pub(crate) fn bench(_c: &mut Criterion) {}
