//! [`MixedKvStore`]: a KV cache whose tokens each have their own precision.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use super::codec::{Plane, Scratch};
use super::{
    KvLayout, KvPrecision, Part, check_head, check_out, check_range, check_token, check_token_input,
};
use crate::Result;

/// Memory used by the tokens stored at one precision (see [`MixedKvStore::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvUsage {
    /// Number of tokens at this precision.
    pub tokens: usize,
    /// Their bytes, keys and values, codes and parameters:
    /// `tokens · precision.token_bytes(layout)`.
    pub bytes: usize,
}

/// Where a token lives: its precision and its slot in that precision's pool.
#[derive(Clone, Copy, Debug)]
struct Entry {
    precision: KvPrecision,
    slot: usize,
}

/// The arenas of one precision: `slots` tokens of keys and values, some of them free.
#[derive(Clone)]
struct Pool {
    k: Plane,
    v: Plane,
    slots: usize,
    /// Free slots below `slots`; the highest slot is never free (the arenas shrink instead).
    free: BTreeSet<usize>,
}

impl Pool {
    fn new(precision: KvPrecision) -> Self {
        Self {
            k: Plane::new(precision),
            v: Plane::new(precision),
            slots: 0,
            free: BTreeSet::new(),
        }
    }

    /// Takes the lowest free slot, or grows the arenas by one.
    fn alloc(&mut self, layout: KvLayout) -> usize {
        if let Some(slot) = self.free.pop_first() {
            return slot;
        }
        self.slots += 1;
        self.k.resize(layout, self.slots);
        self.v.resize(layout, self.slots);
        self.slots - 1
    }

    /// Frees `slot`, shrinking the arenas past any free slots at their end.
    fn release(&mut self, layout: KvLayout, slot: usize) {
        self.free.insert(slot);
        while self.slots > 0 && self.free.remove(&(self.slots - 1)) {
            self.slots -= 1;
        }
        self.k.resize(layout, self.slots);
        self.v.resize(layout, self.slots);
    }

    fn plane(&self, part: Part) -> &Plane {
        match part {
            Part::K => &self.k,
            Part::V => &self.v,
        }
    }
}

/// A KV cache in which each token's keys and values are stored at the precision the caller
/// assigns, and can be re-assigned later (for example, demoting tokens a policy judges
/// unimportant).
///
/// # Memory layout
///
/// One *pool* per [`KvPrecision`], each a pair of contiguous growable arenas for keys and
/// values laid out like a [`KvStore`](super::KvStore)'s, indexed by *slot*; and a table
/// giving each token its precision and slot. Appending takes the lowest free slot of the
/// token's pool, or grows the pool by one slot. A token that changes precision or is
/// truncated away frees its slot; free slots at the end of a pool are given back at once
/// (the pool's arenas shrink), while free slots in the middle stay allocated until reused
/// by a later token of that precision or removed by [`MixedKvStore::compact`].
///
/// [`MixedKvStore::storage_bytes`] counts the stored tokens only (exactly
/// `Σ_tokens precision.token_bytes(layout)`), [`MixedKvStore::allocated_bytes`] the slots
/// of every pool, free ones included; neither counts the token table (16 bytes a token) or
/// spare `Vec` capacity.
///
/// A token reads back bit for bit what a [`KvStore`](super::KvStore) of its precision reads
/// for the same key and value.
#[derive(Clone)]
pub struct MixedKvStore {
    layout: KvLayout,
    tokens: Vec<Entry>,
    pools: [Pool; 5],
    scratch: Scratch,
    buf: Vec<f32>,
}

