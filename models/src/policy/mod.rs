//! Precision policies: which storage format each weight tensor gets.
//!
//! A [`Policy`] is an ordered list of [`Rule`]s. Each maps a glob pattern over GGUF tensor
//! names (`blk.*.attn_q.weight`, `blk.*.ffn_*`, `token_embd.weight`, `*norm*`) to a
//! [`Target`]: a [`QuantFormat`] parsed from strings such as `f16`, `bf16`, `fp8-e4m3`,
//! `int8`, `int4-g32`, `nf4`, `q4_0`, `mxfp4` (see [`quant::format`]), or `keep`. The
//! **first** rule whose pattern matches the whole name decides; a tensor no rule matches
//! keeps its stored type. Patterns use the [`glob`] crate's syntax (`*`, `?`, `[a-z]`,
//! `[!0-9]`), case-sensitive; tensor names contain no `/`, so `*` matches any run.
//!
//! # Presets
//!
//! [`Policy::preset`] knows these ([`Policy::presets`] lists them in this order). Each
//! names the tensors of both model families the crate runs:
//!
//! - a LLaMA GGUF ([`crate::llama`]): `token_embd.weight`, `output.weight` (absent when the
//!   head is tied), `output_norm.weight` and `blk.N.{attn_norm, attn_q, attn_k, attn_v,
//!   attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight`;
//! - a BERT safetensors file ([`crate::bert`]), Hugging Face names: embeddings are
//!   `embeddings.{word, position, token_type}_embeddings.weight`; attention is
//!   `encoder.layer.N.attention.self.{query, key, value}.weight` and
//!   `encoder.layer.N.attention.output.dense.weight`; the MLP is
//!   `encoder.layer.N.{intermediate, output}.dense.weight`; the "norms" column covers every
//!   `LayerNorm` weight and bias **and every bias** of the encoder's dense layers (vectors,
//!   0.3 % of the encoder's bytes); biases of other GGUF families match no preset rule.
//!
//! | preset | embeddings / head | attention q, k, v, output | MLP gate, up, down | norms (and biases) |
//! |---|---|---|---|---|
//! | `stored` | as stored | as stored | as stored | as stored |
//! | `fp32` | f32 | f32 | f32 | f32 |
//! | `fp16` | f16 | f16 | f16 | f16 |
//! | `bf16` | bf16 | bf16 | bf16 | bf16 |
//! | `int8` | int8 | int8 | int8 | int8 |
//! | `conservative` | int8 | f16 | f16 | f16 |
//! | `aggressive` | int8 | int8 | int8 | f16 |
//! | `attn16-ffn8-emb4` | int4-g32 | f16 | int8 | f32 |
//!
//! `stored` keeps every tensor in its file type (for SmolLM2: Q4_1 matrices, a Q8_0
//! embedding, `f32` norms), the model llama.cpp runs. `fp32` dequantizes everything: it is
//! the reference the others are measured against.
//! `int8` is the full-int8 baseline (`*` → `int8`, symmetric with one scale per output
//! channel, quant's default) and includes the norms: a 1-D norm weight has one "channel"
//! per element, so each element gets its own scale and is stored almost exactly, at more
//! bytes than `f32`. The uniform presets (`fp32` … `int8`) are a single `*` rule, so they
//! also cover tensors other families add.
//!
//! # Already-quantized weights
//!
//! The default model's stored weights are already GGUF Q4_1 (and a few Q8_0): every
//! policy **re-quantizes an already-quantized model**. Its dequantized values are the
//! starting point, so `fp32` measures the stored model itself and no policy can recover
//! what the packager's Q4_1 lost.
//!
//! # Tied embeddings
//!
//! When a model has no `output.weight`, its output head is `token_embd.weight`, so the
//! embedding's format is also the head's: a rule for `output.weight` then has no effect.
//!
//! # TOML
//!
//! [`Policy::load`] and [`Policy::from_toml_str`] read, and [`Policy::to_toml`] writes:
//!
//! ```toml
//! name = "my-policy"          # optional; defaults to the file stem
//!
//! [[rule]]
//! pattern = "blk.*.attn_*.weight"
//! format = "f16"              # a quant format string, or "keep"
//! ```
//!
//! # Example
//!
//! ```
//! use models::policy::Policy;
//! use quant::QuantFormat;
//! # fn main() -> models::Result<()> {
//! let p = Policy::preset("conservative")?;
//! assert_eq!(p.format_for("blk.3.attn_q.weight"), Some("f16".parse()?));
//! assert_eq!(p.format_for("token_embd.weight"), Some("int8".parse()?));
//! assert_eq!(p.format_for("rope_freqs"), None); // unmatched: keep the stored type
//!
//! // Quantize one group further, as a sensitivity sweep does.
//! let int4: QuantFormat = "int4-g32".parse()?;
//! let q = Policy::preset("fp32")?.with_override("blk.*.ffn_*", int4)?;
//! assert_eq!(q.format_for("blk.0.ffn_up.weight"), Some(int4));
//! assert_eq!(q.format_for("blk.0.attn_q.weight"), Some(QuantFormat::F32));
//! # Ok(())
//! # }
//! ```

