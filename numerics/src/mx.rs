//! OCP Microscaling (MX) block formats: blocks of 32 elements sharing one E8M0 scale.
//!
//! Formats (OCP MX v1.0, §5 and §6): MXFP8 (E4M3, E5M2), MXFP6 (E2M3, E3M2), MXFP4 (E2M1)
//! and MXINT8 (8-bit two's complement with an implicit scale of 2⁻⁶).
//!
//! Quantization of one block `V` (spec §6.3):
//! 1. `shared_exp = floor(log2(max |V_i|)) − emax_elem`, where `emax_elem` is the exponent
//!    of the element format's largest power of two (E4M3: 8, E5M2: 15, E2M3: 2, E3M2: 4,
//!    E2M1: 2, INT8: 0), clamped to the E8M0 range [−127, 127]. An all-zero block takes the
//!    smallest scale, 2⁻¹²⁷ (code 0x00), and all-zero elements.
//! 2. `X = 2^shared_exp` (exact in E8M0).
//! 3. `P_i = round(V_i / X)` to the element format, round to nearest even, **saturating** to
//!    ±max normal (the quotient can exceed the element's max by almost 2×, e.g. up to 511.9
//!    for E4M3, whose max is 448: the spec clamps). The number of saturated elements is
//!    reported by [`MxTensor::saturated`], so nothing is clamped silently. MXINT8 rounds
//!    `V_i / X · 64` to nearest even and clamps to ±127 (−128 is never produced, as in the
//!    MX reference library; it decodes to −2 if found).
//!
//! Non-finite inputs: by default ([`NonFinite::Error`]) a NaN or ±inf is an error naming its
//! index. With [`NonFinite::Propagate`], a block holding NaN or ±inf gets the NaN scale
//! (0xFF), and, as the spec defines for a NaN scale, every element of that block decodes to
//! NaN.
//!
//! A trailing partial block (when the length is not a multiple of 32) is quantized the same
//! way over the elements it has.
//!
//! Reference: OCP Microscaling Formats (MX) Specification v1.0 (2023); Rouhani et al. 2023,
//! "Microscaling Data Formats for Deep Learning", arXiv:2310.10537.

use rayon::prelude::*;

use crate::arch::{self, Isa};
use crate::formats::{
    DECODE_TABLES, F4E2M1FN, F6E2M3FN, F6E3M2FN, F8E4M3FN, F8E5M2, F8E8M0FNU, Format,
};
use crate::minifloat::MiniFloat;
use crate::{Error, Par, Result};

/// Elements per MX block (the spec's `k`).
pub const BLOCK_SIZE: usize = 32;

/// An OCP MX block format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MxFormat {
    /// MXFP8 with E4M3 elements.
    Fp8E4M3,
    /// MXFP8 with E5M2 elements.
    Fp8E5M2,
    /// MXFP6 with E2M3 elements.
    Fp6E2M3,
    /// MXFP6 with E3M2 elements.
    Fp6E3M2,
    /// MXFP4 with E2M1 elements.
    Fp4E2M1,
    /// MXINT8: two's complement 8-bit elements with an implicit 2⁻⁶ scale.
    Int8,
}

/// What block quantizers do with NaN and ±inf inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NonFinite {
    /// Refuse: return [`Error::NonFinite`] with the index of the first offending value.
    #[default]
    Error,
    /// Follow the format: the block gets a NaN scale and decodes to NaN throughout.
    Propagate,
}

impl MxFormat {
    /// Every MX format.
    pub const ALL: [MxFormat; 6] = [
        MxFormat::Fp8E4M3,
        MxFormat::Fp8E5M2,
        MxFormat::Fp6E2M3,
        MxFormat::Fp6E3M2,
        MxFormat::Fp4E2M1,
        MxFormat::Int8,
    ];

