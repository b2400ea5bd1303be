//! `attention::Variant`: the spec grammar, its errors, and that every variant runs through
//! the one entry point.

use attention::{Mask, Shape, Variant, reference};

#[test]
fn specs_parse_display_and_parse_again() {
    for spec in [
        "reference",
        "flash",
        "dense:bq=32;bk=64",
        "dilated:w=8,16;r=1,2",
        "infini:seg=16;update=delta;beta=0.5",
        "infini:seg=16;update=linear",
        "rank:tol=0.05;method=rsvd",
        "precision:policy=quality",
        "precision:format=e4m3",
    ] {
        let v: Variant = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        let again: Variant = v.to_string().parse().unwrap();
        assert_eq!(again.to_string(), v.to_string(), "{spec}");
    }
}

#[test]
fn bad_specs_name_the_problem() {
    for (spec, needle) in [
        ("nope", "unknown variant"),
        ("flash:bq", "KEY=VALUE"),
        ("flash:zz=1", "no key `zz`"),
        ("flash:bq=x", "not a number"),
        ("flash:bq=1;bq=2", "repeated"),
        ("dilated:r=1", "needs w"),
        ("infini:update=fast", "linear or delta"),
        ("rank:method=qr", "nystrom or rsvd"),
        ("precision:format=f8", "e4m3"),
        ("reference:x=1", "no key"),
    ] {
        let e = spec.parse::<Variant>().unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    // Parameter validation of the variants themselves.
    assert!("dilated:w=8;r=9".parse::<Variant>().is_err());
    assert!("dilated:w=8,16;r=1".parse::<Variant>().is_err());
}

#[test]
fn every_variant_runs_and_dense_ones_match_the_reference() {
    let shape = Shape::self_attention(2, 24, 8);
    let fill = |n: usize, s: u32| -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ s) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    };
    let (q, k, v) = (
        fill(shape.q_len(), 1),
        fill(shape.kv_len(), 2),
        fill(shape.kv_len(), 3),
    );
    let mask = Mask::causal(0);
    let want = reference::attention(&q, &k, &v, shape, mask, None).unwrap();
    for spec in ["flash", "rank", "precision:format=f32", "dilated:w=24;r=1"] {
        let got = spec
            .parse::<Variant>()
            .unwrap()
            .run(&q, &k, &v, shape, mask, None)
            .unwrap();
        let err = got
            .out
            .iter()
            .zip(&want.out)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-5, "{spec}: {err}");
    }
    for spec in [
        "dilated:w=8,16;r=1,2",
        "infini:seg=8",
        "precision:format=e5m2",
    ] {
        let got = spec
            .parse::<Variant>()
            .unwrap()
            .run(&q, &k, &v, shape, mask, None)
            .unwrap();
        assert!(got.out.iter().all(|x| x.is_finite()), "{spec}");
        assert_eq!(got.out.len(), want.out.len());
    }
}
