//! The public paths the acceptance tests and downstream crates use.

use numerics::{F4E2M1FN, F8E4M3FN, F8E5M2, Format, MiniFloat, Special};

#[test]
fn acceptance_paths() {
    assert_eq!(numerics::F8E4M3FN::from_f32(1.0).to_bits(), 0x38);
    assert_eq!(F8E5M2::from_f32(-2.0).to_bits(), 0xC0);
    assert_eq!(F4E2M1FN::from_bits(0xFF).to_bits(), 0x0F);
    assert!(F8E4M3FN::NAN.is_nan());
    let _: numerics::f16 = numerics::f16::from_f32(1.0);
    let _: numerics::bf16 = numerics::bf16::from_f32(1.0);
}

#[test]
fn formats_parse_from_their_names_and_ml_dtypes_names() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
    }
    assert_eq!("float8_e4m3fn".parse::<Format>().unwrap(), Format::F8E4M3FN);
    assert_eq!("bfloat16".parse::<Format>().unwrap(), Format::BF16);
    assert_eq!("FP16".parse::<Format>().unwrap(), Format::F16);
    let err = "f7e1m1".parse::<Format>().unwrap_err();
    assert!(err.to_string().contains("f8e4m3fn"), "{err}");
}

#[test]
fn a_run_time_format_gets_the_same_guarantees() {
    // E3M4 bias 3, IEEE style: 16 codes per binade, max 15.5.
    let e3m4 = MiniFloat::new(3, 4, 3, Special::Ieee).unwrap();
    assert_eq!(e3m4.max_finite().to_bits(), 15.5f32.to_bits());
    assert_eq!(
        e3m4.decode(e3m4.encode(15.75)).to_bits(),
        f32::INFINITY.to_bits()
    );
    assert_eq!(
        e3m4.decode(e3m4.encode(1.03125)).to_bits(),
        1.0f32.to_bits(),
        "tie to even"
    );
    assert!(MiniFloat::new(3, 4, 200, Special::Ieee).is_err());
}
