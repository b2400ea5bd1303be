//! Quantized KV-cache storage: appendable token by token, at one precision
//! ([`KvStore`]), at a precision chosen per token ([`MixedKvStore`]), or with keys
//! quantized per channel as in KIVI ([`KiviKvStore`]).
//!
//! # Shapes
//!
//! A cache has a [`KvLayout`] of `n_heads` heads of `head_dim` values. Each token appends one
//! key and one value of `n_heads · head_dim` values, head-major (head `h` is
//! `[h · head_dim, (h + 1) · head_dim)`), and reads return one `head_dim` vector per
//! `(token, head)`, or `[tokens][head_dim]` for a range of tokens of one head.
//!
//! # Precisions ([`KvPrecision`])
//!
//! Every `(token, head)` vector of K and of V is quantized on its own, with its own
//! parameters, so an outlier token or head never widens the range of another:
//!
//! - **`F32`**: stored as given; reads are exact.
//! - **`F16`**: IEEE half, round to nearest even; values beyond ±65504 *saturate* to ±65504
//!   (rather than becoming infinities that would poison attention). Inside the range the
//!   error is at most half an f16 ulp.
//! - **`Fp8E4M3`**: OCP E4M3FN with an amax scale per vector: `x` is stored as
//!   `encode_saturating(x · 448 / amax)` and decodes to `amax · (decode(code) / 448)`, where
//!   `amax = max |x|` is stored as an `f32` (it *is* the scale, `448` being a constant).
//!   Storing `amax` rather than `amax / 448` makes the largest magnitude of every vector,
//!   and so every constant vector, round-trip exactly. Error: at most `2⁻⁴ · |x|` in E4M3's
//!   normal range and `(amax / 448) · 2⁻¹⁰` in its subnormal range, plus `f32` rounding.
//!   This is the per-tensor amax scaling of Micikevicius et al. 2022, "FP8 Formats for Deep
//!   Learning", applied per `(token, head)`.
//! - **`Int8`** and **`Int4`**: asymmetric (min–max) uniform quantization per vector, as
//!   KIVI applies it per token to values (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric
//!   2bit Quantization for KV Cache") and as QServe's KV4 and Atom quantize K and V per
//!   head (Lin et al. 2024, "QServe: W4A8KV4 Quantization and System Co-design for
//!   Efficient LLM Serving"; Zhao et al. 2024, "Atom: Low-bit Quantization for Efficient and
//!   Accurate LLM Serving"). With `L = 2^b − 1` (255 or 15) levels, `min = min x`,
//!   `scale = (max x − min) / L` (computed in `f64`, rounded *up* to `f32` so that the
//!   grid covers the whole range even when the scale is subnormal) and
//!   `code = clamp(round_ties_even((x − min) / scale), 0, L)`; a code decodes to
//!   `min + scale · code`. The zero point is the real minimum, not an integer, so zero is
//!   not exactly representable in general, but the minimum is, and the maximum up to `f32`
//!   rounding. Error: at most `scale / 2`, plus `f32` rounding of the
//!   decode. A constant vector (zero included) gets `scale = 0` and decodes exactly.
//!
//! **Scales and minima are stored as `f32`**, 4 bytes each, not `f16`: an `f16` minimum
//! would break both the `scale / 2` bound (its rounding error can exceed a small vector's
//! whole range) and the exactness of constant vectors, and its range would cap the values.
//! The cost is 32 bits per vector instead of 16: at `head_dim = 128`, int4 takes 4.5 bits
//! per element instead of 4.25, int8 8.5 instead of 8.25, FP8 8.25.
//!
//! [`KvStore`] and [`MixedKvStore`] quantize keys per token. KIVI and KVQuant (Hooper et
//! al. 2024, "KVQuant: Towards 10 Million Context Length LLM Inference with KV Cache
//! Quantization", §3.1) show that keys, whose outliers sit in fixed channels, lose less
//! accuracy when quantized per channel, which matters most at 2–4 bits; [`KiviKvStore`]
//! does that, over groups of tokens, keeping the newest incomplete group in `f32`.
//!
//! # Memory layout
//!
//! Each component (K and V) of a store is one pair of contiguous, growable arenas, grown in
//! place (no allocation per token): a code arena and an `f32` parameter arena, both
//! token-major. Vector `r = token · n_heads + head` holds its codes at
//! `[r · c, (r + 1) · c)` and its parameters at `[r · p, (r + 1) · p)`, where `c` is
//! `head_dim` elements for F32/F16/FP8/int8 and `⌈head_dim / 2⌉` bytes for int4 (element
//! `2i` in the low nibble of byte `i`, as in [`crate::pack`]; an odd `head_dim` pads each
//! vector with one zero nibble), and `p` is 0 (F32, F16), 1 (FP8: `amax`) or 2 (int:
//! `scale`, `min`). [`KvPrecision::vector_bytes`] gives the bytes per vector, and
//! [`KvStore::storage_bytes`] is exactly `len · 2 · n_heads · vector_bytes(head_dim)`.
//!
//! [`MixedKvStore`] keeps one such pair of arenas per precision (a *pool*) and a table
//! mapping each token to its precision and slot in that pool; see its documentation.
//! Mixed precision by token importance follows e.g. MiKV (Yang et al. 2024, "No Token Left
//! Behind: Reliable KV Cache Compression via Importance-Aware Mixed Precision
//! Quantization").
//!
//! # Errors
//!
//! - a key or value of the wrong length, or an output buffer of the wrong length:
//!   [`Error::ShapeMismatch`];
//! - a NaN or infinity in a key or value: [`Error::NonFinite`], naming `k` or `v` in `op`
//!   and the index within that slice; nothing is appended;
//! - a token, head or token range out of bounds, or an invalid layout:
//!   [`Error::InvalidParameter`].
//!
//! # Example
//!
//! ```
//! use quant::kv::{KvLayout, KvPrecision, KvStore, MixedKvStore};
//! # fn main() -> quant::Result<()> {
//! let layout = KvLayout::new(2, 4)?; // 2 heads of 4
//! let mut cache = KvStore::new(layout, KvPrecision::Int8);
//! let k = [0.0, 1.0, 2.0, 3.0, -1.0, -1.0, -1.0, -1.0];
//! cache.append(&k, &k)?;
//! let mut out = [0.0f32; 4];
//! cache.read_k_into(0, 1, &mut out)?;
//! assert_eq!(out, [-1.0; 4]); // a constant vector is exact
//! assert_eq!(cache.storage_bytes(), 2 * 2 * (4 + 8)); // K and V, 2 heads, codes + scale + min
//!
//! let mut mixed = MixedKvStore::new(layout);
//! mixed.append_with(&k, &k, KvPrecision::F16)?;
//! mixed.append_with(&k, &k, KvPrecision::Int4)?;
//! mixed.set_precision(0, KvPrecision::Int4)?; // demote the first token
//! assert_eq!(mixed.usage(KvPrecision::Int4).tokens, 2);
//! # Ok(())
//! # }
//! ```