    /// Lower-case name (`mxfp8_e4m3`, …, `mxint8`).
    pub const fn name(self) -> &'static str {
        match self {
            MxFormat::Fp8E4M3 => "mxfp8_e4m3",
            MxFormat::Fp8E5M2 => "mxfp8_e5m2",
            MxFormat::Fp6E2M3 => "mxfp6_e2m3",
            MxFormat::Fp6E3M2 => "mxfp6_e3m2",
            MxFormat::Fp4E2M1 => "mxfp4_e2m1",
            MxFormat::Int8 => "mxint8",
        }
    }

    /// The element's minifloat format (`None` for MXINT8).
    pub const fn element_format(self) -> Option<Format> {
        match self {
            MxFormat::Fp8E4M3 => Some(Format::F8E4M3FN),
            MxFormat::Fp8E5M2 => Some(Format::F8E5M2),
            MxFormat::Fp6E2M3 => Some(Format::F6E2M3FN),
            MxFormat::Fp6E3M2 => Some(Format::F6E3M2FN),
            MxFormat::Fp4E2M1 => Some(Format::F4E2M1FN),
            MxFormat::Int8 => None,
        }
    }

    const fn element_spec(self) -> Option<MiniFloat> {
        match self {
            MxFormat::Fp8E4M3 => Some(F8E4M3FN::SPEC),
            MxFormat::Fp8E5M2 => Some(F8E5M2::SPEC),
            MxFormat::Fp6E2M3 => Some(F6E2M3FN::SPEC),
            MxFormat::Fp6E3M2 => Some(F6E3M2FN::SPEC),
            MxFormat::Fp4E2M1 => Some(F4E2M1FN::SPEC),
            MxFormat::Int8 => None,
        }
    }

    /// Bits per element, without the scale.
    pub const fn element_bits(self) -> u32 {
        match self.element_spec() {
            Some(s) => s.bits(),
            None => 8,
        }
    }

    /// Storage bits per element including the shared 8-bit scale: `element_bits + 8/32`.
    pub fn bits_per_element(self) -> f64 {
        self.element_bits() as f64 + 8.0 / BLOCK_SIZE as f64
    }

    /// `emax_elem`: the exponent of the element format's largest power of two.
    pub const fn emax_elem(self) -> i32 {
        match self.element_spec() {
            Some(s) => {
                let max_exp_field = (s.max_code() >> s.mantissa_bits()) as i32;
                max_exp_field - s.bias()
            }
            None => 0,
        }
    }

    /// The largest element magnitude (448 for E4M3, 127/64 for INT8).
    pub const fn element_max(self) -> f32 {
        match self.element_spec() {
            Some(s) => s.max_finite(),
            None => 127.0 / 64.0,
        }
    }

    /// Worst-case relative error of one element inside the normal range: half an ulp of the
    /// element format (`2^-(M+1)`; INT8 has no relative bound, its absolute step is
    /// `X / 64`, reported here as the relative error at the block's maximum, 2⁻⁷).
    pub fn element_relative_error_bound(self) -> f64 {
        match self.element_spec() {
            Some(s) => 2f64.powi(-(s.mantissa_bits() as i32 + 1)),
            None => 2f64.powi(-7),
        }
    }
}

impl core::fmt::Display for MxFormat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for MxFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        MxFormat::ALL
            .into_iter()
            .find(|f| f.name() == key)
            .ok_or_else(|| Error::UnknownName {
                what: "MX format",
                name: s.to_string(),
                expected: MxFormat::ALL.map(|f| f.name()).join(", "),
            })
    }
}

/// A tensor quantized to an MX format: one E8M0 scale per block of [`BLOCK_SIZE`] elements
/// and one code per element (4- and 6-bit codes in the low bits of a byte; MXINT8 codes are
/// `i8` bit patterns).
#[derive(Clone, Debug, PartialEq)]
pub struct MxTensor {
    format: MxFormat,
    scales: Vec<F8E8M0FNU>,
    codes: Vec<u8>,
    saturated: usize,
}

