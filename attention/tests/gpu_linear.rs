//! The linear-algebra kernels of `attention::gpu` (matmul in f32, f16 and packed 16-bit
//! storage; row softmax; quantized matvec) against `f64` CPU references, on sizes that
//! straddle the tiles, workgroups and quantization blocks.

use attention::gpu::matmul::{self, Storage};
use attention::gpu::qmatvec::{self, QWeights};
use attention::gpu::softmax::{self, softmax_rows};
use attention::gpu::{Gpu, adapter_or_skip};
use quant::QuantizedTensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::normal;

/// f32 matmul: allowed error relative to `k·max|a|·max|b|` (a forward-error bound of a
/// k-term dot product is `k·u·Σ|a||b|`, and blocked sums do far better in practice).
const MATMUL_F32_TOL: f64 = 1e-5;
/// 16-bit storage: the inputs' rounding (`2u` relative per product) plus an f16 product
/// rounding for the native variant, relative to `Σ_l |a_il||b_lj|`, in units of the format's
/// unit roundoff.
const MATMUL_16_TOL_ULPS: f64 = 4.0;
/// Softmax: allowed error relative to the value, plus an absolute floor.
const SOFTMAX_REL_TOL: f64 = 1e-5;
/// Softmax absolute floor (values far below it are within f32 exp's relative error anyway).
const SOFTMAX_ABS_TOL: f64 = 1e-7;
/// Quantized matvec: allowed error relative to `Σ_j |w_ij x_j|` of the dequantized weight
/// (f32 sums of up to a few hundred terms).
const QMATVEC_TOL: f64 = 1e-5;

fn f64_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut abs = vec![0.0; m * n];
    for i in 0..m {
        for l in 0..k {
            let av = f64::from(a[i * k + l]);
            for j in 0..n {
                let bv = f64::from(b[l * n + j]);
                c[i * n + j] += av * bv;
                abs[i * n + j] += (av * bv).abs();
            }
        }
    }
    (c, abs)
}

const SIZES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (17, 33, 65),
    (64, 64, 64),
    (65, 63, 129),
    (63, 16, 1),
    (1, 200, 63),
    (130, 17, 66),
    (3, 0, 5),
];

#[test]
fn matmul_f32_matches_f64_on_tile_straddling_sizes() {
    let Some(gpu) = adapter_or_skip("matmul_f32_matches_f64_on_tile_straddling_sizes") else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(1);
    for (m, k, n) in SIZES {
        let a = normal(&mut rng, m * k, 1.0);
        let b = normal(&mut rng, k * n, 1.0);
        let c = matmul::matmul(gpu, &a, &b, m, k, n).unwrap();
        let (want, _) = f64_matmul(&a, &b, m, k, n);
        let amax = a.iter().fold(0.0f32, |x, v| x.max(v.abs())) as f64;
        let bmax = b.iter().fold(0.0f32, |x, v| x.max(v.abs())) as f64;
        let scale = (k as f64 * amax * bmax).max(f64::MIN_POSITIVE);
        assert_eq!(c.len(), m * n);
        for (i, (&g, &w)) in c.iter().zip(&want).enumerate() {
            let err = (f64::from(g) - w).abs() / scale;
            assert!(
                err <= MATMUL_F32_TOL,
                "{m}×{k}×{n} [{i}]: {g} vs {w} ({err:e})"
            );
        }
    }
}

fn check_16(gpu: &Gpu, storage: Storage) {
    let mut rng = StdRng::seed_from_u64(2);
    let u = storage.unit_roundoff();
    for (m, k, n) in SIZES {
        let a = normal(&mut rng, m * k, 1.0);
        let b = normal(&mut rng, k * n, 1.0);
        let c = matmul::matmul_with(gpu, storage, &a, &b, m, k, n).unwrap();
        let (want, abs) = f64_matmul(&a, &b, m, k, n);
        for (i, ((&g, &w), &s)) in c.iter().zip(&want).zip(&abs).enumerate() {
            let err = (f64::from(g) - w).abs();
            let bound = MATMUL_16_TOL_ULPS * u * s + MATMUL_F32_TOL * s;
            assert!(
                err <= bound,
                "{storage:?} {m}×{k}×{n} [{i}]: {g} vs {w} (err {err:e}, bound {bound:e})"
            );
        }
    }
}

#[test]
fn matmul_packed_f16_and_bf16_match_within_their_roundoff() {
    let Some(gpu) = adapter_or_skip("matmul_packed_f16_and_bf16_match_within_their_roundoff")
    else {
        return;
    };
    check_16(gpu, Storage::PackedF16);
    check_16(gpu, Storage::PackedBf16);
}

