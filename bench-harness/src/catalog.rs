//! `adaprec formats`: the parameters of every number format, and how one value encodes in
//! each. Every number shown is computed from the format definitions in `numerics`
//! ([`Format::spec`], [`MxFormat`]); nothing is typed in.

use std::fmt::Write as _;

use numerics::mx::BLOCK_SIZE;
use numerics::{Format, MiniFloat, MxFormat};

use crate::report::{Column, markdown_grid, sci3};

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// A format value for humans: integers as such, everything else in Rust's shortest
/// round-trip form, with `= 2^k` appended to powers of two that are not small integers.
pub(crate) fn show_value(x: f32) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let is_int = x.fract() == 0.0 && x.abs() < 1e16;
    let mut s = if is_int {
        format!("{x}")
    } else {
        format!("{x:?}")
    };
    if x > 0.0 {
        let k = f64::from(x).log2();
        if k.fract() == 0.0 && !(is_int && k < 17.0) {
            let _ = write!(s, " = 2^{k}");
        }
    }
    s
}

/// What the plain cast does with a value far past the largest finite one (probed, not
/// typed in).
fn overflow_rule(format: Format) -> String {
    let spec = format.spec();
    let probe = spec.max_finite() * 4.0;
    let y = format.decode(format.encode(probe));
    if y.is_nan() {
        "NaN".to_string()
    } else if y.is_infinite() {
        "inf".to_string()
    } else if y.to_bits() == spec.max_finite().to_bits() {
        "saturates".to_string()
    } else {
        show_value(y)
    }
}

fn traits(spec: &MiniFloat) -> String {
    let mut t = Vec::new();
    if !spec.is_signed() {
        t.push("unsigned");
    }
    if !spec.has_zero() {
        t.push("no zero");
    } else if !spec.has_negative_zero() {
        t.push("no -0");
    }
    if !spec.has_subnormals() {
        t.push("no subnormals");
    }
    t.join(", ")
}

/// The parameter table of `formats` (element formats).
pub(crate) fn format_table(formats: &[Format]) -> String {
    let columns = [
        Column::text("format", "format", ""),
        Column::num("bits", "bits", ""),
        Column::num("e", "E", ""),
        Column::num("m", "M", ""),
        Column::num("bias", "bias", ""),
        Column::num("max", "max", ""),
        Column::num("min_normal", "min normal", ""),
        Column::num("min_subnormal", "min subnormal", ""),
        Column::num("epsilon", "epsilon", ""),
        Column::num("range", "range (binades)", ""),
        Column::text("inf", "inf", ""),
        Column::text("nan", "NaN", ""),
        Column::text("overflow", "plain-cast overflow", ""),
        Column::text("notes", "notes", ""),
    ];
    let rows: Vec<Vec<String>> = formats
        .iter()
        .map(|&f| {
            let s = f.spec();
            vec![
                f.name().to_string(),
                f.bits().to_string(),
                s.exponent_bits().to_string(),
                s.mantissa_bits().to_string(),
                s.bias().to_string(),
                show_value(s.max_finite()),
                show_value(s.min_normal()),
                if s.has_subnormals() {
                    show_value(s.min_positive())
                } else {
                    "none".to_string()
                },
                show_value(s.epsilon()),
                format!("{:.2}", s.dynamic_range_binades()),
                yes_no(s.has_inf()),
                yes_no(s.has_nan()),
                overflow_rule(f),
                traits(&s),
            ]
        })
        .collect();
    markdown_grid(&columns, &rows)
}

/// The MX block-format table of `formats`.
pub(crate) fn mx_table() -> String {
    let columns = [
        Column::text("format", "MX format", ""),
        Column::text("element", "element", ""),
        Column::num("element_bits", "element bits", ""),
        Column::num("bits_per_element", "bits/elem (with scale)", ""),
        Column::num("block", "block", ""),
        Column::num("emax_elem", "emax_elem", ""),
        Column::num("element_max", "element max", ""),
    ];
    let rows: Vec<Vec<String>> = MxFormat::ALL
        .iter()
        .map(|&m| {
            vec![
                m.name().to_string(),
                m.element_format()
                    .map_or("int8 (k·2^-6)".to_string(), |f| f.name().to_string()),
                m.element_bits().to_string(),
                format!("{:.2}", m.bits_per_element()),
                BLOCK_SIZE.to_string(),
                m.emax_elem().to_string(),
                show_value(m.element_max()),
            ]
        })
        .collect();
    markdown_grid(&columns, &rows)
}

