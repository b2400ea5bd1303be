//! A tiny random-weight LLaMA model, written to GGUF by our own writer, so that tests and
//! examples run without downloading anything (feature `testing`).
//!
//! The model is complete: hyper-parameters, a byte-level BPE vocabulary (3 control tokens,
//! the 256 byte symbols of GPT-2's byte-to-unicode table and a few merges), and weights drawn
//! from a seeded normal distribution, stored like SmolLM2's (Q4_1 matrices, a Q8_0
//! embedding, `f32` norms) or in any other GGML type.

use numerics::testing::rng;
use quant::{QuantFormat, QuantizedTensor};

use crate::Result;
use crate::gguf::{GgufWriter, Value};

/// Shape and storage of a tiny model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TinySpec {
    /// Transformer blocks.
    pub n_layers: usize,
    /// Width (a multiple of 32 for the GGML block types).
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// MLP width (a multiple of 32 for the GGML block types).
    pub ffn_dim: usize,
    /// Whether the head is the embedding (no `output.weight`).
    pub tied: bool,
    /// Format of the block matrices (and `output.weight`).
    pub matrix_format: QuantFormat,
    /// Format of `token_embd.weight`.
    pub embed_format: QuantFormat,
    /// RNG seed of the weights.
    pub seed: u64,
}

impl Default for TinySpec {
    /// 2 layers, width 64, 4 query and 2 KV heads, MLP 96, tied, Q4_1 matrices and a Q8_0
    /// embedding (SmolLM2's storage).
    fn default() -> Self {
        Self {
            n_layers: 2,
            d_model: 64,
            n_heads: 4,
            n_kv_heads: 2,
            ffn_dim: 96,
            tied: true,
            matrix_format: QuantFormat::Q4_1,
            embed_format: QuantFormat::Q8_0,
            seed: 7,
        }
    }
}

/// The merges of the tiny vocabulary (GPT-2 byte symbols, `Ġ` = space).
pub const TINY_MERGES: [&str; 10] = [
    "Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "r e", "Ġ s", "a n",
];

/// GPT-2's byte → unicode symbol table (printable bytes map to themselves, the others to
/// U+0100 onwards).
pub fn byte_symbols() -> Vec<char> {
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).expect("a Latin-1 code point")
            } else {
                extra += 1;
                char::from_u32(255 + extra).expect("a code point below U+0200")
            }
        })
        .collect()
}

/// Tokens (3 control tokens, 256 byte symbols, the merges' results) and their GGUF token
/// types (3 = control, 1 = normal).
pub fn tiny_vocab() -> (Vec<String>, Vec<i32>) {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3; 3];
    tokens.extend(byte_symbols().into_iter().map(String::from));
    for m in TINY_MERGES {
        tokens.push(m.replace(' ', ""));
    }
    types.resize(tokens.len(), 1);
    (tokens, types)
}

/// The GGUF bytes of a tiny model.
///
/// # Errors
///
/// If a format cannot hold the shapes (e.g. a GGML type with a width that is not a
/// multiple of 32), or the writer refuses a format.
pub fn tiny_gguf(spec: &TinySpec) -> Result<Vec<u8>> {
    let (tokens, types) = tiny_vocab();
    let vocab = tokens.len();
    let mut w = GgufWriter::new();
    let s = |v: &str| Value::String(v.to_owned());
    let u = |v: usize| Value::U32(v as u32);
    w.set("general.architecture", s("llama"))?;
    w.set("general.name", s("tiny-random-llama"))?;
    w.set("llama.block_count", u(spec.n_layers))?;
    w.set("llama.context_length", u(2048))?;
    w.set("llama.embedding_length", u(spec.d_model))?;
    w.set("llama.feed_forward_length", u(spec.ffn_dim))?;
    w.set("llama.attention.head_count", u(spec.n_heads))?;
    w.set("llama.attention.head_count_kv", u(spec.n_kv_heads))?;
    w.set("llama.rope.freq_base", Value::F32(10_000.0))?;
    w.set("llama.rope.dimension_count", u(spec.d_model / spec.n_heads))?;
    w.set("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))?;
    w.set("llama.vocab_size", u(vocab))?;
    w.set("tokenizer.ggml.model", s("gpt2"))?;
    w.set("tokenizer.ggml.pre", s("smollm"))?;
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(tokens.into_iter().map(Value::String).collect()),
    )?;
    w.set(
        "tokenizer.ggml.token_type",
        Value::Array(types.into_iter().map(Value::I32).collect()),
    )?;
    w.set(
        "tokenizer.ggml.merges",
        Value::Array(TINY_MERGES.iter().map(|m| s(m)).collect()),
    )?;
    w.set("tokenizer.ggml.bos_token_id", Value::U32(1))?;
    w.set("tokenizer.ggml.eos_token_id", Value::U32(2))?;
    w.set("tokenizer.ggml.add_bos_token", Value::Bool(false))?;
    let mut r = rng::seeded(spec.seed);
    let mut tensor = |w: &mut GgufWriter, name: &str, shape: &[usize], std: f32, f: QuantFormat| {
        let n = shape.iter().product();
        let mut x = rng::normal_vec(&mut r, n);
        x.iter_mut().for_each(|v| *v *= std);
        let t = QuantizedTensor::quantize(f, &x, shape)?;
        w.add_tensor(name, &t)
    };
    let norm = |w: &mut GgufWriter, name: &str, d: usize, seed: u64| {
        let mut r = rng::seeded(seed);
        let x: Vec<f32> = rng::uniform_vec(&mut r, d, 0.5, 1.5);
        w.add_tensor(
            name,
            &QuantizedTensor::quantize(QuantFormat::F32, &x, &[d])?,
        )
    };
    let (d, ff) = (spec.d_model, spec.ffn_dim);
    let kv = spec.n_kv_heads * (d / spec.n_heads);
    let (mf, sd) = (spec.matrix_format, 1.0 / (d as f32).sqrt());
    tensor(
        &mut w,
        "token_embd.weight",
        &[vocab, d],
        1.0,
        spec.embed_format,
    )?;
    for l in 0..spec.n_layers {
        let n = |x: &str| format!("blk.{l}.{x}.weight");
        let seed = spec.seed.wrapping_mul(1000).wrapping_add(l as u64 * 2);
        norm(&mut w, &n("attn_norm"), d, seed)?;
        tensor(&mut w, &n("attn_q"), &[d, d], sd, mf)?;
        tensor(&mut w, &n("attn_k"), &[kv, d], sd, mf)?;
        tensor(&mut w, &n("attn_v"), &[kv, d], sd, mf)?;
        tensor(&mut w, &n("attn_output"), &[d, d], sd, mf)?;
        norm(&mut w, &n("ffn_norm"), d, seed + 1)?;
        tensor(&mut w, &n("ffn_gate"), &[ff, d], sd, mf)?;
        tensor(&mut w, &n("ffn_up"), &[ff, d], sd, mf)?;
        tensor(
            &mut w,
            &n("ffn_down"),
            &[d, ff],
            1.0 / (ff as f32).sqrt(),
            mf,
        )?;
    }
    norm(&mut w, "output_norm.weight", d, spec.seed.wrapping_add(99))?;
    if !spec.tied {
        tensor(&mut w, "output.weight", &[vocab, d], sd, mf)?;
    }
    let mut out = Vec::new();
    w.write(&mut out)?;
    Ok(out)
}
