//! Slow, obviously-correct references for the minifloat engine, computed in `f64` straight
//! from the bit fields and the rounding definition. Used by this crate's tests and, behind
//! the `testing` feature, by downstream crates.

// Exact comparisons between exactly representable values are the point of a reference.
#![allow(clippy::float_cmp)]

use super::{MiniFloat, Special};

/// What a code means, derived directly from the bit fields of the spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefValue {
    /// A finite value (exact in `f64`).
    Finite(f64),
    /// An infinity of this sign (`true` = negative).
    Inf(bool),
    /// A NaN.
    Nan,
}

/// Decodes `code` from its sign, exponent and mantissa fields in `f64`.
pub fn decode_reference(spec: &MiniFloat, code: u16) -> RefValue {
    let e_bits = spec.exponent_bits();
    let m_bits = spec.mantissa_bits();
    let code = code as u32 & ((1u32 << spec.bits()) - 1);
    let signed = spec.special() != Special::UnsignedScale;
    let negative = signed && (code >> (e_bits + m_bits)) & 1 == 1;
    let exp = (code >> m_bits) & ((1 << e_bits) - 1);
    let man = code & ((1 << m_bits) - 1);
    let exp_all_ones = exp == (1 << e_bits) - 1;
    let man_all_ones = man == (1 << m_bits) - 1;
    let sign = if negative { -1.0 } else { 1.0 };
    match spec.special() {
        Special::Ieee if exp_all_ones => {
            return if man == 0 {
                RefValue::Inf(negative)
            } else {
                RefValue::Nan
            };
        }
        Special::FiniteNan if exp_all_ones && man_all_ones => return RefValue::Nan,
        Special::Fnuz if negative && exp == 0 && man == 0 => return RefValue::Nan,
        Special::UnsignedScale if exp_all_ones => return RefValue::Nan,
        Special::UnsignedScale => {
            return RefValue::Finite(2f64.powi(exp as i32 - spec.bias()));
        }
        _ => {}
    }
    let bias = spec.bias();
    let value = if exp == 0 {
        man as f64 * 2f64.powi(1 - bias - m_bits as i32)
    } else {
        (1.0 + man as f64 / 2f64.powi(m_bits as i32)) * 2f64.powi(exp as i32 - bias)
    };
    RefValue::Finite(sign * value)
}

/// The non-negative finite magnitude codes in increasing order of value, with their values.
fn positive_table(spec: &MiniFloat) -> Vec<(u16, f64)> {
    let mag_codes = 1u32 << (spec.exponent_bits() + spec.mantissa_bits());
    let mut t: Vec<(u16, f64)> = (0..mag_codes)
        .filter_map(|c| match decode_reference(spec, c as u16) {
            RefValue::Finite(v) if v >= 0.0 => Some((c as u16, v)),
            _ => None,
        })
        .collect();
    t.sort_by(|a, b| a.1.total_cmp(&b.1));
    t
}

/// Encodes `x` by searching the table of representable values (see [`Reference::encode`]).
/// Builds the table on every call: use [`Reference`] for many values.
pub fn encode_reference(spec: &MiniFloat, x: f32) -> u16 {
    Reference::new(spec).encode(x)
}

/// The brute-force reference encoder of one format, with its table of values built once.
#[derive(Clone, Debug)]
pub struct Reference {
    spec: MiniFloat,
    table: Vec<(u16, f64)>,
    nan_code: Option<u16>,
    inf_code: Option<u16>,
}

impl Reference {
    /// Tabulates `spec` from its bit fields.
    pub fn new(spec: &MiniFloat) -> Self {
        let sign_bit = sign_bit_of(spec);
        let all = 0..=u16::MAX >> (16 - spec.bits());
        let nan_code = all
            .clone()
            .find(|&c| {
                // The canonical quiet NaN: positive, and for IEEE the top mantissa bit set.
                let quiet =
                    spec.special() != Special::Ieee || c & (1 << (spec.mantissa_bits() - 1)) != 0;
                decode_reference(spec, c) == RefValue::Nan && c & sign_bit == 0 && quiet
            })
            .or_else(|| {
                all.clone()
                    .find(|&c| decode_reference(spec, c) == RefValue::Nan)
            });
        let inf_code = all
            .clone()
            .find(|&c| decode_reference(spec, c) == RefValue::Inf(false));
        Reference {
            spec: *spec,
            table: positive_table(spec),
            nan_code,
            inf_code,
        }
    }

