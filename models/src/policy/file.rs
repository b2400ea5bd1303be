//! Policies as TOML files (the format is in the [module docs](super)).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::{Policy, Rule, Target, preset};
use crate::{Error, Result};

/// A policy file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RuleFile>,
}

/// One `[[rule]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    pattern: Spanned<String>,
    format: Spanned<String>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// 1-based (line, column in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    (
        line_of(text, end),
        text[line_start..end].chars().count() + 1,
    )
}

fn policy_err(location: String, reason: impl Into<Cow<'static, str>>) -> Error {
    Error::Policy {
        location: Some(location),
        reason: reason.into(),
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Policy {
    /// Parses a policy file. `source_name` (a path or a label) is used in error locations
    /// and, through its file stem, as the name when the file sets none.
    ///
    /// ```
    /// use models::policy::Policy;
    /// # fn main() -> models::Result<()> {
    /// let text = "[[rule]]\npattern = \"blk.*.ffn_*\"\nformat = \"int4-g32\"\n";
    /// let p = Policy::from_toml_str(text, "policies/ffn4.toml")?;
    /// assert_eq!(p.name, "ffn4");
    /// assert_eq!(p.format_for("blk.7.ffn_down.weight"), Some("int4-g32".parse()?));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Policy`], located as `source: line L, column C` for TOML syntax errors and
    /// unknown or missing keys, and `source: rule N (line L)` for a bad glob or format
    /// string (quant's parse error is quoted); also for an empty `name` or no `[[rule]]`.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Policy> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let location = match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("{source_name}: line {line}, column {col}")
                }
                None => source_name.to_string(),
            };
            policy_err(location, e.message().trim().to_string())
        })?;
        let name = match file.name {
            Some(name) => {
                if name.get_ref().trim().is_empty() {
                    let line = line_of(text, name.span().start);
                    return Err(policy_err(
                        format!("{source_name}: line {line}"),
                        "`name` is empty",
                    ));
                }
                name.into_inner()
            }
            None => Path::new(source_name).file_stem().map_or_else(
                || source_name.to_string(),
                |s| s.to_string_lossy().into_owned(),
            ),
        };
        if file.rule.is_empty() {
            return Err(policy_err(
                source_name.to_string(),
                "no rules: add at least one [[rule]] with `pattern` and `format`",
            ));
        }
        let rules = file
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let at = |span: std::ops::Range<usize>| {
                    format!(
                        "{source_name}: rule {} (line {})",
                        i + 1,
                        line_of(text, span.start)
                    )
                };
                let target: Target = r.format.get_ref().parse().map_err(|e: Error| {
                    policy_err(
                        at(r.format.span()),
                        format!("bad format {:?}: {e}", r.format.get_ref()),
                    )
                })?;
                Rule::new(r.pattern.get_ref(), target).map_err(|e| match e {
                    Error::Policy { reason, .. } => policy_err(
                        at(r.pattern.span()),
                        format!("pattern {:?}: {reason}", r.pattern.get_ref()),
                    ),
                    other => other,
                })
            })
            .collect::<Result<Vec<Rule>>>()?;
        Ok(Policy { name, rules })
    }

    /// A preset if `name_or_path` is a preset name, else the TOML file at that path.
    ///
    /// # Errors
    ///
    /// [`Error::Policy`] listing the presets when it is neither a preset nor an existing
    /// file; [`Error::Io`] when the file cannot be read; as
    /// [`from_toml_str`](Policy::from_toml_str) for its contents.
    pub fn load(name_or_path: &str) -> Result<Policy> {
        if let Some(p) = preset::build(name_or_path) {
            return Ok(p);
        }
        let path = Path::new(name_or_path);
        match std::fs::read_to_string(path) {
            Ok(text) => Policy::from_toml_str(&text, name_or_path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Policy {
                location: None,
                reason: Cow::Owned(format!(
                    "`{name_or_path}` is neither a preset ({}) nor a policy file",
                    preset::NAMES.join(", ")
                )),
            }),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The policy as a TOML file that [`from_toml_str`](Policy::from_toml_str) reads back
    /// to an equal policy (formats in their canonical spelling). A policy with no rules
    /// renders, but is not a valid file.
    pub fn to_toml(&self) -> String {
        let mut out = format!("name = {}\n", toml_string(&self.name));
        for rule in &self.rules {
            let _ = write!(
                out,
                "\n[[rule]]\npattern = {}\nformat = {}\n",
                toml_string(rule.pattern()),
                toml_string(&rule.target().to_string())
            );
        }
        out
    }
}

/// Serializes as the TOML file's shape: `{ "name": …, "rule": [{ "pattern", "format" }] }`.
impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct RuleOut<'a> {
            pattern: &'a str,
            format: String,
        }
        #[derive(Serialize)]
        struct PolicyOut<'a> {
            name: &'a str,
            rule: Vec<RuleOut<'a>>,
        }
        PolicyOut {
            name: &self.name,
            rule: self
                .rules
                .iter()
                .map(|r| RuleOut {
                    pattern: r.pattern(),
                    format: r.target().to_string(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 100), (3, 2));
    }

    #[test]
    fn toml_string_escapes() {
        assert_eq!(toml_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn serializes_like_the_file() {
        let p = Policy::preset("fp16").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"name":"fp16","rule":[{"pattern":"*","format":"f16"}]}"#
        );
    }
}