mod file;
mod preset;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use glob::{MatchOptions, Pattern};
use quant::QuantFormat;

use crate::{Error, Result};

/// What a rule does to the tensors it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Leave the stored type (written `keep`).
    Keep,
    /// Store in this format.
    Format(QuantFormat),
}

impl Target {
    /// The format, or `None` for [`Target::Keep`].
    pub fn format(self) -> Option<QuantFormat> {
        match self {
            Target::Keep => None,
            Target::Format(f) => Some(f),
        }
    }
}

impl From<QuantFormat> for Target {
    fn from(f: QuantFormat) -> Self {
        Target::Format(f)
    }
}

impl FromStr for Target {
    type Err = Error;

    /// `keep` (any case), or a [`QuantFormat`] string.
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().eq_ignore_ascii_case("keep") {
            Ok(Target::Keep)
        } else {
            Ok(Target::Format(s.parse::<QuantFormat>()?))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Keep => f.write_str("keep"),
            Target::Format(q) => q.fmt(f),
        }
    }
}

/// Matching is case-sensitive over the whole name; names hold no path separators.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// One rule: a glob pattern over tensor names and what matching tensors become.
#[derive(Clone, Debug)]
pub struct Rule {
    pattern: String,
    glob: Pattern,
    target: Target,
}

impl Rule {
    /// A rule; the pattern is compiled once here.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] (located at the pattern) when `pattern` is not a valid glob.
    pub fn new(pattern: &str, target: Target) -> Result<Rule> {
        let glob = Pattern::new(pattern).map_err(|e| Error::Policy {
            location: Some(format!("pattern `{pattern}`")),
            reason: Cow::Owned(format!("bad glob at character {}: {}", e.pos, e.msg)),
        })?;
        Ok(Rule {
            pattern: pattern.to_string(),
            glob,
            target,
        })
    }

    /// The glob pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// What matching tensors become.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Whether the pattern matches the whole tensor name.
    pub fn matches(&self, tensor_name: &str) -> bool {
        self.glob.matches_with(tensor_name, MATCH)
    }
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.target == other.target
    }
}

impl Eq for Rule {}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.pattern, self.target)
    }
}

/// A named, ordered list of rules; the first matching rule decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The name reports use (a preset name, a file stem, or the `name` key of a file).
    pub name: String,
    /// The rules, in priority order.
    pub rules: Vec<Rule>,
}

impl Policy {
    /// The format for `tensor_name`: the first matching rule's, or `None` (keep the stored
    /// type) when that rule says `keep` or no rule matches.
    pub fn format_for(&self, tensor_name: &str) -> Option<QuantFormat> {
        self.rule_for(tensor_name).and_then(|r| r.target.format())
    }