/// The code's bits as `sign exponent mantissa` groups.
fn binary_fields(spec: &MiniFloat, code: u16) -> String {
    let (e, m) = (spec.exponent_bits(), spec.mantissa_bits());
    let bit = |i: u32| if code >> i & 1 == 1 { '1' } else { '0' };
    let group = |lo: u32, n: u32| (lo..lo + n).rev().map(bit).collect::<String>();
    let mut parts = Vec::new();
    if spec.is_signed() {
        parts.push(group(e + m, 1));
    }
    parts.push(group(m, e));
    if m > 0 {
        parts.push(group(0, m));
    }
    parts.join(" ")
}

/// What happened to `x` on its way to `y` in `format`.
fn outcome(format: Format, x: f32, y: f32) -> &'static str {
    let spec = format.spec();
    if x.is_nan() {
        return if y.is_nan() { "NaN" } else { "no NaN code" };
    }
    if y.is_nan() {
        return if x < 0.0 && !spec.is_signed() {
            "negative: NaN (unsigned)"
        } else if x == 0.0 && !spec.has_zero() {
            "zero: NaN (no zero)"
        } else if x.is_infinite() {
            "inf: NaN"
        } else {
            "overflow: NaN"
        };
    }
    if x.to_bits() == y.to_bits() || (x == 0.0 && y == 0.0) {
        return "exact";
    }
    if y.is_infinite() {
        return "overflow: inf";
    }
    if x.abs() > spec.max_finite() && y.abs().to_bits() == spec.max_finite().to_bits() {
        return if x.is_infinite() {
            "inf: clamped to max"
        } else {
            "clamped to max"
        };
    }
    if x != 0.0 && y == 0.0 {
        return "underflow: 0";
    }
    if x.abs() < spec.min_positive() && y.abs().to_bits() == spec.min_positive().to_bits() {
        return "below range: min";
    }
    #[allow(clippy::float_cmp)] // exact equality of values is the question here
    let same = x == y;
    if same { "exact" } else { "rounded" }
}

/// `|y − x| / |x|` as a table cell.
fn relative_error(x: f32, y: f32) -> String {
    if x.is_nan() {
        return "n/a".to_string();
    }
    if y.is_nan() {
        return "NaN".to_string();
    }
    if x.to_bits() == y.to_bits() || (x == 0.0 && y == 0.0) {
        return "0".to_string();
    }
    if x.is_infinite() {
        // inf → finite (clamped) or the other infinity: no meaningful ratio.
        return "n/a".to_string();
    }
    if x == 0.0 || y.is_infinite() {
        return "inf".to_string();
    }
    let (x, y) = (f64::from(x), f64::from(y));
    sci3((y - x).abs() / x.abs())
}

