//! qmatvec: every layout × every SIMD level against the `f64` reference, SIMD == scalar and
//! `Par::Seq` == `Par::Rayon` bit for bit, exact decoding, contract panics, and a property
//! test over random shapes.

use half::f16;
use numerics::Par;
use numerics::testing::rng::{StdRng, normal_vec, seeded};
use numerics::testing::{Tolerance, assert_close_f64};
use proptest::prelude::*;
use rand::RngExt;

use super::*;

/// The rounding budget per summed term, relative to the largest term.
///
/// Each output sums `cols` terms in `f32`: a lane chain of about `cols/16` fused
/// multiply-adds, a group scale and the 4-level lane tree. A worst-case bound for the shapes
/// tested here (`cols ≤ 512`) is about `(cols/16 + 8)·u` per term (u = 2⁻²⁴), i.e. 2.4e-6;
/// random rounding errors mostly cancel, so 2⁻²⁰ ≈ 9.5e-7 per term leaves room (the largest
/// error seen over these tests, with 1000 proptest cases, was 5.2e-8 per term: 1/18 of it)
/// while still catching one wrong element. The absolute part is scaled by `cols`, as candle scales matmul errors by the
/// length; the relative part is single precision's.
const PER_TERM: f64 = 1.0 / (1u64 << 20) as f64;

/// The largest term the kernels actually add for output row `r` of input `i`. That is
/// `|w·x|`, except where the algorithm splits a weight into two terms that may cancel:
/// U8/U4 sum `s·code·x` and `s·z·x` separately (zero-point correction), Q4_1 sums `d·nib·x`
/// and `m·x`.
fn term(w: &QWeight<'_>, rows: usize, cols: usize, r: usize, c: usize, x: f32) -> f64 {
    let e = r * cols + c;
    let x = f64::from(x).abs();
    match *w {
        QWeight::U8 {
            codes,
            scales,
            zeros,
            group,
        } => {
            let k = e / group;
            f64::from(scales[k]).abs() * (f64::from(codes[e]) + f64::from(zeros[k])) * x
        }
        QWeight::U4 {
            scales,
            zeros,
            group,
            ..
        } => {
            // The nibble is at most 15.
            let k = e / group;
            f64::from(scales[k]).abs() * (15.0 + f64::from(zeros[k])) * x
        }
        QWeight::Q4_1(blocks) => {
            let b = &blocks[e / QK];
            (f64::from(b.d.to_f32()).abs() * 15.0 + 2.0 * f64::from(b.m.to_f32()).abs()) * x
        }
        _ => weight_reference(w, rows, cols, r, c).abs() * x,
    }
}

/// The tolerance for one product: `Tolerance::F32.rel`, and `PER_TERM` times the largest
/// term per summed term.
fn tolerance(w: &QWeight<'_>, rows: usize, cols: usize, x: &[f32], n: usize) -> Tolerance {
    let mut max_term = 0.0f64;
    for r in 0..rows {
        for c in 0..cols {
            for i in 0..n {
                max_term = max_term.max(term(w, rows, cols, r, c, x[i * cols + c]));
            }
        }
    }
    Tolerance::rel_abs(Tolerance::F32.rel, PER_TERM * max_term).scaled_abs(cols)
}

/// The NF4 code values (QLoRA, Dettmers et al. 2023, appendix E), as a test codebook.
const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// A layout and its group/block parameter.
#[derive(Clone, Copy, Debug)]
enum Layout {
    U8(usize),
    /// Symmetric int8 per channel: group = cols, every zero point 128.
    Int8PerChannel,
    U4(usize),
    Codebook4(usize),
    Q8_0,
    Q4_0,
    Q4_1,
    Fp8(Fp8Kind),
    F32,
}

