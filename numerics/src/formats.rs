//! The concrete small formats: `#[repr(transparent)]` newtypes over `u8`, each a thin layer
//! over one [`MiniFloat`] spec, plus the run-time [`Format`] enum that also names FP16 and
//! BF16.
//!
//! # Semantics (bit-exact with ml_dtypes 0.6.0's `astype`)
//!
//! | type | bits | E | M | bias | max | min normal | min subnormal | inf | NaN codes | −0 | finite overflow, ±inf | NaN input |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | [`F8E4M3FN`] | 8 | 4 | 3 | 7 | 448 | 2⁻⁶ | 2⁻⁹ | no | 0x7F, 0xFF | yes | NaN (sign kept) | NaN (sign kept) |
//! | [`F8E5M2`] | 8 | 5 | 2 | 15 | 57344 | 2⁻¹⁴ | 2⁻¹⁶ | ±inf 0x7C/0xFC | 0x7D–0x7F, 0xFD–0xFF | yes | ±inf | NaN 0x7E/0xFE |
//! | [`F8E4M3FNUZ`] | 8 | 4 | 3 | 8 | 240 | 2⁻⁷ | 2⁻¹⁰ | no | 0x80 only | no | NaN 0x80 | NaN 0x80 |
//! | [`F8E5M2FNUZ`] | 8 | 5 | 2 | 16 | 57344 | 2⁻¹⁵ | 2⁻¹⁷ | no | 0x80 only | no | NaN 0x80 | NaN 0x80 |
//! | [`F8E8M0FNU`] | 8 | 8 | 0 | 127 | 2¹²⁷ | 2⁻¹²⁷ | — | no | 0xFF | no zero | NaN 0xFF | NaN 0xFF |
//! | [`F6E2M3FN`] | 6 | 2 | 3 | 1 | 7.5 | 1 | 0.125 | no | none | yes | ±7.5 (saturate) | −0 for +NaN, +0 for −NaN |
//! | [`F6E3M2FN`] | 6 | 3 | 2 | 3 | 28 | 0.25 | 0.0625 | no | none | yes | ±28 (saturate) | −0 for +NaN, +0 for −NaN |
//! | [`F4E2M1FN`] | 4 | 2 | 1 | 1 | 6 | 1 | 0.5 | no | none | yes | ±6 (saturate) | −0 for +NaN, +0 for −NaN |
//!
//! Common rules:
//! - Rounding is to nearest, ties to even, with subnormals kept; a value overflows exactly
//!   when that rounding with an unbounded exponent would pass the largest finite value
//!   (so 464 → 448 but 464.0001 → NaN in E4M3FN, and 61440 → inf in E5M2, because the
//!   tie goes to the even code, which is the next binade).
//! - Results that round to zero keep the input's sign, except in the FNUZ formats (no −0).
//! - 4- and 6-bit codes live in the low bits of the `u8`; [`F6E2M3FN::from_bits`] and
//!   friends mask the high bits off.
//! - `from_f32_saturating` clamps finite overflow and ±inf to ±MAX (CUDA `satfinite`,
//!   Transformer Engine, PyTorch); NaN stays NaN where the format has one (for the 4/6-bit
//!   formats it maps as `from_f32` does).
//! - E8M0 (the MX scale) is unsigned and has no zero: NaN, ±inf, ±0 and negative inputs give
//!   0xFF; positive values below 2⁻¹²⁷ give 0x00 (no underflow); otherwise the significand
//!   is compared with 1.5 and ties round up (0.75 → 1, 1.5 → 2, 3 → 4); an `f32` subnormal
//!   above 2⁻¹²⁷ gives 2⁻¹²⁶ (ml_dtypes rounds that range in units of 2⁻¹²⁶); values that
//!   round past 2¹²⁷ give NaN (saturating: 2¹²⁷).
//! - NaN payloads are not specified: a NaN input gives a NaN with the input's sign where the
//!   format has a signed NaN.
//!
//! The constants follow `f32`'s conventions: `MAX`, `MIN` (= −MAX; the smallest value for the
//! unsigned E8M0), `MIN_POSITIVE` (smallest positive *normal*), `EPSILON` (next value above 1
//! minus 1), and `NAN`/`INFINITY`/`NEG_INFINITY` where the format has them.
//!
//! Sources: OCP 8-bit Floating Point Specification (OFP8) rev 1.0; OCP Microscaling Formats
//! (MX) v1.0, §5.3 (element formats) and §5.4 (E8M0); ml_dtypes 0.6.0 for FNUZ and for the
//! casts of values the specs leave open (NaN into the 4/6-bit formats).

