//! Criterion benches of `models`: prefill and decode of the real SmolLM2-135M-Instruct at 1
//! and 2 threads, beside a memcpy of the model's weight bytes and the `fp32` policy in the
//! same group (ratios within one run are what to read); sentence embeddings of the fp32
//! encoder all-MiniLM-L6-v2 under several policies, against its `fp32` policy.

mod benchmarks;

criterion::criterion_main!(benchmarks::model::benches, benchmarks::encoder::benches);
