//! Tests of the fake-quantization kernels: PyTorch's recorded outputs, hand-computed cases,
//! argument checks and properties.

use super::*;
use numerics::testing::Tolerance;
use proptest::prelude::*;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn fq(x: &[f32], scale: f32, zp: i32, lo: i32, hi: i32) -> (Vec<f32>, Vec<bool>) {
    fake_quantize_per_tensor_affine_with_mask(x, scale, zp, lo, hi)
}

// ---- Outputs recorded from PyTorch ------------------------------------------------------

/// Written by `gen_torch_golden.py` from PyTorch 2.15.0's CPU kernels.
const GOLDEN: &str = include_str!("torch_golden.txt");

fn hex_f32s(field: &str) -> Vec<f32> {
    field
        .split_whitespace()
        .map(|h| f32::from_bits(u32::from_str_radix(h, 16).expect("hex f32")))
        .collect()
}

fn ints<T: std::str::FromStr>(field: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    field
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

fn mask_bits(field: &str) -> Vec<bool> {
    field.trim().bytes().map(|b| b == b'1').collect()
}

fn golden_lines(kind: &str) -> Vec<Vec<&'static str>> {
    GOLDEN
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(kind))
        .map(|l| l.split(" | ").collect())
        .collect()
}

/// Reports the first element whose bits differ.
#[track_caller]
fn assert_bits_eq(what: &str, expected: &[f32], got: &[f32], x: &[f32]) {
    assert_eq!(expected.len(), got.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| expected[i].to_bits() != got[i].to_bits()) {
        panic!(
            "{what}: element {i} (x = {:e} = {:#010x}): expected {:e} ({:#010x}), got {:e} \
             ({:#010x})",
            x[i],
            x[i].to_bits(),
            expected[i],
            expected[i].to_bits(),
            got[i],
            got[i].to_bits()
        );
    }
}

#[test]
fn per_tensor_matches_pytorch_bit_for_bit() {
    let cases = golden_lines("pt");
    assert_eq!(cases.len(), 14);
    for fields in cases {
        let head: Vec<&str> = fields[0].split_whitespace().collect();
        let scale = f32::from_bits(u32::from_str_radix(head[1], 16).unwrap());
        let (zp, lo, hi): (i32, i32, i32) = (
            head[2].parse().unwrap(),
            head[3].parse().unwrap(),
            head[4].parse().unwrap(),
        );
        let x = hex_f32s(fields[1]);
        let (y, m) = fq(&x, scale, zp, lo, hi);
        let what = format!("per tensor, scale {scale:e}, zp {zp}, [{lo}, {hi}]");
        assert_bits_eq(&what, &hex_f32s(fields[2]), &y, &x);
        assert_eq!(m, mask_bits(fields[3]), "{what}: mask");
        let y_plain = fake_quantize_per_tensor_affine(&x, scale, zp, lo, hi);
        assert_eq!(
            bits(&y_plain),
            bits(&y),
            "{what}: with and without the mask"
        );
    }
}

#[test]
fn per_channel_matches_pytorch_bit_for_bit() {
    let cases = golden_lines("pc");
    assert_eq!(cases.len(), 7);
    for fields in cases {
        let head: Vec<&str> = fields[0].split_whitespace().collect();
        let shape: Vec<usize> = head[1].split(',').map(|d| d.parse().unwrap()).collect();
        let axis: usize = head[2].parse().unwrap();
        let (lo, hi): (i32, i32) = (head[3].parse().unwrap(), head[4].parse().unwrap());
        let scales = hex_f32s(fields[1]);
        let zps: Vec<i32> = ints(fields[2]);
        let x = hex_f32s(fields[3]);
        let (y, m) =
            fake_quantize_per_channel_affine_with_mask(&x, &shape, axis, &scales, &zps, lo, hi);
        let what = format!("per channel, shape {shape:?}, axis {axis}, [{lo}, {hi}]");
        assert_bits_eq(&what, &hex_f32s(fields[4]), &y, &x);
        assert_eq!(m, mask_bits(fields[5]), "{what}: mask");
        let y_plain = fake_quantize_per_channel_affine(&x, &shape, axis, &scales, &zps, lo, hi);
        assert_eq!(
            bits(&y_plain),
            bits(&y),
            "{what}: with and without the mask"
        );
    }
}

