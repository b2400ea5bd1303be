//! Unit tests of the flash kernels: the polynomial `exp2` against `f64`, and every SIMD
//! level against its scalar twin, bit for bit (kernel by kernel and for whole calls).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::fallback::{self, EXP2_MAX_REL_ERROR};
use super::isa::Isa;
use super::{FlashParams, attention_at};
use crate::{Mask, Shape};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// The SIMD levels of this CPU (the scalar level is the twin they are compared with).
fn simd_levels() -> Vec<Isa> {
    let levels: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Scalar)
        .collect();
    if levels.is_empty() {
        eprintln!("SKIP SIMD twins: this CPU has no SIMD level (only the scalar kernels run)");
    }
    levels
}

#[test]
fn exp2_is_within_its_documented_error_of_f64() {
    let mut worst = (0.0f32, 0.0f64);
    let steps = 1 << 16;
    for i in 0..=126 * steps {
        let x = -(i as f32) / steps as f32;
        let want = 2f64.powf(f64::from(x));
        let got = f64::from(fallback::exp2(x));
        let rel = (got - want).abs() / want;
        if rel > worst.1 {
            worst = (x, rel);
        }
    }
    eprintln!("exp2: max relative error {:e} at x = {}", worst.1, worst.0);
    assert!(
        worst.1 <= EXP2_MAX_REL_ERROR,
        "exp2({}) relative error {:e} > {EXP2_MAX_REL_ERROR:e}",
        worst.0,
        worst.1
    );
}

#[test]
fn exp2_is_exact_at_integers_and_zero_below_its_range() {
    for k in 0..=126 {
        let got = fallback::exp2(-(k as f32));
        assert!(got.to_bits() == (2f32).powi(-k).to_bits(), "2^-{k} = {got}");
    }
    for x in [-127.0, -200.0, -1e30, f32::NEG_INFINITY] {
        assert!(
            fallback::exp2(x).to_bits() == 0,
            "exp2({x}) = {}",
            fallback::exp2(x)
        );
    }
}

