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

/// The attention projections of a LLaMA block.
const ATTN: [&str; 4] = [
    "blk.*.attn_q.weight",
    "blk.*.attn_k.weight",
    "blk.*.attn_v.weight",
    "blk.*.attn_output.weight",
];

/// The feed-forward (SwiGLU) projections of a LLaMA block.
const FFN: [&str; 3] = [
    "blk.*.ffn_gate.weight",
    "blk.*.ffn_up.weight",
    "blk.*.ffn_down.weight",
];

/// The token embedding and the (untied) output head.
const EMBED: [&str; 2] = ["token_embd.weight", "output.weight"];

/// Every norm weight (`blk.N.attn_norm`, `blk.N.ffn_norm`, `output_norm`).
const NORMS: &str = "*norm*";

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
            group(&[NORMS], "f16");
            group(&EMBED, "int8");
            group(&ATTN, "f16");
            group(&FFN, "f16");
        }
        "aggressive" => {
            group(&[NORMS], "f16");
            group(&EMBED, "int8");
            group(&ATTN, "int8");
            group(&FFN, "int8");
        }
        "attn16-ffn8-emb4" => {
            group(&[NORMS], "f32");
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
    fn every_preset_builds() {
        for name in NAMES {
            let p = build(name).unwrap();
            assert_eq!(p.name, name);
            assert!(!p.rules.is_empty());
        }
        assert!(build("nope").is_none());
    }
}