#[test]
fn lsq_matches_pytorch_learnable_fake_quant_away_from_the_clamp_band() {
    // torch._fake_quantize_learnable_per_tensor_affine with zero point 0 and
    // grad_factor = 1/sqrt(N · Q_P); the generator keeps v/s at least 0.6 from the clamp
    // limits, where PyTorch's and the paper's boundary conventions agree (see `Lsq`).
    let cases = golden_lines("lsq");
    assert_eq!(cases.len(), 4);
    for fields in cases {
        let head: Vec<&str> = fields[0].split_whitespace().collect();
        let (lo, hi): (i32, i32) = (head[1].parse().unwrap(), head[2].parse().unwrap());
        let scale = f32::from_bits(u32::from_str_radix(head[3], 16).unwrap());
        let g = f32::from_bits(u32::from_str_radix(head[4], 16).unwrap());
        let lsq = if lo < 0 {
            Lsq::new((hi + 1).ilog2() + 1, true).unwrap()
        } else {
            Lsq::new((hi + 1).ilog2(), false).unwrap()
        };
        assert_eq!((-(lsq.qn() as i32), lsq.qp() as i32), (lo, hi));
        let v = hex_f32s(fields[1]);
        let dy = hex_f32s(fields[2]);
        assert_eq!(
            lsq.grad_scale(v.len()).to_bits(),
            g.to_bits(),
            "gradient scale"
        );
        let what = format!("LSQ [{lo}, {hi}], s = {scale}");
        assert_bits_eq(&what, &hex_f32s(fields[3]), &lsq.forward(&v, scale), &v);
        let (dv, ds) = lsq.backward(&v, scale, &dy);
        assert_bits_eq(&what, &hex_f32s(fields[4]), &dv, &v);
        // PyTorch forms each term in f32 as dy·(x̂ − x)·(1/s)·g and sums in f32; the error
        // of x̂ − x grows with the code, up to about |q| · 2⁻²⁴ per term in units of s.
        let torch_ds = f64::from(hex_f32s(fields[5])[0]);
        let bound: f64 = v
            .iter()
            .zip(&dy)
            .map(|(&x, &d)| {
                f64::from(d.abs())
                    * (f64::from(x.abs() / scale) + 2.0)
                    * 4.0
                    * f64::from(f32::EPSILON)
            })
            .sum::<f64>()
            * f64::from(g);
        let tol = Tolerance::rel_abs(1e-6, bound);
        assert!(
            tol.allows(torch_ds, f64::from(ds)),
            "{what}: ∂L/∂s: PyTorch {torch_ds}, ours {ds} (tolerance {tol:?})"
        );
    }
}

// ---- Hand-computed cases ----------------------------------------------------------------

#[test]
fn ties_round_to_even() {
    let x = [2.5f32, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5, -1.5];
    let (y, m) = fq(&x, 1.0, 0, -128, 127);
    assert_eq!(bits(&y), bits(&[2.0, 4.0, -2.0, -4.0, 0.0, 0.0, 2.0, -2.0]));
    assert!(m.iter().all(|&b| b));
    // The output goes through an integer, so −0.5 → +0.0, never −0.0.
    assert_eq!(y[5].to_bits(), 0.0f32.to_bits());
    // With a non-unit power-of-two scale the products are exact too.
    let y = fake_quantize_per_tensor_affine(&[0.625, 0.875, -0.625], 0.25, 0, -8, 7);
    assert_eq!(bits(&y), bits(&[0.5, 1.0, -0.5]));
}

#[test]
fn multiplies_by_the_reciprocal_instead_of_dividing() {
    // 2.35f32 / 0.1f32 = 23.499998 (→ 23) but 2.35f32 · fl(1/0.1f32) = 23.5 exactly (→ 24).
    let (x, s) = (2.35f32, 0.1f32);
    assert_eq!((x * (1.0 / s)).to_bits(), 23.5f32.to_bits());
    assert!(x / s < 23.5);
    let y = fake_quantize_per_tensor_affine(&[x], s, 0, -128, 127);
    assert_eq!(y[0].to_bits(), (24.0f32 * s).to_bits());
}

