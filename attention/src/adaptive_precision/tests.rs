//! Unit tests of the rounding, the statistics and the decision rule.

use super::policy::{choose, dynamic_range_db, fits};
use super::rounding::{Rounder, amax, operand_scale};
use super::{OperandFormat, PrecisionPolicy};

#[test]
fn fp8_scale_maps_amax_to_the_largest_finite_value() {
    let x = [0.5f32, -3.0, 1e-3, 2.0];
    for f in [OperandFormat::E4M3, OperandFormat::E5M2] {
        let s = operand_scale(f, amax(&x));
        let mut r = [0.0f32; 4];
        Rounder::default().round(f, &x, s, &mut r).unwrap();
        assert!((r[1] + f.max_finite()).abs() <= 0.0, "{f}: {r:?}");
        // Rounding error of a normal value: at most half an ulp.
        let back = f64::from(r[0] / s);
        assert!(
            (back - 0.5).abs() <= 0.5 * f.unit_roundoff() * 2.0,
            "{f}: {back}"
        );
    }
}

#[test]
fn fp16_power_of_two_scale_rounds_like_a_plain_cast() {
    let x: Vec<f32> = (0..200).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let s = operand_scale(OperandFormat::F16, amax(&x));
    assert!(s.log2().fract().abs() <= 0.0, "power of two: {s}");
    let mut r = vec![0.0f32; x.len()];
    Rounder::default()
        .round(OperandFormat::F16, &x, s, &mut r)
        .unwrap();
    for (&a, &b) in x.iter().zip(&r) {
        let plain = numerics::f16::from_f32(a).to_f32();
        assert!((b / s - plain).abs() <= 0.0, "{a}: {} vs {plain}", b / s);
    }
    // Beyond FP16's range: scaled instead of overflowing.
    let big = [1e6f32, -2e5];
    let s = operand_scale(OperandFormat::F16, amax(&big));
    let mut r = [0.0f32; 2];
    Rounder::default()
        .round(OperandFormat::F16, &big, s, &mut r)
        .unwrap();
    assert!(r.iter().all(|x| x.is_finite()));
    assert!(((r[0] / s) / 1e6 - 1.0).abs() < 1e-3);
}

#[test]
fn format_ranges_and_roundoffs() {
    let db = |f: OperandFormat| f.normal_range_db();
    assert!((db(OperandFormat::E4M3) - 89.15).abs() < 0.1);
    assert!((db(OperandFormat::E5M2) - 179.5).abs() < 0.1);
    assert!((db(OperandFormat::F16) - 180.6).abs() < 0.1);
    assert!(db(OperandFormat::Bf16) > 1500.0);
    assert!((OperandFormat::E4M3.unit_roundoff() - 1.0 / 16.0).abs() < 1e-15);
    assert!((OperandFormat::Bf16.unit_roundoff() - 1.0 / 256.0).abs() < 1e-15);
    assert!((OperandFormat::F16.unit_roundoff() - 1.0 / 2048.0).abs() < 1e-15);
}

#[test]
fn dynamic_range_of_simple_tensors() {
    assert!(dynamic_range_db(&[0.0; 8]).abs() <= 0.0);
    assert!(dynamic_range_db(&[2.0, -2.0, 2.0]).abs() < 1e-12);
    // 1 % quantile of 100 values 1..=100 is the smallest: 20·log10(100) = 40 dB.
    let x: Vec<f32> = (1..=100).map(|i| i as f32).collect();
    assert!((dynamic_range_db(&x) - 40.0).abs() < 1e-9);
}

#[test]
fn decision_table() {
    use OperandFormat::{Bf16, E4M3, E5M2, F16, F32};
    let (small, diffuse, nats) = (40.0, 0.9, 5.0);
    assert_eq!(choose(PrecisionPolicy::Quality, small, diffuse, nats), F16);
    assert_eq!(
        choose(PrecisionPolicy::Balanced, small, diffuse, nats),
        E4M3
    );
    assert_eq!(choose(PrecisionPolicy::Speed, small, diffuse, nats), E4M3);
    assert_eq!(choose(PrecisionPolicy::Balanced, small, 0.45, nats), F16);
    assert_eq!(choose(PrecisionPolicy::Quality, small, 0.1, nats), F32);
    assert_eq!(choose(PrecisionPolicy::Speed, small, 0.1, nats), Bf16);
    // 100 dB: beyond E4M3 (89 − 20), within E5M2.
    assert_eq!(choose(PrecisionPolicy::Speed, 100.0, diffuse, nats), E5M2);
    assert_eq!(choose(PrecisionPolicy::Quality, 170.0, diffuse, nats), F32);
    assert!(fits(F32, 1e9, 1e9));
    assert!(!fits(E4M3, 70.0, nats));
    assert!(fits(E4M3, 69.0, nats));
}