mod codec;
mod kivi;
mod mixed;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

use codec::{Plane, Scratch};
pub use kivi::{KiviKvStore, KiviParams, MAX_KIVI_GROUP};
pub use mixed::{KvUsage, MixedKvStore};

use crate::{Error, Result};

/// The largest `n_heads · head_dim` a [`KvLayout`] accepts: 2²⁴ values per token and
/// component (64 MiB of `f32`), far above any model's, and small enough that every offset
/// computed from it stays far from overflow.
pub const MAX_TOKEN_ELEMENTS: usize = 1 << 24;

/// The shape of one token of a KV cache: `n_heads` heads of `head_dim` values each.
///
/// Built by [`KvLayout::new`], which validates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KvLayout {
    n_heads: usize,
    head_dim: usize,
}

impl KvLayout {
    /// A layout of `n_heads` heads of `head_dim` values.
    ///
    /// Any `head_dim ≥ 1` works at every precision: int4 pads an odd `head_dim` to whole
    /// bytes per vector.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `n_heads` or `head_dim` is zero, or if
    /// `n_heads · head_dim` overflows or exceeds [`MAX_TOKEN_ELEMENTS`].
    pub fn new(n_heads: usize, head_dim: usize) -> Result<Self> {
        const OP: &str = "KvLayout::new";
        let invalid = |name, value: usize, reason| Error::InvalidParameter {
            op: OP,
            name,
            value: value.to_string(),
            reason,
        };
        if n_heads == 0 {
            return Err(invalid("n_heads", n_heads, "must be at least 1"));
        }
        if head_dim == 0 {
            return Err(invalid("head_dim", head_dim, "must be at least 1"));
        }
        match n_heads.checked_mul(head_dim) {
            Some(n) if n <= MAX_TOKEN_ELEMENTS => Ok(Self { n_heads, head_dim }),
            _ => Err(Error::InvalidParameter {
                op: OP,
                name: "n_heads * head_dim",
                value: format!("{n_heads} * {head_dim}"),
                reason: "must not exceed MAX_TOKEN_ELEMENTS = 2^24",
            }),
        }
    }

