//! Uniform integer quantizers: 2 to 8 bits, symmetric or affine, per tensor, per channel
//! (any axis) or per group along the last (reduction) axis.
//!
//! Every element is stored as an unsigned code `u` of `b` bits with a scale `s` and a zero
//! point `z` for its group, and decodes to `s · (u − z)`:
//!
//! - **Symmetric** (restricted range, as in Jacob et al. 2018 and PyTorch's
//!   `qint8` with `quant_min = −127`): `z = 2^(b−1)`, `s = amax / (2^(b−1) − 1)`,
//!   `u = z + clamp(round(x / s), −(2^(b−1) − 1), 2^(b−1) − 1)`, so codes lie in
//!   `[1, 2^b − 1]` and the grid is symmetric about an exact zero. The zero point is
//!   implicit: it is not stored.
//! - **Asymmetric (affine)**: the range `[lo, hi] = [min(x_min, 0), max(x_max, 0)]` always
//!   contains zero, `s = (hi − lo) / (2^b − 1)`, `z = clamp(round(−lo / s), 0, 2^b − 1)` is an
//!   integer, so zero is exactly representable (`s · (z − z) = 0`), and
//!   `u = clamp(round(x / s) + z, 0, 2^b − 1)`. Zero points are stored, one byte each.
//!
//! Rounding is to nearest, ties to even (`f32::round_ties_even` of `x / s`, a correctly
//! rounded division). A group whose values are all zero gets `s = 0` and decodes to zeros.
//!
//! Scales are stored as `f32`, `f16` (nearest) or `E8M0` (rounded *up* to a power of two, so
//! no value leaves the range). The codes are computed with the stored scale, so what is
//! decoded is exactly what was chosen. A value can still land past the first or last code
//! when a rounded scale shrank the range (or by floating-point rounding at the ends of the
//! affine range); it is then clamped, and clamped elements are counted
//! ([`UniformTensor::clipped`]): nothing is clamped silently.
//!
//! Codes are bit-packed with [`crate::pack`] (4-bit: element `2i` in the low nibble of byte
//! `i`). [`UniformTensor::storage_bytes`] counts exactly the packed codes, the stored scales
//! and the stored zero points.
//!
//! References: Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
//! Integer-Arithmetic-Only Inference"; Nagel et al. 2021, "A White Paper on Neural Network
//! Quantization" (§2: uniform affine quantization, granularity).

use std::sync::OnceLock;

use half::f16;

use crate::pack;
use crate::{Error, Result};

/// Which elements share a scale (and zero point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per index along `axis` (axis 0 of a `[rows, cols]` weight = per output
    /// channel).
    PerChannel {
        /// The channel axis.
        axis: usize,
    },
    /// One scale per `group` consecutive elements along the last (reduction) axis, which
    /// must be a multiple of `group`.
    PerGroup {
        /// Elements per group.
        group: usize,
    },
}

/// How scales are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScaleStorage {
    /// 32-bit float.
    #[default]
    F32,
    /// IEEE half, rounded to nearest.
    F16,
    /// OCP E8M0 power of two, rounded up.
    E8M0,
}

impl ScaleStorage {
    /// Bits per stored scale.
    pub const fn bits(self) -> u32 {
        match self {
            ScaleStorage::F32 => 32,
            ScaleStorage::F16 => 16,
            ScaleStorage::E8M0 => 8,
        }
    }

    /// The stored value of a non-negative finite scale, or `None` if it is not representable
    /// without losing the tensor (overflow, or a non-zero scale that would become zero).
    pub fn round(self, s: f32) -> Option<f32> {
        let r = match self {
            ScaleStorage::F32 => s,
            ScaleStorage::F16 => f16::from_f32(s).to_f32(),
            ScaleStorage::E8M0 => {
                if s == 0.0 {
                    0.0
                } else {
                    ceil_pow2(s)
                }
            }
        };
        (r.is_finite() && (r > 0.0 || s == 0.0)).then_some(r)
    }
}