/// Weights generated directly in a layout (random codes, scales, zero points).
enum Owned {
    U8 {
        codes: Vec<u8>,
        scales: Vec<f32>,
        zeros: Vec<u8>,
        group: usize,
    },
    U4 {
        packed: Vec<u8>,
        scales: Vec<f32>,
        zeros: Vec<u8>,
        group: usize,
    },
    Codebook4 {
        packed: Vec<u8>,
        absmax: Vec<f32>,
        block: usize,
    },
    Q8_0(Vec<BlockQ8_0>),
    Q4_0(Vec<BlockQ4_0>),
    Q4_1(Vec<BlockQ4_1>),
    Fp8 {
        codes: Vec<u8>,
        scales: Vec<f32>,
        kind: Fp8Kind,
    },
    F32(Vec<f32>),
}

impl Owned {
    fn view(&self) -> QWeight<'_> {
        match self {
            Owned::U8 {
                codes,
                scales,
                zeros,
                group,
            } => QWeight::U8 {
                codes,
                scales,
                zeros,
                group: *group,
            },
            Owned::U4 {
                packed,
                scales,
                zeros,
                group,
            } => QWeight::U4 {
                packed,
                scales,
                zeros,
                group: *group,
            },
            Owned::Codebook4 {
                packed,
                absmax,
                block,
            } => QWeight::Codebook4 {
                packed,
                absmax,
                block: *block,
                codebook: &NF4,
            },
            Owned::Q8_0(b) => QWeight::Q8_0(b),
            Owned::Q4_0(b) => QWeight::Q4_0(b),
            Owned::Q4_1(b) => QWeight::Q4_1(b),
            Owned::Fp8 {
                codes,
                scales,
                kind,
            } => QWeight::Fp8 {
                codes,
                scales,
                kind: *kind,
            },
            Owned::F32(v) => QWeight::F32(v),
        }
    }
}

fn bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random::<u8>()).collect()
}

fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn half(rng: &mut StdRng, lo: f32, hi: f32) -> f16 {
    f16::from_f32(rng.random_range(lo..hi))
}

/// A finite FP8 code (no NaN or infinity).
fn finite_fp8(rng: &mut StdRng, kind: Fp8Kind) -> u8 {
    loop {
        let c = rng.random::<u8>();
        if kind.decode(c).is_finite() {
            return c;
        }
    }
}

fn random_weight(rng: &mut StdRng, layout: Layout, rows: usize, cols: usize) -> Owned {
    let n = rows * cols;
    match layout {
        Layout::U8(group) => {
            let ng = rows * (cols / group);
            Owned::U8 {
                codes: bytes(rng, n),
                scales: uniform(rng, ng, 1e-3, 0.1),
                zeros: bytes(rng, ng),
                group,
            }
        }
        Layout::Int8PerChannel => Owned::U8 {
            codes: bytes(rng, n),
            scales: uniform(rng, rows, 1e-3, 0.1),
            zeros: vec![128; rows],
            group: cols,
        },
        Layout::U4(group) => {
            let ng = rows * (cols / group);
            Owned::U4 {
                packed: bytes(rng, n / 2),
                scales: uniform(rng, ng, 1e-3, 0.1),
                zeros: (0..ng).map(|_| rng.random_range(0..16u8)).collect(),
                group,
            }
        }
        Layout::Codebook4(block) => Owned::Codebook4 {
            packed: bytes(rng, n / 2),
            absmax: uniform(rng, n / block, 0.1, 2.0),
            block,
        },
        Layout::Q8_0 => Owned::Q8_0(
            (0..n / QK)
                .map(|_| BlockQ8_0 {
                    d: half(rng, 1e-3, 0.05),
                    qs: core::array::from_fn(|_| rng.random::<i8>()),
                })
                .collect(),
        ),
        Layout::Q4_0 => Owned::Q4_0(
            (0..n / QK)
                .map(|_| BlockQ4_0 {
                    d: half(rng, 1e-3, 0.05),
                    qs: core::array::from_fn(|_| rng.random::<u8>()),
                })
                .collect(),
        ),
        Layout::Q4_1 => Owned::Q4_1(
            (0..n / QK)
                .map(|_| BlockQ4_1 {
                    d: half(rng, 1e-3, 0.05),
                    m: half(rng, -0.4, 0.0),
                    qs: core::array::from_fn(|_| rng.random::<u8>()),
                })
                .collect(),
        ),
        Layout::Fp8(kind) => Owned::Fp8 {
            codes: (0..n).map(|_| finite_fp8(rng, kind)).collect(),
            scales: uniform(rng, rows, 1e-3, 0.1),
            kind,
        },
        Layout::F32 => Owned::F32(normal_vec(rng, n)),
    }
}

