//! Tests of the engine against the bit-field reference, `half`, and the semantics table.

use proptest::prelude::*;

use super::reference::{RefValue, Reference, decode_reference, encode_reference};
use super::{MiniFloat, Special};
use crate::Format;

/// Every format of the crate as an engine spec (FP16 and BF16 included).
fn all_specs() -> Vec<(Format, MiniFloat)> {
    Format::ALL.iter().map(|&f| (f, f.spec())).collect()
}

/// The formats of at most 8 bits.
fn small_specs() -> Vec<(Format, MiniFloat)> {
    all_specs()
        .into_iter()
        .filter(|(_, s)| s.bits() <= 8)
        .collect()
}

fn same(a: f32, b: RefValue) -> bool {
    match b {
        RefValue::Nan => a.is_nan(),
        RefValue::Inf(neg) => a.is_infinite() && a.is_sign_negative() == neg,
        // Exact comparison in f64, with the sign of zero checked too.
        RefValue::Finite(v) => (a as f64).to_bits() == v.to_bits(),
    }
}

#[test]
fn decode_matches_reference_for_every_code() {
    for (f, spec) in all_specs() {
        for code in 0..=spec.code_mask() {
            let got = spec.decode(code);
            let want = decode_reference(&spec, code);
            assert!(
                same(got, want),
                "{f} code {code:#06x}: got {got:?}, want {want:?}"
            );
            // The typed path (table or half) agrees with the engine.
            let typed = f.decode(code);
            if got.is_nan() {
                // NaN payloads are unspecified; NaN-ness and sign are.
                assert!(typed.is_nan() && typed.is_sign_negative() == got.is_sign_negative());
                continue;
            }
            assert_eq!(
                typed.to_bits(),
                got.to_bits(),
                "{f} code {code:#06x}: typed path {typed:?} vs engine {got:?}"
            );
        }
    }
}

#[test]
fn half_f16_and_bf16_decode_every_code_like_the_reference() {
    for code in 0..=u16::MAX {
        let f = half::f16::from_bits(code).to_f32();
        assert!(
            same(f, decode_reference(&Format::F16.spec(), code)),
            "{code:#06x}"
        );
        let b = half::bf16::from_bits(code).to_f32();
        assert!(
            same(b, decode_reference(&Format::BF16.spec(), code)),
            "{code:#06x}"
        );
    }
}

#[test]
fn every_representable_value_round_trips() {
    for (f, spec) in all_specs() {
        for code in 0..=spec.code_mask() {
            if spec.is_nan_code(code) {
                continue;
            }
            let v = spec.decode(code);
            assert_eq!(spec.encode(v), code, "{f}: {v:?} from {code:#06x}");
            assert_eq!(f.encode(v), code, "{f} (typed): {v:?} from {code:#06x}");
        }
    }
}