#[test]
fn matmul_native_f16_matches_within_its_roundoff() {
    let Some(gpu) = adapter_or_skip("matmul_native_f16_matches_within_its_roundoff") else {
        return;
    };
    if !gpu.info().shader_f16 {
        eprintln!(
            "SKIP matmul f16 native: {} has no SHADER_F16",
            gpu.info().name
        );
        assert!(matmul::matmul_with(gpu, Storage::F16Native, &[1.0], &[1.0], 1, 1, 1).is_err());
        return;
    }
    check_16(gpu, Storage::F16Native);
}

#[test]
fn matmul_rejects_bad_shapes_and_buffers() {
    let Some(gpu) = adapter_or_skip("matmul_rejects_bad_shapes_and_buffers") else {
        return;
    };
    assert!(matches!(
        matmul::matmul(gpu, &[1.0; 5], &[1.0; 6], 2, 3, 2),
        Err(attention::Error::Shape { .. })
    ));
    let a = gpu.upload("a", &[1.0f32; 4]);
    let c = gpu.zeros("c", 16);
    assert!(matmul::matmul_buffers(gpu, &a, &a, &c, 4, 4, 4).is_err());
    assert!(matmul::matmul(gpu, &[], &[], 0, 0, 0).unwrap().is_empty());
    // Too many rows for the grid: 65536 · 64 rows.
    assert!(matmul::matmul_buffers(gpu, &a, &a, &c, 64 * 65_536, 0, 1).is_err());
}

fn f64_softmax(row: &[f32]) -> Vec<f64> {
    let m = row
        .iter()
        .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
    if m == f64::NEG_INFINITY {
        return vec![0.0; row.len()];
    }
    let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn softmax_matches_f64_with_masked_rows() {
    let Some(gpu) = adapter_or_skip("softmax_matches_f64_with_masked_rows") else {
        return;
    };
    let wg = softmax::WORKGROUP as usize;
    let mut rng = StdRng::seed_from_u64(3);
    for (rows, cols) in [
        (1, 1),
        (3, 7),
        (5, wg - 1),
        (4, wg),
        (6, wg + 1),
        (2, 3 * wg + 5),
        (70, 33),
    ] {
        let mut x = normal(&mut rng, rows * cols, 4.0);
        // Row 0: all −∞ (fully masked); row 1 (if any): every other entry masked.
        x[..cols].fill(f32::NEG_INFINITY);
        if rows > 1 {
            for v in x[cols..2 * cols].iter_mut().step_by(2) {
                *v = f32::NEG_INFINITY;
            }
        }
        let y = softmax_rows(gpu, &x, rows, cols).unwrap();
        for r in 0..rows {
            let want = f64_softmax(&x[r * cols..(r + 1) * cols]);
            let got = &y[r * cols..(r + 1) * cols];
            for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(!g.is_nan(), "{rows}×{cols} row {r} col {j}: NaN");
                let err = (f64::from(g) - w).abs();
                assert!(
                    err <= SOFTMAX_REL_TOL * w + SOFTMAX_ABS_TOL,
                    "{rows}×{cols} row {r} col {j}: {g} vs {w}"
                );
            }
        }
        assert!(y[..cols].iter().all(|&v| v == 0.0));
    }
    assert!(softmax_rows(gpu, &[1.0; 5], 2, 3).is_err());
    assert!(softmax_rows(gpu, &[], 0, 3).unwrap().is_empty());
}

fn check_qmatvec(gpu: &Gpu, format: &str, rows: usize, cols: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = normal(&mut rng, rows * cols, 0.5);
    let x = normal(&mut rng, cols, 1.0);
    let q = QuantizedTensor::quantize(format.parse().unwrap(), &w, &[rows, cols]).unwrap();
    let deq = q.dequantize();
    let y = qmatvec::matvec(gpu, &q, &x).unwrap();
    assert_eq!(y.len(), rows);
    for r in 0..rows {
        let (mut want, mut abs) = (0.0f64, 0.0f64);
        for c in 0..cols {
            let t = f64::from(deq[r * cols + c]) * f64::from(x[c]);
            want += t;
            abs += t.abs();
        }
        let err = (f64::from(y[r]) - want).abs();
        assert!(
            err <= QMATVEC_TOL * abs.max(f64::MIN_POSITIVE),
            "{format} {rows}×{cols} row {r}: {} vs {want} (Σ|wx| {abs})",
            y[r]
        );
    }
}

const QFORMATS: [&str; 11] = [
    "int8",
    "int4-g32",
    "int4-g32-asym",
    "int8-pt",
    "int3",
    "int4",
    "q4_0",
    "q4_1",
    "q8_0",
    "fp8-e4m3",
    "fp8-e5m2-pt",
];