/// Every layout with a few parameters, each with the column counts that straddle its
/// group/block/chunk boundaries.
fn cases() -> Vec<(Layout, Vec<usize>)> {
    let mults = |g: usize| vec![g, 2 * g, 3 * g];
    let mut v = Vec::new();
    for g in [1, 8, 16, 24, 32, 64] {
        v.push((Layout::U8(g), mults(g)));
    }
    v.push((Layout::Int8PerChannel, vec![1, 15, 16, 17, 33, 100, 256]));
    for g in [2, 16, 32, 48, 64, 128] {
        v.push((Layout::U4(g), mults(g)));
    }
    for b in [3, 16, 32, 50, 64, 96] {
        // Odd blocks need an even column count.
        let cols = if b % 2 == 1 {
            vec![2 * b, 4 * b]
        } else {
            mults(b)
        };
        v.push((Layout::Codebook4(b), cols));
    }
    for l in [Layout::Q8_0, Layout::Q4_0, Layout::Q4_1] {
        v.push((l, mults(32)));
    }
    let plain = vec![1, 15, 16, 17, 31, 32, 33, 100];
    v.push((Layout::Fp8(Fp8Kind::E4M3), plain.clone()));
    v.push((Layout::Fp8(Fp8Kind::E5M2), plain.clone()));
    v.push((Layout::F32, plain));
    v
}

const ROWS: [usize; 5] = [1, 2, 3, 4, 17];

/// Test tuning: one row per task at least, and a matmul scratch of two 64-column rows, so
/// small shapes split into tasks and row blocks.
const SMALL: Tuning = Tuning {
    min_task_weights: 1,
    scratch_bytes: 2 * 64 * 4,
};

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| f64::from(a)).collect()
}

/// Panics unless `a` and `b` agree bit for bit (any NaN matches any NaN).
#[track_caller]
fn assert_same_bits(name: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{name}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{name}: element {i}: {x:e} ({:#010x}) vs {y:e} ({:#010x})",
            x.to_bits(),
            y.to_bits()
        );
    }
}

/// matvec at every level == reference (tolerance), every SIMD level == scalar (bits), and
/// `Par::Rayon(3)` == `Par::Seq` (bits).
fn check_matvec(layout: Layout, rows: usize, cols: usize, seed: u64) {
    let mut rng = seeded(seed);
    let owned = random_weight(&mut rng, layout, rows, cols);
    let w = owned.view();
    let x = normal_vec(&mut rng, cols);
    let mut want = vec![0.0f64; rows];
    matvec_reference(&w, rows, cols, &x, &mut want);
    let tol = tolerance(&w, rows, cols, &x, 1);
    let name = format!("matvec {layout:?} [{rows}, {cols}]");
    let mut scalar: Option<Vec<f32>> = None;
    for isa in Isa::available() {
        let mut y = vec![f32::NAN; rows];
        matvec_with(isa, SMALL, &w, rows, cols, &x, &mut y, Par::Seq);
        assert_close_f64(&format!("{name} {isa:?}"), &want, &to_f64(&y), tol);
        let mut yp = vec![f32::NAN; rows];
        matvec_with(isa, SMALL, &w, rows, cols, &x, &mut yp, Par::rayon(3));
        assert_same_bits(&format!("{name} {isa:?} Rayon(3) vs Seq"), &y, &yp);
        match &scalar {
            None => scalar = Some(y),
            Some(s) => assert_same_bits(&format!("{name} {isa:?} vs Scalar"), s, &y),
        }
    }
}