#[test]
fn zero_point_clamping_and_mask_boundaries() {
    // Codes 0..=15, zero point 3, step 0.5: representable range [−1.5, 6].
    let x = [
        1.0f32, // 2 → code 5 → 1.0
        -1.5,   // −3 → code 0 (lowest), inside
        -1.75,  // −3.5 → −4 (even) → code −1: clamped to 0
        -1.7,   // −3.4 → −3 → code 0: inside, rounds up to the limit
        -100.0, // far below
        6.0,    // 12 → code 15 (highest), inside
        6.25,   // 12.5 → 12 (even) → code 15: inside
        6.3,    // 12.6 → 13 → code 16: clamped
        6.75,   // 13.5 → 14 → code 17: clamped
        1e30,   // far above
        0.0,    // code 3 = zero point → exactly 0
    ];
    let (y, m) = fq(&x, 0.5, 3, 0, 15);
    let expected = [1.0f32, -1.5, -1.5, -1.5, -1.5, 6.0, 6.0, 6.0, 6.0, 6.0, 0.0];
    assert_eq!(bits(&y), bits(&expected));
    let expected_mask = [
        true, true, false, true, false, true, true, false, false, false, true,
    ];
    assert_eq!(m, expected_mask);
}

#[test]
fn negative_zero_point_and_single_level_range() {
    // int8 with zero point −128 (an all-positive range), step 0.1.
    let (y, m) = fq(&[0.0, 0.04, 0.05, 25.5, 25.55, -0.06], 0.1, -128, -128, 127);
    let expect = |q: i32| (q as f32) * 0.1f32; // f32(q − z) · s
    let expected = [
        expect(0),
        expect(0),
        expect(0),
        expect(255),
        expect(255),
        expect(0),
    ];
    assert_eq!(bits(&y), bits(&expected));
    // 0.05·10 = 0.5 → 0; 25.55·10 = 255.5 → 256 → clamped; −0.6 → −1 → clamped.
    assert_eq!(m, [true, true, true, true, false, false]);
    // quant_min == quant_max: every output is zero (the zero point is the only code).
    let (y, m) = fq(&[-3.0, 0.2, 7.0], 0.9, 0, 0, 0);
    assert_eq!(bits(&y), bits(&[0.0, 0.0, 0.0]));
    assert_eq!(m, [false, true, false]);
}

#[test]
fn nan_and_infinities() {
    let x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0];
    let (y, m) = fq(&x, 0.25, 2, -8, 7);
    assert!(y[0].is_nan());
    assert_eq!(bits(&y[1..]), bits(&[1.25, -2.5, 1.0]));
    assert_eq!(m, [false, false, false, true]);

    let (y, m) =
        fake_quantize_per_channel_affine_with_mask(&x, &[2, 2], 1, &[0.25, 0.5], &[2, 0], -8, 7);
    assert!(y[0].is_nan());
    assert_eq!(bits(&y[1..]), bits(&[3.5, -2.5, 1.0]));
    assert_eq!(m, [false, false, false, true]);
}

#[test]
fn per_channel_saturates_huge_values() {
    // PyTorch's per-channel kernel casts these to int64 unclamped (undefined behaviour in
    // C++, `q_min` on x86-64); we saturate, which agrees with the per-tensor kernel.
    let x = [1e30f32, -1e30, 9.3e18, -9.3e18];
    let (y, m) =
        fake_quantize_per_channel_affine_with_mask(&x, &[4], 0, &[1.0; 4], &[0; 4], -128, 127);
    assert_eq!(bits(&y), bits(&[127.0, -128.0, 127.0, -128.0]));
    assert_eq!(m, [false; 4]);
    let (y2, m2) = fq(&x, 1.0, 0, -128, 127);
    assert_eq!(bits(&y2), bits(&y));
    assert_eq!(m2, m);
}

