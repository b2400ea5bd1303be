//! `models::policy`: presets against the real LLaMA tensor names, TOML round trips and
//! errors, and first-match-wins as a property.

use models::Error;
use models::policy::{Policy, Rule, Target};
use proptest::prelude::*;
use quant::QuantFormat;

/// The tensor roles of a LLaMA GGUF, with one example name each (two blocks' worth).
const ROLES: [(&str, &[&str]); 10] = [
    ("embed", &["token_embd.weight"]),
    ("head", &["output.weight"]),
    (
        "norm",
        &[
            "output_norm.weight",
            "blk.0.attn_norm.weight",
            "blk.29.ffn_norm.weight",
        ],
    ),
    ("q", &["blk.0.attn_q.weight", "blk.29.attn_q.weight"]),
    ("k", &["blk.0.attn_k.weight", "blk.7.attn_k.weight"]),
    ("v", &["blk.0.attn_v.weight", "blk.12.attn_v.weight"]),
    (
        "o",
        &["blk.0.attn_output.weight", "blk.29.attn_output.weight"],
    ),
    ("gate", &["blk.0.ffn_gate.weight", "blk.3.ffn_gate.weight"]),
    ("up", &["blk.0.ffn_up.weight", "blk.29.ffn_up.weight"]),
    ("down", &["blk.0.ffn_down.weight", "blk.10.ffn_down.weight"]),
];

/// Expected format per preset, in the order of [`ROLES`]:
/// embed, head, norm, q, k, v, o, gate, up, down (`keep`: the stored type).
const EXPECTED: [(&str, [&str; 10]); 8] = [
    ("stored", ["keep"; 10]),
    ("fp32", ["f32"; 10]),
    ("fp16", ["f16"; 10]),
    ("bf16", ["bf16"; 10]),
    ("int8", ["int8"; 10]),
    (
        "conservative",
        [
            "int8", "int8", "f16", "f16", "f16", "f16", "f16", "f16", "f16", "f16",
        ],
    ),
    (
        "aggressive",
        [
            "int8", "int8", "f16", "int8", "int8", "int8", "int8", "int8", "int8", "int8",
        ],
    ),
    (
        "attn16-ffn8-emb4",
        [
            "int4-g32", "int4-g32", "f32", "f16", "f16", "f16", "f16", "int8", "int8", "int8",
        ],
    ),
];

fn fmt(s: &str) -> QuantFormat {
    s.parse().unwrap()
}

#[test]
fn presets_are_listed_in_order() {
    let names: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(Policy::presets(), names.as_slice());
}

#[test]
fn presets_map_llama_tensors_as_specified() {
    for (preset, formats) in EXPECTED {
        let p = Policy::preset(preset).unwrap();
        assert_eq!(p.name, preset);
        assert_eq!(Policy::load(preset).unwrap(), p);
        for ((role, names), expected) in ROLES.iter().zip(formats) {
            for name in *names {
                let want = (expected != "keep").then(|| fmt(expected));
                assert_eq!(p.format_for(name), want, "{preset}: {role} tensor {name}");
            }
        }
    }
}

#[test]
fn int8_preset_is_per_channel_symmetric() {
    let f = Policy::preset("int8")
        .unwrap()
        .format_for("blk.0.ffn_up.weight");
    assert_eq!(f.map(|f| f.to_string()).as_deref(), Some("int8"));
    let QuantFormat::Int(spec) = f.unwrap() else {
        panic!("int8 is a uniform integer format");
    };
    assert!(spec.symmetric());
    assert_eq!(spec.bits(), 8);
}

#[test]
fn non_uniform_presets_keep_unknown_tensors() {
    for preset in ["conservative", "aggressive", "attn16-ffn8-emb4"] {
        let p = Policy::preset(preset).unwrap();
        for name in [
            "rope_freqs.weight",
            "blk.0.attn_q.bias",
            "blk.0.ffn_gate_inp.weight",
        ] {
            assert_eq!(p.format_for(name), None, "{preset}: {name}");
        }
    }
}

#[test]
fn first_match_wins_and_unmatched_keeps() {
    let text = r#"
name = "mixed"

[[rule]]
pattern = "blk.0.*"
format = "keep"

[[rule]]
pattern = "blk.*.ffn_*"
format = "int4-g32"

[[rule]]
pattern = "blk.*"
format = "f16"
"#;
    let p = Policy::from_toml_str(text, "mixed.toml").unwrap();
    assert_eq!(p.name, "mixed");
    assert_eq!(p.format_for("blk.0.ffn_up.weight"), None);
    assert_eq!(p.format_for("blk.1.ffn_up.weight"), Some(fmt("int4-g32")));
    assert_eq!(p.format_for("blk.1.attn_q.weight"), Some(fmt("f16")));
    assert_eq!(p.format_for("token_embd.weight"), None);
    assert_eq!(
        p.rule_for("blk.1.ffn_up.weight").map(Rule::pattern),
        Some("blk.*.ffn_*")
    );
}