/// matmul likewise, and the default scratch size gives the bits of the tiny test one.
fn check_matmul(layout: Layout, rows: usize, cols: usize, n: usize, seed: u64) {
    let mut rng = seeded(seed);
    let owned = random_weight(&mut rng, layout, rows, cols);
    let w = owned.view();
    let x = normal_vec(&mut rng, n * cols);
    let mut want = vec![0.0f64; n * rows];
    matmul_reference(&w, rows, cols, &x, n, &mut want);
    let tol = tolerance(&w, rows, cols, &x, n);
    let name = format!("matmul {layout:?} [{rows}, {cols}] n={n}");
    let mut scalar: Option<Vec<f32>> = None;
    for isa in Isa::available() {
        let mut y = vec![f32::NAN; n * rows];
        matmul_with(isa, SMALL, &w, rows, cols, &x, n, &mut y, Par::Seq);
        assert_close_f64(&format!("{name} {isa:?}"), &want, &to_f64(&y), tol);
        let mut yp = vec![f32::NAN; n * rows];
        matmul_with(isa, SMALL, &w, rows, cols, &x, n, &mut yp, Par::rayon(3));
        assert_same_bits(&format!("{name} {isa:?} Rayon(3) vs Seq"), &y, &yp);
        let mut yd = vec![f32::NAN; n * rows];
        matmul_with(
            isa,
            Tuning::DEFAULT,
            &w,
            rows,
            cols,
            &x,
            n,
            &mut yd,
            Par::Seq,
        );
        assert_same_bits(&format!("{name} {isa:?} scratch sizes"), &y, &yd);
        match &scalar {
            None => scalar = Some(y),
            Some(s) => assert_same_bits(&format!("{name} {isa:?} vs Scalar"), s, &y),
        }
    }
}

#[test]
fn isa_levels_are_detected() {
    let isas = Isa::available();
    assert_eq!(isas[0], Isa::Scalar);
    assert_eq!(*isas.last().unwrap(), Isa::detect());
    eprintln!("qmatvec: testing {isas:?}");
}

#[test]
fn matvec_matches_reference_every_layout_and_level() {
    let mut seed = 0;
    for (layout, cols) in cases() {
        for &c in &cols {
            for rows in ROWS {
                seed += 1;
                check_matvec(layout, rows, c, seed);
            }
        }
    }
}

#[test]
fn matmul_matches_reference_every_layout_and_level() {
    let mut seed = 1000;
    for (layout, cols) in cases() {
        for &c in &cols {
            for rows in [1, 3, 17] {
                for n in [1, 2, 5, 9] {
                    seed += 1;
                    check_matmul(layout, rows, c, n, seed);
                }
            }
        }
    }
}

#[test]
fn matmul_of_few_inputs_is_matvec() {
    // One input always, and up to MATVEC_MAX_N inputs for the quantized layouts.
    let mut rng = seeded(5);
    for (layout, cols) in cases() {
        let (rows, cols) = (17, cols[1]);
        let owned = random_weight(&mut rng, layout, rows, cols);
        let w = owned.view();
        let max_n = match layout {
            Layout::F32 => 1,
            _ => MATVEC_MAX_N,
        };
        for n in 1..=max_n {
            let x = normal_vec(&mut rng, n * cols);
            let mut a = vec![0.0; n * rows];
            for (xi, ai) in x.chunks_exact(cols).zip(a.chunks_exact_mut(rows)) {
                matvec(&w, rows, cols, xi, ai, Par::Seq);
            }
            let mut b = vec![0.0; n * rows];
            matmul(&w, rows, cols, &x, n, &mut b, Par::rayon(2));
            assert_same_bits(&format!("{layout:?} n={n}"), &a, &b);
        }
    }
}

