//! Per-vector codecs and the growable arenas ("planes") that hold one component (K or V) of
//! a cache.
//!
//! A plane stores `slots` tokens; slot `s`, head `h` is vector `r = s · n_heads + h`, whose
//! codes occupy `[r · cpv, (r + 1) · cpv)` of the code arena (`cpv` codes per vector) and
//! whose parameters occupy `[r · ppv, (r + 1) · ppv)` of the `f32` parameter arena.

use std::sync::LazyLock;

use half::f16;
use half::slice::HalfFloatSliceExt;
use numerics::{F8E4M3FN, Par, encode_slice_saturating};

use super::{KvLayout, KvPrecision};
use crate::Result;
use crate::pack::pack_into;

/// E4M3FN's largest finite value: a vector's largest magnitude is mapped onto it.
pub(super) const FP8_MAX: f32 = 448.0;

/// `decode(c) / 448` for every E4M3FN code `c`: an FP8 vector decodes to `amax · table[c]`,
/// so the code of ±448 decodes to exactly `±amax`.
static FP8_UNIT: LazyLock<[f32; 256]> =
    LazyLock::new(|| core::array::from_fn(|c| F8E4M3FN::from_bits(c as u8).to_f32() / FP8_MAX));

/// The code arena of a plane; the variant fixes the precision.
#[derive(Clone)]
enum Codes {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Fp8(Vec<F8E4M3FN>),
    /// One byte per element.
    Int8(Vec<u8>),
    /// Two elements per byte, each vector padded to whole bytes (`pack` layout).
    Int4(Vec<u8>),
}

/// Reusable buffers for encoding one token.
#[derive(Clone, Default)]
pub(super) struct Scratch {
    f: Vec<f32>,
    b: Vec<u8>,
}

/// One component (K or V) of a cache at one precision: a code arena and a parameter arena,
/// both token-major and grown in place.
#[derive(Clone)]
pub(super) struct Plane {
    codes: Codes,
    params: Vec<f32>,
}

impl Plane {
    /// An empty plane.
    pub(super) fn new(precision: KvPrecision) -> Self {
        let codes = match precision {
            KvPrecision::F32 => Codes::F32(Vec::new()),
            KvPrecision::F16 => Codes::F16(Vec::new()),
            KvPrecision::Fp8E4M3 => Codes::Fp8(Vec::new()),
            KvPrecision::Int8 => Codes::Int8(Vec::new()),
            KvPrecision::Int4 => Codes::Int4(Vec::new()),
        };
        Self {
            codes,
            params: Vec::new(),
        }
    }

    fn precision(&self) -> KvPrecision {
        match self.codes {
            Codes::F32(_) => KvPrecision::F32,
            Codes::F16(_) => KvPrecision::F16,
            Codes::Fp8(_) => KvPrecision::Fp8E4M3,
            Codes::Int8(_) => KvPrecision::Int8,
            Codes::Int4(_) => KvPrecision::Int4,
        }
    }

    /// Codes and parameters per token.
    fn per_token(&self, layout: KvLayout) -> (usize, usize) {
        let p = self.precision();
        (
            layout.n_heads() * p.codes_per_vector(layout.head_dim()),
            layout.n_heads() * p.params_per_vector(),
        )
    }

    /// Grows (with zero codes) or shrinks the plane to `slots` tokens.
    pub(super) fn resize(&mut self, layout: KvLayout, slots: usize) {
        let (c, p) = self.per_token(layout);
        match &mut self.codes {
            Codes::F32(v) => v.resize(slots * c, 0.0),
            Codes::F16(v) => v.resize(slots * c, f16::ZERO),
            Codes::Fp8(v) => v.resize(slots * c, F8E4M3FN::ZERO),
            Codes::Int8(v) | Codes::Int4(v) => v.resize(slots * c, 0),
        }
        self.params.resize(slots * p, 0.0);
    }

    /// Reserves room for `additional` more tokens.
    pub(super) fn reserve(&mut self, layout: KvLayout, additional: usize) {
        let (c, p) = self.per_token(layout);
        let c = additional.saturating_mul(c);
        match &mut self.codes {
            Codes::F32(v) => v.reserve(c),
            Codes::F16(v) => v.reserve(c),
            Codes::Fp8(v) => v.reserve(c),
            Codes::Int8(v) | Codes::Int4(v) => v.reserve(c),
        }
        self.params.reserve(additional.saturating_mul(p));
    }