#[test]
fn single_and_override() {
    let p = Policy::single("blk.*.attn_*", fmt("fp8-e4m3")).unwrap();
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.format_for("blk.2.attn_v.weight"), Some(fmt("fp8-e4m3")));
    assert_eq!(p.format_for("blk.2.ffn_up.weight"), None);

    let base = Policy::preset("conservative").unwrap();
    let q = base
        .clone()
        .with_override("blk.*.ffn_down.weight", fmt("int4-g32"))
        .unwrap();
    assert_eq!(q.rules.len(), base.rules.len() + 1);
    assert_eq!(q.format_for("blk.5.ffn_down.weight"), Some(fmt("int4-g32")));
    assert_eq!(q.format_for("blk.5.ffn_up.weight"), Some(fmt("f16")));
    assert!(q.name.starts_with("conservative+"), "{}", q.name);
    let kept = base.with_override("*norm*", Target::Keep).unwrap();
    assert_eq!(kept.format_for("output_norm.weight"), None);

    assert!(matches!(
        Policy::single("[", fmt("f16")),
        Err(Error::Policy { .. })
    ));
}

#[test]
fn toml_round_trips() {
    let mut policies: Vec<Policy> = Policy::presets()
        .iter()
        .map(|n| Policy::preset(n).unwrap())
        .collect();
    policies.push(
        Policy::single("blk.[0-3].*", Target::Keep)
            .unwrap()
            .with_override("*\"odd\\name*", fmt("int4-g64-asym-sf16"))
            .unwrap()
            .with_override("x", fmt("nf4-g32"))
            .unwrap(),
    );
    for p in policies {
        let text = p.to_toml();
        let back = Policy::from_toml_str(&text, "whatever.toml").unwrap();
        assert_eq!(back, p, "{text}");
    }
}

#[test]
fn name_defaults_to_the_file_stem() {
    let text = "[[rule]]\npattern = \"*\"\nformat = \"bf16\"\n";
    assert_eq!(
        Policy::from_toml_str(text, "dir/my-policy.toml")
            .unwrap()
            .name,
        "my-policy"
    );
    assert_eq!(Policy::from_toml_str(text, "plain").unwrap().name, "plain");
}

#[test]
fn load_reads_files_and_lists_presets_otherwise() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("models-policy-load");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ffn4.toml");
    std::fs::write(
        &path,
        "[[rule]]\npattern = \"blk.*.ffn_*\"\nformat = \"int4-g32\"\n",
    )
    .unwrap();
    let p = Policy::load(path.to_str().unwrap()).unwrap();
    assert_eq!(p.name, "ffn4");
    assert_eq!(p.format_for("blk.0.ffn_gate.weight"), Some(fmt("int4-g32")));

    match Policy::load("no-such-preset-or-file") {
        Err(Error::Policy { reason, .. }) => {
            for name in Policy::presets() {
                assert!(reason.contains(name), "{reason}");
            }
        }
        other => panic!("{other:?}"),
    }
}