#[test]
fn per_channel_2d_axis_0_and_1() {
    // x is [2, 3], row-major.
    let x = [0.3f32, -0.3, 1.1, 2.6, -2.6, 0.74];
    // Axis 0: row 0 has step 0.5 (codes −4..=3 with zero point 0), row 1 has step 1 with
    // zero point 1 (representable [−5, 2]).
    let (y, m) =
        fake_quantize_per_channel_affine_with_mask(&x, &[2, 3], 0, &[0.5, 1.0], &[0, 1], -4, 3);
    // Row 0: 0.6 → 1, −0.6 → −1, 2.2 → 2 (all inside). Row 1: 2.6 → 3 → code 4: clamped
    // to 3 → 2; −2.6 → −3 → code −2 → −3; 0.74 → 1 → code 2 → 1.
    assert_eq!(bits(&y), bits(&[0.5, -0.5, 1.0, 2.0, -3.0, 1.0]));
    assert_eq!(m, [true, true, true, false, true, true]);
    // Axis 1: column c has step [0.1, 0.2, 0.5][c], zero point 0, codes −8..=7.
    let (y, m) = fake_quantize_per_channel_affine_with_mask(
        &x,
        &[2, 3],
        1,
        &[0.1, 0.2, 0.5],
        &[0, 0, 0],
        -8,
        7,
    );
    // 0.3·10 = 3 → 0.3; −0.3·5 = −1.5 → −2 → −0.4; 1.1·2 = 2.2 → 2 → 1.0;
    // 2.6·10 = 26 → 7 (clamped); −2.6·5 = −13 → −8 (clamped); 0.74·2 = 1.48 → 1 → 0.5.
    let expected = [
        3.0 * 0.1f32,
        -2.0 * 0.2f32,
        1.0,
        7.0 * 0.1f32,
        -8.0 * 0.2f32,
        0.5,
    ];
    assert_eq!(bits(&y), bits(&expected));
    assert_eq!(m, [true, true, true, false, false, true]);
}

#[test]
fn per_channel_3d_every_axis() {
    // x[i][j][k] = i·12 + j·4 + k − 11.5 over shape [2, 3, 4]: 24 values −11.5..=11.5,
    // all half-integers, so every element is a tie at step 1.
    let shape = [2usize, 3, 4];
    let x: Vec<f32> = (0..24).map(|i| i as f32 - 11.5).collect();
    let index = |i: usize| [i / 12, (i / 4) % 3, i % 4];
    for axis in 0..3 {
        let c = shape[axis];
        // Channel c gets step 2^(c mod 2) ∈ {1, 2}, zero point c, codes −8..=7.
        let scales: Vec<f32> = (0..c).map(|k| [1.0, 2.0][k % 2]).collect();
        let zps: Vec<i32> = (0..c as i32).collect();
        let (y, m) =
            fake_quantize_per_channel_affine_with_mask(&x, &shape, axis, &scales, &zps, -8, 7);
        for i in 0..24 {
            let ch = index(i)[axis];
            let (s, z) = (scales[ch], zps[ch]);
            // The expected value from first principles: x/s is exact in f64 here (a
            // half-integer for s = 1, an odd multiple of 1/4 for s = 2, so only s = 1 has
            // ties), and the rounding is half to even.
            let r = (f64::from(x[i]) / f64::from(s)).round_ties_even() as i64;
            let q = i64::from(z) + r;
            let inside = (-8..=7).contains(&q);
            let qc = q.clamp(-8, 7);
            let expected = (qc - i64::from(z)) as f32 * s;
            assert_eq!(
                y[i].to_bits(),
                expected.to_bits(),
                "axis {axis}, element {i} (x = {}, channel {ch})",
                x[i]
            );
            assert_eq!(m[i], inside, "axis {axis}, element {i}: mask");
        }
    }
}

#[test]
fn wide_ranges_follow_each_kernels_own_arithmetic() {
    // quant_max = 2^25 + 3 converts to the f32 2^25 + 4. The per-tensor kernel compares the
    // f32 code with that float, the per-channel kernel compares int64s: for x = 2^25 + 4 the
    // masks differ, the outputs (clamped to 2^25 + 3, then rounded to f32) do not.
    let x = [33_554_436.0f32];
    let (y_t, m_t) = fq(&x, 1.0, 0, 0, 33_554_435);
    let (y_c, m_c) =
        fake_quantize_per_channel_affine_with_mask(&x, &[1], 0, &[1.0], &[0], 0, 33_554_435);
    assert_eq!(bits(&y_t), bits(&[33_554_436.0]));
    assert_eq!(bits(&y_c), bits(&[33_554_436.0]));
    assert_eq!((m_t[0], m_c[0]), (true, false));
    // A zero point of 2^24 + 1 is added as the f32 2^24 and subtracted as an integer.
    let (y, _) = fq(&[0.0], 1.0, 16_777_217, 0, 1 << 26);
    assert_eq!(y[0].to_bits(), (-1.0f32).to_bits());
}

