//! The built-in policies (the table in the [module docs](super)).

use super::{Policy, Rule, Target};

/// Preset names, in the documented order.
pub(super) const NAMES: [&str; 8] = [
    "stored",
    "fp32",
    "fp16",
    "bf16",
    "int8",
    "conservative",
    "aggressive",
    "attn16-ffn8-emb4",
];

/// The attention projections of a LLaMA block (GGUF names) and of a BERT layer (Hugging
/// Face names, with or without a `bert.` prefix).
const ATTN: [&str; 8] = [
    "blk.*.attn_q.weight",
    "blk.*.attn_k.weight",
    "blk.*.attn_v.weight",
    "blk.*.attn_output.weight",
    "*encoder.layer.*.attention.self.query.weight",
    "*encoder.layer.*.attention.self.key.weight",
    "*encoder.layer.*.attention.self.value.weight",
    "*encoder.layer.*.attention.output.dense.weight",
];

/// The feed-forward projections: LLaMA's SwiGLU and BERT's two dense layers.
const FFN: [&str; 5] = [
    "blk.*.ffn_gate.weight",
    "blk.*.ffn_up.weight",
    "blk.*.ffn_down.weight",
    "*encoder.layer.*.intermediate.dense.weight",
    "*encoder.layer.*.output.dense.weight",
];

/// The embeddings and the (untied) output head: LLaMA's token embedding and head, BERT's
/// word, position and token-type tables.
const EMBED: [&str; 3] = [
    "token_embd.weight",
    "output.weight",
    "*embeddings.*_embeddings.weight",
];

/// Vectors: every norm weight (LLaMA's `blk.N.attn_norm`, `blk.N.ffn_norm`, `output_norm`;
/// BERT's `LayerNorm.weight`/`.bias`) and the BERT layers' biases. (Biases of other
/// families, e.g. `blk.N.attn_q.bias`, match no preset rule and keep their stored type.)
const NORMS: [&str; 3] = ["*norm*", "*LayerNorm*", "*encoder.layer.*.bias"];

/// The preset called `name`, or `None`.
pub(super) fn build(name: &str) -> Option<Policy> {
    // (pattern, format) pairs, first match wins; norms come first so that no later pattern
    // can claim them.
    let mut spec: Vec<(&str, &str)> = Vec::new();
    let mut group = |patterns: &[&'static str], format: &'static str| {
        spec.extend(patterns.iter().map(|p| (*p, format)));
    };
    match name {
        "stored" => group(&["*"], "keep"),
        "fp32" => group(&["*"], "f32"),
        "fp16" => group(&["*"], "f16"),
        "bf16" => group(&["*"], "bf16"),
        "int8" => group(&["*"], "int8"),
        "conservative" => {
            group(&NORMS, "f16");
            group(&EMBED, "int8");
            group(&ATTN, "f16");
            group(&FFN, "f16");
        }
        "aggressive" => {
            group(&NORMS, "f16");
            group(&EMBED, "int8");
            group(&ATTN, "int8");
            group(&FFN, "int8");
        }
        "attn16-ffn8-emb4" => {
            group(&NORMS, "f32");
            group(&EMBED, "int4-g32");
            group(&ATTN, "f16");
            group(&FFN, "int8");
        }
        _ => return None,
    }
    let rules = spec
        .into_iter()
        .map(|(pattern, format)| {
            let target: Target = format.parse().expect("preset formats parse");
            Rule::new(pattern, target).expect("preset patterns are valid globs")
        })
        .collect();
    Some(Policy {
        name: name.to_string(),
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_cover_both_families() {
        let p = build("attn16-ffn8-emb4").unwrap();
        let f = |n: &str| p.format_for(n).map(|f| f.to_string());
        for (name, want) in [
            ("blk.0.attn_q.weight", "f16"),
            ("blk.0.ffn_down.weight", "int8"),
            ("token_embd.weight", "int4-g32"),
            ("output_norm.weight", "f32"),
            ("encoder.layer.5.attention.self.key.weight", "f16"),
            ("encoder.layer.5.attention.output.dense.weight", "f16"),
            ("encoder.layer.0.intermediate.dense.weight", "int8"),
            ("encoder.layer.0.output.dense.weight", "int8"),
            ("bert.encoder.layer.0.output.dense.weight", "int8"),
            ("embeddings.word_embeddings.weight", "int4-g32"),
            ("embeddings.position_embeddings.weight", "int4-g32"),
            ("embeddings.token_type_embeddings.weight", "int4-g32"),
            ("embeddings.LayerNorm.weight", "f32"),
            ("encoder.layer.0.attention.output.LayerNorm.bias", "f32"),
            ("encoder.layer.0.output.dense.bias", "f32"),
            ("encoder.layer.0.attention.self.query.bias", "f32"),
        ] {
            assert_eq!(f(name).as_deref(), Some(want), "{name}");
        }
        // The pooler sentence-transformers does not use is matched by no family rule.
        assert_eq!(f("pooler.dense.weight"), None);
    }

    #[test]
    fn every_preset_builds() {
        for name in NAMES {
            let p = build(name).unwrap();
            assert_eq!(p.name, name);
            assert!(!p.rules.is_empty());
        }
        assert!(build("nope").is_none());
    }
}