use crate::minifloat::{MiniFloat, Special};
use crate::{Error, Result};

macro_rules! minifloat_type {
    (
        $(#[$doc:meta])*
        $name:ident, $spec:expr, signed: $signed:tt, nan: $nan:tt, inf: $inf:tt
    ) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name(u8);

        impl $name {
            /// The format definition driving this type.
            pub const SPEC: MiniFloat = $spec;
            /// Largest finite value.
            pub const MAX: Self = Self(Self::SPEC.max_code() as u8);
            /// Smallest positive normal value.
            pub const MIN_POSITIVE: Self = Self(Self::SPEC.min_normal_code() as u8);
            /// Next representable value above 1, minus 1.
            pub const EPSILON: Self = Self(Self::SPEC.encode(Self::SPEC.epsilon()) as u8);
            /// 1.0.
            pub const ONE: Self = Self(Self::SPEC.one_code() as u8);

            /// Rounds `x` to nearest, ties to even, with this format's overflow rule (the
            /// plain cast of ml_dtypes 0.6.0; see the module table).
            #[inline]
            pub const fn from_f32(x: f32) -> Self {
                Self(Self::SPEC.encode(x) as u8)
            }

            /// Like [`Self::from_f32`], but finite overflow and ±inf clamp to ±MAX; NaN
            /// stays NaN where the format has one.
            #[inline]
            pub const fn from_f32_saturating(x: f32) -> Self {
                Self(Self::SPEC.encode_saturating(x) as u8)
            }

            /// Stochastic rounding with caller-supplied random bits (see
            /// [`MiniFloat::encode_stochastic`]).
            #[inline]
            pub const fn from_f32_stochastic(x: f32, random_bits: u32) -> Self {
                Self(Self::SPEC.encode_stochastic(x, random_bits) as u8)
            }

            /// The exact value of this code.
            #[inline]
            pub fn to_f32(self) -> f32 {
                DECODE_TABLES.get(Format::$name)[self.0 as usize]
            }

            /// The code with these bits (masked to the format's width).
            #[inline]
            pub const fn from_bits(bits: u8) -> Self {
                Self(bits & Self::SPEC.code_mask() as u8)
            }

            /// The raw code.
            #[inline]
            pub const fn to_bits(self) -> u8 {
                self.0
            }

            /// Whether this is a NaN code.
            #[inline]
            pub const fn is_nan(self) -> bool {
                Self::SPEC.is_nan_code(self.0 as u16)
            }

            /// Whether this is ±infinity.
            #[inline]
            pub const fn is_infinite(self) -> bool {
                Self::SPEC.is_inf_code(self.0 as u16)
            }

            /// Whether this is neither NaN nor infinite.
            #[inline]
            pub const fn is_finite(self) -> bool {
                !self.is_nan() && !self.is_infinite()
            }

            minifloat_type!(@signed $signed);
            minifloat_type!(@nan $nan);
            minifloat_type!(@inf $inf);
        }

        impl PartialEq for $name {
            /// IEEE semantics: NaN is unequal to everything, +0 == −0.
            fn eq(&self, other: &Self) -> bool {
                #[allow(clippy::float_cmp)] // IEEE equality is the point here
                let eq = self.to_f32() == other.to_f32();
                eq
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
                self.to_f32().partial_cmp(&other.to_f32())
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({:#04x} = {:?})", stringify!($name), self.0, self.to_f32())
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.to_f32(), f)
            }
        }

        impl From<$name> for f32 {
            fn from(x: $name) -> f32 {
                x.to_f32()
            }
        }
    };
    (@signed true) => {
        /// Most negative finite value (−MAX).
        pub const MIN: Self = Self((Self::SPEC.max_code() | Self::SPEC.sign_bit()) as u8);
        /// Positive zero.
        pub const ZERO: Self = Self(0);
    };
    (@signed false) => {
        /// Smallest value (the format is unsigned and has no zero).
        pub const MIN: Self = Self(0);
    };
    (@nan true) => {
        /// The canonical NaN.
        pub const NAN: Self = Self(match Self::SPEC.nan_code() {
            Some(c) => c as u8,
            None => unreachable!(),
        });
    };
    (@nan false) => {};
    (@inf true) => {
        /// Positive infinity.
        pub const INFINITY: Self = Self(match Self::SPEC.inf_code() {
            Some(c) => c as u8,
            None => unreachable!(),
        });
        /// Negative infinity.
        pub const NEG_INFINITY: Self =
            Self(Self::INFINITY.0 | Self::SPEC.sign_bit() as u8);
    };
    (@inf false) => {};
}

minifloat_type!(
    /// OCP FP8 E4M3 ("FN": finite + NaN, no infinities): max 448, NaN 0x7F/0xFF.
    F8E4M3FN, MiniFloat::new_const(4, 3, 7, Special::FiniteNan), signed: true, nan: true, inf: false
);
minifloat_type!(
    /// OCP FP8 E5M2 (IEEE-style): max 57344, ±inf, NaN.
    F8E5M2, MiniFloat::new_const(5, 2, 15, Special::Ieee), signed: true, nan: true, inf: true
);
minifloat_type!(
    /// FP8 E4M3 "FNUZ" (Graphcore/AMD): bias 8, max 240, single NaN 0x80, no −0.
    F8E4M3FNUZ, MiniFloat::new_const(4, 3, 8, Special::Fnuz), signed: true, nan: true, inf: false
);
minifloat_type!(
    /// FP8 E5M2 "FNUZ" (Graphcore/AMD): bias 16, max 57344, single NaN 0x80, no −0.
    F8E5M2FNUZ, MiniFloat::new_const(5, 2, 16, Special::Fnuz), signed: true, nan: true, inf: false
);
minifloat_type!(
    /// OCP MX E8M0 scale: unsigned power of two `2^(code − 127)`, no zero, NaN 0xFF.
    F8E8M0FNU, MiniFloat::new_const(8, 0, 127, Special::UnsignedScale), signed: false, nan: true, inf: false
);
minifloat_type!(
    /// OCP MX FP6 E2M3: max 7.5, no inf/NaN (saturates); code in the low 6 bits.
    F6E2M3FN, MiniFloat::new_const(2, 3, 1, Special::Finite), signed: true, nan: false, inf: false
);
minifloat_type!(
    /// OCP MX FP6 E3M2: max 28, no inf/NaN (saturates); code in the low 6 bits.
    F6E3M2FN, MiniFloat::new_const(3, 2, 3, Special::Finite), signed: true, nan: false, inf: false
);
minifloat_type!(
    /// OCP MX FP4 E2M1: values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, no inf/NaN (saturates); code in
    /// the low 4 bits.
    F4E2M1FN, MiniFloat::new_const(2, 1, 1, Special::Finite), signed: true, nan: false, inf: false
);

/// Every number format of this crate, by name, for run-time selection (tables, CLIs, files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Format {
    /// IEEE binary16 (`half::f16`).
    F16,
    /// bfloat16 (`half::bf16`).
    BF16,
    /// [`F8E4M3FN`].
    F8E4M3FN,
    /// [`F8E5M2`].
    F8E5M2,
    /// [`F8E4M3FNUZ`].
    F8E4M3FNUZ,
    /// [`F8E5M2FNUZ`].
    F8E5M2FNUZ,
    /// [`F8E8M0FNU`].
    F8E8M0FNU,
    /// [`F6E2M3FN`].
    F6E2M3FN,
    /// [`F6E3M2FN`].
    F6E3M2FN,
    /// [`F4E2M1FN`].
    F4E2M1FN,
}

