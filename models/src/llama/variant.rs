//! Attention variants from the `attention` crate swapped into chosen layers.
//!
//! [`Model::set_attention`] puts a [`Variant`] into layers; their attention then gathers
//! the queries into `[heads, n_q, d]` and the cached keys and values (all positions so
//! far, as the cache holds them) into `[kv_heads, n_k, d]`, runs the variant with a causal
//! mask whose query offset is the cache position (so decoding with a cache computes the
//! rows a full pass would), and scatters the output back. Layers without a variant keep
//! the built-in path.
//!
//! These variants were not trained into the model: swapping them in measures their
//! zero-shot effect (dense flash attention reproduces the built-in path to rounding).
//!
//! Specs: `VARIANT[@LAYERS]`, `VARIANT` in `attention::variant`'s grammar, `LAYERS` `all`
//! (the default), a list `0,3,5` or ranges `0-14` (inclusive), combined `0-3,10`.

use attention::{Mask, Shape, Variant};

use super::{KvCache, Model};
use crate::{Error, Result};

/// Parses `VARIANT[@LAYERS]` for a model of `n_layers` layers into the variant and the
/// sorted, de-duplicated layer indices.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a bad variant (the `attention` error's text), a bad
/// layer list, or a layer index ≥ `n_layers`.
pub fn parse_attention_spec(spec: &str, n_layers: usize) -> Result<(Variant, Vec<usize>)> {
    let (v, layers) = match spec.rsplit_once('@') {
        Some((v, l)) => (v, Some(l)),
        None => (spec, None),
    };
    let variant: Variant = v
        .parse()
        .map_err(|e: attention::Error| Error::invalid("--attention", e.to_string()))?;
    let layers = match layers.map(str::trim) {
        None | Some("all") => (0..n_layers).collect(),
        Some(list) => parse_layers(list, n_layers)?,
    };
    Ok((variant, layers))
}

fn parse_layers(list: &str, n_layers: usize) -> Result<Vec<usize>> {
    let bad = |why: String| Error::invalid("--attention layers", why);
    let idx = |s: &str| -> Result<usize> {
        let i: usize = s
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{s}` is not a layer index")))?;
        if i >= n_layers {
            return Err(bad(format!("layer {i} (the model has {n_layers})")));
        }
        Ok(i)
    };
    let mut out = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (idx(a)?, idx(b)?);
                if a > b {
                    return Err(bad(format!("range `{part}` is backwards")));
                }
                out.extend(a..=b);
            }
            None => out.push(idx(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(bad("no layers".into()));
    }
    Ok(out)
}

impl Model {
    /// Runs `variant` (or, with `None`, the built-in attention) in each of `layers`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a layer index past the model.
    pub fn set_attention(&mut self, layers: &[usize], variant: Option<Variant>) -> Result<()> {
        if let Some(&l) = layers.iter().find(|&&l| l >= self.config.n_layers) {
            return Err(Error::invalid(
                "attention layers",
                format!("layer {l} (the model has {})", self.config.n_layers),
            ));
        }
        for &l in layers {
            self.attention_variants[l] = variant.clone();
        }
        Ok(())
    }

    /// The variant of each layer (`None`: built-in attention).
    pub fn attention_variants(&self) -> &[Option<Variant>] {
        &self.attention_variants
    }

    /// Attention of layer `l` through `variant`: `q` is `[t, heads·d]` (token-major, as the
    /// projections produce it), the output `att` the same layout.
    pub(crate) fn variant_attention(
        &self,
        variant: &Variant,
        cache: &KvCache,
        l: usize,
        pos0: usize,
        q: &[f32],
        att: &mut [f32],
    ) -> Result<()> {
        let c = &self.config;
        let (hd, nh, nkv) = (c.head_dim, c.n_heads, c.n_kv_heads);
        let t = q.len() / (nh * hd);
        let n_k = pos0 + t;
        let stride = cache.head_stride();
        let mut qh = vec![0.0f32; nh * t * hd];
        for i in 0..t {
            for h in 0..nh {
                qh[(h * t + i) * hd..][..hd].copy_from_slice(&q[(i * nh + h) * hd..][..hd]);
            }
        }
        let gather = |src: &[f32]| {
            let mut out = Vec::with_capacity(nkv * n_k * hd);
            for g in 0..nkv {
                out.extend_from_slice(&src[g * stride..][..n_k * hd]);
            }
            out
        };
        let (k, v) = (gather(cache.keys(l)), gather(cache.values(l)));
        let shape = Shape {
            heads: nh,
            kv_heads: nkv,
            n_q: t,
            n_k,
            d: hd,
        };
        let out = variant
            .run(&qh, &k, &v, shape, Mask::causal(pos0), None)
            .map_err(|e| Error::invalid("attention variant", e.to_string()))?;
        for i in 0..t {
            for h in 0..nh {
                att[(i * nh + h) * hd..][..hd].copy_from_slice(&out.out[(h * t + i) * hd..][..hd]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_lists_parse_and_are_checked() {
        assert_eq!(parse_layers("0-2,5,1", 8).unwrap(), [0, 1, 2, 5]);
        assert!(parse_layers("3-1", 8).is_err());
        assert!(parse_layers("8", 8).is_err());
        assert!(parse_layers("x", 8).is_err());
        let (v, l) = parse_attention_spec("flash@all", 4).unwrap();
        assert_eq!((v.name(), l), ("flash", vec![0, 1, 2, 3]));
        let (v, l) = parse_attention_spec("dilated:w=64,128;r=1,2@1-2", 4).unwrap();
        assert_eq!((v.name(), l), ("dilated", vec![1, 2]));
        assert!(parse_attention_spec("nope", 4).is_err());
    }
}