/// The `formats --value` table: how `x` encodes in each format.
pub(crate) fn value_table(x: f32, formats: &[Format]) -> String {
    let columns = [
        Column::text("format", "format", ""),
        Column::num("code", "code", ""),
        Column::num("binary", "binary (s e m)", ""),
        Column::num("decoded", "decoded", ""),
        Column::num("rel_error", "rel. error", ""),
        Column::text("outcome", "outcome", ""),
    ];
    let rows: Vec<Vec<String>> = formats
        .iter()
        .map(|&f| {
            let spec = f.spec();
            let code = f.encode(x);
            let y = f.decode(code);
            let digits = spec.bits().div_ceil(4) as usize;
            vec![
                f.name().to_string(),
                format!("0x{code:0digits$X}"),
                binary_fields(&spec, code),
                show_value(y),
                relative_error(x, y),
                outcome(f, x, y).to_string(),
            ]
        })
        .collect();
    let mut out = format!(
        "value {} (as f32: exactly {:?}, bits 0x{:08X}); plain cast (round to nearest \
         even); rel. error against that f32\n\n",
        show_value(x),
        f64::from(x),
        x.to_bits()
    );
    out.push_str(&markdown_grid(&columns, &rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_naturally() {
        assert_eq!(show_value(448.0), "448");
        assert_eq!(show_value(0.015625), "0.015625 = 2^-6");
        assert_eq!(show_value(1.0), "1");
        assert_eq!(show_value(2f32.powi(-24)), "5.9604645e-8 = 2^-24");
        assert_eq!(show_value(2f32.powi(127)), "1.7014118e38 = 2^127");
        assert_eq!(show_value(f32::NEG_INFINITY), "-inf");
        assert_eq!(show_value(-0.5), "-0.5");
    }

    #[test]
    fn fields_split_sign_exponent_mantissa() {
        let s = Format::F8E4M3FN.spec();
        assert_eq!(binary_fields(&s, 0x38), "0 0111 000");
        let s = Format::F8E8M0FNU.spec();
        assert_eq!(binary_fields(&s, 0x7F), "01111111");
        let s = Format::F4E2M1FN.spec();
        assert_eq!(binary_fields(&s, 0xF), "1 11 1");
    }

    #[test]
    #[allow(clippy::approx_constant)] // the value of the example, not π
    fn pi_in_e4m3() {
        let t = value_table(3.14159, &[Format::F8E4M3FN]);
        // 3.14159 → 3.25 (0x45 = 0 1000 101): rel. error 3.45e-2.
        assert!(t.contains("0x45"), "{t}");
        assert!(t.contains("0 1000 101"), "{t}");
        assert!(t.contains("3.25"), "{t}");
        assert!(t.contains("3.45e-2"), "{t}");
    }

    #[test]
    fn outcomes_name_what_happened() {
        assert_eq!(outcome(Format::F8E4M3FN, 1000.0, f32::NAN), "overflow: NaN");
        assert_eq!(outcome(Format::F8E5M2, 1e6, f32::INFINITY), "overflow: inf");
        assert_eq!(outcome(Format::F4E2M1FN, 100.0, 6.0), "clamped to max");
        assert_eq!(outcome(Format::F4E2M1FN, 0.1, 0.0), "underflow: 0");
        assert_eq!(
            outcome(Format::F8E8M0FNU, -1.0, f32::NAN),
            "negative: NaN (unsigned)"
        );
        assert_eq!(
            outcome(Format::F8E8M0FNU, 0.0, f32::NAN),
            "zero: NaN (no zero)"
        );
        assert_eq!(outcome(Format::F4E2M1FN, f32::NAN, -0.0), "no NaN code");
        assert_eq!(outcome(Format::F16, 1.0, 1.0), "exact");
    }

    #[test]
    fn relative_errors_cover_the_special_cases() {
        assert_eq!(relative_error(4.0, 3.0), "2.50e-1");
        assert_eq!(relative_error(1.0, 1.0), "0");
        assert_eq!(relative_error(0.0, -0.0), "0");
        assert_eq!(relative_error(0.0, f32::NAN), "NaN");
        assert_eq!(relative_error(f32::NAN, 0.0), "n/a");
        assert_eq!(relative_error(f32::INFINITY, 6.0), "n/a");
        assert_eq!(relative_error(f32::INFINITY, f32::INFINITY), "0");
        assert_eq!(relative_error(1e6, f32::INFINITY), "inf");
    }

    #[test]
    fn every_format_is_listed_and_e8m0_has_no_subnormals() {
        let t = format_table(&Format::ALL);
        for f in Format::ALL {
            assert!(t.contains(f.name()));
        }
        let line = t.lines().find(|l| l.contains("f8e8m0fnu")).unwrap();
        assert!(
            line.contains("none") && line.contains("unsigned, no zero"),
            "{line}"
        );
        let line = t.lines().find(|l| l.contains("| f16 ")).unwrap();
        assert!(line.contains("65504") && line.contains("inf"), "{line}");
    }
}