    /// Number of heads.
    pub const fn n_heads(self) -> usize {
        self.n_heads
    }

    /// Values per head.
    pub const fn head_dim(self) -> usize {
        self.head_dim
    }

    /// Values per token and component: `n_heads · head_dim`.
    pub const fn token_len(self) -> usize {
        self.n_heads * self.head_dim
    }
}

/// The precision at which a token's keys and values are stored; see the
/// [module documentation](self) for each format's encoding and error bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvPrecision {
    /// 32-bit float, exact.
    F32,
    /// IEEE half, saturating at ±65504.
    F16,
    /// OCP FP8 E4M3FN with an `f32` amax per `(token, head)` vector.
    Fp8E4M3,
    /// Asymmetric 8-bit integers with an `f32` scale and minimum per vector.
    Int8,
    /// Asymmetric 4-bit integers, packed two per byte, with an `f32` scale and minimum per
    /// vector.
    Int4,
}

impl KvPrecision {
    /// All precisions, widest first.
    pub const ALL: [Self; 5] = [Self::F32, Self::F16, Self::Fp8E4M3, Self::Int8, Self::Int4];

    /// Bits per stored element, parameters excluded (32, 16, 8, 8, 4).
    pub const fn element_bits(self) -> u32 {
        match self {
            Self::F32 => 32,
            Self::F16 => 16,
            Self::Fp8E4M3 | Self::Int8 => 8,
            Self::Int4 => 4,
        }
    }

    /// Bytes of parameters per `(token, head)` vector: 0 (F32, F16), 4 (FP8: `amax`),
    /// 8 (int: `scale` and `min`, both `f32`).
    pub const fn param_bytes(self) -> usize {
        4 * self.params_per_vector()
    }

    /// Bytes of codes per vector of `head_dim` values: `4 · head_dim`, `2 · head_dim`,
    /// `head_dim`, `head_dim`, `⌈head_dim / 2⌉`.
    pub const fn payload_bytes(self, head_dim: usize) -> usize {
        match self {
            Self::F32 => 4 * head_dim,
            Self::F16 => 2 * head_dim,
            Self::Fp8E4M3 | Self::Int8 => head_dim,
            Self::Int4 => head_dim.div_ceil(2),
        }
    }

    /// Bytes per vector of `head_dim` values: codes plus parameters.
    pub const fn vector_bytes(self, head_dim: usize) -> usize {
        self.payload_bytes(head_dim) + self.param_bytes()
    }

    /// Bytes per token of `layout`, keys and values together:
    /// `2 · n_heads · vector_bytes(head_dim)`.
    pub const fn token_bytes(self, layout: KvLayout) -> usize {
        2 * layout.n_heads * self.vector_bytes(layout.head_dim)
    }

    /// Stored bits per element, parameters included: `8 · vector_bytes(head_dim) / head_dim`
    /// (4.5 for int4 at `head_dim = 128`).
    pub fn bits_per_element(self, head_dim: usize) -> f64 {
        8.0 * self.vector_bytes(head_dim) as f64 / head_dim as f64
    }

    /// A short name: `f32`, `f16`, `fp8-e4m3`, `int8`, `int4`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Fp8E4M3 => "fp8-e4m3",
            Self::Int8 => "int8",
            Self::Int4 => "int4",
        }
    }

    /// Position in [`KvPrecision::ALL`].
    const fn index(self) -> usize {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Fp8E4M3 => 2,
            Self::Int8 => 3,
            Self::Int4 => 4,
        }
    }

    /// Code-arena elements per vector (bytes for int4, elements otherwise).
    const fn codes_per_vector(self, head_dim: usize) -> usize {
        match self {
            Self::Int4 => head_dim.div_ceil(2),
            _ => head_dim,
        }
    }

    /// `f32` parameters per vector.
    const fn params_per_vector(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 0,
            Self::Fp8E4M3 => 1,
            Self::Int8 | Self::Int4 => 2,
        }
    }
}