    /// The first rule matching `tensor_name`, if any (for reports that say why).
    pub fn rule_for(&self, tensor_name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(tensor_name))
    }

    /// A policy with the one rule `pattern` → `target`, named `pattern=target`.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] when `pattern` is not a valid glob.
    pub fn single(pattern: &str, target: impl Into<Target>) -> Result<Policy> {
        let rule = Rule::new(pattern, target.into())?;
        Ok(Policy {
            name: format!("{}={}", rule.pattern, rule.target),
            rules: vec![rule],
        })
    }

    /// This policy with the rule `pattern` → `target` put first, so it overrides every
    /// other rule for the tensors it matches. The name becomes `name+pattern=target`.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] when `pattern` is not a valid glob.
    pub fn with_override(mut self, pattern: &str, target: impl Into<Target>) -> Result<Policy> {
        let rule = Rule::new(pattern, target.into())?;
        self.name = format!("{}+{}={}", self.name, rule.pattern, rule.target);
        self.rules.insert(0, rule);
        Ok(self)
    }

    /// The preset called `name` (see the [module docs](self) for the table).
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] naming the presets when `name` is not one.
    pub fn preset(name: &str) -> Result<Policy> {
        preset::build(name).ok_or_else(|| Error::Policy {
            location: None,
            reason: Cow::Owned(format!(
                "unknown preset `{name}` (presets: {})",
                preset::NAMES.join(", ")
            )),
        })
    }

    /// The preset names, in the order of the module docs' table.
    pub fn presets() -> &'static [&'static str] {
        &preset::NAMES
    }
}

impl fmt::Display for Policy {
    /// One line: `name: pattern → format, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.name)?;
        if self.rules.is_empty() {
            return f.write_str(" (no rules: keep everything)");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            rule.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> QuantFormat {
        s.parse().unwrap()
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = Policy::single("*", fmt("f16"))
            .unwrap()
            .with_override("blk.*.ffn_*", fmt("int8"))
            .unwrap();
        assert_eq!(p.format_for("blk.0.ffn_up.weight"), Some(fmt("int8")));
        assert_eq!(p.format_for("blk.0.attn_q.weight"), Some(fmt("f16")));
        assert_eq!(p.name, "*=f16+blk.*.ffn_*=int8");
    }

    #[test]
    fn keep_and_unmatched_give_none() {
        let p = Policy::single("blk.*", Target::Keep).unwrap();
        assert_eq!(p.format_for("blk.1.attn_q.weight"), None);
        assert_eq!(
            p.rule_for("blk.1.attn_q.weight").map(Rule::pattern),
            Some("blk.*")
        );
        assert_eq!(p.format_for("token_embd.weight"), None);
        assert!(p.rule_for("token_embd.weight").is_none());
    }

    #[test]
    fn patterns_match_whole_names_case_sensitively() {
        let r = Rule::new("*norm*", Target::Keep).unwrap();
        assert!(r.matches("blk.0.attn_norm.weight"));
        assert!(r.matches("output_norm.weight"));
        assert!(!r.matches("blk.0.attn_NORM.weight"));
        let r = Rule::new("output.weight", Target::Keep).unwrap();
        assert!(!r.matches("output.weight.extra"));
        assert!(!r.matches("xoutput.weight"));
        let r = Rule::new("blk.[0-2].attn_?.weight", Target::Keep).unwrap();
        assert!(r.matches("blk.1.attn_k.weight"));
        assert!(!r.matches("blk.3.attn_k.weight"));
        assert!(!r.matches("blk.1.attn_output.weight"));
    }

    #[test]
    fn bad_glob_is_a_located_policy_error() {
        for bad in ["blk.**x", "[abc", "a[]"] {
            match Rule::new(bad, Target::Keep) {
                Err(Error::Policy {
                    location: Some(l), ..
                }) => assert!(l.contains(bad), "{l}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn target_parses_keep_and_formats() {
        assert_eq!("keep".parse::<Target>().unwrap(), Target::Keep);
        assert_eq!("KEEP".parse::<Target>().unwrap(), Target::Keep);
        assert_eq!(
            "int4-g32".parse::<Target>().unwrap(),
            Target::Format(fmt("int4-g32"))
        );
        assert!(matches!("int9".parse::<Target>(), Err(Error::Quant(_))));
        assert_eq!(Target::Keep.to_string(), "keep");
        assert_eq!(Target::Format(fmt("nf4")).to_string(), "nf4");
    }

    #[test]
    fn display_is_one_line() {
        let p = Policy::preset("aggressive").unwrap();
        let s = p.to_string();
        assert!(!s.contains('\n'));
        assert!(s.starts_with("aggressive: "), "{s}");
        assert!(s.contains("*norm* → f16"), "{s}");
    }

    #[test]
    fn unknown_preset_lists_presets() {
        let e = Policy::preset("fp64").unwrap_err().to_string();
        for name in Policy::presets() {
            assert!(e.contains(name), "{e}");
        }
    }
}