impl MxTensor {
    /// The block format.
    pub fn format(&self) -> MxFormat {
        self.format
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// One scale per block.
    pub fn scales(&self) -> &[F8E8M0FNU] {
        &self.scales
    }

    /// One code per element.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// How many elements were clamped to the element format's ±max.
    pub fn saturated(&self) -> usize {
        self.saturated
    }

    /// Storage in bits as the format defines it (packed elements plus 8 bits per block).
    pub fn storage_bits(&self) -> u64 {
        self.codes.len() as u64 * self.format.element_bits() as u64 + 8 * self.scales.len() as u64
    }

    /// Decodes into `dst`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `dst.len() != self.len()`.
    pub fn dequantize_into(&self, dst: &mut [f32], par: Par) -> Result<()> {
        if dst.len() != self.len() {
            return Err(Error::LengthMismatch {
                op: "mx::dequantize_into",
                left: self.len(),
                right: dst.len(),
            });
        }
        let per_task = par.chunk_len(self.scales.len(), 1, 1 << 11);
        let run = |(b0, (codes, out)): (usize, (&[u8], &mut [f32]))| {
            let first_block = b0 * per_task;
            for (j, (c, o)) in codes
                .chunks(BLOCK_SIZE)
                .zip(out.chunks_mut(BLOCK_SIZE))
                .enumerate()
            {
                dequantize_block(self.format, self.scales[first_block + j], c, o);
            }
        };
        let step = per_task * BLOCK_SIZE;
        if step >= self.len() {
            run((0, (&self.codes[..], dst)));
        } else {
            self.codes
                .par_chunks(step)
                .zip(dst.par_chunks_mut(step))
                .enumerate()
                .for_each(run);
        }
        Ok(())
    }

    /// Decodes into a new vector.
    pub fn dequantize(&self, par: Par) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        self.dequantize_into(&mut out, par)
            .expect("output has the tensor's length");
        out
    }
}

/// Quantizes `src` to `format`, block by block.
///
/// ```
/// use numerics::{mx, MxFormat, NonFinite, Par};
/// # fn main() -> Result<(), numerics::Error> {
/// let x: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 8.0).collect();
/// let q = mx::quantize(MxFormat::Fp8E4M3, &x, NonFinite::Error, Par::Seq)?;
/// assert_eq!(q.scales().len(), 2);
/// let y = q.dequantize(Par::Seq);
/// // Each block's amax, 3.9375, scales to 504 > 448: the spec clamps the 8 elements above
/// // 3.5 in magnitude, and says so.
/// assert_eq!(q.saturated(), 8);
/// for (a, b) in x.iter().zip(&y).filter(|(a, _)| a.abs() <= 3.5) {
///     assert!((a - b).abs() <= a.abs() / 16.0); // half an E4M3 ulp
/// }
/// assert_eq!(MxFormat::Fp4E2M1.bits_per_element(), 4.25);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::NonFinite`] under [`NonFinite::Error`] if `src` holds a NaN or ±inf.
pub fn quantize(
    format: MxFormat,
    src: &[f32],
    non_finite: NonFinite,
    par: Par,
) -> Result<MxTensor> {
    if non_finite == NonFinite::Error
        && let Some(index) = src.iter().position(|x| !x.is_finite())
    {
        return Err(Error::NonFinite {
            format: format.name(),
            index,
            value: src[index],
        });
    }
    let n_blocks = src.len().div_ceil(BLOCK_SIZE);
    let mut scales = vec![F8E8M0FNU::MIN; n_blocks];
    let mut codes = vec![0u8; src.len()];
    let isa = Isa::detect();
    let per_task = par.chunk_len(n_blocks, 1, 1 << 11);
    let step = per_task * BLOCK_SIZE;
    let run = |((s, c), sc): ((&[f32], &mut [u8]), &mut [F8E8M0FNU])| -> usize {
        let g = GROUP_BLOCKS * BLOCK_SIZE;
        s.chunks(g)
            .zip(c.chunks_mut(g))
            .zip(sc.chunks_mut(GROUP_BLOCKS))
            .map(|((s, c), scales)| quantize_group(format, s, c, scales, isa))
            .sum()
    };
    let saturated = if step >= src.len() {
        run(((src, &mut codes[..]), &mut scales[..]))
    } else {
        src.par_chunks(step)
            .zip(codes.par_chunks_mut(step))
            .zip(scales.par_chunks_mut(per_task))
            .map(run)
            .sum()
    };
    Ok(MxTensor {
        format,
        scales,
        codes,
        saturated,
    })
}

/// The shared exponent of a block with largest magnitude `amax` (finite, ≥ 0), clamped to
/// the E8M0 range.
pub fn shared_exponent(format: MxFormat, amax: f32) -> i32 {
    if amax == 0.0 {
        return -127;
    }
    let bits = amax.to_bits();
    let ef = (bits >> 23) as i32;
    let floor_log2 = if ef == 0 {
        // f32 subnormal: position of the leading one of the mantissa.
        (31 - (bits & 0x007F_FFFF).leading_zeros() as i32) - 149
    } else {
        ef - 127
    };
    (floor_log2 - format.emax_elem()).clamp(-127, 127)
}

