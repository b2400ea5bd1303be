//! One module per benchmarked area.

pub(crate) mod convert;
pub(crate) mod mx;

/// Elements in 64 MiB of f32: large enough to run out of cache on every machine we use.
pub(crate) const N: usize = 16 << 20;

/// Deterministic, roughly normal data (sum of four uniforms, scaled) with a sprinkling of
/// large values, so overflow paths are exercised.
pub(crate) fn data(n: usize) -> Vec<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|i| {
            let u = next() + next() + next() + next() - 2.0;
            if i % 997 == 0 { u * 1e4 } else { u * 1.7 }
        })
        .collect()
}

/// Shorter runs than criterion's defaults: each iteration moves 64 MiB.
pub(crate) fn config() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}