/// The smallest power of two `≥ s` for a positive finite `s` (in the E8M0 range).
fn ceil_pow2(s: f32) -> f32 {
    let bits = s.to_bits();
    let exp = (bits >> 23) as i32;
    let man = bits & 0x007F_FFFF;
    let e = if exp == 0 {
        // subnormal: value = man · 2^-149
        let p = 31 - man.leading_zeros() as i32; // floor(log2(man))
        let floor = p - 149;
        if man.is_power_of_two() {
            floor
        } else {
            floor + 1
        }
    } else if man == 0 {
        exp - 127
    } else {
        exp - 126
    };
    let e = e.clamp(-127, 127);
    if e >= -126 {
        f32::from_bits(((e + 127) as u32) << 23)
    } else {
        f32::from_bits(1 << (e + 149))
    }
}

/// `t` rounded to the nearest integer, ties to even, for `|t| < 2^22` (here `|x / s|` is at
/// most `2^b` plus a scale-rounding sliver): adding and subtracting `1.5 · 2^23` rounds in one
/// exact IEEE step, where `f32::round_ties_even` is a libm call on baseline x86-64. The sign
/// of a zero result is lost, which no caller observes (a zero point is added next).
#[inline]
fn round_ties_even_small(t: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    debug_assert!(t.abs() < 4_194_304.0, "round_ties_even_small({t})");
    (t + MAGIC) - MAGIC
}

/// A uniform quantizer's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UniformSpec {
    bits: u32,
    symmetric: bool,
    granularity: Granularity,
    scale_storage: ScaleStorage,
}

impl UniformSpec {
    /// A quantizer of `bits` bits (2 to 8).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for bits outside 2..=8 or a group size of 0.
    pub fn new(bits: u32, symmetric: bool, granularity: Granularity) -> Result<Self> {
        if !(2..=8).contains(&bits) {
            return Err(Error::InvalidParameter {
                op: "UniformSpec::new",
                name: "bits",
                value: bits.to_string(),
                reason: "must be in 2..=8",
            });
        }
        if let Granularity::PerGroup { group: 0 } = granularity {
            return Err(Error::InvalidParameter {
                op: "UniformSpec::new",
                name: "group",
                value: "0".into(),
                reason: "must be positive",
            });
        }
        Ok(UniformSpec {
            bits,
            symmetric,
            granularity,
            scale_storage: ScaleStorage::F32,
        })
    }

    /// The same quantizer with scales stored as `storage`.
    pub fn with_scale_storage(mut self, storage: ScaleStorage) -> Self {
        self.scale_storage = storage;
        self
    }

    /// Bits per code.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Whether the quantizer is symmetric.
    pub fn symmetric(&self) -> bool {
        self.symmetric
    }

    /// Scale granularity.
    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// Scale storage.
    pub fn scale_storage(&self) -> ScaleStorage {
        self.scale_storage
    }

    /// Largest code, `2^b − 1`.
    pub fn max_code(&self) -> u32 {
        (1 << self.bits) - 1
    }

    /// Smallest code (1 for symmetric: the restricted range).
    pub fn min_code(&self) -> u32 {
        u32::from(self.symmetric)
    }

    /// The implicit zero point of the symmetric quantizer, `2^(b−1)`.
    pub fn symmetric_zero(&self) -> u32 {
        1 << (self.bits - 1)
    }

    /// Scale and zero point for a group with the given extremes, before storage rounding.
    fn raw_params(&self, min: f32, max: f32) -> (f32, u32) {
        if self.symmetric {
            let amax = min.abs().max(max.abs());
            let s = amax / (self.symmetric_zero() - 1) as f32;
            (s, self.symmetric_zero())
        } else {
            let lo = min.min(0.0);
            let hi = max.max(0.0);
            ((hi - lo) / self.max_code() as f32, 0)
        }
    }
}

/// A tensor quantized with a [`UniformSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct UniformTensor {
    spec: UniformSpec,
    shape: Vec<usize>,
    packed: Vec<u8>,
    scales: Vec<f32>,
    zeros: Vec<u8>,
    clipped: usize,
    /// The implicit zero points of a symmetric tensor, materialized on first use by the
    /// kernels (not part of the stored format, so not counted in `storage_bytes`).
    implicit_zeros: OnceLock<Vec<u8>>,
}

