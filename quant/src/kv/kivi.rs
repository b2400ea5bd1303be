//! [`KiviKvStore`]: keys quantized per channel over groups of tokens, values per token, as
//! in KIVI.

use std::fmt;
use std::ops::Range;

use super::codec::{Plane, Scratch, int_quantize};
use super::{
    KvLayout, KvPrecision, check_head, check_out, check_range, check_token, check_token_input,
};
use crate::pack::{get, pack_into, packed_len};
use crate::{Error, Result};

/// The largest [`KiviParams::group`] accepted.
pub const MAX_KIVI_GROUP: usize = 4096;

/// Settings of a [`KiviKvStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KiviParams {
    /// Tokens per key group, `1..=`[`MAX_KIVI_GROUP`]: each channel of each head gets one
    /// scale and minimum per group, and the keys of the last `len % group` tokens stay in
    /// `f32` until their group is full (KIVI's group size `G` and residual length `R`, here
    /// equal). Default 32.
    pub group: usize,
    /// Bits per key code: 2, 4 or 8. Default 4.
    pub key_bits: u32,
    /// Precision of the values, quantized per `(token, head)` as in [`KvStore`](super::KvStore).
    /// Default [`KvPrecision::Int4`].
    pub values: KvPrecision,
}

impl Default for KiviParams {
    fn default() -> Self {
        Self {
            group: 32,
            key_bits: 4,
            values: KvPrecision::Int4,
        }
    }
}

/// A KV cache that quantizes keys **per channel** over groups of `group` tokens and values
/// per token, following KIVI (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit
/// Quantization for KV Cache").
///
/// Key outliers concentrate in a few fixed channels (KIVI; KVQuant, Hooper et al. 2024,
/// §3.1), so a per-channel range keeps them from flattening every other channel of a
/// token, which a per-token range does. A per-channel range needs a group of tokens, so the keys
/// of the newest `len % group` tokens are kept in `f32` (the *residual*, read exactly) and
/// quantized together once `group` of them have accumulated.
///
/// Keys of a full group: for each head `h` and channel `d`, the `group` values
/// `k[t][h][d]` get the asymmetric min–max quantization of the
/// [module documentation](super) with `L = 2^key_bits − 1`: one `f32` scale and minimum
/// per `(group, head, channel)`, error at most `scale / 2` plus `f32` rounding. Values are
/// stored exactly as a [`KvStore`](super::KvStore) of precision [`KiviParams::values`] does.
///
/// # Memory layout
///
/// Key codes of group `g`, head `h`, row `j` (token `g · group + j`) sit at
/// `((g · n_heads + h) · group + j) · row_bytes` of one byte arena, `row_bytes =
/// ⌈head_dim · key_bits / 8⌉`, packed as in [`crate::pack`]; the `(scale, min)` pair of
/// channel `d` at `((g · n_heads + h) · head_dim + d) · 2` of an `f32` arena; the residual
/// keys are `[token][head][head_dim]` `f32`; values use the per-token arenas of
/// [`KvStore`](super::KvStore). [`KiviKvStore::storage_bytes`] is exactly
/// `groups · n_heads · (group · row_bytes + 8 · head_dim) +
/// residual · n_heads · head_dim · 4 + len · n_heads · values.vector_bytes(head_dim)`,
/// with `groups = len / group` and `residual = len % group`.
///
/// KIVI lets the residual length `R` exceed the group size `G`; here `R = G`.
#[derive(Clone)]
pub struct KiviKvStore {
    layout: KvLayout,
    params: KiviParams,
    len: usize,
    key_codes: Vec<u8>,
    key_params: Vec<f32>,
    key_residual: Vec<f32>,
    values: Plane,
    scratch: Scratch,
    column: Vec<f32>,
    column_codes: Vec<u8>,
    rows: Vec<u8>,
}

