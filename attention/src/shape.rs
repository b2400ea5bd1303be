//! Shapes, masks and outputs shared by every variant.

use crate::{Error, Result};

/// The shape of one attention call.
///
/// `Q` is `[heads, n_q, d]`, `K` and `V` are `[kv_heads, n_k, d]`, all row-major `f32`
/// slices. Grouped-query attention: `heads` is a multiple of `kv_heads`, and query head `h`
/// reads key/value head `h / (heads / kv_heads)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Query rows per head.
    pub n_q: usize,
    /// Key/value rows per head.
    pub n_k: usize,
    /// Head dimension.
    pub d: usize,
}

impl Shape {
    /// A shape with as many key/value rows as query rows and `kv_heads == heads`.
    pub fn self_attention(heads: usize, n: usize, d: usize) -> Self {
        Self {
            heads,
            kv_heads: heads,
            n_q: n,
            n_k: n,
            d,
        }
    }

    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.heads / self.kv_heads.max(1)
    }

    /// The key/value head query head `h` reads.
    pub fn kv_head(&self, h: usize) -> usize {
        h / self.group().max(1)
    }

    /// Elements of `Q` (and of the output).
    pub fn q_len(&self) -> usize {
        self.heads * self.n_q * self.d
    }

    /// Elements of `K` (and of `V`).
    pub fn kv_len(&self) -> usize {
        self.kv_heads * self.n_k * self.d
    }

    /// Checks the shape itself and the three slice lengths.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] if `heads`, `kv_heads` or `d` is zero, `kv_heads` does not divide
    /// `heads`, a size overflows, or a slice length differs from the shape's.
    pub fn check(&self, q: &[f32], k: &[f32], v: &[f32]) -> Result<()> {
        if self.heads == 0 || self.kv_heads == 0 || self.d == 0 {
            return Err(Error::shape(format!(
                "heads, kv_heads and d must be positive ({self:?})"
            )));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::shape(format!(
                "heads {} is not a multiple of kv_heads {}",
                self.heads, self.kv_heads
            )));
        }
        let q_len = self
            .heads
            .checked_mul(self.n_q)
            .and_then(|x| x.checked_mul(self.d));
        let kv_len = self
            .kv_heads
            .checked_mul(self.n_k)
            .and_then(|x| x.checked_mul(self.d));
        let (Some(q_len), Some(kv_len)) = (q_len, kv_len) else {
            return Err(Error::shape(format!("{self:?} overflows usize")));
        };
        for (name, got, want) in [
            ("Q", q.len(), q_len),
            ("K", k.len(), kv_len),
            ("V", v.len(), kv_len),
        ] {
            if got != want {
                return Err(Error::shape(format!(
                    "{name} has {got} elements, the shape {self:?} needs {want}"
                )));
            }
        }
        Ok(())
    }
}

/// Which keys each query may attend to.
///
/// Query row `i` sits at absolute position `q_offset + i` and key row `j` at position `j`
/// (decoding with a cache: the `n_q` new queries come after `q_offset` cached positions).
/// With `causal`, query `i` sees keys `j ≤ q_offset + i`. With `key_valid`, only keys whose
/// entry is `true` are seen (a padding mask, shared by every head and query). A query that
/// sees no key is **fully masked**: its output row is zero and its log-sum-exp `−∞`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask<'a> {
    /// Causal masking.
    pub causal: bool,
    /// Absolute position of query row 0.
    pub q_offset: usize,
    /// Per-key validity (`n_k` entries), or `None` for all keys valid.
    pub key_valid: Option<&'a [bool]>,
}

impl<'a> Mask<'a> {
    /// No masking.
    pub const NONE: Mask<'static> = Mask {
        causal: false,
        q_offset: 0,
        key_valid: None,
    };

    /// Causal masking with queries starting at absolute position `q_offset`.
    pub fn causal(q_offset: usize) -> Self {
        Self {
            causal: true,
            q_offset,
            key_valid: None,
        }
    }

    /// Whether query row `i` may see key row `j`.
    #[inline]
    pub fn allows(&self, i: usize, j: usize) -> bool {
        (!self.causal || j <= self.q_offset + i) && self.key_valid.is_none_or(|v| v[j])
    }

    /// One past the last key query `i` may see under the causal part (`n_k` when not
    /// causal): blocked kernels skip key blocks at or past it.
    #[inline]
    pub fn key_end(&self, i: usize, n_k: usize) -> usize {
        if self.causal {
            (self.q_offset + i + 1).min(n_k)
        } else {
            n_k
        }
    }

    /// Checks `key_valid`'s length against `n_k`.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when it differs.
    pub fn check(&self, n_k: usize) -> Result<()> {
        match self.key_valid {
            Some(v) if v.len() != n_k => Err(Error::shape(format!(
                "key mask has {} entries for {n_k} keys",
                v.len()
            ))),
            _ => Ok(()),
        }
    }
}

/// The scale applied to `QKᵀ`: `1/sqrt(d)` unless given.
pub fn default_scale(d: usize) -> f32 {
    1.0 / (d as f32).sqrt()
}

/// The result of an attention call.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// `[heads, n_q, d]`, row-major.
    pub out: Vec<f32>,
    /// Per query row (`[heads, n_q]`): `ln Σ_j exp(s·q·k_j)` over the keys it sees (`−∞` for
    /// a fully-masked row). Merging partial attentions (dilated pairs, split keys) weights
    /// each part by `exp(lse)`.
    pub lse: Vec<f64>,
}