/// How flat element indices map to scale groups for a shape and granularity.
#[derive(Clone, Copy, Debug)]
struct GroupMap {
    granularity: Granularity,
    /// Product of the dimensions after the channel axis (per channel), or the last
    /// dimension (per group).
    inner: usize,
    /// Size of the channel axis (per channel), or groups per row (per group).
    count: usize,
    group: usize,
}

impl GroupMap {
    fn new(shape: &[usize], granularity: Granularity) -> Result<(GroupMap, usize)> {
        let n: usize = shape.iter().product();
        match granularity {
            Granularity::PerTensor => Ok((
                GroupMap {
                    granularity,
                    inner: 1,
                    count: 1,
                    group: 1,
                },
                1,
            )),
            Granularity::PerChannel { axis } => {
                if axis >= shape.len() {
                    return Err(Error::InvalidParameter {
                        op: "uniform::quantize",
                        name: "axis",
                        value: axis.to_string(),
                        reason: "must be less than the number of dimensions",
                    });
                }
                let inner: usize = shape[axis + 1..].iter().product();
                Ok((
                    GroupMap {
                        granularity,
                        inner,
                        count: shape[axis],
                        group: 1,
                    },
                    shape[axis],
                ))
            }
            Granularity::PerGroup { group } => {
                let last = *shape.last().unwrap_or(&0);
                if !last.is_multiple_of(group) {
                    return Err(Error::ShapeMismatch {
                        op: "uniform::quantize (the last axis must be a multiple of the group)",
                        expected: vec![group],
                        got: shape.to_vec(),
                    });
                }
                let per_row = last / group;
                Ok((
                    GroupMap {
                        granularity,
                        inner: last,
                        count: per_row,
                        group,
                    },
                    n / group,
                ))
            }
        }
    }

    /// Length of the contiguous runs of elements that share a group (row-major), and the
    /// group of run `k`: the whole tensor, `inner` elements per channel index, or one group.
    fn run_len(&self, n: usize) -> usize {
        match self.granularity {
            Granularity::PerTensor => n.max(1),
            Granularity::PerChannel { .. } => self.inner.max(1),
            Granularity::PerGroup { .. } => self.group,
        }
    }

    #[inline]
    fn group_of_run(&self, k: usize) -> usize {
        match self.granularity {
            Granularity::PerTensor => 0,
            Granularity::PerChannel { .. } => k % self.count,
            Granularity::PerGroup { .. } => k,
        }
    }

    #[inline]
    fn group_of(&self, i: usize) -> usize {
        match self.granularity {
            Granularity::PerTensor => 0,
            Granularity::PerChannel { .. } => (i / self.inner) % self.count,
            Granularity::PerGroup { .. } => i / self.group,
        }
    }
}