    /// Encodes `x`: the nearest value, ties to the candidate whose significand is even in
    /// units of the quantum of `x`'s binade, then the convention's overflow rule (a value
    /// rounds past the largest finite value exactly when round-to-nearest-even with an
    /// unbounded exponent would take it there).
    ///
    /// The scale convention ([`Special::UnsignedScale`]) is restated from its documented rule.
    pub fn encode(&self, x: f32) -> u16 {
        let spec = &self.spec;
        let table = &self.table;
        let (nan_code, inf_code) = (self.nan_code, self.inf_code);
        let sign_bit = sign_bit_of(spec);
        let negative = x.is_sign_negative();
        let sign = if negative { sign_bit } else { 0 };
        let (max_code, max_val) = *table.last().expect("a valid spec has finite values");
        if spec.special() == Special::UnsignedScale {
            let nan = nan_code.expect("scale formats have NaN");
            if x.is_nan() || negative || x == 0.0 || x.is_infinite() {
                return nan;
            }
            let xd = x as f64;
            // Candidates 2^k <= x < 2^(k+1).
            let k = exponent(xd);
            let k_rounded = if xd < 2f64.powi(-126) {
                // f32 subnormal range, rounded in units of 2^-126 by ml_dtypes.
                if xd > 2f64.powi(-127) { -126 } else { -127 }
            } else if xd / 2f64.powi(k) >= 1.5 {
                k + 1
            } else {
                k
            };
            let code = k_rounded + spec.bias();
            return if code < 0 {
                0
            } else if code > max_code as i32 {
                nan
            } else {
                code as u16
            };
        }

        if x.is_nan() {
            return match spec.special() {
                Special::Finite => {
                    if negative {
                        0
                    } else {
                        sign_bit
                    }
                }
                Special::Fnuz => sign_bit,
                _ => nan_code.expect("format has NaN") | sign,
            };
        }
        let overflow = |sign: u16| -> u16 {
            match spec.special() {
                Special::Ieee => inf_code.expect("IEEE has inf") | sign,
                Special::FiniteNan => nan_code.expect("FN has NaN") | sign,
                Special::Fnuz => sign_bit,
                _ => max_code | sign,
            }
        };
        if x.is_infinite() {
            return overflow(sign);
        }
        let ax = (x as f64).abs();
        let emin = 1 - spec.bias();
        let m = spec.mantissa_bits() as i32;
        // Quantum of the binade holding x (or of the subnormal range).
        let exp_x = if ax == 0.0 {
            emin
        } else {
            exponent(ax).max(emin)
        };
        let quantum = 2f64.powi(exp_x - m);
        // Overflow: beyond max + half a quantum of max's binade, or at that tie with max odd.
        let max_quantum = {
            let e = exponent(max_val).max(emin);
            2f64.powi(e - m)
        };
        let limit = max_val + max_quantum / 2.0;
        let max_odd = (max_val / max_quantum) as u64 % 2 == 1;
        if ax > limit || (ax == limit && max_odd) {
            return overflow(sign);
        }
        let i = table.partition_point(|&(_, v)| v < ax);
        let code = if i < table.len() && table[i].1 == ax {
            table[i].0
        } else if i == table.len() {
            max_code
        } else {
            let (lo_c, lo_v) = table[i - 1];
            let (hi_c, hi_v) = table[i];
            let (dl, dh) = (ax - lo_v, hi_v - ax);
            if dl < dh {
                lo_c
            } else if dh < dl {
                hi_c
            } else if ((lo_v / quantum) as u64).is_multiple_of(2) {
                lo_c
            } else {
                hi_c
            }
        };
        if code == 0 && spec.special() == Special::Fnuz {
            return 0;
        }
        code | sign
    }
}

fn sign_bit_of(spec: &MiniFloat) -> u16 {
    if spec.special() == Special::UnsignedScale {
        0
    } else {
        1 << (spec.exponent_bits() + spec.mantissa_bits())
    }
}

/// `floor(log2(v))` for a positive normal `f64`, read from its exponent field (exact).
fn exponent(v: f64) -> i32 {
    ((v.to_bits() >> 52) & 0x7FF) as i32 - 1023
}
