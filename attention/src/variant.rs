//! One entry point for every variant, selectable from a string, so a model can pick its
//! attention per layer (`adaprec perplexity --attention dilated:w=512,1024;r=1,2`).
//!
//! # Grammar
//!
//! `NAME[:KEY=VALUE;KEY=VALUE…]`, values with several entries separated by `,`:
//!
//! | spec | variant | keys (defaults: each variant's `Default`) |
//! |---|---|---|
//! | `reference` | [`crate::reference`] (f64, slow) | — |
//! | `flash` (or `dense`) | [`crate::flash`] | `bq`, `bk` block sizes |
//! | `dilated` | [`crate::dilated`] | `w` segment lengths, `r` dilations (same count) |
//! | `infini` | [`crate::infini`] | `seg` segment length, `update` = `linear`/`delta`, `beta` gate logit(s) |
//! | `rank` | [`crate::adaptive_rank`] | `tol`, `sample`, `max`, `method` = `nystrom`/`rsvd`, `entropy`, `seed` |
//! | `precision` | [`crate::adaptive_precision`] | `policy` = `quality`/`balanced`/`speed`, `format` = `f32`/`bf16`/`f16`/`e4m3`/`e5m2`, `sample` |
//!
//! Unknown names, unknown keys, unparsable values and invalid parameter combinations are
//! [`Error::InvalidParams`] naming the offending token.

use std::fmt;
use std::str::FromStr;

use crate::adaptive_precision::{self, OperandFormat, PrecisionParams, PrecisionPolicy};
use crate::adaptive_rank::{self, LowRankMethod, RankParams};
use crate::dilated::{self, DilatedParams};
use crate::flash::{self, FlashParams};
use crate::infini::{self, InfiniParams, MemoryUpdate};
use crate::shape::{Mask, Output, Shape};
use crate::{Error, Result, reference};

/// An attention variant with its parameters.
#[derive(Clone, Debug)]
pub enum Variant {
    /// The `f64` reference.
    Reference,
    /// Flash attention (the dense production path).
    Flash(FlashParams),
    /// LongNet dilated attention.
    Dilated(DilatedParams),
    /// Infini-attention (stateless form: memory from the earlier segments of the keys).
    Infini(InfiniParams),
    /// Adaptive-rank attention.
    Rank(RankParams),
    /// Adaptive-precision attention.
    Precision(PrecisionParams),
}

impl Default for Variant {
    fn default() -> Self {
        Variant::Flash(FlashParams::default())
    }
}

impl Variant {
    /// Runs the variant (see each module for its semantics and which masks it supports).
    ///
    /// # Errors
    ///
    /// Shape and parameter errors of the variant.
    pub fn run(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        shape: Shape,
        mask: Mask<'_>,
        scale: Option<f32>,
    ) -> Result<Output> {
        let fl = FlashParams::default();
        match self {
            Variant::Reference => reference::attention(q, k, v, shape, mask, scale),
            Variant::Flash(p) => flash::attention(q, k, v, shape, mask, scale, p),
            Variant::Dilated(p) => dilated::attention(q, k, v, shape, mask, scale, p, &fl),
            Variant::Infini(p) => infini::attention(q, k, v, shape, mask, scale, p),
            Variant::Rank(p) => {
                adaptive_rank::attention(q, k, v, shape, mask, scale, p, &fl).map(|(o, _)| o)
            }
            Variant::Precision(p) => {
                adaptive_precision::attention(q, k, v, shape, mask, scale, p).map(|(o, _)| o)
            }
        }
    }

    /// The short name (`flash`, `dilated`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Reference => "reference",
            Variant::Flash(_) => "flash",
            Variant::Dilated(_) => "dilated",
            Variant::Infini(_) => "infini",
            Variant::Rank(_) => "rank",
            Variant::Precision(_) => "precision",
        }
    }
}

