//! The KV cache of a [`Model`](super::Model): `f32` buffers the attention reads, optionally
//! backed by `quant`'s mixed-precision store so that each token's keys and values hold
//! exactly the values its precision tier can represent.

use quant::kv::{KvLayout, KvPrecision, MixedKvStore};

use super::Config;
use crate::{Error, Result};

/// How a [`KvCache`] stores keys and values.
#[derive(Clone, Debug, PartialEq)]
pub enum KvMode {
    /// Exact `f32` (the reference).
    F32,
    /// Every token at one precision.
    Uniform(KvPrecision),
    /// Token at position `p` stored at `tiers[p]` (positions past the end use the last
    /// tier).
    Tiered(Vec<KvPrecision>),
}

impl KvMode {
    fn precision(&self, pos: usize) -> KvPrecision {
        match self {
            KvMode::F32 => KvPrecision::F32,
            KvMode::Uniform(p) => *p,
            KvMode::Tiered(t) => t.get(pos).or(t.last()).copied().unwrap_or(KvPrecision::F32),
        }
    }
}

/// Keys and values of every layer for positions `0..len()`.
///
/// The attention reads `f32` buffers laid out `[kv_head][position][head_dim]`; in
/// [`KvMode::Uniform`] and [`KvMode::Tiered`] each appended token is encoded into a
/// [`MixedKvStore`] at its tier and the buffers receive the decoded values, so the attention
/// sees exactly what the store holds and [`KvCache::storage_bytes`] counts what it costs.
#[derive(Clone, Debug)]
pub struct KvCache {
    n_layers: usize,
    n_kv: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    stores: Option<Vec<MixedKvStore>>,
    mode: KvMode,
}

impl KvCache {
    /// An empty cache for up to `capacity` positions.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `capacity` is zero or the buffers would not fit in
    /// memory (more than 2³⁴ values).
    pub fn new(config: &Config, capacity: usize, mode: KvMode) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::invalid("KV cache capacity", "must be at least 1"));
        }
        let per_layer = config
            .kv_dim()
            .checked_mul(capacity)
            .filter(|n| n.saturating_mul(config.n_layers) <= 1 << 34)
            .ok_or_else(|| {
                Error::invalid(
                    "KV cache capacity",
                    format!("{capacity} positions do not fit in memory"),
                )
            })?;
        let stores = match mode {
            KvMode::F32 => None,
            _ => {
                let layout = KvLayout::new(config.n_kv_heads, config.head_dim)?;
                Some(
                    (0..config.n_layers)
                        .map(|_| MixedKvStore::new(layout))
                        .collect(),
                )
            }
        };
        Ok(Self {
            n_layers: config.n_layers,
            n_kv: config.n_kv_heads,
            head_dim: config.head_dim,
            capacity,
            len: 0,
            k: vec![vec![0.0; per_layer]; config.n_layers],
            v: vec![vec![0.0; per_layer]; config.n_layers],
            stores,
            mode,
        })
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The storage mode.
    pub fn mode(&self) -> &KvMode {
        &self.mode
    }

    /// Forgets every position (keeps the buffers).
    pub fn clear(&mut self) {
        self.len = 0;
        if let Some(stores) = &mut self.stores {
            stores.iter_mut().for_each(MixedKvStore::clear);
        }
    }

    /// Keeps the first `len` positions (no-op if `len >= self.len()`), e.g. to rewind after
    /// a speculative step or to re-run a decode step in a benchmark.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            if let Some(stores) = &mut self.stores {
                stores.iter_mut().for_each(|s| s.truncate(len));
            }
        }
    }

    /// Forgets every position and switches to `mode`.
    ///
    /// # Errors
    ///
    /// As [`KvCache::new`].
    pub fn reset(&mut self, config: &Config, mode: KvMode) -> Result<()> {
        *self = Self::new(config, self.capacity, mode)?;
        Ok(())
    }

    /// Bytes the cache's keys and values occupy at their precisions (`f32`: 4 per value).
    pub fn storage_bytes(&self) -> usize {
        match &self.stores {
            Some(s) => s.iter().map(MixedKvStore::storage_bytes).sum(),
            None => self.len * self.n_layers * 2 * self.n_kv * self.head_dim * 4,
        }
    }

    /// Average stored bits per key/value element, parameters included (32 for `f32`).
    pub fn bits_per_element(&self) -> f64 {
        let elements = self.len * self.n_layers * 2 * self.n_kv * self.head_dim;
        if elements == 0 {
            return 0.0;
        }
        8.0 * self.storage_bytes() as f64 / elements as f64
    }

    /// Keys of layer `l`, `[kv_head][capacity][head_dim]` (positions ≥ `len` are stale).
    pub(crate) fn keys(&self, l: usize) -> &[f32] {
        &self.k[l]
    }

    /// Values of layer `l`, laid out as [`KvCache::keys`].
    pub(crate) fn values(&self, l: usize) -> &[f32] {
        &self.v[l]
    }

    /// Writes keys and values of `t` new tokens (row-major `[t, kv_dim]`, positions
    /// `len..len + t`) for layer `l`; [`KvCache::advance`] commits them after the last
    /// layer.
    pub(crate) fn write(&mut self, l: usize, k: &[f32], v: &[f32], t: usize) -> Result<()> {
        let (hd, kv_dim) = (self.head_dim, self.n_kv * self.head_dim);
        debug_assert_eq!(k.len(), t * kv_dim);
        for i in 0..t {
            let pos = self.len + i;
            let (kr, vr) = (&k[i * kv_dim..][..kv_dim], &v[i * kv_dim..][..kv_dim]);
            if let Some(stores) = &mut self.stores {
                let store = &mut stores[l];
                store.truncate(pos);
                store.append_with(kr, vr, self.mode.precision(pos))?;
                for h in 0..self.n_kv {
                    let at = (h * self.capacity + pos) * hd;
                    store.read_k_into(pos, h, &mut self.k[l][at..at + hd])?;
                    store.read_v_into(pos, h, &mut self.v[l][at..at + hd])?;
                }
            } else {
                for h in 0..self.n_kv {
                    let at = (h * self.capacity + pos) * hd;
                    self.k[l][at..at + hd].copy_from_slice(&kr[h * hd..][..hd]);
                    self.v[l][at..at + hd].copy_from_slice(&vr[h * hd..][..hd]);
                }
            }
        }
        Ok(())
    }

    /// Commits `t` positions written by [`KvCache::write`].
    pub(crate) fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Whether `t` more positions fit.
    pub(crate) fn check_room(&self, t: usize) -> Result<()> {
        if self.len + t > self.capacity {
            return Err(Error::invalid(
                "KV cache",
                format!(
                    "{} positions held + {t} new exceed its capacity of {}",
                    self.len, self.capacity
                ),
            ));
        }
        Ok(())
    }

    /// The `kv_head` stride of [`KvCache::keys`] in values: `capacity · head_dim`.
    pub(crate) fn head_stride(&self) -> usize {
        self.capacity * self.head_dim
    }
}