#[test]
fn large_shapes_split_over_rayon_bit_identically() {
    // Default tuning: enough weights for real tasks; rows not a multiple of the row block.
    let mut rng = seeded(9);
    let (rows, cols) = (301, 512);
    for layout in [
        Layout::U8(128),
        Layout::U4(32),
        Layout::Codebook4(64),
        Layout::Q4_1,
        Layout::Fp8(Fp8Kind::E4M3),
        Layout::F32,
    ] {
        let owned = random_weight(&mut rng, layout, rows, cols);
        let w = owned.view();
        let x = normal_vec(&mut rng, 3 * cols);
        let mut want = vec![0.0f64; 3 * rows];
        matmul_reference(&w, rows, cols, &x, 3, &mut want);
        let tol = tolerance(&w, rows, cols, &x, 3);
        let (mut a, mut b) = (vec![0.0; rows], vec![0.0; rows]);
        matvec(&w, rows, cols, &x[..cols], &mut a, Par::Seq);
        matvec(&w, rows, cols, &x[..cols], &mut b, Par::rayon(3));
        assert_same_bits(&format!("matvec {layout:?}"), &a, &b);
        assert_close_f64(&format!("{layout:?}"), &want[..rows], &to_f64(&a), tol);
        let (mut a, mut b) = (vec![0.0; 3 * rows], vec![0.0; 3 * rows]);
        matmul(&w, rows, cols, &x, 3, &mut a, Par::Seq);
        matmul(&w, rows, cols, &x, 3, &mut b, Par::rayon(4));
        assert_same_bits(&format!("matmul {layout:?}"), &a, &b);
        assert_close_f64(&format!("matmul {layout:?}"), &want, &to_f64(&a), tol);
    }
}

#[test]
fn decoding_is_exact_at_every_level() {
    // The matmul decoders against the definition, element by element: each decoded weight is
    // the exact value rounded once to f32 (exact products; one fma for Q4_1).
    let mut seed = 2000;
    for (layout, cols) in cases() {
        for &c in &cols {
            seed += 1;
            let rows = 3;
            let owned = random_weight(&mut seeded(seed), layout, rows, c);
            let w = owned.view();
            let want: Vec<f32> = (0..rows * c)
                .map(|e| weight_reference(&w, rows, c, e / c, e % c) as f32)
                .collect();
            for isa in Isa::available() {
                let mut got = vec![f32::NAN; rows * c];
                decode_rows_at(isa, &w, c, 0, &mut got);
                assert_same_bits(&format!("decode {layout:?} {c} {isa:?}"), &want, &got);
            }
        }
    }
}

#[test]
fn fp8_decodes_every_code_including_nan_and_infinity() {
    let codes: Vec<u8> = (0..=255).collect();
    for kind in [Fp8Kind::E4M3, Fp8Kind::E5M2] {
        let w = QWeight::Fp8 {
            codes: &codes,
            scales: &[1.0],
            kind,
        };
        let want = kind.table();
        for isa in Isa::available() {
            let mut got = vec![0.0f32; 256];
            decode_rows_at(isa, &w, 256, 0, &mut got);
            assert_same_bits(&format!("{kind:?} {isa:?}"), &want, &got);
            // A NaN weight poisons its row's product; ±inf times a positive x stays infinite.
            for (code, expect_nan) in [(0x7Fu8, true), (0x7C, false)] {
                let c = [0u8, code];
                let w = QWeight::Fp8 {
                    codes: &c,
                    scales: &[1.0],
                    kind,
                };
                let mut y = [0.0f32];
                matvec_with(isa, SMALL, &w, 1, 2, &[1.0, 1.0], &mut y, Par::Seq);
                let decoded = kind.decode(code);
                if expect_nan || decoded.is_nan() {
                    assert!(y[0].is_nan(), "{kind:?} {isa:?} {code:#x}");
                } else if decoded.is_infinite() {
                    assert!(y[0].is_infinite(), "{kind:?} {isa:?} {code:#x}");
                }
            }
        }
    }
}