/// Quantizes `x`, laid out row-major with `shape`.
///
/// ```
/// use quant::uniform::{quantize, Granularity, UniformSpec};
/// # fn main() -> Result<(), quant::Error> {
/// let w = [0.5f32, -1.0, 0.25, 0.0, 2.0, -0.5, 1.0, 0.125];
/// let spec = UniformSpec::new(4, false, Granularity::PerGroup { group: 4 })?;
/// let q = quantize(&w, &[2, 4], spec)?;
/// let back = q.dequantize();
/// assert_eq!(back[3], 0.0); // zero is exact
/// assert!(w.iter().zip(&back).all(|(a, b)| (a - b).abs() <= q.scales()[0].max(q.scales()[1]) / 2.0));
/// assert_eq!(q.storage_bytes(), 4 + 2 * 4 + 2); // codes + f32 scales + zero points
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// - [`Error::ShapeMismatch`] if `x.len()` is not the product of `shape`, or the last axis is
///   not a multiple of the group size.
/// - [`Error::InvalidParameter`] for a channel axis outside the shape.
/// - [`Error::NonFinite`] for a NaN or infinite input (naming the first).
/// - [`Error::Unsupported`] if a scale is not representable in the chosen storage (e.g. an
///   `f16` scale above 65504, or one that would round to zero).
pub fn quantize(x: &[f32], shape: &[usize], spec: UniformSpec) -> Result<UniformTensor> {
    let n: usize = shape.iter().product();
    if n != x.len() {
        return Err(Error::ShapeMismatch {
            op: "uniform::quantize",
            expected: shape.to_vec(),
            got: vec![x.len()],
        });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            op: "uniform::quantize",
            index,
            value: x[index],
        });
    }
    let (map, n_groups) = GroupMap::new(shape, spec.granularity)?;
    let mut min = vec![f32::INFINITY; n_groups];
    let mut max = vec![f32::NEG_INFINITY; n_groups];
    let run = map.run_len(n);
    for (k, chunk) in x.chunks(run).enumerate() {
        let g = map.group_of_run(k);
        for &v in chunk {
            min[g] = min[g].min(v);
            max[g] = max[g].max(v);
        }
    }
    let mut scales = Vec::with_capacity(n_groups);
    let mut zeros = Vec::with_capacity(n_groups);
    for g in 0..n_groups {
        let (lo, hi) = if min[g] > max[g] {
            (0.0, 0.0)
        } else {
            (min[g], max[g])
        };
        let (s, z_sym) = spec.raw_params(lo, hi);
        let stored = spec
            .scale_storage
            .round(s)
            .ok_or_else(|| Error::Unsupported {
                op: "uniform::quantize",
                what: format!(
                    "scale {s:e} of group {g} in {:?} storage",
                    spec.scale_storage
                ),
            })?;
        let z = if spec.symmetric {
            z_sym
        } else if stored == 0.0 {
            0
        } else {
            ((-lo.min(0.0) / stored).round_ties_even() as i64).clamp(0, spec.max_code() as i64)
                as u32
        };
        scales.push(stored);
        zeros.push(z as u8);
    }
    let mut codes = vec![0u8; n];
    let mut clipped = 0;
    let (umin, umax) = (spec.min_code() as f32, spec.max_code() as f32);
    for (k, (chunk, out)) in x.chunks(run).zip(codes.chunks_mut(run)).enumerate() {
        let g = map.group_of_run(k);
        let s = scales[g];
        let z = zeros[g] as f32;
        for (&v, c) in chunk.iter().zip(out.iter_mut()) {
            let u = if s == 0.0 {
                z
            } else {
                round_ties_even_small(v / s) + z
            };
            if u < umin || u > umax {
                clipped += 1;
            }
            *c = u.clamp(umin, umax) as u8;
        }
    }
    let packed = pack::pack(&codes, spec.bits);
    if spec.symmetric {
        zeros.clear(); // implicit
    }
    Ok(UniformTensor {
        spec,
        shape: shape.to_vec(),
        packed,
        scales,
        zeros,
        clipped,
        implicit_zeros: OnceLock::new(),
    })
}