#[test]
fn idempotence_fails_beyond_its_stated_range() {
    // The counterexample quoted in the module docs (also seen in PyTorch 2.15).
    let s = f32::from_bits(0x4008_2722);
    let lim = 1 << 30;
    let y = fake_quantize_per_tensor_affine(&[24_206_812.0], s, 0, -lim, lim);
    let z = fake_quantize_per_tensor_affine(&y, s, 0, -lim, lim);
    assert_eq!(y[0].to_bits(), 24_206_814.0f32.to_bits());
    assert_eq!(z[0].to_bits(), 24_206_816.0f32.to_bits());
}

#[test]
fn into_variants_and_empty_inputs() {
    let x = [0.3f32, -7.0, 2.0];
    let mut out = [9.0f32; 3];
    let mut mask = [true; 3];
    fake_quantize_per_tensor_affine_into(&x, 0.5, 0, -4, 3, &mut out);
    assert_eq!(bits(&out), bits(&[0.5, -2.0, 1.5]));
    fake_quantize_per_tensor_affine_with_mask_into(&x, 0.5, 0, -4, 3, &mut out, &mut mask);
    assert_eq!(mask, [true, false, false]);
    let mut out2 = [0.0f32; 3];
    fake_quantize_per_channel_affine_into(&x, &[3], 0, &[0.5; 3], &[0; 3], -4, 3, &mut out2);
    assert_eq!(bits(&out2), bits(&out));
    assert!(fake_quantize_per_tensor_affine(&[], 0.5, 0, -4, 3).is_empty());
    assert!(
        fake_quantize_per_channel_affine(&[], &[0, 3], 1, &[1.0; 3], &[0; 3], -4, 3).is_empty()
    );
    assert!(
        fake_quantize_per_channel_affine(&[], &[3, 0], 0, &[1.0; 3], &[0; 3], -4, 3).is_empty()
    );
    assert!(ste_backward(&[], &[]).is_empty());
}

#[test]
fn ste_backward_multiplies_like_pytorch() {
    // PyTorch's `dY * mask`: masked finite gradients become ±0, masked NaN/∞ become NaN.
    let g = [-1.0f32, 2.0, -3.0, f32::NAN, f32::INFINITY, 5.0];
    let m = [true, true, false, false, false, true];
    let got = ste_backward(&g, &m);
    assert_eq!(bits(&got[..3]), bits(&[-1.0, 2.0, -0.0]));
    assert!(got[3].is_nan() && got[4].is_nan());
    assert_eq!(got[5].to_bits(), 5.0f32.to_bits());
    let mut out = [0.0f32; 6];
    ste_backward_into(&g, &m, &mut out);
    assert_eq!(bits(&out[..3]), bits(&got[..3]));
}

// ---- Argument checks --------------------------------------------------------------------

#[test]
#[should_panic(
    expected = "fake_quantize_per_tensor_affine: scale must be finite and positive, got 0e0"
)]
fn panics_on_zero_scale() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], 0.0, 0, 0, 255);
}

#[test]
#[should_panic(expected = "scale must be finite and positive, got -1e0")]
fn panics_on_negative_scale() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], -1.0, 0, 0, 255);
}

#[test]
#[should_panic(expected = "scale must be finite and positive, got NaN")]
fn panics_on_nan_scale() {
    let _ = fake_quantize_per_tensor_affine_with_mask(&[1.0], f32::NAN, 0, 0, 255);
}

#[test]
#[should_panic(expected = "scale must be finite and positive, got inf")]
fn panics_on_infinite_scale() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], f32::INFINITY, 0, 0, 255);
}