#[test]
fn qk_kernels_equal_their_scalar_twin() {
    let mut rng = StdRng::seed_from_u64(1);
    for isa in simd_levels() {
        for rows in [1, 2, 5, 6, 7, 12, 13] {
            for d in [1, 5, 16, 17, 64, 130] {
                for width in [16, 48, 64, 80, 128, 144] {
                    let qs = uniform(&mut rng, rows * d, -2.0, 2.0);
                    let kt = uniform(&mut rng, width * d, -2.0, 2.0);
                    let mut want = vec![0.0; rows * width];
                    let mut got = vec![1.0; rows * width];
                    fallback::qk(&qs, rows, d, &kt, width, &mut want);
                    isa.qk(&qs, rows, d, &kt, width, &mut got);
                    assert!(
                        bits(&want) == bits(&got),
                        "{isa:?} qk rows {rows} d {d} width {width}"
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_row_kernels_equal_their_scalar_twins() {
    let mut rng = StdRng::seed_from_u64(2);
    for isa in simd_levels() {
        for width in [16, 32, 80, 256] {
            for case in 0..6 {
                let mut row = uniform(&mut rng, width, -150.0, 20.0);
                match case {
                    // masked keys and signed zeros
                    1 => row
                        .iter_mut()
                        .step_by(3)
                        .for_each(|x| *x = f32::NEG_INFINITY),
                    2 => row
                        .iter_mut()
                        .enumerate()
                        .for_each(|(j, x)| *x = if j % 2 == 0 { 0.0 } else { -0.0 }),
                    3 => row.fill(f32::NEG_INFINITY),
                    _ => {}
                }
                let m = fallback::row_max(&row);
                assert!(
                    m.to_bits() == isa.row_max(&row).to_bits(),
                    "{isa:?} row_max width {width} case {case}"
                );
                let m_ref = if m == f32::NEG_INFINITY { 0.0 } else { m };
                for shift in [m_ref, m_ref + 3.5, 0.0] {
                    let (mut want, mut got) = (row.clone(), row.clone());
                    let sum_want = fallback::exp_row(&mut want, shift);
                    let sum_got = isa.exp_row(&mut got, shift);
                    assert!(
                        bits(&want) == bits(&got) && sum_want.to_bits() == sum_got.to_bits(),
                        "{isa:?} exp_row width {width} case {case} shift {shift}"
                    );
                }
            }
        }
    }
}

#[test]
fn pv_kernels_equal_their_scalar_twin() {
    let mut rng = StdRng::seed_from_u64(3);
    for isa in simd_levels() {
        for rows in [1, 3, 5, 6, 7, 13] {
            for width in [16, 64, 80] {
                for keys in [0, 1, width - 1, width] {
                    for (d_pad, v_stride) in [(16, 16), (48, 50), (64, 64), (80, 80), (144, 144)] {
                        let p = uniform(&mut rng, rows * width, 0.0, 1.0);
                        let v = uniform(&mut rng, keys.max(1) * v_stride, -3.0, 3.0);
                        let mut alpha = uniform(&mut rng, rows, 0.0, 1.0);
                        alpha[0] = 0.0;
                        let o = uniform(&mut rng, rows * d_pad, -1.0, 1.0);
                        let (mut want, mut got) = (o.clone(), o);
                        fallback::pv(
                            &p, rows, width, keys, &v, v_stride, d_pad, &alpha, &mut want,
                        );
                        isa.pv(&p, rows, width, keys, &v, v_stride, d_pad, &alpha, &mut got);
                        assert!(
                            bits(&want) == bits(&got),
                            "{isa:?} pv rows {rows} width {width} keys {keys} d_pad {d_pad}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_level_computes_the_same_attention_bits() {
    let mut rng = StdRng::seed_from_u64(4);
    let shapes = [
        (Shape::self_attention(2, 70, 64), 32, 64),
        (
            Shape {
                heads: 4,
                kv_heads: 2,
                n_q: 9,
                n_k: 150,
                d: 37,
            },
            4,
            48,
        ),
        (Shape::self_attention(1, 33, 130), 7, 16),
    ];
    for isa in simd_levels() {
        for (shape, block_q, block_k) in shapes {
            let q = uniform(&mut rng, shape.q_len(), -2.0, 2.0);
            let k = uniform(&mut rng, shape.kv_len(), -2.0, 2.0);
            let v = uniform(&mut rng, shape.kv_len(), -1.0, 1.0);
            let valid: Vec<bool> = (0..shape.n_k).map(|j| j % 5 != 1).collect();
            let params = FlashParams {
                block_q,
                block_k,
                parallel: false,
            };
            for mask in [
                Mask::NONE,
                Mask::causal(shape.n_k - shape.n_q),
                Mask {
                    causal: true,
                    q_offset: 0,
                    key_valid: Some(&valid),
                },
            ] {
                let want =
                    attention_at(Isa::Scalar, &q, &k, &v, shape, mask, None, &params).unwrap();
                let got = attention_at(isa, &q, &k, &v, shape, mask, None, &params).unwrap();
                assert!(
                    bits(&want.out) == bits(&got.out)
                        && want
                            .lse
                            .iter()
                            .map(|x| x.to_bits())
                            .eq(got.lse.iter().map(|x| x.to_bits())),
                    "{isa:?} {shape:?} {mask:?}"
                );
            }
        }
    }
}

#[test]
fn pack_kernels_equal_their_scalar_twin() {
    let mut rng = StdRng::seed_from_u64(5);
    for isa in simd_levels() {
        for keys in [1, 2, 15, 16, 17, 63, 64, 65, 100, 150] {
            for d in [1, 7, 16, 17, 64, 130] {
                let k = uniform(&mut rng, keys * d, -1.0, 1.0);
                let width = keys.next_multiple_of(16);
                let mut want = vec![f32::NAN; width * d];
                let mut got = vec![f32::NAN; width * d];
                fallback::pack_k(&k, keys, d, &mut want);
                isa.pack_k(&k, keys, d, &mut got);
                assert!(
                    bits(&want) == bits(&got),
                    "{isa:?} pack_k keys {keys} d {d}"
                );
                // The panels hold K transposed, zeros past the last key.
                let (p0, jj, c) = (64 * ((keys - 1) / 64), (keys - 1) % 64, d - 1);
                let w = 64.min(width - p0);
                assert!(want[p0 * d + c * w + jj].to_bits() == k[(keys - 1) * d + c].to_bits());
                if keys < width {
                    assert!(want[p0 * d + c * w + jj + 1].to_bits() == 0);
                }
            }
        }
    }
}