/// Blocks quantized per call of the element encoder (amortizes the dispatch over 2048
/// elements, 8 KiB of scaled values on the stack).
const GROUP_BLOCKS: usize = 64;

/// Quantizes up to [`GROUP_BLOCKS`] consecutive blocks; returns the number of saturated
/// elements.
fn quantize_group(
    format: MxFormat,
    src: &[f32],
    dst: &mut [u8],
    scales: &mut [F8E8M0FNU],
    isa: Isa,
) -> usize {
    let mut buf = [0.0f32; GROUP_BLOCKS * BLOCK_SIZE];
    let scaled = &mut buf[..src.len()];
    for ((block, out), scale) in src
        .chunks(BLOCK_SIZE)
        .zip(scaled.chunks_mut(BLOCK_SIZE))
        .zip(scales.iter_mut())
    {
        if block.iter().any(|x| !x.is_finite()) {
            // NaN scale: the block decodes to NaN whatever its elements; they stay 0.
            *scale = F8E8M0FNU::NAN;
            out.fill(0.0);
            continue;
        }
        let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let e = shared_exponent(format, amax);
        *scale = F8E8M0FNU::from_bits((e + 127) as u8);
        // 1/X = 2^-e, exact in f32 for every e in [-127, 127] (2^-127 is subnormal).
        let inv = if e == 127 {
            f32::from_bits(0x0040_0000)
        } else {
            f32::from_bits(((127 - e) as u32) << 23)
        };
        for (t, &x) in out.iter_mut().zip(block) {
            *t = x * inv;
        }
    }
    let max = format.element_max();
    let saturated = scaled.iter().filter(|t| t.abs() > max).count();
    match format.element_spec() {
        Some(spec) => {
            let p = spec
                .lane_params(true)
                .expect("MX element formats have 8 bits or fewer");
            arch::encode_u8(isa, &p, scaled, dst);
        }
        None => {
            // |t · 64| < 2^22, so adding and subtracting 1.5 · 2^23 rounds to the nearest
            // integer, ties to even, in one exact step (no libm call on baseline x86-64).
            const ROUND: f32 = 12_582_912.0;
            for (d, &t) in dst.iter_mut().zip(scaled.iter()) {
                let r = (t * 64.0 + ROUND) - ROUND;
                *d = (r.clamp(-127.0, 127.0) as i8) as u8;
            }
        }
    }
    saturated
}

