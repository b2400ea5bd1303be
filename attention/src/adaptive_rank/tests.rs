//! Unit tests of the building blocks: randomized SVD, the iterative pseudo-inverse, the
//! streaming landmark pass, segments and the error metric.

use ndarray::{Array2, ArrayView2};
use ndarray_linalg::{JobSvd, SVDDC};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::landmarks::{landmark_pass, segments, strided};
use super::nystrom::{iterative_pinv, svd_pinv};
use super::rsvd::randomized_svd;
use super::sample::rel_frobenius;

fn random(rng: &mut StdRng, m: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_simple_fn((m, n), || rng.random_range(-1.0..1.0))
}

fn frob(a: &Array2<f64>) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn randomized_svd_recovers_an_exactly_low_rank_matrix() {
    let mut rng = StdRng::seed_from_u64(1);
    let a = random(&mut rng, 60, 5).dot(&random(&mut rng, 5, 40));
    let (u, s, vt) = randomized_svd(&a, 5, &mut rng).unwrap();
    assert_eq!((u.dim(), s.len(), vt.dim()), ((60, 5), 5, (5, 40)));
    let mut us = u.clone();
    for (mut col, &x) in us.columns_mut().into_iter().zip(&s) {
        col.mapv_inplace(|v| v * x);
    }
    let rec = us.dot(&vt);
    assert!(frob(&(&rec - &a)) <= 1e-10 * frob(&a));
    let (_, exact, _) = a.svddc(JobSvd::None).unwrap();
    for (x, y) in s.iter().zip(exact.iter()) {
        assert!((x - y).abs() <= 1e-10 * exact[0], "{x} vs {y}");
    }
}

#[test]
fn randomized_svd_truncation_is_near_optimal() {
    // Decaying spectrum: the rank-k error is close to σ_{k+1} (Halko et al. Thm 10.6).
    let mut rng = StdRng::seed_from_u64(2);
    let n = 50;
    let a = random(&mut rng, n, n);
    let (_, exact, _) = a.svddc(JobSvd::None).unwrap();
    let (u, s, vt) = randomized_svd(&a, 10, &mut rng).unwrap();
    let mut us = u.clone();
    for (mut col, &x) in us.columns_mut().into_iter().zip(&s) {
        col.mapv_inplace(|v| v * x);
    }
    let err = frob(&(&us.dot(&vt) - &a));
    let optimal = exact.iter().skip(10).map(|x| x * x).sum::<f64>().sqrt();
    assert!(err <= 1.2 * optimal, "{err} vs optimal {optimal}");
}

#[test]
fn pseudo_inverses() {
    let mut rng = StdRng::seed_from_u64(3);
    let r = 12;
    let a = Array2::<f64>::eye(r) + random(&mut rng, r, r) * 0.1;
    let eye = Array2::<f64>::eye(r);
    // Six steps are already close to the inverse of a well-conditioned matrix.
    assert!(frob(&(a.dot(&iterative_pinv(&a)) - &eye)) < 1e-3);
    assert!(frob(&(a.dot(&svd_pinv(&a).unwrap()) - &eye)) < 1e-10);
    // Rank-deficient: the Penrose conditions A Z A = A and Z A Z = Z.
    let b = random(&mut rng, r, 3).dot(&random(&mut rng, 3, r));
    let z = svd_pinv(&b).unwrap();
    assert!(frob(&(b.dot(&z).dot(&b) - &b)) < 1e-10 * frob(&b));
    assert!(frob(&(z.dot(&b).dot(&z) - &z)) < 1e-10 * frob(&z));
    // Zero matrix: zero pseudo-inverses.
    let zero = Array2::zeros((3, 3));
    assert!(iterative_pinv(&zero).iter().all(|x| x.abs() <= 0.0));
    assert!(svd_pinv(&zero).unwrap().iter().all(|x| x.abs() <= 0.0));
}

#[test]
fn landmark_pass_matches_the_direct_sums() {
    let mut rng = StdRng::seed_from_u64(4);
    let (c, n, d) = (5, 2500, 7); // more than two key blocks
    let to32 = |a: Array2<f64>| a.mapv(|x| x as f32);
    let ql = to32(random(&mut rng, c, d) * 2.0);
    let k = to32(random(&mut rng, n, d));
    let v = to32(random(&mut rng, n, d));
    let pass = landmark_pass(ql.view(), k.view(), v.view(), 0.7);
    for r in 0..c {
        let scores: Vec<f64> = (0..n)
            .map(|j| {
                0.7 * (0..d)
                    .map(|x| f64::from(ql[[r, x]] * k[[j, x]]))
                    .sum::<f64>()
            })
            .collect();
        let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!((f64::from(pass.max[r]) - m).abs() < 1e-5);
        let sum: f64 = scores.iter().map(|s| (s - m).exp()).sum();
        assert!((pass.sums[r] - sum).abs() < 1e-5 * sum);
        for x in 0..d {
            let acc: f64 = (0..n)
                .map(|j| (scores[j] - m).exp() * f64::from(v[[j, x]]))
                .sum();
            assert!((pass.acc[[r, x]] - acc).abs() < 1e-4 * sum, "{r} {x}");
        }
    }
}

#[test]
fn segments_and_strided_indices_cover_the_range() {
    assert_eq!(segments(10, 3), vec![(0, 4), (4, 3), (7, 3)]);
    assert_eq!(segments(4, 4), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(strided(10, 2), vec![2, 7]);
    assert_eq!(strided(3, 3), vec![0, 1, 2]);
    let x = Array2::from_shape_fn((6, 2), |(i, j)| (i * 2 + j) as f32);
    let m = super::landmarks::segment_means(ArrayView2::from(&x), 2);
    assert_eq!(m.row(0).to_vec(), vec![2.0, 3.0]);
    assert_eq!(m.row(1).to_vec(), vec![8.0, 9.0]);
}

#[test]
fn relative_frobenius_error() {
    assert!(rel_frobenius(&[3.0, 4.0], &[3.0, 4.0]).abs() <= 0.0);
    assert!((rel_frobenius(&[3.0, 4.0], &[3.0, 5.0]) - 0.2).abs() < 1e-12);
    assert!(rel_frobenius(&[0.0], &[1.0]).is_infinite());
    assert!(rel_frobenius(&[1.0], &[f32::NAN]).is_infinite());
}
