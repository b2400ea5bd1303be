//! The bench groups, one module per variant.

pub(crate) mod adaptive_precision;
pub(crate) mod adaptive_rank;
pub(crate) mod dilated;
pub(crate) mod flash;
pub(crate) mod gpu_attention;
pub(crate) mod gpu_linear;
pub(crate) mod infini;

criterion::criterion_group!(
    benches,
    flash::bench,
    dilated::bench,
    infini::bench,
    adaptive_rank::bench,
    adaptive_precision::bench,
    gpu_linear::bench,
    gpu_attention::bench
);