    /// Encodes the token `x` (`n_heads · head_dim` finite values, head-major) into `slot`,
    /// which must exist.
    pub(super) fn write(
        &mut self,
        layout: KvLayout,
        slot: usize,
        x: &[f32],
        scratch: &mut Scratch,
    ) -> Result<()> {
        let hd = layout.head_dim();
        let (c, p) = self.per_token(layout);
        let params = &mut self.params[slot * p..(slot + 1) * p];
        match &mut self.codes {
            Codes::F32(v) => v[slot * c..(slot + 1) * c].copy_from_slice(x),
            Codes::F16(v) => {
                encode_slice_saturating(x, &mut v[slot * c..(slot + 1) * c], Par::Seq)?
            }
            Codes::Fp8(v) => {
                scratch.f.resize(x.len(), 0.0);
                for ((xs, ys), amax) in x
                    .chunks_exact(hd)
                    .zip(scratch.f.chunks_exact_mut(hd))
                    .zip(params.iter_mut())
                {
                    *amax = fp8_scale_into(xs, ys);
                }
                encode_slice_saturating(&scratch.f, &mut v[slot * c..(slot + 1) * c], Par::Seq)?;
            }
            Codes::Int8(v) => {
                for ((xs, cs), sm) in x
                    .chunks_exact(hd)
                    .zip(v[slot * c..(slot + 1) * c].chunks_exact_mut(hd))
                    .zip(params.chunks_exact_mut(2))
                {
                    let (s, m) = int_quantize(xs, 255, cs);
                    sm.copy_from_slice(&[s, m]);
                }
            }
            Codes::Int4(v) => {
                scratch.b.resize(hd, 0);
                let cpv = c / layout.n_heads();
                for ((xs, packed), sm) in x
                    .chunks_exact(hd)
                    .zip(v[slot * c..(slot + 1) * c].chunks_exact_mut(cpv))
                    .zip(params.chunks_exact_mut(2))
                {
                    let (s, m) = int_quantize(xs, 15, &mut scratch.b);
                    pack_into(&scratch.b, 4, packed);
                    sm.copy_from_slice(&[s, m]);
                }
            }
        }
        Ok(())
    }

    /// Decodes head `head` of slot `slot` into `out` (`head_dim` values).
    pub(super) fn read(&self, layout: KvLayout, slot: usize, head: usize, out: &mut [f32]) {
        let r = slot * layout.n_heads() + head;
        let p = self.precision();
        let cpv = p.codes_per_vector(layout.head_dim());
        let ppv = p.params_per_vector();
        let params = &self.params[r * ppv..(r + 1) * ppv];
        let codes = r * cpv..(r + 1) * cpv;
        match &self.codes {
            Codes::F32(v) => out.copy_from_slice(&v[codes]),
            Codes::F16(v) => v[codes].convert_to_f32_slice(out),
            Codes::Fp8(v) => {
                let amax = params[0];
                let table = &*FP8_UNIT;
                for (o, c) in out.iter_mut().zip(&v[codes]) {
                    *o = amax * table[usize::from(c.to_bits())];
                }
            }
            Codes::Int8(v) => int_dequantize::<8>(&v[codes], params[0], params[1], out),
            Codes::Int4(v) => int_dequantize::<4>(&v[codes], params[0], params[1], out),
        }
    }

    /// Copies token `src_slot` of `src` (same precision and layout) into `dst_slot`, bit for
    /// bit.
    pub(super) fn copy_slot(
        &mut self,
        layout: KvLayout,
        dst_slot: usize,
        src: &Plane,
        src_slot: usize,
    ) {
        let (c, p) = self.per_token(layout);
        let (d, s) = (
            dst_slot * c..(dst_slot + 1) * c,
            src_slot * c..(src_slot + 1) * c,
        );
        match (&mut self.codes, &src.codes) {
            (Codes::F32(a), Codes::F32(b)) => a[d].copy_from_slice(&b[s]),
            (Codes::F16(a), Codes::F16(b)) => a[d].copy_from_slice(&b[s]),
            (Codes::Fp8(a), Codes::Fp8(b)) => a[d].copy_from_slice(&b[s]),
            (Codes::Int8(a), Codes::Int8(b)) | (Codes::Int4(a), Codes::Int4(b)) => {
                a[d].copy_from_slice(&b[s]);
            }
            _ => unreachable!("copy_slot between planes of different precisions"),
        }
        self.params[dst_slot * p..(dst_slot + 1) * p]
            .copy_from_slice(&src.params[src_slot * p..(src_slot + 1) * p]);
    }

