//! SIMD paths == scalar twin == engine, bit for bit; slice API behaviour.

use proptest::prelude::*;

use super::*;
use crate::minifloat::MiniFloat;

/// Every spec the lane kernel serves (all ≤8-bit formats but the scale), plus a few
/// run-time formats with other field widths and conventions.
fn lane_specs() -> Vec<MiniFloat> {
    use crate::Special::*;
    let mut v: Vec<MiniFloat> = Format::ALL
        .iter()
        .map(|f| f.spec())
        .filter(|s| s.lane_params(false).is_some())
        .collect();
    for (e, m, b, s) in [
        (3, 4, 3, Ieee),
        (6, 1, 31, Finite),
        (2, 5, 1, Fnuz),
        (7, 0, 63, FiniteNan),
        (1, 6, 0, Finite),
    ] {
        v.push(MiniFloat::new(e, m, b, s).unwrap());
    }
    v
}

fn check_all_isas(src: &[f32]) -> std::result::Result<(), TestCaseError> {
    for spec in lane_specs() {
        for saturating in [false, true] {
            let p = spec.lane_params(saturating).unwrap();
            let want: Vec<u8> = src
                .iter()
                .map(|&x| {
                    let c = if saturating {
                        spec.encode_saturating(x)
                    } else {
                        spec.encode(x)
                    };
                    c as u8
                })
                .collect();
            for isa in Isa::available() {
                let mut got = vec![0xAAu8; src.len()];
                arch::encode_u8(isa, &p, src, &mut got);
                if let Some(i) = (0..src.len()).find(|&i| got[i] != want[i]) {
                    return Err(TestCaseError::fail(format!(
                        "{spec:?} sat={saturating} {isa:?}: x[{i}] = {:e} ({:#010x}) got {:#04x} want {:#04x}",
                        src[i],
                        src[i].to_bits(),
                        got[i],
                        want[i]
                    )));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn simd_encode_matches_engine_on_a_sweep_of_all_binades() {
    let src: Vec<f32> = (0..=0xFFFFu32)
        .flat_map(|hi| [0u32, 1, 0x8000, 0xFFFF].map(move |lo| f32::from_bits(hi << 16 | lo)))
        .collect();
    check_all_isas(&src).unwrap();
}

#[test]
fn table_decode_matches_the_engine_for_every_code() {
    for f in Format::ALL.into_iter().filter(|f| f.bits() <= 8) {
        let codes: Vec<u8> = (0..=255u8).collect();
        let mut got = vec![0.0f32; 256];
        arch::decode_u8(DECODE_TABLES.get(f), &codes, &mut got);
        for (c, g) in codes.iter().zip(&got) {
            let want = f.spec().decode(*c as u16);
            assert!(g.to_bits() == want.to_bits(), "{f} {c:#04x}");
        }
    }
}

proptest! {
    #[test]
    fn simd_encode_matches_engine_on_arbitrary_bits(bits in prop::collection::vec(any::<u32>(), 0..100)) {
        let src: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
        check_all_isas(&src)?;
    }

    #[test]
    fn simd_encode_matches_engine_on_special_values(
        picks in prop::collection::vec(0usize..12, 0..70)
    ) {
        let specials = [
            0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN,
            f32::MIN_POSITIVE, f32::from_bits(1), -f32::from_bits(0x007F_FFFF),
            448.0, 464.0, 61440.0,
        ];
        let src: Vec<f32> = picks.into_iter().map(|i| specials[i]).collect();
        check_all_isas(&src)?;
    }
}

fn typed_roundtrip<T: Element + PartialEq + core::fmt::Debug>(
    src: &[f32],
    enc: impl Fn(f32) -> T,
    dec: impl Fn(T) -> f32,
) {
    let mut codes = vec![T::zeroed(); src.len()];
    encode_slice(src, &mut codes, Par::Seq).unwrap();
    for (i, (&x, c)) in src.iter().zip(&codes).enumerate() {
        let want = enc(x);
        assert_eq!(
            bytemuck::bytes_of(c),
            bytemuck::bytes_of(&want),
            "{} x[{i}] = {x:e}",
            T::FORMAT
        );
    }
    let mut par_codes = vec![T::zeroed(); src.len()];
    encode_slice(src, &mut par_codes, Par::rayon(3)).unwrap();
    assert!(bytemuck::cast_slice::<T, u8>(&par_codes) == bytemuck::cast_slice::<T, u8>(&codes));
    let mut out = vec![0.0f32; src.len()];
    decode_slice(&codes, &mut out, Par::Seq).unwrap();
    let mut par_out = vec![0.0f32; src.len()];
    decode_slice(&codes, &mut par_out, Par::rayon(3)).unwrap();
    for (i, c) in codes.iter().enumerate() {
        let want = dec(*c);
        assert!(
            out[i].to_bits() == want.to_bits() || (out[i].is_nan() && want.is_nan()),
            "{} decode {i}",
            T::FORMAT
        );
        assert_eq!(out[i].to_bits(), par_out[i].to_bits());
    }
}

/// Finite values over a wide range, with NaN and inf sprinkled in, long enough for the
/// rayon path to split (> 2 × 2^16 elements).
fn wide_values(with_nan: bool) -> Vec<f32> {
    (0..300_003u32)
        .map(|i| {
            let bits = i.wrapping_mul(2_654_435_761);
            let x = f32::from_bits(bits);
            if !with_nan && x.is_nan() { 1.5 } else { x }
        })
        .collect()
}

#[test]
fn typed_slices_match_scalar_casts_for_every_element_type() {
    use crate::formats::*;
    let v = wide_values(true);
    typed_roundtrip(&v, half::f16::from_f32, half::f16::to_f32);
    typed_roundtrip(&v, half::bf16::from_f32, half::bf16::to_f32);
    typed_roundtrip(&v, F8E4M3FN::from_f32, F8E4M3FN::to_f32);
    typed_roundtrip(&v, F8E5M2::from_f32, F8E5M2::to_f32);
    typed_roundtrip(&v, F8E4M3FNUZ::from_f32, F8E4M3FNUZ::to_f32);
    typed_roundtrip(&v, F8E5M2FNUZ::from_f32, F8E5M2FNUZ::to_f32);
    typed_roundtrip(&v, F8E8M0FNU::from_f32, F8E8M0FNU::to_f32);
    let finite = wide_values(false);
    typed_roundtrip(&finite, F6E2M3FN::from_f32, F6E2M3FN::to_f32);
    typed_roundtrip(&finite, F6E3M2FN::from_f32, F6E3M2FN::to_f32);
    typed_roundtrip(&finite, F4E2M1FN::from_f32, F4E2M1FN::to_f32);
}

#[test]
fn saturating_slices_match_scalar_saturating_casts() {
    use crate::formats::*;
    let v = wide_values(true);
    let mut out = vec![F8E4M3FN::ZERO; v.len()];
    encode_slice_saturating(&v, &mut out, Par::Seq).unwrap();
    assert!(
        v.iter()
            .zip(&out)
            .all(|(&x, c)| c.to_bits() == F8E4M3FN::from_f32_saturating(x).to_bits())
    );
    let mut h = vec![half::f16::ZERO; v.len()];
    encode_slice_saturating(&v, &mut h, Par::Seq).unwrap();
    for (&x, c) in v.iter().zip(&h) {
        if x.is_nan() {
            assert!(c.is_nan());
        } else {
            assert!(c.is_finite(), "{x} saturates to a finite f16");
            assert_eq!(c.is_sign_negative(), x.is_sign_negative());
        }
    }
}

#[test]
fn nan_into_a_format_without_nan_is_reported() {
    use crate::formats::F4E2M1FN;
    let src = [1.0, 2.0, f32::NAN, 3.0];
    let mut dst = [F4E2M1FN::ZERO; 4];
    let err = encode_slice(&src, &mut dst, Par::Seq).unwrap_err();
    assert_eq!(
        err,
        Error::NanNotRepresentable {
            format: "f4e2m1fn",
            index: 2
        }
    );
    assert!(dst.iter().all(|c| c.to_bits() == 0), "nothing is written");
}

#[test]
fn length_mismatch_is_an_error() {
    use crate::formats::F8E5M2;
    let mut dst = [F8E5M2::ZERO; 2];
    let err = encode_slice(&[1.0, 2.0, 3.0], &mut dst, Par::Seq).unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            left: 3,
            right: 2,
            ..
        }
    ));
    let mut out = [0.0f32; 3];
    assert!(decode_slice(&dst, &mut out, Par::Seq).is_err());
}

#[test]
fn empty_slices_are_fine() {
    let mut dst: [half::bf16; 0] = [];
    encode_slice(&[], &mut dst, Par::rayon(4)).unwrap();
    decode_slice(&dst, &mut [], Par::rayon(4)).unwrap();
}
