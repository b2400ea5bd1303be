//! Criterion benches of `attention`.

mod benchmarks;

criterion::criterion_main!(benchmarks::benches);