    /// The raw int4 code arena (tests check its nibble order).
    #[cfg(test)]
    pub(super) fn int4_codes(&self) -> Option<&[u8]> {
        match &self.codes {
            Codes::Int4(v) => Some(v),
            _ => None,
        }
    }

    /// The parameter arena (tests read the stored scales).
    #[cfg(test)]
    pub(super) fn params(&self) -> &[f32] {
        &self.params
    }
}

/// Writes `xs / amax · 448` into `ys` (computed in `f64`, one rounding to `f32`) and returns
/// `amax = max |x|`. An all-zero vector is copied unchanged (keeping the signs of its zeros)
/// and gets `amax = 0`.
fn fp8_scale_into(xs: &[f32], ys: &mut [f32]) -> f32 {
    let amax = xs.iter().fold(0.0f32, |a, &x| a.max(x.abs()));
    if amax > 0.0 {
        let k = f64::from(FP8_MAX) / f64::from(amax);
        for (y, &x) in ys.iter_mut().zip(xs) {
            // |x| ≤ amax, so the product lies in [-448, 448]: no overflow for any amax.
            *y = (f64::from(x) * k) as f32;
        }
    } else {
        ys.copy_from_slice(xs);
    }
    amax
}

/// Asymmetric quantization of one vector onto `levels + 1` codes: returns `(scale, min)` and
/// writes `codes[i] = clamp(round_ties_even((x_i − min) / scale), 0, levels)`.
///
/// `scale = (max − min) / levels`, computed in `f64` and rounded *up* to `f32` (so at
/// least the least positive subnormal). A constant vector gets `scale = 0` and all-zero
/// codes.
pub(super) fn int_quantize(xs: &[f32], levels: u8, codes: &mut [u8]) -> (f32, f32) {
    let (lo, hi) = xs
        .iter()
        .fold((xs[0], xs[0]), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let range = f64::from(hi) - f64::from(lo);
    if range <= 0.0 {
        codes.fill(0);
        return (0.0, lo);
    }
    let exact = range / f64::from(levels);
    let mut s = exact as f32;
    if f64::from(s) < exact {
        // Round up, so that the grid `min + s · [0, L]` covers `[min, max]`: with a scale
        // rounded down, `max` would lie past the last code by up to `L` rounding errors of
        // `s`, which for a subnormal `s` is far more than `s / 2`.
        s = s.next_up();
    }
    let inv = 1.0 / f64::from(s);
    let (lo64, top) = (f64::from(lo), f64::from(levels));
    for (c, &x) in codes.iter_mut().zip(xs) {
        *c = ((f64::from(x) - lo64) * inv)
            .round_ties_even()
            .clamp(0.0, top) as u8;
    }
    (s, lo)
}

/// Decodes `BITS`-bit codes (8, or 4 packed two to a byte) to `min + scale · code`.
///
/// The sum is evaluated in `f32` when `min + scale · levels` is finite in `f32` (then, by
/// monotone rounding, every code's is); otherwise in `f64`, clamped to `±f32::MAX`.
#[inline]
fn int_dequantize<const BITS: u32>(codes: &[u8], s: f32, m: f32, out: &mut [f32]) {
    if s <= 0.0 {
        out.fill(m);
        return;
    }
    let levels = ((1u32 << BITS) - 1) as f32;
    if (m + s * levels).is_finite() {
        decode_codes::<BITS>(codes, out, |c| m + s * f32::from(c));
    } else {
        let (m, s) = (f64::from(m), f64::from(s));
        let max = f64::from(f32::MAX);
        decode_codes::<BITS>(codes, out, |c| {
            (m + s * f64::from(c)).clamp(-max, max) as f32
        });
    }
}

/// Applies `f` to each code of a vector: bytes for 8 bits; for 4 bits, element `2i` is the
/// low nibble of byte `i` and element `2i + 1` the high one (the [`crate::pack`] layout).
#[inline(always)]
fn decode_codes<const BITS: u32>(codes: &[u8], out: &mut [f32], f: impl Fn(u8) -> f32) {
    if BITS == 8 {
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = f(c);
        }
    } else {
        let mut pairs = out.chunks_exact_mut(2);
        for (pair, &b) in (&mut pairs).zip(codes) {
            pair[0] = f(b & 0x0F);
            pair[1] = f(b >> 4);
        }
        if let [last] = pairs.into_remainder() {
            *last = f(codes[codes.len() - 1] & 0x0F);
        }
    }
}