impl UniformTensor {
    /// The quantizer.
    pub fn spec(&self) -> UniformSpec {
        self.spec
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Packed codes (see [`crate::pack`]).
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// Stored scales (already rounded to the storage format), one per group.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Stored zero points, one per group (empty for symmetric quantizers, whose zero point
    /// is the implicit [`UniformSpec::symmetric_zero`]).
    pub fn zero_points(&self) -> &[u8] {
        &self.zeros
    }

    /// One zero point per group, for kernels that want them all: the stored ones, or for a
    /// symmetric tensor the implicit `2^(b−1)` repeated (built once, on first call; this copy
    /// is not part of [`UniformTensor::storage_bytes`]).
    pub fn zero_points_per_group(&self) -> &[u8] {
        if self.spec.symmetric {
            self.implicit_zeros
                .get_or_init(|| vec![self.spec.symmetric_zero() as u8; self.scales.len()])
        } else {
            &self.zeros
        }
    }

    /// Zero point of group `g`.
    pub fn zero_point(&self, g: usize) -> u8 {
        if self.spec.symmetric {
            self.spec.symmetric_zero() as u8
        } else {
            self.zeros[g]
        }
    }

    /// How many elements were clamped to the first or last code (see the module docs).
    pub fn clipped(&self) -> usize {
        self.clipped
    }

    /// Exact storage: packed codes, stored scales, stored zero points.
    pub fn storage_bytes(&self) -> usize {
        self.packed.len()
            + self.scales.len() * self.spec.scale_storage.bits() as usize / 8
            + self.zeros.len()
    }

    /// Storage bits per element, scales and zero points included.
    pub fn bits_per_weight(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.storage_bytes() as f64 * 8.0 / self.len() as f64
    }

    /// Decodes into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `out` is not the tensor's length.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.len() {
            return self.dequantize_range_into(0, out);
        }
        let (map, _) = GroupMap::new(&self.shape, self.spec.granularity)?;
        let codes = pack::unpack(&self.packed, self.spec.bits, out.len());
        let run = map.run_len(out.len());
        for (k, (chunk, cs)) in out.chunks_mut(run).zip(codes.chunks(run)).enumerate() {
            let g = map.group_of_run(k);
            let (s, z) = (self.scales[g], self.zero_point(g) as f32);
            for (o, &c) in chunk.iter_mut().zip(cs) {
                *o = s * (c as f32 - z);
            }
        }
        Ok(())
    }

    /// Decodes elements `start..start + out.len()` (row-major) into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the range leaves the tensor.
    pub fn dequantize_range_into(&self, start: usize, out: &mut [f32]) -> Result<()> {
        if start + out.len() > self.len() {
            return Err(Error::ShapeMismatch {
                op: "UniformTensor::dequantize_range_into",
                expected: vec![self.len()],
                got: vec![start, out.len()],
            });
        }
        let (map, _) = GroupMap::new(&self.shape, self.spec.granularity)?;
        for (k, o) in out.iter_mut().enumerate() {
            let i = start + k;
            let g = map.group_of(i);
            let u = pack::get(&self.packed, self.spec.bits, i) as f32;
            *o = self.scales[g] * (u - self.zero_point(g) as f32);
        }
        Ok(())
    }

    /// Decodes into a new vector.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        self.dequantize_into(&mut out)
            .expect("output has the tensor's length");
        out
    }

    /// The unpacked code of every element.
    pub fn codes(&self) -> Vec<u8> {
        pack::unpack(&self.packed, self.spec.bits, self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numerics::testing::rng;
    use proptest::prelude::*;

    fn all_granularities(cols: usize) -> Vec<Granularity> {
        let mut v = vec![
            Granularity::PerTensor,
            Granularity::PerChannel { axis: 0 },
            Granularity::PerChannel { axis: 1 },
        ];
        for g in [1, 2, 4, 8, 16, 32] {
            if cols.is_multiple_of(g) {
                v.push(Granularity::PerGroup { group: g });
            }
        }
        v
    }

    /// The per-element error bound: half a step inside the grid, plus the distance by which
    /// `x / s + z` lies beyond the first or last code (clamping).
    fn check_bound(x: &[f32], q: &UniformTensor) {
        let (map, _) = GroupMap::new(q.shape(), q.spec().granularity()).unwrap();
        let y = q.dequantize();
        let (umin, umax) = (q.spec().min_code() as f64, q.spec().max_code() as f64);
        for i in 0..x.len() {
            let g = map.group_of(i);
            let s = q.scales()[g] as f64;
            let t = if s == 0.0 {
                0.0
            } else {
                x[i] as f64 / s + q.zero_point(g) as f64
            };
            let beyond = (umin - t).max(t - umax).max(0.0);
            let bound = s / 2.0 + s * beyond;
            let err = (x[i] as f64 - y[i] as f64).abs();
            assert!(
                err <= bound * (1.0 + 1e-6) + 1e-30,
                "{:?} elem {i}: x {} y {} s {s}",
                q.spec(),
                x[i],
                y[i]
            );
        }
    }

    #[test]
    fn every_bit_width_and_granularity_meets_the_half_step_bound() {
        let mut r = rng::seeded(3);
        let (rows, cols) = (6, 64);
        let x = rng::normal_vec(&mut r, rows * cols);
        for bits in 2..=8 {
            for symmetric in [true, false] {
                for g in all_granularities(cols) {
                    for storage in [ScaleStorage::F32, ScaleStorage::E8M0] {
                        let spec = UniformSpec::new(bits, symmetric, g)
                            .unwrap()
                            .with_scale_storage(storage);
                        let q = quantize(&x, &[rows, cols], spec).unwrap();
                        if symmetric {
                            assert_eq!(q.clipped(), 0, "{spec:?}");
                        }
                        check_bound(&x, &q);
                    }
                }
            }
        }
    }

    #[test]
    fn small_rounding_matches_round_ties_even() {
        for i in -40_000..40_000 {
            let t = i as f32 / 64.0;
            assert_eq!(
                round_ties_even_small(t).to_bits() & 0x7FFF_FFFF,
                t.round_ties_even().to_bits() & 0x7FFF_FFFF,
                "{t}"
            );
        }
        for t in [0.5f32, 1.5, 2.5, -0.5, -1.5, 254.5, 255.49999, 4_194_303.5] {
            assert_eq!(
                round_ties_even_small(t).abs().to_bits(),
                t.round_ties_even().abs().to_bits(),
                "{t}"
            );
        }
    }

    #[test]
    fn full_and_range_dequantization_agree_bit_for_bit() {
        let mut r = rng::seeded(9);
        let x = rng::normal_vec(&mut r, 3 * 4 * 8);
        for g in [
            Granularity::PerTensor,
            Granularity::PerChannel { axis: 0 },
            Granularity::PerChannel { axis: 1 },
            Granularity::PerChannel { axis: 2 },
            Granularity::PerGroup { group: 4 },
        ] {
            for bits in [2, 3, 4, 8] {
                let spec = UniformSpec::new(bits, bits.is_multiple_of(2), g).unwrap();
                let q = quantize(&x, &[3, 4, 8], spec).unwrap();
                let full = q.dequantize();
                let mut ranged = vec![0.0f32; x.len()];
                for (k, chunk) in ranged.chunks_mut(5).enumerate() {
                    q.dequantize_range_into(k * 5, chunk).unwrap();
                }
                let same = full
                    .iter()
                    .zip(&ranged)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{spec:?}");
            }
        }
    }

    #[test]
    fn zero_is_exact_and_zero_groups_decode_to_zero() {
        let x = [0.0f32, 1.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for bits in 2..=8 {
            for symmetric in [true, false] {
                let spec =
                    UniformSpec::new(bits, symmetric, Granularity::PerGroup { group: 4 }).unwrap();
                let q = quantize(&x, &[8], spec).unwrap();
                let y = q.dequantize();
                assert_eq!(y[0].to_bits(), 0, "{spec:?}");
                assert!(y[4..].iter().all(|v| *v == 0.0), "{spec:?}");
                assert_eq!(q.scales()[1].to_bits(), 0);
            }
        }
    }

    #[test]
    fn symmetric_codes_use_the_restricted_range() {
        let x = [-7.0f32, 7.0, 3.5, -2.5];
        let spec = UniformSpec::new(4, true, Granularity::PerTensor).unwrap();
        let q = quantize(&x, &[4], spec).unwrap();
        assert_eq!(q.codes(), [1, 15, 8 + 4, 8 - 2]); // s = 1: ties 3.5 → 4, −2.5 → −2
        assert!(q.zero_points().is_empty());
        assert_eq!(q.storage_bytes(), 2 + 4);
    }

    #[test]
    fn ties_round_to_even() {
        // Per-tensor asymmetric over [0, 15] with 4 bits: s = 1, so x.5 ties.
        let x = [0.0f32, 15.0, 2.5, 3.5, 4.5];
        let spec = UniformSpec::new(4, false, Granularity::PerTensor).unwrap();
        let q = quantize(&x, &[5], spec).unwrap();
        assert_eq!(q.codes(), [0, 15, 2, 4, 4]);
    }

    #[test]
    fn f16_scales_clip_and_report_or_refuse() {
        let x = [1e-9f32, -1e-9];
        let spec = UniformSpec::new(8, true, Granularity::PerTensor)
            .unwrap()
            .with_scale_storage(ScaleStorage::F16);
        let err = quantize(&x, &[2], spec).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        let big = [1e7f32, 3.0];
        assert!(quantize(&big, &[2], spec).is_err(), "f16 scale overflow");
        // The stored scale is the f16 value, and codes are computed with it.
        let x = [1.0f32, 0.3];
        let q = quantize(&x, &[2], spec).unwrap();
        let s = q.scales()[0];
        assert_eq!(s.to_bits(), f16::from_f32(1.0 / 127.0).to_f32().to_bits());
        assert_eq!(
            q.codes()[1] as i32 - 128,
            (0.3f32 / s).round_ties_even() as i32
        );
        assert_eq!(q.storage_bytes(), 2 + 2);
    }

    #[test]
    fn e8m0_scales_are_powers_of_two_rounded_up() {
        assert_eq!(ceil_pow2(0.75).to_bits(), 1.0f32.to_bits());
        assert_eq!(ceil_pow2(1.0).to_bits(), 1.0f32.to_bits());
        assert_eq!(ceil_pow2(1.0001).to_bits(), 2.0f32.to_bits());
        // Below E8M0's smallest value, 2^-127, the scale clamps up to it.
        assert_eq!(ceil_pow2(f32::from_bits(3)).to_bits(), 0x0040_0000);
        assert_eq!(
            ceil_pow2(f32::from_bits(0x0050_0000)).to_bits(),
            0x0080_0000
        );
    }

    #[test]
    fn user_errors_are_typed() {
        let spec = UniformSpec::new(4, true, Granularity::PerGroup { group: 32 }).unwrap();
        assert!(matches!(
            quantize(&[0.0; 40], &[40], spec),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            quantize(&[0.0; 40], &[2, 32], spec),
            Err(Error::ShapeMismatch { .. })
        ));
        let mut x = vec![0.0f32; 64];
        x[7] = f32::NAN;
        assert!(matches!(
            quantize(&x, &[64], spec),
            Err(Error::NonFinite { index: 7, .. })
        ));
        assert!(UniformSpec::new(1, true, Granularity::PerTensor).is_err());
        assert!(UniformSpec::new(9, true, Granularity::PerTensor).is_err());
        assert!(UniformSpec::new(4, true, Granularity::PerGroup { group: 0 }).is_err());
        let ch = UniformSpec::new(4, true, Granularity::PerChannel { axis: 2 }).unwrap();
        assert!(quantize(&[0.0; 4], &[2, 2], ch).is_err());
    }

    #[test]
    fn per_channel_on_axis_1_groups_columns() {
        // Column 1 is 100× larger than column 0: per-column scales keep column 0 precise.
        let x = [0.01f32, 1.0, -0.02, -2.0, 0.03, 3.0];
        let spec = UniformSpec::new(8, true, Granularity::PerChannel { axis: 1 }).unwrap();
        let q = quantize(&x, &[3, 2], spec).unwrap();
        assert_eq!(q.scales().len(), 2);
        let y = q.dequantize();
        assert!((y[0] - 0.01).abs() < 0.03 / 254.0 + 1e-9);
    }

    proptest! {
        #[test]
        fn quantize_is_idempotent_and_within_bound(
            bits in 2u32..=8,
            symmetric: bool,
            rows in 1usize..5,
            groups in 1usize..4,
            group_pow in 0u32..4,
            seed: u64,
            scale_exp in -20i32..20,
        ) {
            let group = 1usize << group_pow;
            let cols = group * groups;
            let mut r = rng::seeded(seed);
            let x: Vec<f32> = rng::normal_vec(&mut r, rows * cols)
                .into_iter()
                .map(|v| v * 2f32.powi(scale_exp))
                .collect();
            for g in [Granularity::PerTensor, Granularity::PerChannel { axis: 0 }, Granularity::PerGroup { group }] {
                let spec = UniformSpec::new(bits, symmetric, g).unwrap();
                let q = quantize(&x, &[rows, cols], spec).unwrap();
                check_bound(&x, &q);
                let y = q.dequantize();
                let q2 = quantize(&y, &[rows, cols], spec).unwrap();
                prop_assert_eq!(q2.codes(), q.codes(), "{:?}", spec);
            }
        }
    }
}