#[test]
#[should_panic(expected = "is too small: its reciprocal overflows f32")]
fn panics_on_scale_with_infinite_reciprocal() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], 1e-40, 0, 0, 255);
}

#[test]
#[should_panic(expected = "quant_min (5) must not exceed quant_max (4)")]
fn panics_on_inverted_limits() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], 1.0, 5, 5, 4);
}

#[test]
#[should_panic(expected = "zero_point (300) must lie in [quant_min, quant_max] = [0, 255]")]
fn panics_on_zero_point_above_range() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], 1.0, 300, 0, 255);
}

#[test]
#[should_panic(expected = "zero_point (-1) must lie in [quant_min, quant_max] = [0, 255]")]
fn panics_on_zero_point_below_range() {
    let _ = fake_quantize_per_tensor_affine(&[1.0], 1.0, -1, 0, 255);
}

#[test]
#[should_panic(expected = "fake_quantize_per_tensor_affine: out has 2 elements, expected 3")]
fn panics_on_output_length_mismatch() {
    let mut out = [0.0f32; 2];
    fake_quantize_per_tensor_affine_into(&[1.0, 2.0, 3.0], 1.0, 0, 0, 255, &mut out);
}

#[test]
#[should_panic(expected = "mask has 4 elements, expected 3")]
fn panics_on_mask_length_mismatch() {
    let (mut out, mut mask) = ([0.0f32; 3], [false; 4]);
    fake_quantize_per_tensor_affine_with_mask_into(&[1.0; 3], 1.0, 0, 0, 255, &mut out, &mut mask);
}

#[test]
#[should_panic(expected = "axis 2 is out of range for a 2-dimensional shape [2, 3]")]
fn per_channel_panics_on_bad_axis() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 6], &[2, 3], 2, &[1.0; 3], &[0; 3], 0, 255);
}

#[test]
#[should_panic(expected = "shape [2, 3] holds 6 elements but x has 5")]
fn per_channel_panics_on_shape_mismatch() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 5], &[2, 3], 1, &[1.0; 3], &[0; 3], 0, 255);
}

#[test]
#[should_panic(expected = "the element count of shape")]
fn per_channel_panics_on_shape_overflow() {
    let _ = fake_quantize_per_channel_affine(&[], &[usize::MAX, 2, 0], 2, &[], &[], 0, 255);
}

#[test]
#[should_panic(expected = "scales has 2 elements, expected 3")]
fn per_channel_panics_on_scales_length() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 6], &[2, 3], 1, &[1.0; 2], &[0; 3], 0, 255);
}

#[test]
#[should_panic(expected = "zero_points has 3 elements, expected 2")]
fn per_channel_panics_on_zero_points_length() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 6], &[2, 3], 0, &[1.0; 2], &[0; 3], 0, 255);
}

#[test]
#[should_panic(expected = "zero_points[1] = 256 must lie in [quant_min, quant_max] = [0, 255]")]
fn per_channel_panics_on_zero_point_out_of_range() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 6], &[2, 3], 0, &[1.0; 2], &[0, 256], 0, 255);
}

#[test]
#[should_panic(expected = "scales[2] must be finite and positive, got -0e0")]
fn per_channel_panics_on_bad_scale() {
    let _ =
        fake_quantize_per_channel_affine(&[0.0; 6], &[2, 3], 1, &[1.0, 2.0, -0.0], &[0; 3], 0, 255);
}

#[test]
#[should_panic(expected = "quant_min (1) must not exceed quant_max (0)")]
fn per_channel_panics_on_inverted_limits() {
    let _ = fake_quantize_per_channel_affine(&[0.0; 2], &[2], 0, &[1.0; 2], &[0; 2], 1, 0);
}

#[test]
#[should_panic(expected = "mask has 5 elements, expected 6")]
fn per_channel_panics_on_mask_length() {
    let (mut out, mut mask) = ([0.0f32; 6], [false; 5]);
    fake_quantize_per_channel_affine_with_mask_into(
        &[0.0; 6],
        &[2, 3],
        1,
        &[1.0; 3],
        &[0; 3],
        0,
        255,
        &mut out,
        &mut mask,
    );
}