fn dequantize_block(format: MxFormat, scale: F8E8M0FNU, src: &[u8], dst: &mut [f32]) {
    if scale.is_nan() {
        dst.fill(f32::NAN);
        return;
    }
    let x = scale.to_f32();
    match format.element_format() {
        Some(f) => {
            arch::decode_u8(DECODE_TABLES.get(f), src, dst);
            for d in dst.iter_mut() {
                *d *= x;
            }
        }
        None => {
            let step = x / 64.0;
            for (d, &c) in dst.iter_mut().zip(src) {
                *d = (c as i8) as f32 * step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(format: MxFormat, x: &[f32]) -> (MxTensor, Vec<f32>) {
        let q = quantize(format, x, NonFinite::Error, Par::Seq).unwrap();
        let y = q.dequantize(Par::Seq);
        (q, y)
    }

    #[test]
    fn emax_matches_the_spec_table() {
        let got = MxFormat::ALL.map(|f| f.emax_elem());
        assert_eq!(got, [8, 15, 2, 4, 2, 0]);
        assert_eq!(
            MxFormat::ALL.map(|f| f.bits_per_element().to_bits()),
            [8.25f64, 8.25, 6.25, 6.25, 4.25, 8.25].map(f64::to_bits)
        );
    }

    #[test]
    fn mixed_magnitude_blocks_are_within_the_element_bound() {
        // Each block spans many binades; elements within the element format's normal range
        // (relative to the block scale) must meet half an ulp; smaller ones an absolute bound
        // of half the smallest subnormal step times X.
        let mut x = Vec::new();
        for b in 0..16 {
            for i in 0..BLOCK_SIZE {
                let mag = 2f32.powi((i as i32 % 13) - 6 + b - 8);
                let sign = if (i + b as usize).is_multiple_of(3) {
                    -1.0
                } else {
                    1.0
                };
                x.push(sign * mag * (1.0 + (i as f32) / 37.0));
            }
        }
        for format in MxFormat::ALL {
            let (q, y) = roundtrip(format, &x);
            for (b, block) in x.chunks(BLOCK_SIZE).enumerate() {
                let scale = q.scales()[b].to_f32() as f64;
                let (min_normal, min_step) = match format.element_spec() {
                    Some(s) => (s.min_normal() as f64, s.min_positive() as f64),
                    None => (0.0, 1.0 / 64.0),
                };
                for (i, &v) in block.iter().enumerate() {
                    let got = y[b * BLOCK_SIZE + i] as f64;
                    let v = v as f64;
                    let err = (got - v).abs();
                    let t = v.abs() / scale;
                    let bound = if t > format.element_max() as f64 {
                        // saturated: error is the excess over max
                        t * scale - format.element_max() as f64 * scale + 1e-30
                    } else if format == MxFormat::Int8 || t < min_normal {
                        min_step * scale / 2.0
                    } else {
                        v.abs() * format.element_relative_error_bound()
                    };
                    assert!(
                        err <= bound * (1.0 + 1e-12),
                        "{format} block {b} elem {i}: v {v} got {got} err {err} bound {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_block_has_smallest_scale_and_zero_elements() {
        let x = [0.0f32; 40];
        for format in MxFormat::ALL {
            let (q, y) = roundtrip(format, &x);
            assert!(q.scales().iter().all(|s| s.to_bits() == 0));
            assert!(y.iter().all(|v| v.to_bits() == 0), "{format}");
        }
    }

    #[test]
    fn non_finite_is_an_error_by_default_and_a_nan_block_when_propagated() {
        let mut x = vec![1.0f32; 70];
        x[40] = f32::INFINITY;
        x[65] = f32::NAN;
        for format in MxFormat::ALL {
            let err = quantize(format, &x, NonFinite::Error, Par::Seq).unwrap_err();
            assert!(matches!(err, Error::NonFinite { index: 40, .. }), "{err}");
            let q = quantize(format, &x, NonFinite::Propagate, Par::Seq).unwrap();
            let s: Vec<u8> = q.scales().iter().map(|s| s.to_bits()).collect();
            assert_eq!(s, [127 - format.emax_elem() as u8, 0xFF, 0xFF]);
            let y = q.dequantize(Par::Seq);
            assert!(y[..32].iter().all(|v| v.to_bits() == 1f32.to_bits()));
            assert!(y[32..].iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn saturation_is_counted() {
        // amax = 511 → shared_exp = 8 − 8 = 0, so 511 > 448 saturates in E4M3.
        let mut x = vec![1.0f32; 32];
        x[3] = 511.0;
        x[4] = -500.0;
        let (q, y) = roundtrip(MxFormat::Fp8E4M3, &x);
        assert_eq!(q.saturated(), 2);
        assert_eq!(y[3].to_bits(), 448f32.to_bits());
        assert_eq!(y[4].to_bits(), (-448f32).to_bits());
    }

    #[test]
    fn parallel_matches_sequential() {
        let x: Vec<f32> = (0..200_000)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.37)
            .collect();
        for format in MxFormat::ALL {
            let a = quantize(format, &x, NonFinite::Error, Par::Seq).unwrap();
            let b = quantize(format, &x, NonFinite::Error, Par::rayon(3)).unwrap();
            assert_eq!(a, b);
            let ya = a.dequantize(Par::Seq);
            let yb = a.dequantize(Par::rayon(3));
            assert!(ya.iter().zip(&yb).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }

    #[test]
    fn subnormal_amax_gets_the_right_exponent() {
        let tiny = f32::from_bits(0x0000_0300); // 0x300 · 2^-149 → floor(log2) = 9 − 149
        assert_eq!(shared_exponent(MxFormat::Int8, tiny), -127);
        assert_eq!(shared_exponent(MxFormat::Int8, 1.5), 0);
        assert_eq!(shared_exponent(MxFormat::Fp8E4M3, 1.0), -8);
        assert_eq!(shared_exponent(MxFormat::Fp8E5M2, f32::MAX), 127 - 15);
    }

    #[test]
    fn names_parse_back() {
        for f in MxFormat::ALL {
            assert_eq!(f.name().parse::<MxFormat>().unwrap(), f);
        }
        assert!("mxfp5".parse::<MxFormat>().is_err());
    }
}
