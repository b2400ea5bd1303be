//! The reference itself, on cases computed by hand.

use attention::reference::attention;
use attention::{Mask, Shape};

#[test]
fn one_key_returns_its_value_and_lse() {
    let shape = Shape::self_attention(1, 1, 2);
    let o = attention(
        &[1.0, 2.0],
        &[3.0, 4.0],
        &[5.0, -6.0],
        shape,
        Mask::NONE,
        Some(0.5),
    )
    .unwrap();
    assert_eq!(o.out, vec![5.0, -6.0]);
    assert!((o.lse[0] - 0.5 * 11.0).abs() < 1e-12);
}

#[test]
fn two_equal_keys_average_and_causal_hides_the_future() {
    // Query 0 sees key 0 only (causal); query 1 sees both, with equal scores.
    let shape = Shape::self_attention(1, 2, 1);
    let q = [0.0, 0.0];
    let o = attention(&q, &[1.0, 1.0], &[2.0, 4.0], shape, Mask::causal(0), None).unwrap();
    assert_eq!(o.out, vec![2.0, 3.0]);
    assert!((o.lse[1] - 2f64.ln()).abs() < 1e-12);
}

#[test]
fn fully_masked_rows_are_zero_with_minus_infinite_lse() {
    let shape = Shape::self_attention(1, 2, 1);
    let valid = [false, false];
    let mask = Mask {
        key_valid: Some(&valid),
        ..Mask::NONE
    };
    let o = attention(&[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0], shape, mask, None).unwrap();
    assert_eq!(o.out, vec![0.0, 0.0]);
    assert!(o.lse.iter().all(|l| *l == f64::NEG_INFINITY));
}

#[test]
fn grouped_query_heads_share_their_kv_head() {
    let shape = Shape {
        heads: 4,
        kv_heads: 2,
        n_q: 1,
        n_k: 1,
        d: 1,
    };
    let o = attention(&[1.0; 4], &[1.0, 1.0], &[7.0, 9.0], shape, Mask::NONE, None).unwrap();
    assert_eq!(o.out, vec![7.0, 7.0, 9.0, 9.0]);
}

#[test]
fn bad_shapes_are_errors() {
    let s = Shape::self_attention(1, 2, 2);
    assert!(attention(&[0.0; 3], &[0.0; 4], &[0.0; 4], s, Mask::NONE, None).is_err());
    let gqa = Shape {
        heads: 3,
        kv_heads: 2,
        ..s
    };
    assert!(attention(&[0.0; 12], &[0.0; 8], &[0.0; 8], gqa, Mask::NONE, None).is_err());
    let valid = [true];
    let m = Mask {
        key_valid: Some(&valid),
        ..Mask::NONE
    };
    assert!(attention(&[0.0; 4], &[0.0; 4], &[0.0; 4], s, m, None).is_err());
}