impl fmt::Display for KvPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Keys or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    K,
    V,
}

/// A KV cache stored at one precision, appendable token by token.
///
/// Keys and values each live in one contiguous code arena and one `f32` parameter arena
/// (see the [module documentation](self)), grown in place as tokens are appended.
#[derive(Clone)]
pub struct KvStore {
    layout: KvLayout,
    precision: KvPrecision,
    len: usize,
    k: Plane,
    v: Plane,
    scratch: Scratch,
}

impl KvStore {
    /// An empty cache.
    pub fn new(layout: KvLayout, precision: KvPrecision) -> Self {
        Self {
            layout,
            precision,
            len: 0,
            k: Plane::new(precision),
            v: Plane::new(precision),
            scratch: Scratch::default(),
        }
    }

    /// An empty cache with room for `tokens` tokens before its arenas reallocate.
    pub fn with_capacity(layout: KvLayout, precision: KvPrecision, tokens: usize) -> Self {
        let mut s = Self::new(layout, precision);
        s.reserve(tokens);
        s
    }

    /// The layout.
    pub fn layout(&self) -> KvLayout {
        self.layout
    }

    /// The precision.
    pub fn precision(&self) -> KvPrecision {
        self.precision
    }

    /// Number of tokens stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reserves room for `additional` more tokens.
    pub fn reserve(&mut self, additional: usize) {
        self.k.reserve(self.layout, additional);
        self.v.reserve(self.layout, additional);
    }

    /// Appends one token: its key `k` and value `v`, each `n_heads · head_dim` values,
    /// head-major.
    ///
    /// # Errors
    ///
    /// - [`Error::ShapeMismatch`] if `k` or `v` has the wrong length;
    /// - [`Error::NonFinite`] if `k` or `v` holds a NaN or infinity (`op` names which, and
    ///   `index` is the position within it).
    ///
    /// On error nothing is appended.
    pub fn append(&mut self, k: &[f32], v: &[f32]) -> Result<()> {
        check_token_input(
            ("KvStore::append: k", "KvStore::append: v"),
            self.layout,
            k,
            v,
        )?;
        let slot = self.len;
        self.k.resize(self.layout, slot + 1);
        self.v.resize(self.layout, slot + 1);
        let written = self
            .k
            .write(self.layout, slot, k, &mut self.scratch)
            .and_then(|()| self.v.write(self.layout, slot, v, &mut self.scratch));
        if let Err(e) = written {
            self.k.resize(self.layout, slot);
            self.v.resize(self.layout, slot);
            return Err(e);
        }
        self.len += 1;
        Ok(())
    }

