//! Criterion benches of `numerics`: slice conversion and MX blocks, each beside a memcpy of
//! the same bytes measured in the same group, so the ratio is what to read.

mod benchmarks;

criterion::criterion_main!(benchmarks::convert::benches, benchmarks::mx::benches);