impl Format {
    /// All formats, widest first.
    pub const ALL: [Format; 10] = [
        Format::F16,
        Format::BF16,
        Format::F8E4M3FN,
        Format::F8E5M2,
        Format::F8E4M3FNUZ,
        Format::F8E5M2FNUZ,
        Format::F8E8M0FNU,
        Format::F6E2M3FN,
        Format::F6E3M2FN,
        Format::F4E2M1FN,
    ];

    /// The engine spec of this format. FP16 is E5M10 bias 15 and BF16 E8M7 bias 127, both
    /// IEEE-style; the tests check the engine against `half` on them.
    pub const fn spec(self) -> MiniFloat {
        match self {
            Format::F16 => MiniFloat::new_const(5, 10, 15, Special::Ieee),
            Format::BF16 => MiniFloat::new_const(8, 7, 127, Special::Ieee),
            Format::F8E4M3FN => F8E4M3FN::SPEC,
            Format::F8E5M2 => F8E5M2::SPEC,
            Format::F8E4M3FNUZ => F8E4M3FNUZ::SPEC,
            Format::F8E5M2FNUZ => F8E5M2FNUZ::SPEC,
            Format::F8E8M0FNU => F8E8M0FNU::SPEC,
            Format::F6E2M3FN => F6E2M3FN::SPEC,
            Format::F6E3M2FN => F6E3M2FN::SPEC,
            Format::F4E2M1FN => F4E2M1FN::SPEC,
        }
    }