    /// Keeps the first `len` tokens and drops the rest; does nothing if `len ≥ self.len()`.
    /// The arenas keep their capacity.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            self.k.resize(self.layout, len);
            self.v.resize(self.layout, len);
        }
    }

    /// Drops every token.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Decodes the key of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `token ≥ len()` or `head ≥ n_heads`;
    /// [`Error::ShapeMismatch`] if `out.len() != head_dim`.
    pub fn read_k_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        self.read_into("KvStore::read_k_into", Part::K, token, head, out)
    }

    /// Decodes the value of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_into`].
    pub fn read_v_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        self.read_into("KvStore::read_v_into", Part::V, token, head, out)
    }

    /// Decodes the keys of `tokens` for `head` into `out`, laid out `[tokens][head_dim]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `tokens` is decreasing or ends past `len()`, or if
    /// `head ≥ n_heads`; [`Error::ShapeMismatch`] if
    /// `out.len() != tokens.len() · head_dim`.
    pub fn read_k_range_into(
        &self,
        tokens: Range<usize>,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.read_range_into("KvStore::read_k_range_into", Part::K, tokens, head, out)
    }

    /// Decodes the values of `tokens` for `head` into `out`, laid out `[tokens][head_dim]`.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`].
    pub fn read_v_range_into(
        &self,
        tokens: Range<usize>,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.read_range_into("KvStore::read_v_range_into", Part::V, tokens, head, out)
    }

    /// [`KvStore::read_k_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`].
    pub fn read_k_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        const OP: &str = "KvStore::read_k_range";
        check_range(OP, &tokens, self.len)?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_range_into(OP, Part::K, tokens, head, &mut out)?;
        Ok(out)
    }

    /// [`KvStore::read_v_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`].
    pub fn read_v_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        const OP: &str = "KvStore::read_v_range";
        check_range(OP, &tokens, self.len)?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_range_into(OP, Part::V, tokens, head, &mut out)?;
        Ok(out)
    }

    /// Bytes held by the stored tokens, codes and parameters of keys and values:
    /// exactly `len · 2 · n_heads · precision.vector_bytes(head_dim)` (arena capacity not
    /// counted).
    pub fn storage_bytes(&self) -> usize {
        self.len * self.precision.token_bytes(self.layout)
    }

    /// Stored bits per element, parameters included (see
    /// [`KvPrecision::bits_per_element`]); independent of `len`.
    pub fn bits_per_element(&self) -> f64 {
        self.precision.bits_per_element(self.layout.head_dim)
    }

    fn plane(&self, part: Part) -> &Plane {
        match part {
            Part::K => &self.k,
            Part::V => &self.v,
        }
    }

    fn read_into(
        &self,
        op: &'static str,
        part: Part,
        token: usize,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        check_token(op, token, self.len)?;
        check_head(op, head, self.layout)?;
        check_out(op, out, 1, self.layout)?;
        self.plane(part).read(self.layout, token, head, out);
        Ok(())
    }

    fn read_range_into(
        &self,
        op: &'static str,
        part: Part,
        tokens: Range<usize>,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        check_range(op, &tokens, self.len)?;
        check_head(op, head, self.layout)?;
        check_out(op, out, tokens.len(), self.layout)?;
        let plane = self.plane(part);
        for (t, o) in tokens.zip(out.chunks_exact_mut(self.layout.head_dim)) {
            plane.read(self.layout, t, head, o);
        }
        Ok(())
    }
}

impl fmt::Debug for KvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KvStore")
            .field("layout", &self.layout)
            .field("precision", &self.precision)
            .field("len", &self.len)
            .field("storage_bytes", &self.storage_bytes())
            .finish_non_exhaustive()
    }
}

/// Checks one token's key and value: lengths first, then finiteness. `ops` names the
/// operation for the key and for the value.
fn check_token_input(
    (op_k, op_v): (&'static str, &'static str),
    layout: KvLayout,
    k: &[f32],
    v: &[f32],
) -> Result<()> {
    for (op, x) in [(op_k, k), (op_v, v)] {
        if x.len() != layout.token_len() {
            return Err(Error::ShapeMismatch {
                op,
                expected: vec![layout.n_heads, layout.head_dim],
                got: vec![x.len()],
            });
        }
    }
    for (op, x) in [(op_k, k), (op_v, v)] {
        if let Some(index) = x.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                op,
                index,
                value: x[index],
            });
        }
    }
    Ok(())
}

fn check_token(op: &'static str, token: usize, len: usize) -> Result<()> {
    if token < len {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name: "token",
            value: format!("{token} (len {len})"),
            reason: "must be less than the number of stored tokens",
        })
    }
}

fn check_head(op: &'static str, head: usize, layout: KvLayout) -> Result<()> {
    if head < layout.n_heads {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name: "head",
            value: format!("{head} (n_heads {})", layout.n_heads),
            reason: "must be less than n_heads",
        })
    }
}

fn check_range(op: &'static str, tokens: &Range<usize>, len: usize) -> Result<()> {
    if tokens.start <= tokens.end && tokens.end <= len {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name: "tokens",
            value: format!("{tokens:?} (len {len})"),
            reason: "must be a non-decreasing range within the stored tokens",
        })
    }
}

fn check_out(op: &'static str, out: &[f32], tokens: usize, layout: KvLayout) -> Result<()> {
    if tokens.checked_mul(layout.head_dim) == Some(out.len()) {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            expected: vec![tokens, layout.head_dim],
            got: vec![out.len()],
        })
    }
}
