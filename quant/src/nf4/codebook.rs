//! The two 4-bit code tables and the decision trees that pick a code.
//!
//! Both tables are listed in *code order* (index = the 4-bit code), exactly as bitsandbytes
//! stores them, and both encoders are the comparison trees of its CUDA kernel
//! (`dQuantizeNF4`, `dQuantizeFP4`), written here as "count the thresholds below `y`", which
//! is the same function: the trees are binary search trees over sorted thresholds, every
//! comparison is a strict `y > t`, and an input that fails every comparison (including NaN)
//! lands on the leftmost leaf.

/// The NF4 (4-bit NormalFloat) values, indexed by code: bitsandbytes' `get_4bit_type("nf4")`
/// in `bitsandbytes/functional.py` and `nf4_dequantization_lut` in `csrc/kernels.cu`.
///
/// The literals are copied digit for digit from both sources (they agree; parsed straight to
/// `f32` as the CUDA compiler does, or through `f64` as Python does, they give the same
/// sixteen `f32` values). Sorted ascending, code 7 is the exact zero, codes 0 and 15 are
/// `−1` and `+1`; the table is asymmetric (8 positive values, 7 negative), as in QLoRA §3.
#[allow(clippy::excessive_precision)] // verbatim transcription of the source literals
pub const CODEBOOK: [f32; 16] = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
];

/// The decision thresholds of bitsandbytes' `dQuantizeNF4`, ascending: a normalized value
/// `y` gets code `k` = the number of thresholds `t` with `y > t`.
///
/// Threshold `k` sits between codes `k` and `k + 1` and is their midpoint rounded to `f32`
/// (within half an ulp). The comparison is strict, so a value *equal* to a threshold takes
/// the lower code. Parsed straight to `f32` (as the CUDA compiler parses `0.86…f`); four
/// of them (`k` = 0, 8, 12, 14) would come out one ulp different if parsed through `f64`.
#[allow(clippy::excessive_precision)] // verbatim transcription of the source literals
pub const NF4_THRESHOLDS: [f32; 15] = [
    -0.8480964004993439,
    -0.6106329262256622,
    -0.4599952697753906,
    -0.33967943489551544,
    -0.23460740596055984,
    -0.13791173323988914,
    -0.045525018125772476,
    0.03979014977812767,
    0.1202552504837513,
    0.2035212516784668,
    0.2920137718319893,
    0.3893125355243683,
    0.5016634166240692,
    0.6427869200706482,
    0.8614784181118011,
];

/// bitsandbytes' FP4 values (E2M1 with exponent bias 3 and one subnormal, scaled so the
/// largest magnitude is 1), indexed by code: bit 3 is the sign, bits 2–0 the magnitude.
///
/// `get_4bit_type("fp4")` lists `[0, 0.0625, 8, 12, 4, 6, 2, 3]` and their negatives and
/// divides by 12; `fp4_dequantization_lut` in `csrc/kernels.cu` holds the quotients as `f32`
/// literals, which equal the `f32` divisions. Note the code order is *not* sorted by value:
/// `0b010` and `0b011` are the two largest magnitudes (8/12 and 12/12). Code `0b1000` is
/// `−0.0`.
#[allow(clippy::excessive_precision)] // verbatim transcription of the source literals
pub const FP4_CODEBOOK: [f32; 16] = [
    0.0,
    0.005208333333,
    0.66666667,
    1.0,
    0.33333333,
    0.5,
    0.16666667,
    0.25,
    -0.0,
    -0.005208333333,
    -0.66666667,
    -1.0,
    -0.33333333,
    -0.5,
    -0.16666667,
    -0.25,
];

/// The magnitude thresholds of bitsandbytes' `dQuantizeFP4`, ascending (the midpoints of
/// adjacent FP4 magnitudes, as the source writes them: `0.583333` has fewer digits than
/// the others, which moves it 3·10⁻⁷ below 7/12).
///
/// The tree takes the sign from `y < 0` (so `−0.0` is positive), then compares `|y|`
/// strictly; [`FP4_MAGNITUDE_CODES`] maps the count of thresholds below `|y|` to the
/// magnitude bits.
#[allow(clippy::excessive_precision)] // verbatim transcription of the source literals
pub const FP4_THRESHOLDS: [f32; 7] = [
    0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333,
];