    /// The lower-case name used on command lines and in tables (`f8e4m3fn`, `bf16`, …),
    /// which matches ml_dtypes' type names without the `float` prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Format::F16 => "f16",
            Format::BF16 => "bf16",
            Format::F8E4M3FN => "f8e4m3fn",
            Format::F8E5M2 => "f8e5m2",
            Format::F8E4M3FNUZ => "f8e4m3fnuz",
            Format::F8E5M2FNUZ => "f8e5m2fnuz",
            Format::F8E8M0FNU => "f8e8m0fnu",
            Format::F6E2M3FN => "f6e2m3fn",
            Format::F6E3M2FN => "f6e3m2fn",
            Format::F4E2M1FN => "f4e2m1fn",
        }
    }

    /// Storage bits per element.
    pub const fn bits(self) -> u32 {
        self.spec().bits()
    }

    /// Encodes `x` with this format's plain cast and returns the code (low bits).
    ///
    /// For FP16/BF16 this is `half`'s conversion; for the rest, the engine's.
    pub fn encode(self, x: f32) -> u16 {
        match self {
            Format::F16 => half::f16::from_f32(x).to_bits(),
            Format::BF16 => half::bf16::from_f32(x).to_bits(),
            _ => self.spec().encode(x),
        }
    }

    /// Decodes a code of this format exactly.
    pub fn decode(self, code: u16) -> f32 {
        match self {
            Format::F16 => half::f16::from_bits(code).to_f32(),
            Format::BF16 => half::bf16::from_bits(code).to_f32(),
            _ => self.spec().decode(code),
        }
    }
}

impl core::fmt::Display for Format {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Format {
    type Err = Error;

    /// Parses a name from [`Format::name`], case-insensitively; `float8_e4m3fn`-style
    /// ml_dtypes names and `fp16`/`half`/`bfloat16` are accepted too.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "");
        let key = match lower.as_str() {
            "fp16" | "half" | "float16" => "f16".to_string(),
            "bfloat16" => "bf16".to_string(),
            _ => match lower.strip_prefix("float") {
                Some(rest) => format!("f{rest}"),
                None => lower,
            },
        };
        Format::ALL
            .into_iter()
            .find(|f| f.name() == key)
            .ok_or_else(|| Error::UnknownName {
                what: "format",
                name: s.to_string(),
                expected: Format::ALL.map(|f| f.name()).join(", "),
            })
    }
}

/// Decode tables for the formats of at most 8 bits, built at compile time from the engine.
pub(crate) struct DecodeTables {
    tables: [[f32; 256]; 8],
}

impl DecodeTables {
    /// The 256-entry table of an 8-bit-or-smaller format (4/6-bit formats repeat every
    /// 16/64 entries, as their codes are masked).
    ///
    /// # Panics
    ///
    /// For FP16/BF16, which have no table.
    #[inline]
    pub(crate) fn get(&self, format: Format) -> &[f32; 256] {
        let i = match format {
            Format::F8E4M3FN => 0,
            Format::F8E5M2 => 1,
            Format::F8E4M3FNUZ => 2,
            Format::F8E5M2FNUZ => 3,
            Format::F8E8M0FNU => 4,
            Format::F6E2M3FN => 5,
            Format::F6E3M2FN => 6,
            Format::F4E2M1FN => 7,
            Format::F16 | Format::BF16 => panic!("no decode table for 16-bit formats"),
        };
        &self.tables[i]
    }
}

const fn build_table(spec: MiniFloat) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = spec.decode(i as u16);
        i += 1;
    }
    t
}

/// The decode tables of the eight small formats.
pub(crate) static DECODE_TABLES: DecodeTables = DecodeTables {
    tables: [
        build_table(F8E4M3FN::SPEC),
        build_table(F8E5M2::SPEC),
        build_table(F8E4M3FNUZ::SPEC),
        build_table(F8E5M2FNUZ::SPEC),
        build_table(F8E8M0FNU::SPEC),
        build_table(F6E2M3FN::SPEC),
        build_table(F6E3M2FN::SPEC),
        build_table(F4E2M1FN::SPEC),
    ],
};