#[test]
fn layout_definitions_by_hand() {
    // U4: element 2i in the low nibble; Codebook4: element 2i in the high nibble.
    let packed = [0x21u8];
    let u4 = QWeight::U4 {
        packed: &packed,
        scales: &[2.0],
        zeros: &[1],
        group: 2,
    };
    let mut y = [0.0f32];
    matvec(&u4, 1, 2, &[10.0, 1.0], &mut y, Par::Seq);
    assert_same_bits("u4", &y, &[2.0 * (0.0 * 10.0 + 1.0)]);
    let cb: [f32; 16] = core::array::from_fn(|i| i as f32);
    let nf = QWeight::Codebook4 {
        packed: &packed,
        absmax: &[0.5],
        block: 2,
        codebook: &cb,
    };
    matvec(&nf, 1, 2, &[10.0, 1.0], &mut y, Par::Seq);
    assert_same_bits("codebook4", &y, &[0.5 * (2.0 * 10.0 + 1.0)]);
    // GGML Q4: qs[j] low nibble = element j, high nibble = element j + 16.
    let mut qs = [0x88u8; 16];
    qs[0] = 0x9A; // element 0 → 10 − 8 = 2, element 16 → 9 − 8 = 1
    let blk = [BlockQ4_0 {
        d: f16::from_f32(0.5),
        qs,
    }];
    let mut x = [0.0f32; 32];
    x[0] = 1.0;
    x[16] = 100.0;
    matvec(&QWeight::Q4_0(&blk), 1, 32, &x, &mut y, Par::Seq);
    assert_same_bits("q4_0", &y, &[0.5 * (2.0 + 100.0)]);
    let blk1 = [BlockQ4_1 {
        d: f16::from_f32(0.5),
        m: f16::from_f32(-1.0),
        qs,
    }];
    matvec(&QWeight::Q4_1(&blk1), 1, 32, &x, &mut y, Par::Seq);
    // Element 0: 0.5·10 − 1 = 4; element 16: 0.5·9 − 1 = 3.5.
    assert_same_bits("q4_1", &y, &[4.0 + 350.0]);
}

#[test]
fn empty_shapes() {
    let mut y: [f32; 0] = [];
    matvec(&QWeight::F32(&[]), 0, 5, &[0.0; 5], &mut y, Par::rayon(2));
    let mut y = [7.0f32; 3];
    let w = QWeight::U8 {
        codes: &[],
        scales: &[],
        zeros: &[],
        group: 4,
    };
    matvec(&w, 3, 0, &[], &mut y, Par::Seq);
    assert_same_bits("cols = 0", &y, &[0.0; 3]);
    let mut y = [7.0f32; 6];
    matmul(&QWeight::Q8_0(&[]), 3, 0, &[], 2, &mut y, Par::Seq);
    assert_same_bits("matmul cols = 0", &y, &[0.0; 6]);
    matmul(&QWeight::F32(&[0.0; 6]), 3, 2, &[], 0, &mut [], Par::Seq);
}

#[test]
fn weight_bytes_counts_codes_and_scales() {
    let mut rng = seeded(3);
    let (rows, cols) = (4, 128);
    let expect = [
        (Layout::U8(32), rows * cols + rows * 4 * 5),
        (Layout::Int8PerChannel, rows * cols + rows * 5),
        (Layout::U4(32), rows * cols / 2 + rows * 4 * 5),
        (Layout::Codebook4(64), rows * cols / 2 + rows * 2 * 4),
        (Layout::Q8_0, rows * 4 * 34),
        (Layout::Q4_0, rows * 4 * 18),
        (Layout::Q4_1, rows * 4 * 20),
        (Layout::Fp8(Fp8Kind::E5M2), rows * cols + rows * 4),
        (Layout::F32, rows * cols * 4),
    ];
    for (layout, bytes) in expect {
        let owned = random_weight(&mut rng, layout, rows, cols);
        assert_eq!(owned.view().weight_bytes(), bytes, "{layout:?}");
    }
}