impl KiviKvStore {
    /// An empty cache.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] if `params.group` is not in `1..=MAX_KIVI_GROUP` or
    /// `params.key_bits` is not 2, 4 or 8.
    pub fn new(layout: KvLayout, params: KiviParams) -> Result<Self> {
        const OP: &str = "KiviKvStore::new";
        if !(1..=MAX_KIVI_GROUP).contains(&params.group) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "group",
                value: params.group.to_string(),
                reason: "must be in 1..=MAX_KIVI_GROUP (4096)",
            });
        }
        if !matches!(params.key_bits, 2 | 4 | 8) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "key_bits",
                value: params.key_bits.to_string(),
                reason: "must be 2, 4 or 8",
            });
        }
        Ok(Self {
            layout,
            params,
            len: 0,
            key_codes: Vec::new(),
            key_params: Vec::new(),
            key_residual: Vec::new(),
            values: Plane::new(params.values),
            scratch: Scratch::default(),
            column: Vec::new(),
            column_codes: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// The layout.
    pub fn layout(&self) -> KvLayout {
        self.layout
    }

    /// The settings.
    pub fn params(&self) -> KiviParams {
        self.params
    }

    /// Number of tokens stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of tokens whose keys are quantized: `len − len % group`. The keys of the
    /// others are stored in `f32`.
    pub fn quantized_len(&self) -> usize {
        self.len - self.len % self.params.group
    }

    /// Appends one token (`k` and `v`, each `n_heads · head_dim` values, head-major). When
    /// this fills a group, the group's keys are quantized.
    ///
    /// # Errors
    ///
    /// As [`KvStore::append`](super::KvStore::append); on error nothing is appended.
    pub fn append(&mut self, k: &[f32], v: &[f32]) -> Result<()> {
        check_token_input(
            ("KiviKvStore::append: k", "KiviKvStore::append: v"),
            self.layout,
            k,
            v,
        )?;
        let slot = self.len;
        self.values.resize(self.layout, slot + 1);
        if let Err(e) = self.values.write(self.layout, slot, v, &mut self.scratch) {
            self.values.resize(self.layout, slot);
            return Err(e);
        }
        self.key_residual.extend_from_slice(k);
        self.len += 1;
        if self.len.is_multiple_of(self.params.group) {
            self.quantize_residual();
        }
        Ok(())
    }

    /// Keeps the first `len` tokens; does nothing if `len ≥ self.len()`.
    ///
    /// Cutting into a quantized group drops the group's per-channel parameters: the keys
    /// of its surviving tokens move to the residual as their *dequantized* values, and are
    /// quantized again (with the tokens appended after them) when the group refills.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let (tl, hd, group) = (
            self.layout.token_len(),
            self.layout.head_dim,
            self.params.group,
        );
        let q = self.quantized_len();
        if len >= q {
            self.key_residual.truncate((len - q) * tl);
        } else {
            let g = len / group;
            let mut residual = vec![0.0; (len - g * group) * tl];
            for (j, t) in residual.chunks_exact_mut(tl).enumerate() {
                for (h, out) in t.chunks_exact_mut(hd).enumerate() {
                    self.read_key_row(g, j, h, out);
                }
            }
            let n = self.layout.n_heads;
            self.key_codes.truncate(g * n * group * self.row_bytes());
            self.key_params.truncate(g * n * hd * 2);
            self.key_residual = residual;
        }
        self.values.resize(self.layout, len);
        self.len = len;
    }

    /// Drops every token.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Decodes the key of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_into`](super::KvStore::read_k_into).
    pub fn read_k_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        const OP: &str = "KiviKvStore::read_k_into";
        check_token(OP, token, self.len)?;
        check_head(OP, head, self.layout)?;
        check_out(OP, out, 1, self.layout)?;
        self.read_key(token, head, out);
        Ok(())
    }

    /// Decodes the value of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_into`](super::KvStore::read_k_into).
    pub fn read_v_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        const OP: &str = "KiviKvStore::read_v_into";
        check_token(OP, token, self.len)?;
        check_head(OP, head, self.layout)?;
        check_out(OP, out, 1, self.layout)?;
        self.values.read(self.layout, token, head, out);
        Ok(())
    }

    /// Decodes the keys of `tokens` for `head` into `out`, laid out `[tokens][head_dim]`.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_k_range_into(
        &self,
        tokens: Range<usize>,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "KiviKvStore::read_k_range_into";
        check_range(OP, &tokens, self.len)?;
        check_head(OP, head, self.layout)?;
        check_out(OP, out, tokens.len(), self.layout)?;
        for (t, o) in tokens.zip(out.chunks_exact_mut(self.layout.head_dim)) {
            self.read_key(t, head, o);
        }
        Ok(())
    }

    /// Decodes the values of `tokens` for `head` into `out`, laid out `[tokens][head_dim]`.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_v_range_into(
        &self,
        tokens: Range<usize>,
        head: usize,
        out: &mut [f32],
    ) -> Result<()> {
        const OP: &str = "KiviKvStore::read_v_range_into";
        check_range(OP, &tokens, self.len)?;
        check_head(OP, head, self.layout)?;
        check_out(OP, out, tokens.len(), self.layout)?;
        for (t, o) in tokens.zip(out.chunks_exact_mut(self.layout.head_dim)) {
            self.values.read(self.layout, t, head, o);
        }
        Ok(())
    }

    /// [`KiviKvStore::read_k_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_k_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        check_range("KiviKvStore::read_k_range", &tokens, self.len)?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_k_range_into(tokens, head, &mut out)?;
        Ok(out)
    }

    /// [`KiviKvStore::read_v_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_v_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        check_range("KiviKvStore::read_v_range", &tokens, self.len)?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_v_range_into(tokens, head, &mut out)?;
        Ok(out)
    }

    /// Bytes held by the stored tokens (see the memory layout above for the formula).
    pub fn storage_bytes(&self) -> usize {
        let (n, hd, group) = (self.layout.n_heads, self.layout.head_dim, self.params.group);
        let groups = self.len / group;
        let residual = self.len % group;
        groups * n * (group * self.row_bytes() + 8 * hd)
            + residual * n * hd * 4
            + self.len * n * self.params.values.vector_bytes(hd)
    }

    /// Packed bytes per key row (one token, one head).
    fn row_bytes(&self) -> usize {
        packed_len(self.layout.head_dim, self.params.key_bits)
    }

    fn read_key(&self, token: usize, head: usize, out: &mut [f32]) {
        let q = self.quantized_len();
        if token < q {
            let group = self.params.group;
            self.read_key_row(token / group, token % group, head, out);
        } else {
            let at = (token - q) * self.layout.token_len() + head * self.layout.head_dim;
            out.copy_from_slice(&self.key_residual[at..at + self.layout.head_dim]);
        }
    }

    /// Decodes row `j` of quantized group `g`, head `head`.
    fn read_key_row(&self, g: usize, j: usize, head: usize, out: &mut [f32]) {
        let (n, hd, group) = (self.layout.n_heads, self.layout.head_dim, self.params.group);
        let rb = self.row_bytes();
        let gh = g * n + head;
        let row = &self.key_codes[(gh * group + j) * rb..(gh * group + j + 1) * rb];
        let params = &self.key_params[gh * hd * 2..(gh + 1) * hd * 2];
        let bits = self.params.key_bits;
        for (d, (o, sm)) in out.iter_mut().zip(params.chunks_exact(2)).enumerate() {
            *o = dequantize_one(sm[0], sm[1], get(row, bits, d));
        }
    }

    /// Quantizes the (full) residual as one group, per head and channel.
    fn quantize_residual(&mut self) {
        let (n, hd, group) = (self.layout.n_heads, self.layout.head_dim, self.params.group);
        let (tl, bits, rb) = (
            self.layout.token_len(),
            self.params.key_bits,
            self.row_bytes(),
        );
        let levels = ((1u32 << bits) - 1) as u8;
        debug_assert_eq!(self.key_residual.len(), group * tl);
        let g = self.len / group - 1;
        self.key_codes.resize((g + 1) * n * group * rb, 0);
        self.key_params.resize((g + 1) * n * hd * 2, 0.0);
        self.column.resize(group, 0.0);
        self.column_codes.resize(group, 0);
        self.rows.resize(group * hd, 0);
        for h in 0..n {
            let gh = g * n + h;
            for d in 0..hd {
                for (c, t) in self
                    .column
                    .iter_mut()
                    .zip(self.key_residual.chunks_exact(tl))
                {
                    *c = t[h * hd + d];
                }
                let (s, m) = int_quantize(&self.column, levels, &mut self.column_codes);
                let at = (gh * hd + d) * 2;
                self.key_params[at..at + 2].copy_from_slice(&[s, m]);
                for (row, &c) in self.rows.chunks_exact_mut(hd).zip(&self.column_codes) {
                    row[d] = c;
                }
            }
            let packed = &mut self.key_codes[gh * group * rb..(gh + 1) * group * rb];
            for (codes, out) in self.rows.chunks_exact(hd).zip(packed.chunks_exact_mut(rb)) {
                pack_into(codes, bits, out);
            }
        }
        self.key_residual.clear();
    }
}

/// `min + scale · code` in `f32`, or in `f64` clamped to `±f32::MAX` where the `f32` sum
/// overflows; `min` for a constant channel (`scale = 0`).
#[inline]
fn dequantize_one(s: f32, m: f32, code: u8) -> f32 {
    if s <= 0.0 {
        return m;
    }
    let y = m + s * f32::from(code);
    if y.is_finite() {
        y
    } else {
        let max = f64::from(f32::MAX);
        (f64::from(m) + f64::from(s) * f64::from(code)).clamp(-max, max) as f32
    }
}

impl fmt::Debug for KiviKvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KiviKvStore")
            .field("layout", &self.layout)
            .field("params", &self.params)
            .field("len", &self.len)
            .field("quantized_len", &self.quantized_len())
            .field("storage_bytes", &self.storage_bytes())
            .finish_non_exhaustive()
    }
}