/// Asserts a [`Error::Policy`] whose location contains `location` and whose reason
/// contains `reason`.
fn assert_policy_error(text: &str, location: &str, reason: &str) {
    match Policy::from_toml_str(text, "p.toml") {
        Err(Error::Policy {
            location: Some(l),
            reason: r,
        }) => {
            assert!(l.contains(location), "location {l:?} lacks {location:?}");
            assert!(r.contains(reason), "reason {r:?} lacks {reason:?}");
        }
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn malformed_files_are_located_errors() {
    let rule = |p: &str, f: &str| format!("[[rule]]\npattern = \"{p}\"\nformat = \"{f}\"\n");
    // TOML syntax.
    assert_policy_error("name = \n", "p.toml: line 1", "");
    assert_policy_error("[[rule]\n", "p.toml: line 1", "");
    // Unknown keys, top level and in a rule.
    assert_policy_error(
        "nam = \"x\"\n[[rule]]\npattern = \"*\"\nformat = \"f16\"\n",
        "p.toml: line 1",
        "nam",
    );
    assert_policy_error(
        &format!(
            "{}{}",
            rule("*", "f16"),
            "[[rule]]\npattern = \"*\"\nformat = \"f16\"\nformt = \"x\"\n"
        ),
        "p.toml: line 7",
        "formt",
    );
    // Missing keys.
    assert_policy_error("[[rule]]\npattern = \"*\"\n", "p.toml", "format");
    // Wrong types.
    assert_policy_error(
        "[[rule]]\npattern = 3\nformat = \"f16\"\n",
        "p.toml: line 2",
        "",
    );
    // Bad format: quant's error is quoted, located at the rule.
    let text = format!("{}\n{}", rule("*norm*", "f16"), rule("blk.*", "int9-g32"));
    assert_policy_error(&text, "p.toml: rule 2 (line 7)", "int9");
    assert_policy_error(
        &rule("*", "int4-g0"),
        "p.toml: rule 1 (line 3)",
        "group size",
    );
    // Bad glob.
    let text = format!(
        "{}\n{}\n{}",
        rule("a", "f16"),
        rule("b", "f16"),
        rule("blk.[0-", "f16")
    );
    assert_policy_error(&text, "p.toml: rule 3 (line 10)", "glob");
    // No rules, empty name.
    assert_policy_error("name = \"x\"\n", "p.toml", "no rules");
    assert_policy_error("", "p.toml", "no rules");
    assert_policy_error(
        &format!("name = \"\"\n{}", rule("*", "f16")),
        "p.toml: line 1",
        "empty",
    );
}

#[test]
fn error_messages_read_well() {
    let err = Policy::from_toml_str("[[rule]]\npattern = \"*\"\nformat = \"q5\"\n", "p.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("precision policy (p.toml: rule 1 (line 3)): bad format \"q5\""),
        "{err}"
    );
}

/// An independent matcher for patterns made of literals, `*` and `?`.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((b'*', rest)), _) => {
            wildcard_match(rest, name) || (!name.is_empty() && wildcard_match(pattern, &name[1..]))
        }
        (Some(_), None) => false,
        (Some((b'?', rest)), Some((_, name_rest))) => wildcard_match(rest, name_rest),
        (Some((p, rest)), Some((n, name_rest))) => p == n && wildcard_match(rest, name_rest),
    }
}

const FORMATS: [&str; 8] = [
    "keep", "f32", "f16", "bf16", "int8", "int4-g32", "nf4", "q8_0",
];

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        // Realistic names.
        (
            0u32..32,
            prop::sample::select(vec![
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "attn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
                "ffn_norm"
            ])
        )
            .prop_map(|(i, t)| format!("blk.{i}.{t}.weight")),
        prop::sample::select(vec![
            "token_embd.weight",
            "output.weight",
            "output_norm.weight"
        ])
        .prop_map(String::from),
        // Arbitrary names over a small alphabet.
        "[a-z0-9._]{0,16}",
    ]
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "*",
            "*norm*",
            "blk.*",
            "blk.*.ffn_*",
            "blk.?.attn_*.weight",
            "token_embd.weight",
            "output.weight",
            "*.weight",
            "blk.1*",
            "*_q.*"
        ])
        .prop_map(String::from),
        // `**` is only valid as a whole pattern in `glob`; collapse runs of stars.
        "[a-z0-9._*?]{0,8}".prop_map(|s| {
            let mut out = String::new();
            for c in s.chars() {
                if !(c == '*' && out.ends_with('*')) {
                    out.push(c);
                }
            }
            out
        }),
    ]
}

proptest! {
    #[test]
    fn format_for_is_the_first_matching_rule(
        rules in prop::collection::vec(
            (pattern_strategy(), prop::sample::select(FORMATS.to_vec())),
            0..8,
        ),
        names in prop::collection::vec(name_strategy(), 1..16),
    ) {
        let policy = Policy {
            name: "prop".into(),
            rules: rules
                .iter()
                .map(|(p, f)| Rule::new(p, f.parse().unwrap()).unwrap())
                .collect(),
        };
        for name in &names {
            let expected = rules
                .iter()
                .find(|(p, _)| wildcard_match(p.as_bytes(), name.as_bytes()))
                .and_then(|(_, f)| f.parse::<Target>().unwrap().format());
            prop_assert_eq!(policy.format_for(name), expected, "name {}", name);
        }
        if !rules.is_empty() {
            let back = Policy::from_toml_str(&policy.to_toml(), "prop.toml").unwrap();
            prop_assert_eq!(back, policy);
        }
    }
}