#[test]
#[should_panic(expected = "ste_backward: mask has 2 elements, expected 3")]
fn ste_backward_panics_on_length_mismatch() {
    let _ = ste_backward(&[1.0; 3], &[true; 2]);
}

// ---- Properties -------------------------------------------------------------------------

/// `default_cases` cases, or `PROPTEST_CASES` when it is set (for long runs).
pub(crate) fn proptest_config(default_cases: u32) -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default() // reads PROPTEST_CASES
    } else {
        ProptestConfig::with_cases(default_cases)
    }
}

/// Integer formats up to 16 bits: `(quant_min, quant_max, zero_point)`.
fn qparams() -> impl Strategy<Value = (i32, i32, i32)> {
    (1u32..=16, any::<bool>(), any::<u64>()).prop_map(|(b, signed, r)| {
        let (lo, hi) = if signed {
            (-(1i32 << (b - 1)), (1i32 << (b - 1)) - 1)
        } else {
            (0, (1i32 << b) - 1)
        };
        let span = (hi - lo) as u64 + 1;
        (lo, hi, lo + (r % span) as i32)
    })
}

/// Normal scales over many binades.
fn scales() -> impl Strategy<Value = f32> {
    (-30.0f32..30.0).prop_map(|e| 2f32.powf(e))
}

/// The code `q − zp` of an output, if it is on the grid: recovers `k` from `y / s` and
/// checks that `f32(k) · s` reproduces `y` bit for bit.
fn grid_code(y: f32, s: f32) -> Option<i64> {
    let k = (f64::from(y) / f64::from(s)).round() as i64;
    ((k as f32 * s).to_bits() == y.to_bits()).then_some(k)
}