/// Positive finite values of a format in increasing order with their codes.
fn positive_values(spec: &MiniFloat) -> Vec<(u16, f32)> {
    let mut v: Vec<(u16, f32)> = (0..=spec.magnitude_mask())
        .filter(|&c| !spec.is_nan_code(c) && !spec.is_inf_code(c))
        .map(|c| (c, spec.decode(c)))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

fn next_down(x: f32) -> f32 {
    f32::from_bits(x.to_bits() - 1)
}

#[test]
fn midpoints_round_to_even_and_one_ulp_either_side_to_the_nearer() {
    for (f, spec) in all_specs() {
        if spec.special() == Special::UnsignedScale {
            continue; // its ties round up; covered by scale_format_rounding
        }
        let vals = positive_values(&spec);
        for w in vals.windows(2) {
            let ((lo_c, lo), (hi_c, hi)) = (w[0], w[1]);
            let mid = ((lo as f64 + hi as f64) / 2.0) as f32;
            assert_eq!(
                (mid as f64).to_bits(),
                ((lo as f64 + hi as f64) / 2.0).to_bits(),
                "{f}: midpoint exact"
            );
            let even = if lo_c % 2 == 0 { lo_c } else { hi_c };
            for (sign, sbit) in [(1.0f32, 0u16), (-1.0, spec.sign_bit())] {
                let fix = |c: u16| {
                    if c == 0 && spec.special() == Special::Fnuz {
                        0
                    } else {
                        c | sbit
                    }
                };
                let x = sign * mid;
                assert_eq!(spec.encode(x), fix(even), "{f}: tie {x:?}");
                assert_eq!(f.encode(x), fix(even), "{f} typed: tie {x:?}");
                let above = sign * next_up(mid);
                assert_eq!(spec.encode(above), fix(hi_c), "{f}: above tie {above:?}");
                assert_eq!(f.encode(above), fix(hi_c), "{f} typed: above {above:?}");
                let below = sign * next_down(mid);
                assert_eq!(spec.encode(below), fix(lo_c), "{f}: below tie {below:?}");
                assert_eq!(f.encode(below), fix(lo_c), "{f} typed: below {below:?}");
            }
        }
    }
}

#[test]
fn overflow_boundary_follows_each_convention() {
    for (f, spec) in all_specs() {
        if spec.special() == Special::UnsignedScale {
            continue;
        }
        let max = spec.max_finite();
        let max_code = spec.max_code();
        // Quantum of max's binade: max − previous value.
        let prev = spec.decode(max_code - 1);
        let step = max as f64 - prev as f64;
        let limit = (max as f64 + step / 2.0) as f32;
        let max_is_odd = max_code % 2 == 1;
        let overflow = match spec.special() {
            Special::Ieee => spec.inf_code().unwrap(),
            Special::FiniteNan => spec.magnitude_mask(),
            Special::Fnuz => spec.sign_bit(),
            _ => max_code,
        };
        let at_limit = if max_is_odd { overflow } else { max_code };
        assert_eq!(
            spec.encode(limit),
            at_limit,
            "{f}: at the overflow tie {limit}"
        );
        assert_eq!(
            spec.encode(next_down(limit)),
            max_code,
            "{f}: just below the tie"
        );
        assert_eq!(
            spec.encode(next_up(limit)),
            overflow,
            "{f}: just above the tie"
        );
        assert_eq!(spec.encode(f32::INFINITY), overflow, "{f}: +inf");
        assert_eq!(spec.encode(f32::MAX), overflow, "{f}: f32::MAX");
        // Saturating clamps all of them to MAX.
        for x in [limit, next_up(limit), f32::MAX, f32::INFINITY] {
            assert_eq!(spec.encode_saturating(x), max_code, "{f}: saturating {x}");
            assert_eq!(
                spec.encode_saturating(-x),
                max_code | spec.sign_bit(),
                "{f}: saturating -{x}"
            );
        }
    }
}

#[test]
fn underflow_and_subnormal_boundaries() {
    for (f, spec) in all_specs() {
        if spec.special() == Special::UnsignedScale {
            continue;
        }
        let tiny = spec.min_positive();
        let half_tiny = tiny / 2.0; // exact: tiny is a power of two
        let neg_zero = if spec.special() == Special::Fnuz {
            0
        } else {
            spec.sign_bit()
        };
        // Half the smallest subnormal ties to even: zero.
        assert_eq!(spec.encode(half_tiny), 0, "{f}");
        assert_eq!(spec.encode(-half_tiny), neg_zero, "{f}");
        assert_eq!(spec.encode(next_up(half_tiny)), 1, "{f}");
        assert_eq!(
            spec.encode(f32::from_bits(1)),
            0,
            "{f}: smallest f32 subnormal"
        );
        assert_eq!(spec.encode(-0.0), neg_zero, "{f}: -0");
        // The largest subnormal and the smallest normal are neighbours.
        let min_normal = spec.min_normal();
        assert_eq!(spec.encode(min_normal), spec.min_normal_code(), "{f}");
        let largest_sub = spec.decode(spec.min_normal_code() - 1);
        assert_eq!(
            spec.encode(next_up(largest_sub)),
            spec.min_normal_code() - 1,
            "{f}: just above the largest subnormal"
        );
    }
}

#[test]
fn semantics_table_constants() {
    use crate::formats::*;
    let check = |name: &str, got: f32, want: f32| {
        assert_eq!(got.to_bits(), want.to_bits(), "{name}: {got} vs {want}");
    };
    check("E4M3FN max", F8E4M3FN::MAX.to_f32(), 448.0);
    check("E4M3FN min", F8E4M3FN::MIN.to_f32(), -448.0);
    check(
        "E4M3FN min normal",
        F8E4M3FN::MIN_POSITIVE.to_f32(),
        2f32.powi(-6),
    );
    check("E4M3FN eps", F8E4M3FN::EPSILON.to_f32(), 0.125);
    check("E5M2 max", F8E5M2::MAX.to_f32(), 57344.0);
    check(
        "E5M2 min normal",
        F8E5M2::MIN_POSITIVE.to_f32(),
        2f32.powi(-14),
    );
    check("E5M2 eps", F8E5M2::EPSILON.to_f32(), 0.25);
    check("E5M2 inf", F8E5M2::INFINITY.to_f32(), f32::INFINITY);
    check(
        "E5M2 -inf",
        F8E5M2::NEG_INFINITY.to_f32(),
        f32::NEG_INFINITY,
    );
    check("E4M3FNUZ max", F8E4M3FNUZ::MAX.to_f32(), 240.0);
    check(
        "E4M3FNUZ min normal",
        F8E4M3FNUZ::MIN_POSITIVE.to_f32(),
        2f32.powi(-7),
    );
    check("E5M2FNUZ max", F8E5M2FNUZ::MAX.to_f32(), 57344.0);
    check(
        "E5M2FNUZ min normal",
        F8E5M2FNUZ::MIN_POSITIVE.to_f32(),
        2f32.powi(-15),
    );
    check("E8M0 max", F8E8M0FNU::MAX.to_f32(), 2f32.powi(127));
    check(
        "E8M0 min",
        F8E8M0FNU::MIN.to_f32(),
        f32::from_bits(0x0040_0000),
    );
    check("E8M0 eps", F8E8M0FNU::EPSILON.to_f32(), 1.0);
    check("E2M3 max", F6E2M3FN::MAX.to_f32(), 7.5);
    check("E2M3 min normal", F6E2M3FN::MIN_POSITIVE.to_f32(), 1.0);
    check("E2M3 eps", F6E2M3FN::EPSILON.to_f32(), 0.125);
    check("E3M2 max", F6E3M2FN::MAX.to_f32(), 28.0);
    check("E3M2 min normal", F6E3M2FN::MIN_POSITIVE.to_f32(), 0.25);
    check("E2M1 max", F4E2M1FN::MAX.to_f32(), 6.0);
    check("E2M1 min", F4E2M1FN::MIN.to_f32(), -6.0);
    check("E2M1 eps", F4E2M1FN::EPSILON.to_f32(), 0.5);
    assert_eq!(F8E4M3FN::NAN.to_bits(), 0x7F);
    assert_eq!(F8E5M2::NAN.to_bits(), 0x7E);
    assert_eq!(F8E4M3FNUZ::NAN.to_bits(), 0x80);
    assert_eq!(F8E8M0FNU::NAN.to_bits(), 0xFF);
    assert_eq!(
        F4E2M1FN::from_bits(0xF7).to_bits(),
        0x7,
        "4-bit codes are masked"
    );
    assert_eq!(
        F6E3M2FN::from_bits(0xFF).to_bits(),
        0x3F,
        "6-bit codes are masked"
    );
    assert!(F8E5M2::INFINITY.is_infinite() && !F8E5M2::MAX.is_infinite());
    assert!(F8E4M3FN::MAX.is_finite() && !F8E4M3FN::NAN.is_finite());
    // The half constants are what the engine's specs say.
    assert_eq!(
        Format::F16.spec().max_finite().to_bits(),
        half::f16::MAX.to_f32().to_bits()
    );
    assert_eq!(
        Format::BF16.spec().max_finite().to_bits(),
        half::bf16::MAX.to_f32().to_bits()
    );
    assert_eq!(
        Format::F16.spec().min_positive().to_bits(),
        half::f16::from_bits(1).to_f32().to_bits()
    );
}

#[test]
fn semantics_table_rows() {
    use crate::formats::*;
    // (value, expected code) per format, from the OCP specs and ml_dtypes 0.6.0.
    let nan = f32::NAN;
    let e4m3: [(f32, u8); 8] = [
        (464.0, 0x7E),
        (465.0, 0x7F),
        (f32::INFINITY, 0x7F),
        (f32::NEG_INFINITY, 0xFF),
        (-nan, 0xFF),
        (-0.0, 0x80),
        (-1e-30, 0x80),
        (100.0, 0x6C),
    ];
    for (x, c) in e4m3 {
        assert_eq!(F8E4M3FN::from_f32(x).to_bits(), c, "E4M3FN {x}");
    }
    for (x, c) in [
        (61440.0f32, 0x7Cu8),
        (61439.0, 0x7B),
        (-1e30, 0xFC),
        (nan, 0x7E),
    ] {
        assert_eq!(F8E5M2::from_f32(x).to_bits(), c, "E5M2 {x}");
    }
    for (x, c) in [
        (248.0f32, 0x80u8),
        (-0.0, 0x00),
        (-1e-30, 0x00),
        (-nan, 0x80),
        (240.0, 0x7F),
    ] {
        assert_eq!(F8E4M3FNUZ::from_f32(x).to_bits(), c, "E4M3FNUZ {x}");
    }
    for (x, c) in [
        (61440.0f32, 0x80u8),
        (61439.0, 0x7F),
        (-0.0, 0x00),
        (f32::INFINITY, 0x80),
    ] {
        assert_eq!(F8E5M2FNUZ::from_f32(x).to_bits(), c, "E5M2FNUZ {x}");
    }
    for (x, c) in [
        (nan, 0x20u8),
        (-nan, 0x00),
        (f32::INFINITY, 0x1F),
        (-100.0, 0x3F),
    ] {
        assert_eq!(F6E2M3FN::from_f32(x).to_bits(), c, "E2M3 {x}");
    }
    for (x, c) in [(nan, 0x20u8), (-nan, 0x00), (30.0, 0x1F), (7.5, 0x18)] {
        assert_eq!(F6E3M2FN::from_f32(x).to_bits(), c, "E3M2 {x}");
    }
    for (x, c) in [
        (nan, 0x8u8),
        (-nan, 0x0),
        (7.0, 0x7),
        (0.75, 0x2),
        (0.25, 0x0),
        (-0.25, 0x8),
    ] {
        assert_eq!(F4E2M1FN::from_f32(x).to_bits(), c, "E2M1 {x}");
    }
}

#[test]
fn scale_format_rounding() {
    use crate::formats::F8E8M0FNU as S;
    let t = |x: f32| S::from_f32(x).to_bits();
    // Ties round up; NaN for zero, negatives, inf and NaN; no underflow.
    assert_eq!(
        [t(0.75), t(1.5), t(3.0), t(1.0), t(1.49)],
        [0x7F, 0x80, 0x81, 0x7F, 0x7F]
    );
    assert_eq!(
        [t(0.0), t(-0.0), t(-1.0), t(f32::INFINITY), t(f32::NAN)],
        [0xFF; 5]
    );
    assert_eq!(t(f32::from_bits(1)), 0x00);
    assert_eq!(t(f32::from_bits(0x0040_0000)), 0x00, "2^-127 exactly");
    assert_eq!(
        t(f32::from_bits(0x0040_0001)),
        0x01,
        "just above 2^-127 (ml_dtypes)"
    );
    assert_eq!(t(f32::from_bits(0x0060_0000)), 0x01, "1.5 * 2^-127");
    assert_eq!(t(2f32.powi(-126) * 1.5), 0x02);
    assert_eq!(t(2f32.powi(127) * 1.4), 0xFE);
    assert_eq!(t(2f32.powi(127) * 1.5), 0xFF, "rounds past 2^127");
    assert_eq!(S::from_f32_saturating(f32::MAX).to_bits(), 0xFE);
    assert_eq!(S::from_f32_saturating(f32::INFINITY).to_bits(), 0xFE);
    assert_eq!(S::from_f32_saturating(-1.0).to_bits(), 0xFF);
    // Engine == reference on a sweep of every binade and significand pattern.
    let spec = S::SPEC;
    let reference = Reference::new(&spec);
    for hi in 0..=0xFFFFu32 {
        for lo in [0u32, 1, 0xFFFF] {
            let x = f32::from_bits(hi << 16 | lo);
            assert_eq!(
                spec.encode(x),
                reference.encode(x),
                "{x:e} ({:#x})",
                x.to_bits()
            );
        }
    }
}

#[test]
fn engine_matches_brute_force_reference_on_a_sweep_of_all_f32_binades() {
    // Every f32 whose low 16 bits are 0, 1 or 0xFFFF: every exponent, sign and the top 7
    // mantissa bits, hitting exact ties (for M ≤ 6) and their neighbours.
    for (f, spec) in small_specs() {
        let reference = Reference::new(&spec);
        for hi in 0..=0xFFFFu32 {
            for lo in [0u32, 1, 0xFFFF] {
                let x = f32::from_bits(hi << 16 | lo);
                let want = reference.encode(x);
                assert_eq!(spec.encode(x), want, "{f}: {x:e} ({:#010x})", x.to_bits());
            }
        }
    }
}

#[test]
fn engine_matches_half_on_a_sweep() {
    let (f16s, bf16s) = (Format::F16.spec(), Format::BF16.spec());
    for hi in 0..=0xFFFFu32 {
        for lo in [
            0u32, 1, 0x1000, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0xFFFF,
        ] {
            let x = f32::from_bits(hi << 16 | lo);
            let (a, b) = (f16s.encode(x), half::f16::from_f32(x).to_bits());
            let (c, d) = (bf16s.encode(x), half::bf16::from_f32(x).to_bits());
            if x.is_nan() {
                // Payloads differ between libraries: only NaN-ness and sign are specified.
                assert!(f16s.is_nan_code(a) && f16s.is_nan_code(b));
                assert_eq!(a & 0x8000, b & 0x8000);
                assert!(bf16s.is_nan_code(c) && bf16s.is_nan_code(d));
                assert_eq!(c & 0x8000, d & 0x8000);
            } else {
                assert_eq!(a, b, "f16 {x:e} ({:#010x})", x.to_bits());
                assert_eq!(c, d, "bf16 {x:e} ({:#010x})", x.to_bits());
            }
        }
    }
}

#[test]
fn invalid_specs_are_rejected_with_reasons() {
    let bad = [
        (0, 3, 7, Special::Ieee),
        (9, 3, 7, Special::Ieee),
        (4, 23, 7, Special::Ieee),
        (8, 8, 127, Special::Ieee),
        (4, 3, -1, Special::FiniteNan),
        (4, 3, 128, Special::FiniteNan),
        (8, 1, 127, Special::UnsignedScale),
        (1, 0, 0, Special::Ieee),
        (8, 3, 127, Special::Finite), // exponent 255 would be finite: 2^128 overflows f32
        (1, 0, 0, Special::FiniteNan), // only zero and NaN
    ];
    for (e, m, b, s) in bad {
        let err = MiniFloat::new(e, m, b, s).unwrap_err();
        assert!(matches!(err, crate::Error::InvalidSpec { .. }), "{err}");
    }
    assert!(MiniFloat::new(3, 4, 3, Special::Ieee).is_ok());
    assert!(MiniFloat::new(8, 7, 127, Special::Ieee).is_ok());
}

#[test]
fn ulp_distance_counts_steps_across_zero() {
    let s = crate::F8E4M3FN::SPEC;
    assert_eq!(s.ulp_distance(0x38, 0x39), Some(1));
    assert_eq!(s.ulp_distance(0x01, 0x81), Some(2));
    assert_eq!(s.ulp_distance(0x00, 0x80), Some(0));
    assert_eq!(s.ulp_distance(0x7F, 0x00), None);
    let e = crate::F8E5M2::SPEC;
    assert_eq!(e.ulp_distance(0x7C, 0x00), None, "infinity");
}

/// A random spec that `MiniFloat::new` accepts.
fn arb_spec() -> impl Strategy<Value = MiniFloat> {
    (1u32..=8, 0u32..=10, 0i32..=127, 0usize..5).prop_filter_map("valid spec", |(e, m, b, s)| {
        let special = [
            Special::Ieee,
            Special::FiniteNan,
            Special::Fnuz,
            Special::Finite,
            Special::UnsignedScale,
        ][s];
        MiniFloat::new(e, m, b, special).ok()
    })
}

proptest! {
    #[test]
    fn run_time_specs_match_the_reference(spec in arb_spec(), bits in any::<u32>()) {
        let x = f32::from_bits(bits);
        prop_assert_eq!(spec.encode(x), encode_reference(&spec, x), "{:?} {:e}", spec, x);
    }

    #[test]
    fn run_time_specs_decode_like_the_reference(spec in arb_spec(), code in any::<u16>()) {
        let code = code & spec.code_mask();
        prop_assert!(same(spec.decode(code), decode_reference(&spec, code)));
    }

    #[test]
    fn encode_is_monotonic(a in any::<f32>(), b in any::<f32>()) {
        prop_assume!(!a.is_nan() && !b.is_nan());
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        for (f, spec) in all_specs() {
            let (dx, dy) = (spec.decode(spec.encode(x)), spec.decode(spec.encode(y)));
            if dx.is_nan() || dy.is_nan() {
                // overflow to NaN (FN/FNUZ/scale) leaves the ordered domain
                continue;
            }
            prop_assert!(dx <= dy, "{}: {} -> {}, {} -> {}", f, x, dx, y, dy);
        }
    }

    #[test]
    fn encode_is_sign_symmetric(x in any::<f32>()) {
        prop_assume!(!x.is_nan());
        for (f, spec) in all_specs() {
            if !spec.is_signed() {
                continue;
            }
            let (p, n) = (spec.decode(spec.encode(x)), spec.decode(spec.encode(-x)));
            if p.is_nan() {
                prop_assert!(n.is_nan(), "{}", f);
            } else {
                prop_assert_eq!((-p).to_bits() & 0x7FFF_FFFF, n.to_bits() & 0x7FFF_FFFF);
                if p != 0.0 {
                    prop_assert_eq!((-p).to_bits(), n.to_bits(), "{}: {}", f, x);
                }
            }
        }
    }

    #[test]
    fn in_range_error_is_at_most_half_an_ulp(x in any::<f32>()) {
        prop_assume!(x.is_finite());
        for (f, spec) in all_specs() {
            if spec.special() == Special::UnsignedScale || x.abs() > spec.max_finite() {
                continue;
            }
            let y = spec.decode(spec.encode(x)) as f64;
            let ax = (x as f64).abs();
            let emin = 1 - spec.bias();
            let e = if ax == 0.0 { emin } else { (ax.log2().floor() as i32).max(emin) };
            let half_ulp = 2f64.powi(e - spec.mantissa_bits() as i32 - 1);
            prop_assert!((y - x as f64).abs() <= half_ulp, "{}: {} -> {}", f, x, y);
        }
    }

    #[test]
    fn nan_in_gives_nan_out_where_the_format_has_nan(payload in 1u32..0x0080_0000, neg: bool) {
        let x = f32::from_bits(0x7F80_0000 | payload | if neg { 0x8000_0000 } else { 0 });
        for (f, spec) in all_specs() {
            let c = spec.encode(x);
            if spec.has_nan() {
                prop_assert!(spec.is_nan_code(c), "{}", f);
                if spec.is_signed() && spec.special() != Special::Fnuz {
                    prop_assert_eq!(c & spec.sign_bit() != 0, neg, "{}: sign kept", f);
                }
                prop_assert!(spec.is_nan_code(spec.encode_saturating(x)));
            } else {
                prop_assert_eq!(c & spec.magnitude_mask(), 0, "{}: NaN -> zero", f);
                prop_assert_eq!(c & spec.sign_bit() != 0, !neg, "{}: sign flipped", f);
            }
        }
    }

    #[test]
    fn stochastic_rounding_picks_a_neighbour(x in any::<f32>(), r in any::<u32>()) {
        prop_assume!(x.is_finite());
        for (f, spec) in small_specs() {
            if spec.special() == Special::UnsignedScale && x <= 0.0 {
                continue;
            }
            let c = spec.encode_stochastic(x, r);
            let y = spec.decode(c);
            let down = spec.encode_stochastic(x, u32::MAX); // never rounds up
            let up = spec.encode_stochastic(x, 0); // rounds up whenever inexact
            let (yd, yu) = (spec.decode(down), spec.decode(up));
            if y.is_nan() {
                prop_assert!(yu.is_nan(), "{}: only the upper neighbour may overflow", f);
                continue;
            }
            prop_assert!(y.to_bits() == yd.to_bits() || y.to_bits() == yu.to_bits());
            if (spec.decode(spec.encode(x)) as f64 - x as f64) == 0.0 {
                prop_assert_eq!(c, spec.encode(x), "{}: exact values never move", f);
            }
        }
    }
}

#[test]
fn stochastic_rounding_is_unbiased() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (f, spec) in small_specs() {
        // A value a third of the way between two codes near 1.
        let lo = 1.0f32;
        let hi = spec.decode(spec.one_code() + 1);
        let x = lo + (hi - lo) / 3.0;
        let n = 200_000;
        let mean: f64 = (0..n)
            .map(|_| spec.decode(spec.encode_stochastic(x, rng.random())) as f64)
            .sum::<f64>()
            / n as f64;
        let gap = (hi - lo) as f64;
        // Standard error of the mean is gap·sqrt(p(1−p)/n) ≈ gap·0.00105; allow 5 sigma.
        let tol = 5.0 * gap * (2.0f64 / 9.0 / n as f64).sqrt();
        assert!(
            (mean - x as f64).abs() < tol,
            "{f}: mean {mean} vs {x} (tol {tol})"
        );
    }
}