/// FP4 magnitude bits in ascending order of magnitude: entry `r` is the code (without the
/// sign bit) of the `r`-th smallest magnitude, `0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1`.
pub const FP4_MAGNITUDE_CODES: [u8; 8] = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];

/// Which 4-bit code table a tensor uses (bitsandbytes' `quant_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Codebook4 {
    /// NormalFloat4 ([`CODEBOOK`]), QLoRA's data type for normally distributed weights.
    #[default]
    Nf4,
    /// bitsandbytes' 4-bit float ([`FP4_CODEBOOK`]).
    Fp4,
}

impl Codebook4 {
    /// bitsandbytes' name for the type (`quant_type`): `"nf4"` or `"fp4"`.
    pub const fn name(self) -> &'static str {
        match self {
            Codebook4::Nf4 => "nf4",
            Codebook4::Fp4 => "fp4",
        }
    }

    /// The sixteen values, indexed by code.
    pub const fn values(self) -> &'static [f32; 16] {
        match self {
            Codebook4::Nf4 => &CODEBOOK,
            Codebook4::Fp4 => &FP4_CODEBOOK,
        }
    }

    /// The code of `+0.0`: 7 for NF4, 0 for FP4. Zero blocks and the pad element of an
    /// odd-length tensor get this code.
    pub const fn zero_code(self) -> u8 {
        match self {
            Codebook4::Nf4 => 7,
            Codebook4::Fp4 => 0,
        }
    }

    /// The value of `code` (only its low four bits are read).
    #[inline]
    pub fn decode(self, code: u8) -> f32 {
        self.values()[usize::from(code & 0x0F)]
    }

    /// The code bitsandbytes' CUDA kernel picks for a normalized value `y` (nominally in
    /// `[−1, 1]`; anything outside saturates to the end codes): `dQuantizeNF4` /
    /// `dQuantizeFP4`. Ties go to the lower code (NF4) or the smaller magnitude (FP4), see
    /// [`NF4_THRESHOLDS`] and [`FP4_THRESHOLDS`]. NaN gives code 0, as in the kernel.
    #[inline]
    pub fn encode(self, y: f32) -> u8 {
        match self {
            Codebook4::Nf4 => count_below(&NF4_THRESHOLDS, y),
            Codebook4::Fp4 => {
                let sign = if y < 0.0 { 0b1000 } else { 0 };
                FP4_MAGNITUDE_CODES[usize::from(count_below(&FP4_THRESHOLDS, y.abs()))] | sign
            }
        }
    }

    /// The error budget per unit of block absmax: the largest `|y − decode(encode(y))|` over
    /// `y ∈ [−1, 1]`, i.e. half the widest gap between neighbouring values as the
    /// thresholds actually split it (NF4: `1 − 0.84810` ≈ 0.15190, between −1 and −0.69619;
    /// FP4: `1 − 0.83333` ≈ 0.16667, between 2/3 and 1). Computed in `f64` from the tables.
    pub fn max_normalized_error(self) -> f64 {
        // Sorted values and the thresholds between them.
        let (values, thresholds): (Vec<f64>, Vec<f64>) = match self {
            Codebook4::Nf4 => (
                CODEBOOK.iter().map(|&v| f64::from(v)).collect(),
                NF4_THRESHOLDS.iter().map(|&t| f64::from(t)).collect(),
            ),
            Codebook4::Fp4 => (
                FP4_MAGNITUDE_CODES
                    .iter()
                    .map(|&c| f64::from(FP4_CODEBOOK[usize::from(c)]))
                    .collect(),
                FP4_THRESHOLDS.iter().map(|&t| f64::from(t)).collect(),
            ),
        };
        let lowest = if self == Codebook4::Nf4 { -1.0 } else { 0.0 };
        let mut worst: f64 = 0.0;
        for (k, &v) in values.iter().enumerate() {
            let below = if k == 0 { lowest } else { thresholds[k - 1] };
            let above = thresholds.get(k).copied().unwrap_or(1.0);
            worst = worst.max(v - below).max(above - v);
        }
        worst
    }
}

/// How many of the ascending `thresholds` lie strictly below `y` (0 for NaN).
#[inline]
fn count_below(thresholds: &[f32], y: f32) -> u8 {
    thresholds.iter().map(|&t| u8::from(y > t)).sum()
}