proptest! {
    #![proptest_config(proptest_config(96))]

    #[test]
    fn outputs_lie_on_the_grid(
        (lo, hi, zp) in qparams(),
        s in scales(),
        u in proptest::collection::vec(-1.5f32..1.5, 1..48),
    ) {
        // Inputs spread over 1.5× the representable range, both sides.
        let span = (hi - lo) as f32 * s;
        let x: Vec<f32> = u.iter().map(|&t| t * span).collect();
        let (y, m) = fq(&x, s, zp, lo, hi);
        for i in 0..x.len() {
            let k = grid_code(y[i], s);
            prop_assert!(k.is_some(), "x = {:e}: y = {:e} is off the grid", x[i], y[i]);
            let q = k.unwrap() + i64::from(zp);
            prop_assert!(i64::from(lo) <= q && q <= i64::from(hi), "code {} outside", q);
            // A false mask means the output sits at a limit.
            prop_assert!(m[i] || q == i64::from(lo) || q == i64::from(hi));
        }
    }

    #[test]
    fn fake_quantize_is_idempotent(
        (lo, hi, zp) in qparams(),
        s in scales(),
        u in proptest::collection::vec(-1.5f32..1.5, 1..48),
    ) {
        let span = (hi - lo) as f32 * s;
        let x: Vec<f32> = u.iter().map(|&t| t * span).collect();
        let (y, m) = fq(&x, s, zp, lo, hi);
        let (z, m2) = fq(&y, s, zp, lo, hi);
        prop_assert_eq!(bits(&z), bits(&y));
        // A fake-quantized value is on the grid inside the limits: its mask is true.
        prop_assert!(m2.iter().all(|&b| b));
        // And the mask of the first pass marks exactly the values that were not clamped
        // *past* a limit: clamped values land on a limit.
        for i in 0..x.len() {
            if !m[i] {
                let k = grid_code(y[i], s).unwrap() + i64::from(zp);
                prop_assert!(k == i64::from(lo) || k == i64::from(hi));
            }
        }
    }

    #[test]
    fn idempotent_up_to_21_bit_ranges(
        b in 17u32..=21,
        s in scales(),
        u in proptest::collection::vec(-1.2f32..1.2, 1..48),
    ) {
        let (lo, hi) = (-(1i32 << (b - 1)), (1i32 << (b - 1)) - 1);
        let x: Vec<f32> = u.iter().map(|&t| t * hi as f32 * s).collect();
        let y = fake_quantize_per_tensor_affine(&x, s, 0, lo, hi);
        let z = fake_quantize_per_tensor_affine(&y, s, 0, lo, hi);
        prop_assert_eq!(bits(&z), bits(&y));
    }

    #[test]
    fn in_range_error_is_at_most_half_a_step(
        (lo, hi, zp) in qparams(),
        s in scales(),
        u in proptest::collection::vec(0.0f64..=1.0, 1..48),
    ) {
        let (a, b) = (f64::from(lo - zp) * f64::from(s), f64::from(hi - zp) * f64::from(s));
        let x: Vec<f32> = u.iter().map(|&t| (a + t * (b - a)) as f32).collect();
        let y = fake_quantize_per_tensor_affine(&x, s, zp, lo, hi);
        for i in 0..x.len() {
            let (xi, yi) = (f64::from(x[i]), f64::from(y[i]));
            if xi < a || xi > b {
                continue; // the cast to f32 stepped outside the range
            }
            // s/2, widened by the reciprocal multiply near half-integers (a few ulps of
            // x/s) and the rounding of the final product (half an ulp of y).
            let bound = 0.5 * f64::from(s) * (1.0 + 1e-6) + xi.abs() * 4.0 * f64::from(f32::EPSILON);
            prop_assert!((yi - xi).abs() <= bound, "x = {:e}, y = {:e}, s = {:e}", xi, yi, s);
        }
    }

    #[test]
    fn per_channel_with_equal_parameters_is_per_tensor(
        (lo, hi, zp) in qparams(),
        s in scales(),
        dims in (1usize..4, 1usize..4, 1usize..4),
        axis in 0usize..3,
        seed in any::<u64>(),
    ) {
        let shape = [dims.0, dims.1, dims.2];
        let n = dims.0 * dims.1 * dims.2;
        let mut rng = numerics::testing::rng::seeded(seed);
        let span = (hi - lo) as f32 * s;
        let x = numerics::testing::rng::uniform_vec(&mut rng, n, -1.5 * span, 1.5 * span);
        let c = shape[axis];
        let (y_c, m_c) = fake_quantize_per_channel_affine_with_mask(
            &x, &shape, axis, &vec![s; c], &vec![zp; c], lo, hi,
        );
        let (y_t, m_t) = fq(&x, s, zp, lo, hi);
        prop_assert_eq!(bits(&y_c), bits(&y_t));
        prop_assert_eq!(m_c, m_t);
    }

    #[test]
    fn per_channel_uses_each_channels_parameters(
        dims in (1usize..4, 1usize..5, 1usize..4),
        axis in 0usize..3,
        seed in any::<u64>(),
    ) {
        // Each channel equals the per-tensor op applied with that channel's parameters.
        let shape = [dims.0, dims.1, dims.2];
        let n = dims.0 * dims.1 * dims.2;
        let mut rng = numerics::testing::rng::seeded(seed);
        let x = numerics::testing::rng::uniform_vec(&mut rng, n, -10.0, 10.0);
        let c = shape[axis];
        let scales: Vec<f32> = (0..c).map(|k| 0.05 * (k + 1) as f32).collect();
        let zps: Vec<i32> = (0..c as i32).map(|k| k - 1).collect();
        let (y, m) = fake_quantize_per_channel_affine_with_mask(&x, &shape, axis, &scales, &zps, -8, 7);
        let strides = [shape[1] * shape[2], shape[2], 1];
        for i in 0..n {
            let ch = (i / strides[axis]) % c;
            let (yt, mt) = fq(&x[i..=i], scales[ch], zps[ch], -8, 7);
            prop_assert_eq!(y[i].to_bits(), yt[0].to_bits());
            prop_assert_eq!(m[i], mt[0]);
        }
    }

    #[test]
    fn ste_passes_exactly_the_masked_gradients(
        g in proptest::collection::vec(-1e3f32..1e3, 0..64),
        seed in any::<u64>(),
    ) {
        let m: Vec<bool> = (0..g.len()).map(|i| (seed >> (i % 64)) & 1 == 1).collect();
        let out = ste_backward(&g, &m);
        for i in 0..g.len() {
            if m[i] {
                prop_assert_eq!(out[i].to_bits(), g[i].to_bits());
            } else {
                prop_assert_eq!(out[i].abs().to_bits(), 0);
            }
        }
    }
}
