//! Integration tests of `models`, one binary (STYLE: one integration target per crate).
//!
//! Every module but `real_model` and `real_encoder` runs on synthetic data (the tiny random
//! model written by our own GGUF writer, synthetic vocabularies and files); `real_model`
//! fetches SmolLM2-135M-Instruct into the cache on first use and checks it against llama.cpp,
//! `real_encoder` fetches all-MiniLM-L6-v2 and checks it against sentence-transformers.

mod fetch;
mod gguf;
mod importance;
mod llama;
mod policy;
mod real_encoder;
mod real_model;
mod safetensors;
mod sensitivity;
mod tokenizer;