impl MixedKvStore {
    /// An empty cache.
    pub fn new(layout: KvLayout) -> Self {
        Self {
            layout,
            tokens: Vec::new(),
            pools: KvPrecision::ALL.map(Pool::new),
            scratch: Scratch::default(),
            buf: Vec::new(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> KvLayout {
        self.layout
    }

    /// Number of tokens stored.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Appends one token, its key `k` and value `v` (each `n_heads · head_dim` values,
    /// head-major), stored at `precision`.
    ///
    /// # Errors
    ///
    /// As [`KvStore::append`](super::KvStore::append); on error nothing is appended.
    pub fn append_with(&mut self, k: &[f32], v: &[f32], precision: KvPrecision) -> Result<()> {
        check_token_input(
            (
                "MixedKvStore::append_with: k",
                "MixedKvStore::append_with: v",
            ),
            self.layout,
            k,
            v,
        )?;
        let slot = self.store(precision, k, v)?;
        self.tokens.push(Entry { precision, slot });
        Ok(())
    }

    /// The precision of `token`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) if `token ≥ len()`.
    pub fn precision(&self, token: usize) -> Result<KvPrecision> {
        check_token("MixedKvStore::precision", token, self.len())?;
        Ok(self.tokens[token].precision)
    }

    /// Re-stores `token` at `precision`, quantizing its *currently stored* (dequantized) key
    /// and value; does nothing if the token is already at `precision`.
    ///
    /// Information lost by a narrower precision is not recovered by a wider one: demoting a
    /// token to int4 and promoting it back to F32 stores the int4 values exactly, not the
    /// values first appended.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) if `token ≥ len()`.
    pub fn set_precision(&mut self, token: usize, precision: KvPrecision) -> Result<()> {
        check_token("MixedKvStore::set_precision", token, self.len())?;
        let old = self.tokens[token];
        if old.precision == precision {
            return Ok(());
        }
        let (layout, tl, hd) = (self.layout, self.layout.token_len(), self.layout.head_dim);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(2 * tl, 0.0);
        let pool = &self.pools[old.precision.index()];
        let (bk, bv) = buf.split_at_mut(tl);
        for (h, (ok, ov)) in bk
            .chunks_exact_mut(hd)
            .zip(bv.chunks_exact_mut(hd))
            .enumerate()
        {
            pool.k.read(layout, old.slot, h, ok);
            pool.v.read(layout, old.slot, h, ov);
        }
        // Decoded values are finite at every precision, so storing them cannot fail on
        // their account.
        let stored = self.store(precision, &buf[..tl], &buf[tl..]);
        self.buf = buf;
        let slot = stored?;
        self.pools[old.precision.index()].release(layout, old.slot);
        self.tokens[token] = Entry { precision, slot };
        Ok(())
    }

    /// Keeps the first `len` tokens and drops the rest, freeing their slots; does nothing if
    /// `len ≥ self.len()`.
    pub fn truncate(&mut self, len: usize) {
        while self.tokens.len() > len {
            let e = self.tokens.pop().expect("len > 0");
            self.pools[e.precision.index()].release(self.layout, e.slot);
        }
    }

    /// Drops every token.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Rebuilds every pool without free slots, the tokens of each precision in token order.
    /// Stored codes are moved bit for bit: reads do not change. Afterwards
    /// `allocated_bytes() == storage_bytes()`.
    pub fn compact(&mut self) {
        let layout = self.layout;
        let mut pools = KvPrecision::ALL.map(Pool::new);
        for (p, pool) in KvPrecision::ALL.iter().zip(&mut pools) {
            let n = self.usage(*p).tokens;
            pool.k.reserve(layout, n);
            pool.v.reserve(layout, n);
        }
        for e in &mut self.tokens {
            let (old, new) = (
                &self.pools[e.precision.index()],
                &mut pools[e.precision.index()],
            );
            let slot = new.alloc(layout);
            new.k.copy_slot(layout, slot, &old.k, e.slot);
            new.v.copy_slot(layout, slot, &old.v, e.slot);
            e.slot = slot;
        }
        self.pools = pools;
    }

    /// Decodes the key of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_into`](super::KvStore::read_k_into).
    pub fn read_k_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        self.read_into("MixedKvStore::read_k_into", Part::K, token, head, out)
    }

    /// Decodes the value of `token` for `head` into `out` (`head_dim` values).
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_into`](super::KvStore::read_k_into).
    pub fn read_v_into(&self, token: usize, head: usize, out: &mut [f32]) -> Result<()> {
        self.read_into("MixedKvStore::read_v_into", Part::V, token, head, out)
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
        self.read_range_into(
            "MixedKvStore::read_k_range_into",
            Part::K,
            tokens,
            head,
            out,
        )
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
        self.read_range_into(
            "MixedKvStore::read_v_range_into",
            Part::V,
            tokens,
            head,
            out,
        )
    }

    /// [`MixedKvStore::read_k_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_k_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        check_range("MixedKvStore::read_k_range", &tokens, self.len())?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_k_range_into(tokens, head, &mut out)?;
        Ok(out)
    }

    /// [`MixedKvStore::read_v_range_into`] into a new vector.
    ///
    /// # Errors
    ///
    /// As [`KvStore::read_k_range_into`](super::KvStore::read_k_range_into).
    pub fn read_v_range(&self, tokens: Range<usize>, head: usize) -> Result<Vec<f32>> {
        check_range("MixedKvStore::read_v_range", &tokens, self.len())?;
        let mut out = vec![0.0; tokens.len() * self.layout.head_dim];
        self.read_v_range_into(tokens, head, &mut out)?;
        Ok(out)
    }

    /// Bytes held by the stored tokens: `Σ_tokens precision.token_bytes(layout)`.
    pub fn storage_bytes(&self) -> usize {
        KvPrecision::ALL.iter().map(|&p| self.usage(p).bytes).sum()
    }

    /// Bytes held by every pool's slots, free ones included:
    /// `Σ_precisions slots · precision.token_bytes(layout)`. At least
    /// [`MixedKvStore::storage_bytes`]; equal after [`MixedKvStore::compact`].
    pub fn allocated_bytes(&self) -> usize {
        KvPrecision::ALL
            .iter()
            .zip(&self.pools)
            .map(|(p, pool)| pool.slots * p.token_bytes(self.layout))
            .sum()
    }

    /// Tokens stored at `precision`, and their bytes.
    pub fn usage(&self, precision: KvPrecision) -> KvUsage {
        let pool = &self.pools[precision.index()];
        let tokens = pool.slots - pool.free.len();
        KvUsage {
            tokens,
            bytes: tokens * precision.token_bytes(self.layout),
        }
    }

    /// Average stored bits per element over the stored tokens, parameters included:
    /// `8 · storage_bytes() / (2 · len · n_heads · head_dim)`; 0 for an empty cache.
    pub fn bits_per_element(&self) -> f64 {
        let elements = 2 * self.len() * self.layout.token_len();
        if elements == 0 {
            0.0
        } else {
            8.0 * self.storage_bytes() as f64 / elements as f64
        }
    }

    /// Encodes `k` and `v` (checked) into a new slot of `precision`'s pool.
    fn store(&mut self, precision: KvPrecision, k: &[f32], v: &[f32]) -> Result<usize> {
        let layout = self.layout;
        let pool = &mut self.pools[precision.index()];
        let slot = pool.alloc(layout);
        let written = pool
            .k
            .write(layout, slot, k, &mut self.scratch)
            .and_then(|()| pool.v.write(layout, slot, v, &mut self.scratch));
        match written {
            Ok(()) => Ok(slot),
            Err(e) => {
                pool.release(layout, slot);
                Err(e)
            }
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
        check_token(op, token, self.len())?;
        check_head(op, head, self.layout)?;
        check_out(op, out, 1, self.layout)?;
        let e = self.tokens[token];
        self.pools[e.precision.index()]
            .plane(part)
            .read(self.layout, e.slot, head, out);
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
        check_range(op, &tokens, self.len())?;
        check_head(op, head, self.layout)?;
        check_out(op, out, tokens.len(), self.layout)?;
        for (e, o) in self.tokens[tokens]
            .iter()
            .zip(out.chunks_exact_mut(self.layout.head_dim))
        {
            self.pools[e.precision.index()]
                .plane(part)
                .read(self.layout, e.slot, head, o);
        }
        Ok(())
    }

    /// The slot of `token` in its pool (tests check slot reuse).
    #[cfg(test)]
    pub(super) fn slot(&self, token: usize) -> usize {
        self.tokens[token].slot
    }
}

impl fmt::Debug for MixedKvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MixedKvStore");
        d.field("layout", &self.layout).field("len", &self.len());
        for p in KvPrecision::ALL {
            let u = self.usage(p);
            if u.tokens > 0 {
                d.field(p.name(), &u);
            }
        }
        d.field("storage_bytes", &self.storage_bytes())
            .field("allocated_bytes", &self.allocated_bytes())
            .finish_non_exhaustive()
    }
}
