//! Integration tests of `models`, one binary (STYLE: one integration target per crate).
//!
//! Every module but `real_model` runs on synthetic data (the tiny random model written by our
//! own GGUF writer, synthetic vocabularies); `real_model` fetches SmolLM2-135M-Instruct into
//! the cache on first use and checks it against llama.cpp.

mod fetch;
mod gguf;
mod importance;
mod llama;
mod policy;
mod real_encoder;
mod real_model;
mod sensitivity;
mod tokenizer;