#[test]
fn qmatvec_matches_dequantized_f64_for_every_format() {
    let Some(gpu) = adapter_or_skip("qmatvec_matches_dequantized_f64_for_every_format") else {
        return;
    };
    for (i, format) in QFORMATS.iter().enumerate() {
        for rows in [1, 7, 65, 257] {
            for cols in [32, 96, 288] {
                check_qmatvec(gpu, format, rows, cols, (i * 1000 + rows + cols) as u64);
            }
        }
    }
    // Row lengths that straddle the 256-wide workgroup (per-element kernels) and a
    // 64-block row for the GGML kernels.
    let wg = qmatvec::WORKGROUP as usize;
    for format in ["int8", "int4", "int3", "int5-asym", "fp8-e4m3", "fp8-e5m2"] {
        for cols in [1, wg - 1, wg, wg + 1, 2 * wg + 3] {
            check_qmatvec(gpu, format, 3, cols, cols as u64);
        }
    }
    for format in ["q4_0", "q4_1", "q8_0"] {
        check_qmatvec(gpu, format, 5, 32 * 65, 9);
    }
}

#[test]
fn qmatvec_prepared_weights_and_errors() {
    let Some(gpu) = adapter_or_skip("qmatvec_prepared_weights_and_errors") else {
        return;
    };
    let w: Vec<f32> = (0..4 * 64).map(|i| ((i % 13) as f32 - 6.0) / 8.0).collect();
    let q = QuantizedTensor::quantize("q4_0".parse().unwrap(), &w, &[4, 64]).unwrap();
    let prepared = QWeights::upload(gpu, &q).unwrap();
    assert_eq!((prepared.rows(), prepared.cols()), (4, 64));
    assert_eq!(prepared.weight_bytes(), q.storage_bytes());
    let x = vec![1.0f32; 64];
    let y1 = prepared.matvec(gpu, &x).unwrap();
    let y2 = qmatvec::matvec(gpu, &q, &x).unwrap();
    assert_eq!(y1, y2);
    // Wrong x length, unsupported formats, not a matrix: typed errors.
    assert!(prepared.matvec(gpu, &x[..63]).is_err());
    assert!(qmatvec::matvec(gpu, &q, &x[..32]).is_err());
    for unsupported in ["nf4", "mxfp4", "f16"] {
        let t = QuantizedTensor::quantize(unsupported.parse().unwrap(), &w, &[4, 64]).unwrap();
        assert!(!qmatvec::supports(&t));
        assert!(matches!(
            qmatvec::matvec(gpu, &t, &x),
            Err(attention::Error::InvalidParams { .. })
        ));
    }
    let flat = QuantizedTensor::quantize("int8".parse().unwrap(), &w, &[256]).unwrap();
    assert!(QWeights::upload(gpu, &flat).is_err());
}

#[test]
#[allow(clippy::float_cmp, reason = "the decoding must be exact")]
fn packed_16_bit_decoding_is_exact_on_special_values() {
    let Some(gpu) = adapter_or_skip("packed_16_bit_decoding_is_exact_on_special_values") else {
        return;
    };
    // Subnormal, smallest normal, largest finite, negative zero, ±∞: A·[1] returns each
    // value as the format rounds it.
    let values = [
        6.0e-8f32,
        -3.0e-6,
        6.103_515_6e-5,
        65504.0,
        -0.0,
        3.0e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let n = values.len();
    for storage in [Storage::PackedF16, Storage::PackedBf16] {
        let c = matmul::matmul_with(gpu, storage, &values, &[1.0], n, 1, 1).unwrap();
        for (&v, &g) in values.iter().zip(&c) {
            let want = match storage {
                Storage::PackedF16 => numerics::f16::from_f32(v).to_f32(),
                _ => numerics::bf16::from_f32(v).to_f32(),
            };
            assert!(
                g == want || (g.is_nan() && want.is_nan()),
                "{storage:?}: {v} decoded as {g}, expected {want}"
            );
        }
    }
}

#[test]
fn row_kernels_wrap_past_65535_workgroups() {
    let Some(gpu) = adapter_or_skip("row_kernels_wrap_past_65535_workgroups") else {
        return;
    };
    let rows = 65_537;
    let x: Vec<f32> = (0..2 * rows).map(|i| (i % 5) as f32).collect();
    let y = softmax_rows(gpu, &x, rows, 2).unwrap();
    for r in [0, 65_534, 65_535, 65_536] {
        let want = f64_softmax(&x[2 * r..2 * r + 2]);
        for (g, w) in y[2 * r..2 * r + 2].iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() <= SOFTMAX_REL_TOL * w + SOFTMAX_ABS_TOL);
        }
    }
    check_qmatvec(gpu, "q8_0", rows, 32, 11);
}