#[test]
fn layout_names() {
    let mut rng = seeded(4);
    let names: Vec<String> = [
        Layout::U8(64),
        Layout::U4(32),
        Layout::Codebook4(64),
        Layout::Q8_0,
        Layout::Q4_0,
        Layout::Q4_1,
        Layout::Fp8(Fp8Kind::E4M3),
        Layout::Fp8(Fp8Kind::E5M2),
        Layout::F32,
    ]
    .into_iter()
    .map(|l| random_weight(&mut rng, l, 1, 64).view().layout_name())
    .collect();
    assert_eq!(
        names,
        [
            "u8-g64",
            "u4-g32",
            "codebook4-b64",
            "q8_0",
            "q4_0",
            "q4_1",
            "fp8-e4m3",
            "fp8-e5m2",
            "f32"
        ]
    );
}

// Contract violations panic with a message naming the problem.

fn run_u4(packed: &[u8], scales: &[f32], group: usize, rows: usize, cols: usize) {
    let zeros = vec![0u8; scales.len()];
    let w = QWeight::U4 {
        packed,
        scales,
        zeros: &zeros,
        group,
    };
    let x = vec![0.0; cols];
    let mut y = vec![0.0; rows];
    matvec(&w, rows, cols, &x, &mut y, Par::Seq);
}

#[test]
#[should_panic(expected = "matvec: x has length 3, expected cols = 4")]
fn panics_on_x_length() {
    matvec(
        &QWeight::F32(&[0.0; 8]),
        2,
        4,
        &[0.0; 3],
        &mut [0.0; 2],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "matvec: y has length 3, expected rows = 2")]
fn panics_on_y_length() {
    matvec(
        &QWeight::F32(&[0.0; 8]),
        2,
        4,
        &[0.0; 4],
        &mut [0.0; 3],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "matmul: x has length 7, expected n·cols = 2·4")]
fn panics_on_matmul_x_length() {
    matmul(
        &QWeight::F32(&[0.0; 8]),
        2,
        4,
        &[0.0; 7],
        2,
        &mut [0.0; 4],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "matmul: y has length 5, expected n·rows = 2·2")]
fn panics_on_matmul_y_length() {
    matmul(
        &QWeight::F32(&[0.0; 8]),
        2,
        4,
        &[0.0; 8],
        2,
        &mut [0.0; 5],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "qmatvec: f32 weights has length 7, expected 8 for [2, 4]")]
fn panics_on_weight_length() {
    matvec(
        &QWeight::F32(&[0.0; 7]),
        2,
        4,
        &[0.0; 4],
        &mut [0.0; 2],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "qmatvec: u4-g32 scales has length 3, expected 4 for [2, 64]")]
fn panics_on_scales_length() {
    run_u4(&[0; 64], &[1.0; 3], 32, 2, 64);
}

#[test]
#[should_panic(expected = "qmatvec: u4-g32 packed has length 63, expected 64 for [2, 64]")]
fn panics_on_packed_length() {
    run_u4(&[0; 63], &[1.0; 4], 32, 2, 64);
}

#[test]
#[should_panic(expected = "qmatvec: group = 24 must be positive and divide cols = 64")]
fn panics_on_group_not_dividing_cols() {
    run_u4(&[0; 64], &[1.0; 4], 24, 2, 64);
}

