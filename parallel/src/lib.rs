//! `parallel`: tensor, sequence, pipeline, data and 3D parallelism.
//!
//! Sits above [`attention`] in the workspace DAG
//! (`numerics` ← `quant` ← `attention` ← `parallel` ← `models` ← `bench-harness`).
//! It will partition work over simulated ranks, cost it with an alpha-beta communication
//! model and plan it for real clusters. The explicit parallelism argument every crate takes
//! is `numerics::Par`, at the bottom of the DAG. Nothing is implemented yet: this crate
//! exists so the layout of the workspace is visible; its contents arrive with its own issue.

pub use attention;
