//! Criterion benches of `quant`: quantized matrix–vector products beside a memcpy of 64 MiB
//! (the ratio is what to read), and quantize/dequantize throughput per format.

mod benchmarks;

criterion::criterion_main!(benchmarks::qmatvec::benches, benchmarks::formats::benches);