#[test]
#[should_panic(expected = "qmatvec: group = 0 must be positive")]
fn panics_on_zero_group() {
    let w = QWeight::U8 {
        codes: &[0; 4],
        scales: &[],
        zeros: &[],
        group: 0,
    };
    matvec(&w, 1, 4, &[0.0; 4], &mut [0.0], Par::Seq);
}

#[test]
#[should_panic(expected = "qmatvec: u4 group = 3 must be even")]
fn panics_on_odd_u4_group() {
    run_u4(&[0; 3], &[1.0; 2], 3, 1, 6);
}

#[test]
#[should_panic(expected = "qmatvec: codebook4-b5 needs an even cols (got 5)")]
fn panics_on_odd_cols_for_4_bits() {
    let w = QWeight::Codebook4 {
        packed: &[0; 3],
        absmax: &[1.0],
        block: 5,
        codebook: &NF4,
    };
    matvec(&w, 1, 5, &[0.0; 5], &mut [0.0], Par::Seq);
}

#[test]
#[should_panic(expected = "qmatvec: q8_0 needs cols to be a multiple of 32 (got 48)")]
fn panics_on_ggml_cols() {
    let blocks = [BlockQ8_0 {
        d: f16::ONE,
        qs: [0; 32],
    }; 3];
    matvec(
        &QWeight::Q8_0(&blocks),
        2,
        48,
        &[0.0; 48],
        &mut [0.0; 2],
        Par::Seq,
    );
}

#[test]
#[should_panic(expected = "qmatvec: fp8-e4m3 scales has length 1, expected 2 for [2, 4]")]
fn panics_on_fp8_scales() {
    let w = QWeight::Fp8 {
        codes: &[0; 8],
        scales: &[1.0],
        kind: Fp8Kind::E4M3,
    };
    matvec(&w, 2, 4, &[0.0; 4], &mut [0.0; 2], Par::Seq);
}

#[test]
#[should_panic(expected = "matmul_reference: x has length 3")]
fn reference_panics_on_lengths() {
    matmul_reference(&QWeight::F32(&[0.0; 4]), 2, 2, &[0.0; 3], 1, &mut [0.0; 2]);
}

/// A random layout with a random group/block, a column count that the layout accepts, and
/// a row count.
fn any_case() -> impl Strategy<Value = (Layout, usize, usize, usize, u64)> {
    let layout = prop_oneof![
        (1usize..=40).prop_map(Layout::U8),
        Just(Layout::Int8PerChannel),
        (1usize..=40).prop_map(|h| Layout::U4(2 * h)),
        (1usize..=70).prop_map(Layout::Codebook4),
        Just(Layout::Q8_0),
        Just(Layout::Q4_0),
        Just(Layout::Q4_1),
        Just(Layout::Fp8(Fp8Kind::E4M3)),
        Just(Layout::Fp8(Fp8Kind::E5M2)),
        Just(Layout::F32),
    ];
    (layout, 1usize..=6, 1usize..=9, 1usize..=4, any::<u64>()).prop_map(
        |(layout, mult, rows, n, seed)| {
            let unit = match layout {
                Layout::U8(g) | Layout::U4(g) => g,
                Layout::Codebook4(b) if b % 2 == 1 => 2 * b,
                Layout::Codebook4(b) => b,
                Layout::Q8_0 | Layout::Q4_0 | Layout::Q4_1 => QK,
                Layout::Int8PerChannel | Layout::Fp8(_) | Layout::F32 => 23,
            };
            (layout, unit * mult, rows, n, seed)
        },
    )
}

/// 48 cases, or `PROPTEST_CASES` when it is set (for long runs).
fn proptest_config() -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default() // reads PROPTEST_CASES
    } else {
        ProptestConfig::with_cases(48)
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn prop_matvec_and_matmul_match_reference((layout, cols, rows, n, seed) in any_case()) {
        check_matvec(layout, rows, cols, seed);
        check_matmul(layout, rows, cols, n, seed);
    }
}