fn bad(what: &'static str, reason: String) -> Error {
    Error::params(what, reason)
}

fn num<T: FromStr>(key: &str, value: &str) -> Result<T> {
    value.trim().parse().map_err(|_| {
        bad(
            "attention variant",
            format!("`{key}={value}`: not a number"),
        )
    })
}

fn list(key: &str, value: &str) -> Result<Vec<usize>> {
    value.split(',').map(|x| num(key, x)).collect()
}

/// Splits `a=1;b=2,3` into pairs, refusing empty keys and duplicates.
fn pairs(spec: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad(
                "attention variant",
                format!("`{part}`: expected KEY=VALUE"),
            ));
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || out.iter().any(|(x, _)| *x == k) {
            return Err(bad(
                "attention variant",
                format!("`{part}`: empty or repeated key"),
            ));
        }
        out.push((k, v.trim().to_string()));
    }
    Ok(out)
}

fn unknown(name: &str, key: &str, known: &str) -> Error {
    bad(
        "attention variant",
        format!("`{name}` has no key `{key}` (keys: {known})"),
    )
}

impl FromStr for Variant {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (name, rest) = s.split_once(':').unwrap_or((s, ""));
        let name = name.trim().to_ascii_lowercase();
        let kv = pairs(rest)?;
        match name.as_str() {
            "reference" | "ref" => {
                if let Some((k, _)) = kv.first() {
                    return Err(unknown(&name, k, "none"));
                }
                Ok(Variant::Reference)
            }
            "flash" | "dense" => {
                let mut p = FlashParams::default();
                for (k, v) in &kv {
                    match k.as_str() {
                        "bq" => p.block_q = num(k, v)?,
                        "bk" => p.block_k = num(k, v)?,
                        _ => return Err(unknown(&name, k, "bq, bk")),
                    }
                }
                Ok(Variant::Flash(p))
            }
            "dilated" => {
                let (mut w, mut r) = (None, None);
                for (k, v) in &kv {
                    match k.as_str() {
                        "w" => w = Some(list(k, v)?),
                        "r" => r = Some(list(k, v)?),
                        _ => return Err(unknown(&name, k, "w, r")),
                    }
                }
                let w = w.ok_or_else(|| bad("attention variant", "dilated needs w=…".into()))?;
                let r = r.unwrap_or_else(|| vec![1; w.len()]);
                Ok(Variant::Dilated(DilatedParams::new(&w, &r)?))
            }
            "infini" => {
                let mut p = InfiniParams::default();
                for (k, v) in &kv {
                    match k.as_str() {
                        "seg" => p.segment = num(k, v)?,
                        "update" => {
                            p.update = match v.to_ascii_lowercase().as_str() {
                                "linear" => MemoryUpdate::Linear,
                                "delta" => MemoryUpdate::Delta,
                                _ => {
                                    return Err(bad(
                                        "attention variant",
                                        format!("`update={v}`: linear or delta"),
                                    ));
                                }
                            }
                        }
                        "beta" => {
                            p.beta = v
                                .split(',')
                                .map(|x| num::<f32>(k, x))
                                .collect::<Result<_>>()?
                        }
                        _ => return Err(unknown(&name, k, "seg, update, beta")),
                    }
                }
                Ok(Variant::Infini(p))
            }
            "rank" => {
                let mut p = RankParams::default();
                for (k, v) in &kv {
                    match k.as_str() {
                        "tol" => p.tolerance = num(k, v)?,
                        "sample" => p.sample_rows = num(k, v)?,
                        "max" => p.max_rank = num(k, v)?,
                        "entropy" => p.entropy_threshold = num(k, v)?,
                        "seed" => p.seed = num(k, v)?,
                        "method" => {
                            p.method = match v.to_ascii_lowercase().as_str() {
                                "nystrom" => LowRankMethod::Nystrom,
                                "rsvd" => LowRankMethod::RandomizedSvd,
                                _ => {
                                    return Err(bad(
                                        "attention variant",
                                        format!("`method={v}`: nystrom or rsvd"),
                                    ));
                                }
                            }
                        }
                        _ => {
                            return Err(unknown(
                                &name,
                                k,
                                "tol, sample, max, entropy, seed, method",
                            ));
                        }
                    }
                }
                Ok(Variant::Rank(p))
            }
            "precision" => {
                let mut p = PrecisionParams::default();
                for (k, v) in &kv {
                    match k.as_str() {
                        "policy" => {
                            p.policy = match v.to_ascii_lowercase().as_str() {
                                "quality" => PrecisionPolicy::Quality,
                                "balanced" => PrecisionPolicy::Balanced,
                                "speed" => PrecisionPolicy::Speed,
                                _ => {
                                    return Err(bad(
                                        "attention variant",
                                        format!("`policy={v}`: quality, balanced or speed"),
                                    ));
                                }
                            }
                        }
                        "format" => {
                            p.fixed = Some(match v.to_ascii_lowercase().as_str() {
                                "f32" => OperandFormat::F32,
                                "bf16" => OperandFormat::Bf16,
                                "f16" => OperandFormat::F16,
                                "e4m3" | "fp8-e4m3" => OperandFormat::E4M3,
                                "e5m2" | "fp8-e5m2" => OperandFormat::E5M2,
                                _ => {
                                    return Err(bad(
                                        "attention variant",
                                        format!("`format={v}`: f32, bf16, f16, e4m3 or e5m2"),
                                    ));
                                }
                            })
                        }
                        "sample" => p.sample_rows = num(k, v)?,
                        _ => return Err(unknown(&name, k, "policy, format, sample")),
                    }
                }
                Ok(Variant::Precision(p))
            }
            other => Err(bad(
                "attention variant",
                format!(
                    "unknown variant `{other}` (reference, flash, dilated, infini, rank, precision)"
                ),
            )),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Reference => f.write_str("reference"),
            Variant::Flash(p) => write!(f, "flash:bq={};bk={}", p.block_q, p.block_k),
            Variant::Dilated(p) => {
                let w: Vec<String> = p.pairs.iter().map(|(w, _)| w.to_string()).collect();
                let r: Vec<String> = p.pairs.iter().map(|(_, r)| r.to_string()).collect();
                write!(f, "dilated:w={};r={}", w.join(","), r.join(","))
            }
            Variant::Infini(p) => {
                let u = match p.update {
                    MemoryUpdate::Linear => "linear",
                    MemoryUpdate::Delta => "delta",
                };
                write!(f, "infini:seg={};update={u}", p.segment)?;
                if !p.beta.is_empty() {
                    let b: Vec<String> = p.beta.iter().map(f32::to_string).collect();
                    write!(f, ";beta={}", b.join(","))?;
                }
                Ok(())
            }
            Variant::Rank(p) => write!(
                f,
                "rank:tol={};sample={};max={};method={}",
                p.tolerance,
                p.sample_rows,
                p.max_rank,
                match p.method {
                    LowRankMethod::Nystrom => "nystrom",
                    LowRankMethod::RandomizedSvd => "rsvd",
                }
            ),
            Variant::Precision(p) => {
                let pol = match p.policy {
                    PrecisionPolicy::Quality => "quality",
                    PrecisionPolicy::Balanced => "balanced",
                    PrecisionPolicy::Speed => "speed",
                };
                write!(f, "precision:policy={pol}")?;
                if let Some(fm) = p.fixed {
                    let s = match fm {
                        OperandFormat::F32 => "f32",
                        OperandFormat::Bf16 => "bf16",
                        OperandFormat::F16 => "f16",
                        OperandFormat::E4M3 => "e4m3",
                        OperandFormat::E5M2 => "e5m2",
                    };
                    write!(f, ";format={s}")?;
                }
                Ok(())
            }
        }
    }
}
