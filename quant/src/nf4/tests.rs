//! Tests of the NF4/FP4 quantizer: tables bit for bit against the sources, the decision
//! trees and their ties, the layout, double quantization, storage, error bounds.

use super::dynamic::dynamic_index;
use super::*;
use numerics::testing::rng;
use proptest::prelude::*;

/// `CODEBOOK` as bit patterns (the `f32` values of the bitsandbytes literals).
const NF4_BITS: [u32; 16] = [
    0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
    0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
];

/// The same literals as Python floats (`get_4bit_type("nf4")` builds an `f32` tensor from
/// them, i.e. rounds through `f64`).
#[allow(clippy::excessive_precision)]
const NF4_PY: [f64; 16] = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
];

/// FP4 magnitudes `[0, 0.0625, 8, 12, 4, 6, 2, 3] / 12` as `f32` bit patterns, by code.
const FP4_MAGNITUDE_BITS: [u32; 8] = [
    0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
];

/// `create_dynamic_map(signed=True)` as bit patterns: generated (in Python, exact rational
/// arithmetic) from PyTorch's float32 linspace semantics with fused multiply-adds, and
/// identical to a dump of bitsandbytes' map printed by PyTorch in public code.
const DYNAMIC_MAP_BITS: [u32; 256] = [
    0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
    0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
    0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
    0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
    0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
    0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
    0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
    0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
    0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
    0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
    0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
    0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
    0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
    0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
    0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
    0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
    0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
    0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
    0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
    0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
    0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
    0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
    0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
    0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
    0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
    0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
    0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
    0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
    0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
    0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
    0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
    0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn params(codebook: Codebook4, block: usize, double_quant: bool) -> Nf4Params {
    Nf4Params::new(codebook, block, double_quant)
}

const BOTH: [Codebook4; 2] = [Codebook4::Nf4, Codebook4::Fp4];

/// `dQuantizeNF4` from bitsandbytes' CUDA source, as nested comparisons (the reference the
/// production threshold count is checked against).
#[allow(clippy::excessive_precision)]
fn nf4_tree(x: f32) -> u8 {
    if x > 0.03979014977812767 {
        if x > 0.3893125355243683 {
            if x > 0.6427869200706482 {
                if x > 0.8614784181118011 {
                    0b1111
                } else {
                    0b1110
                }
            } else if x > 0.5016634166240692 {
                0b1101
            } else {
                0b1100
            }
        } else if x > 0.2035212516784668 {
            if x > 0.2920137718319893 {
                0b1011
            } else {
                0b1010
            }
        } else if x > 0.1202552504837513 {
            0b1001
        } else {
            0b1000
        }
    } else if x > -0.33967943489551544 {
        if x > -0.13791173323988914 {
            if x > -0.045525018125772476 {
                0b0111
            } else {
                0b0110
            }
        } else if x > -0.23460740596055984 {
            0b0101
        } else {
            0b0100
        }
    } else if x > -0.6106329262256622 {
        if x > -0.4599952697753906 {
            0b0011
        } else {
            0b0010
        }
    } else if x > -0.8480964004993439 {
        0b0001
    } else {
        0b0000
    }
}

/// `dQuantizeFP4` from bitsandbytes' CUDA source, as nested comparisons.
#[allow(clippy::excessive_precision)]
fn fp4_tree(x: f32) -> u8 {
    let sign = if x < 0.0 { 0b1000 } else { 0 };
    let x = x.abs();
    let magnitude = if x > 0.29166667 {
        if x > 0.583333 {
            if x > 0.8333333 { 0b0011 } else { 0b0010 }
        } else if x > 0.4166667 {
            0b101
        } else {
            0b100
        }
    } else if x > 0.0859375 {
        if x > 0.20833333 { 0b0111 } else { 0b0110 }
    } else if x > 0.00260417 {
        0b0001
    } else {
        0b0000
    };
    magnitude + sign
}

/// Half the widest gap of the dynamic map, ends included (`−1` maps to the first entry).
fn dynamic_map_max_error() -> f64 {
    let m = &DYNAMIC_MAP;
    let mut worst = 1.0 + f64::from(m[0]);
    for w in m.windows(2) {
        worst = worst.max((f64::from(w[1]) - f64::from(w[0])) / 2.0);
    }
    worst
}

// ---------------------------------------------------------------------------------------
// Tables

#[test]
fn nf4_codebook_exact_bits() {
    assert_eq!(bits(&CODEBOOK), NF4_BITS);
    // Python's path (literal → f64 → f32) gives the same sixteen values as the CUDA LUT's.
    for (k, (&py, &c)) in NF4_PY.iter().zip(&CODEBOOK).enumerate() {
        assert_eq!((py as f32).to_bits(), c.to_bits(), "code {k}");
    }
    assert!(CODEBOOK.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(CODEBOOK[7].to_bits(), 0);
    assert_eq!(bits(Codebook4::Nf4.values()), NF4_BITS);
    assert_eq!(bits(Codebook4::Fp4.values()), bits(&FP4_CODEBOOK));
    assert_eq!(Codebook4::Nf4.decode(0x1F).to_bits(), 1.0f32.to_bits()); // low nibble only
}

#[test]
fn fp4_codebook_is_functional_py_over_twelve() {
    let numerators = [0.0f32, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0];
    for code in 0..16usize {
        let magnitude = numerators[code & 7] / 12.0;
        let expected = if code & 8 != 0 { -magnitude } else { magnitude };
        assert_eq!(
            FP4_CODEBOOK[code].to_bits(),
            expected.to_bits(),
            "code {code}"
        );
        assert_eq!(
            FP4_CODEBOOK[code & 7].to_bits(),
            FP4_MAGNITUDE_BITS[code & 7]
        );
    }
    assert_eq!(FP4_CODEBOOK[8].to_bits(), (-0.0f32).to_bits());
    // FP4_MAGNITUDE_CODES lists the magnitudes in ascending order.
    let sorted: Vec<f32> = FP4_MAGNITUDE_CODES
        .iter()
        .map(|&c| FP4_CODEBOOK[usize::from(c)])
        .collect();
    assert!(sorted.windows(2).all(|w| w[0] < w[1]), "{sorted:?}");
    assert_eq!(Codebook4::Fp4.name(), "fp4");
    assert_eq!(Codebook4::Nf4.name(), "nf4");
    assert_eq!(Codebook4::default(), Codebook4::Nf4);
}

#[test]
fn thresholds_are_midpoints_of_neighbours() {
    for k in 0..15 {
        let t = NF4_THRESHOLDS[k];
        let mid = (f64::from(CODEBOOK[k]) + f64::from(CODEBOOK[k + 1])) / 2.0;
        let ulp = f64::from(t.abs().next_up() - t.abs());
        assert!(
            (f64::from(t) - mid).abs() <= 0.5 * ulp,
            "NF4 threshold {k}: {t} vs {mid}"
        );
    }
    for r in 0..7 {
        let lo = FP4_CODEBOOK[usize::from(FP4_MAGNITUDE_CODES[r])];
        let hi = FP4_CODEBOOK[usize::from(FP4_MAGNITUDE_CODES[r + 1])];
        let mid = (f64::from(lo) + f64::from(hi)) / 2.0;
        let t = f64::from(FP4_THRESHOLDS[r]);
        // The source writes 0.583333 for 7/12, 3.3e-7 low; the rest are within 1e-8.
        assert!((t - mid).abs() <= 4e-7, "FP4 threshold {r}: {t} vs {mid}");
    }
    // The four NF4 thresholds that are exact f32 midpoints in f64 round differently when
    // parsed through f64: this module parses them straight to f32, as the CUDA compiler.
    #[allow(clippy::excessive_precision)]
    let through_f64 = [
        (0, -0.8480964004993439f64),
        (8, 0.1202552504837513),
        (12, 0.5016634166240692),
        (14, 0.8614784181118011),
    ];
    for (k, lit) in through_f64 {
        assert_ne!(
            (lit as f32).to_bits(),
            NF4_THRESHOLDS[k].to_bits(),
            "threshold {k}"
        );
        let diff = (lit as f32).to_bits().abs_diff(NF4_THRESHOLDS[k].to_bits());
        assert_eq!(diff, 1, "threshold {k}");
    }
}

#[test]
fn error_budgets() {
    let nf4 = Codebook4::Nf4.max_normalized_error();
    // Between −1 and −0.69619, the widest NF4 gap.
    assert!(
        (nf4 - (f64::from(NF4_THRESHOLDS[0]) + 1.0)).abs() < 1e-7,
        "{nf4}"
    );
    assert!((0.1519..0.1520).contains(&nf4), "{nf4}");
    let fp4 = Codebook4::Fp4.max_normalized_error();
    assert!(
        (fp4 - (1.0 - f64::from(FP4_THRESHOLDS[6]))).abs() < 1e-12,
        "{fp4}"
    );
    assert!((0.16666..0.16668).contains(&fp4), "{fp4}");
    let dq = dynamic_map_max_error();
    assert!((0.00703..0.007032).contains(&dq), "{dq}");
}

#[test]
fn dynamic_map_golden_and_known_entries() {
    assert_eq!(bits(&DYNAMIC_MAP), DYNAMIC_MAP_BITS);
    // Entries as printed by PyTorch in public dumps of `create_dynamic_map()`.
    #[allow(clippy::excessive_precision)]
    let known: [(usize, f64); 12] = [
        (0, -0.992968738079071),
        (1, -0.9789062738418579),
        (20, -0.7117187976837158),
        (36, -0.48671871423721313),
        (64, -0.09859374910593033),
        (65, -0.09578125923871994),
        (126, -5.500000384017767e-07),
        (127, 0.0),
        (128, 5.500000384017767e-07),
        (129, 3.250000190746505e-06),
        (254, 0.992968738079071),
        (255, 1.0),
    ];
    for (i, v) in known {
        assert_eq!(DYNAMIC_MAP[i].to_bits(), (v as f32).to_bits(), "entry {i}");
    }
    assert!(DYNAMIC_MAP.windows(2).all(|w| w[0] < w[1]));
    for j in 0..127 {
        assert_eq!(
            DYNAMIC_MAP[126 - j].to_bits(),
            (-DYNAMIC_MAP[128 + j]).to_bits()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Decision trees and ties

#[test]
fn encode_matches_the_cuda_trees() {
    let mut ys: Vec<f32> = vec![0.0, -0.0, 1.0, -1.0, 1.5, -1.5, f32::NAN, 1e-30, -1e-30];
    for &t in NF4_THRESHOLDS.iter().chain(&FP4_THRESHOLDS) {
        for v in [t, -t] {
            ys.extend([v, v.next_up(), v.next_down()]);
        }
    }
    ys.extend(CODEBOOK);
    ys.extend(FP4_CODEBOOK);
    ys.extend(rng::uniform_vec(&mut rng::seeded(7), 100_000, -1.2, 1.2));
    for &y in &ys {
        assert_eq!(Codebook4::Nf4.encode(y), nf4_tree(y), "NF4 y = {y:e}");
        assert_eq!(Codebook4::Fp4.encode(y), fp4_tree(y), "FP4 y = {y:e}");
    }
    assert_eq!(Codebook4::Nf4.encode(f32::NAN), 0);
    assert_eq!(Codebook4::Fp4.encode(f32::NAN), 0);
    assert_eq!(Codebook4::Fp4.encode(-0.0), 0);
    assert_eq!(Codebook4::Fp4.encode(-1e-3), 0b1000);
}

#[test]
fn every_code_quantizes_to_itself() {
    for double_quant in [false, true] {
        // absmax is 1 (codes ±1 are present), so y = x exactly.
        let q = quantize(&CODEBOOK, params(Codebook4::Nf4, 16, double_quant)).unwrap();
        assert_eq!(q.codes(), (0..16).collect::<Vec<u8>>());
        assert_eq!(bits(&q.dequantize()), NF4_BITS);

        let q = quantize(&FP4_CODEBOOK, params(Codebook4::Fp4, 16, double_quant)).unwrap();
        let mut expected: Vec<u8> = (0..16).collect();
        expected[8] = 0; // -0.0 is not negative for the tree
        assert_eq!(q.codes(), expected);
        let mut expected_values = FP4_CODEBOOK;
        expected_values[8] = 0.0;
        assert_eq!(bits(&q.dequantize()), bits(&expected_values));

        // Scaled by a non-power of two, y = x · (1/a) is only close to the code value.
        for (codebook, table) in [(Codebook4::Nf4, CODEBOOK), (Codebook4::Fp4, FP4_CODEBOOK)] {
            let x: Vec<f32> = table.iter().map(|&v| v * 3.7).collect();
            let q = quantize(&x, params(codebook, 16, double_quant)).unwrap();
            let codes = q.codes();
            for (c, &got) in codes.iter().enumerate() {
                let want = if codebook == Codebook4::Fp4 && c == 8 {
                    0
                } else {
                    c as u8
                };
                assert_eq!(got, want, "{codebook:?} code {c}");
            }
        }
    }
}

#[test]
fn ties_follow_the_decision_tree() {
    // With a block absmax of exactly 1 the normalized value is the input itself.
    for (k, &t) in NF4_THRESHOLDS.iter().enumerate() {
        let x = [1.0, t, t.next_up(), t.next_down()];
        let q = quantize(&x, params(Codebook4::Nf4, 4, false)).unwrap();
        let k = k as u8;
        assert_eq!(q.codes(), vec![15, k, k + 1, k], "threshold {k}: {t}");
    }
    for (r, &t) in FP4_THRESHOLDS.iter().enumerate() {
        let x = [1.0, t, t.next_up(), -t, -t.next_up(), 0.0];
        let q = quantize(&x, params(Codebook4::Fp4, 6, false)).unwrap();
        let (lo, hi) = (FP4_MAGNITUDE_CODES[r], FP4_MAGNITUDE_CODES[r + 1]);
        assert_eq!(
            q.codes(),
            vec![3, lo, hi, lo | 8, hi | 8, 0],
            "threshold {r}: {t}"
        );
    }
}

#[test]
fn dynamic_search_ties_and_ends() {
    let m = &DYNAMIC_MAP;
    for i in 0..255usize {
        let mid = (m[i] + m[i + 1]) * 0.5;
        let even = if i % 2 == 0 { i } else { i + 1 };
        assert_eq!(
            usize::from(dynamic_index(mid)),
            even,
            "midpoint {i}/{}",
            i + 1
        );
        assert_eq!(usize::from(dynamic_index(mid.next_down())), i);
        assert_eq!(usize::from(dynamic_index(mid.next_up())), i + 1);
        assert_eq!(usize::from(dynamic_index(m[i])), i);
    }
    assert_eq!(dynamic_index(1.0), 255);
    assert_eq!(dynamic_index(1.5), 255);
    assert_eq!(dynamic_index(-1.0), 0);
    assert_eq!(dynamic_index(-1.5), 0);
    assert_eq!(dynamic_index(0.0), 127);
    assert_eq!(dynamic_index(-0.0), 127);
    assert_eq!(dynamic_index(f32::NAN), 0);
}

#[test]
fn dynamic_search_is_nearest() {
    let mut r = rng::seeded(11);
    let mut ys = rng::uniform_vec(&mut r, 20_000, -1.0, 1.0);
    // Log-uniform magnitudes, where the map is dense.
    for (u, s) in rng::uniform_vec(&mut r, 20_000, -8.0, 0.0)
        .into_iter()
        .zip(rng::uniform_vec(&mut r, 20_000, -1.0, 1.0))
    {
        ys.push(10f32.powf(u).copysign(s));
    }
    for y in ys {
        let yd = f64::from(y);
        let dist: Vec<f64> = DYNAMIC_MAP
            .iter()
            .map(|&v| (f64::from(v) - yd).abs())
            .collect();
        let best = dist.iter().cloned().fold(f64::INFINITY, f64::min);
        let got = usize::from(dynamic_index(y));
        let nearest: Vec<usize> = (0..256).filter(|&i| dist[i] <= best).collect();
        // Comparisons are against f32-rounded midpoints, so allow a neighbour when y is
        // within rounding of a midpoint.
        let slack = 1e-7 * yd.abs().max(1e-30);
        assert!(
            nearest.contains(&got) || dist[got] - best <= slack,
            "y = {y:e}: got {got}, nearest {nearest:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Layout

#[test]
fn nibble_order_known_examples() {
    let nf4 = params(Codebook4::Nf4, 64, false);
    let fp4 = params(Codebook4::Fp4, 64, false);
    // First element in the high nibble.
    assert_eq!(quantize(&[1.0, -1.0], nf4).unwrap().packed(), &[0xF0]);
    assert_eq!(quantize(&[1.0, -1.0], fp4).unwrap().packed(), &[0x3B]);
    // Odd length: the pad element is the zero code (7 for NF4, 0 for FP4).
    // NF4: 0.5 → 12 (0.4407 < 0.5 ≤ 0.50166).
    assert_eq!(
        quantize(&[1.0, 0.5, -1.0], nf4).unwrap().packed(),
        &[0xFC, 0x07]
    );
    // FP4: −0.5 → 0b1101, 0.25 → 0b0111, 1.0 → 0b0011.
    assert_eq!(
        quantize(&[-0.5, 0.25, 1.0], fp4).unwrap().packed(),
        &[0xD7, 0x30]
    );
    // Several blocks (of 2): bytes follow the flat order.
    let q = quantize(&[2.0, 1.0, 0.25, -1.0], params(Codebook4::Nf4, 2, false)).unwrap();
    // Block 0: absmax 2, y = [1, 0.5] → 15, 12. Block 1: absmax 1, y = [0.25, −1] → 10, 0.
    assert_eq!(q.packed(), &[0xFC, 0xA0]);
    assert_eq!(bits(&q.absmax()), bits(&[2.0, 1.0]));
    assert_eq!(q.codes(), vec![15, 12, 10, 0]);
}

#[test]
fn partial_last_block_and_sizes() {
    let mut r = rng::seeded(3);
    for block in [2usize, 4, 64] {
        for n in [1usize, 2, 3, 63, 64, 65, 127, 128, 129, 1000] {
            let x = rng::normal_vec(&mut r, n);
            for codebook in BOTH {
                let q = quantize(&x, params(codebook, block, false)).unwrap();
                assert_eq!(q.len(), n);
                assert!(!q.is_empty());
                assert_eq!(q.num_blocks(), n.div_ceil(block));
                assert_eq!(q.packed().len(), n.div_ceil(2));
                let expected: Vec<f32> = x
                    .chunks(block)
                    .map(|c| c.iter().fold(0.0f32, |m, v| m.max(v.abs())))
                    .collect();
                assert_eq!(bits(&q.absmax()), bits(&expected), "n {n} block {block}");
                assert_eq!(q.codes().len(), n);
                if n % 2 == 1 {
                    assert_eq!(q.packed()[n / 2] & 0x0F, codebook.zero_code());
                }
                let y = q.dequantize();
                let mut z = vec![f32::NAN; n];
                q.dequantize_into(&mut z).unwrap();
                assert_eq!(bits(&y), bits(&z));
            }
        }
    }
}

#[test]
fn zero_block_maps_to_zero() {
    let mut r = rng::seeded(5);
    let mut x = vec![0.0f32; 64];
    x.extend(rng::normal_vec(&mut r, 64));
    x.extend([-0.0f32; 64]);
    x.extend(rng::normal_vec(&mut r, 64).iter().map(|v| v * 100.0));
    x.extend([0.0f32; 7]); // a short all-zero last block
    for codebook in BOTH {
        for double_quant in [false, true] {
            let q = quantize(&x, params(codebook, 64, double_quant)).unwrap();
            let y = q.dequantize();
            let codes = q.codes();
            for i in (0..64).chain(128..192).chain(256..263) {
                assert!(
                    y[i] == 0.0,
                    "{codebook:?} dq {double_quant}: y[{i}] = {}",
                    y[i]
                );
                assert_eq!(codes[i], codebook.zero_code());
            }
            if double_quant {
                // The reconstructed absmax of the zero blocks is not zero here, which is
                // why zero blocks must carry the zero code.
                let a = q.absmax();
                assert!(a[0] != 0.0 || a[2] != 0.0, "{a:?}");
            }
        }
    }
    // An all-zero tensor: a = 0 and, with double quantization, offset 0 and a2 = 0.
    let q = quantize(&[0.0; 10], Nf4Params::default()).unwrap();
    assert_eq!(bits(&q.absmax()), vec![0]);
    assert!(q.dequantize().iter().all(|&v| v == 0.0));
}

#[test]
fn subnormal_absmax_divides_instead() {
    // 1/1e-40 overflows f32, so these blocks are normalized by division.
    let x = [1e-40f32, -5e-41, 0.0, 2e-41];
    assert!((1.0 / x[0]).is_infinite());
    for double_quant in [false, true] {
        let q = quantize(&x, params(Codebook4::Nf4, 4, double_quant)).unwrap();
        // y ≈ [1, −0.5, 0, 0.2] → codes 15, 2, 7, 9.
        assert_eq!(q.codes(), vec![15, 2, 7, 9]);
        let a = f64::from(q.absmax()[0]);
        for (&v, &y) in x.iter().zip(&q.dequantize()) {
            let err = (f64::from(v) - f64::from(y)).abs();
            assert!(
                err <= a * Codebook4::Nf4.max_normalized_error() + 1e-45,
                "{v:e} → {y:e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Double quantization

#[test]
fn double_quant_known_example() {
    // Three blocks of 2 with absmax 1, 2, 3: offset 2, centred −1, 0, 1, a2 = 1.
    let x = [1.0f32, 0.0, 2.0, 0.0, -3.0, 0.0];
    let q = quantize(&x, params(Codebook4::Nf4, 2, true)).unwrap();
    let dq = q.double_quant().expect("double quantization is on");
    assert_eq!(dq.offset().to_bits(), 2.0f32.to_bits());
    assert_eq!(bits(dq.absmax()), bits(&[1.0]));
    // −1 lies below the smallest map entry (−0.99296875): index 0; 0 → 127; 1 → 255.
    assert_eq!(dq.codes(), &[0, 127, 255]);
    // DYNAMIC_MAP[0] · 1 + 2 = 1.0070312 (0x3f80e666).
    assert_eq!(
        bits(&q.absmax()),
        vec![0x3f80_e666, 2.0f32.to_bits(), 3.0f32.to_bits()]
    );
    assert_eq!(q.storage_bytes(), 3 + 3 + 4 + 4);
    let y = q.dequantize();
    assert_eq!(y[0].to_bits(), 0x3f80_e666);
    assert_eq!(y[4].to_bits(), (-3.0f32).to_bits());
}

#[test]
fn double_quant_reconstruction_error_is_small() {
    let mut r = rng::seeded(17);
    let block = 64;
    let n_blocks = 700; // three groups of 256, the last partial
    let mut x = rng::normal_vec(&mut r, block * n_blocks - 13);
    // Vary the scale across blocks by a factor up to e² either way.
    let scales = rng::normal_vec(&mut r, n_blocks);
    for (chunk, s) in x.chunks_mut(block).zip(&scales) {
        let f = s.clamp(-2.0, 2.0).exp();
        chunk.iter_mut().for_each(|v| *v *= f);
    }
    let plain = quantize(&x, params(Codebook4::Nf4, block, false)).unwrap();
    let double = quantize(&x, params(Codebook4::Nf4, block, true)).unwrap();
    assert_eq!(plain.packed(), double.packed()); // the 4-bit codes do not depend on it
    let a_true = plain.absmax();
    let a_hat = double.absmax();
    let dq = double.double_quant().unwrap();
    assert_eq!(dq.codes().len(), n_blocks);
    assert_eq!(dq.absmax().len(), 3);
    let offset = dq.offset();
    let mean = a_true.iter().map(|&v| f64::from(v)).sum::<f64>() / a_true.len() as f64;
    assert!((f64::from(offset) - mean).abs() <= 1e-6 * mean);
    let e = dynamic_map_max_error();
    let mut worst_rel: f64 = 0.0;
    for (b, (&a, &a_hat)) in a_true.iter().zip(&a_hat).enumerate() {
        let a2 = f64::from(dq.absmax()[b / DOUBLE_QUANT_BLOCK]);
        let expected_a2 = a_true[b / 256 * 256..((b / 256 + 1) * 256).min(n_blocks)]
            .iter()
            .fold(0.0f32, |m, &v| m.max((v - offset).abs()));
        assert_eq!(a2.to_bits(), f64::from(expected_a2).to_bits());
        let err = (f64::from(a_hat) - f64::from(a)).abs();
        let bound = a2 * e + 4.0 * f64::from(f32::EPSILON) * (f64::from(a) + a2);
        assert!(
            err <= bound,
            "block {b}: |{a_hat} − {a}| = {err:e} > {bound:e}"
        );
        worst_rel = worst_rel.max(err / f64::from(a));
    }
    // The error is absolute, in units of the spread a2: the smallest absmax values (here
    // e⁴ ≈ 55 times below the largest) can be far off relatively.
    assert!(worst_rel > 0.05, "worst relative absmax error {worst_rel}");

    // With one scale for the whole tensor (typical weights) the absmax values of blocks of
    // 64 normals cluster around 2.4, the spread a2 is about 2, so the error stays below
    // 0.007 · 2 / 1.5 ≈ 1% of any block's absmax.
    let x = rng::normal_vec(&mut r, block * 4096);
    let plain = quantize(&x, params(Codebook4::Nf4, block, false)).unwrap();
    let double = quantize(&x, params(Codebook4::Nf4, block, true)).unwrap();
    let worst_rel = plain
        .absmax()
        .iter()
        .zip(&double.absmax())
        .map(|(&a, &a_hat)| (f64::from(a_hat) - f64::from(a)).abs() / f64::from(a))
        .fold(0.0, f64::max);
    assert!(worst_rel < 0.01, "worst relative absmax error {worst_rel}");

    // Equal absmax values (one block, or a uniform tensor): a2 = 0, reconstruction exact.
    let q = quantize(&[3.0, -1.0, 0.5], Nf4Params::default()).unwrap();
    assert_eq!(bits(&q.absmax()), bits(&[3.0]));
    assert_eq!(q.double_quant().unwrap().codes(), &[0]);
    let x: Vec<f32> = (0..256)
        .map(|i| if i % 64 == 0 { -2.5 } else { 0.1 })
        .collect();
    let q = quantize(&x, Nf4Params::default()).unwrap();
    assert_eq!(bits(&q.absmax()), bits(&[2.5; 4]));
}

// ---------------------------------------------------------------------------------------
// Storage

#[test]
fn bits_per_weight_from_storage() {
    let n = 64 * 256 * 4;
    let x = rng::normal_vec(&mut rng::seeded(1), n);
    let q = quantize(&x, Nf4Params::default()).unwrap();
    assert_eq!(q.storage_bytes(), n / 2 + n / 64 + 4 * 4 + 4);
    let formula = 4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0) + 32.0 / n as f64;
    assert!((q.bits_per_weight() - formula).abs() < 1e-12);
    assert!(
        (q.bits_per_weight() - 4.127).abs() < 1e-3,
        "{}",
        q.bits_per_weight()
    );

    let q = quantize(&x, params(Codebook4::Fp4, 64, false)).unwrap();
    assert_eq!(q.storage_bytes(), n / 2 + 4 * n / 64);
    assert!((q.bits_per_weight() - 4.5).abs() < 1e-12);

    // Ragged: 101 elements in blocks of 64 → 51 bytes of codes, 2 blocks.
    let q = quantize(&x[..101], Nf4Params::default()).unwrap();
    assert_eq!(q.storage_bytes(), 51 + 2 + 4 + 4);
    let q = quantize(&x[..101], params(Codebook4::Nf4, 64, false)).unwrap();
    assert_eq!(q.storage_bytes(), 51 + 2 * 4);
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn typed_errors() {
    for block in [0usize, 1, 3, 65] {
        let err = quantize(&[1.0, 2.0], params(Codebook4::Nf4, block, true)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name: "block", .. }),
            "{err}"
        );
    }
    assert_eq!(
        quantize(&[], Nf4Params::default()).unwrap_err(),
        Error::Empty {
            op: "nf4::quantize"
        }
    );
    let mut x = vec![0.5f32; 10];
    x[5] = f32::NAN;
    x[7] = f32::INFINITY;
    let err = quantize(&x, Nf4Params::default()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 5, .. }), "{err}");
    x[5] = 0.0;
    let err = quantize(&x, Nf4Params::default()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 7, .. }), "{err}");

    let q = quantize(&[1.0, 2.0, 3.0], Nf4Params::default()).unwrap();
    let mut out = vec![0.0; 2];
    let err = q.dequantize_into(&mut out).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

#[test]
fn default_params() {
    let p = Nf4Params::default();
    assert_eq!(p, Nf4Params::new(Codebook4::Nf4, 64, true));
    let q = quantize(&[1.0; 3], p).unwrap();
    assert_eq!(q.params(), p);
    assert_eq!(q.codebook(), Codebook4::Nf4);
    assert_eq!(q.block(), 64);
}

// ---------------------------------------------------------------------------------------
// Idempotence

#[test]
fn requantizing_reproduces_the_tensor() {
    let x = rng::normal_vec(&mut rng::seeded(23), 64 * 37 + 5);
    for codebook in BOTH {
        let q1 = quantize(&x, params(codebook, 64, false)).unwrap();
        let y1 = q1.dequantize();
        let q2 = quantize(&y1, params(codebook, 64, false)).unwrap();
        assert_eq!(bits(&q2.absmax()), bits(&q1.absmax()), "{codebook:?}");
        let y2 = q2.dequantize();
        for (i, ((&a, &b), (&c1, &c2))) in y1
            .iter()
            .zip(&y2)
            .zip(q1.codes().iter().zip(&q2.codes()))
            .enumerate()
        {
            if codebook == Codebook4::Fp4 && c1 == 0b1000 {
                // −0.0 comes back as +0.0.
                assert_eq!(c2, 0, "element {i}");
                assert!(b == 0.0);
            } else {
                assert_eq!(c2, c1, "{codebook:?} element {i}");
                assert_eq!(a.to_bits(), b.to_bits(), "{codebook:?} element {i}");
            }
        }
        if codebook == Codebook4::Nf4 {
            assert_eq!(q2.packed(), q1.packed());
        }

        // With double quantization the codes come back; the absmax moves within the
        // double quantization error.
        let q1 = quantize(&x, params(codebook, 64, true)).unwrap();
        let q2 = quantize(&q1.dequantize(), params(codebook, 64, true)).unwrap();
        for (&c1, &c2) in q1.codes().iter().zip(&q2.codes()) {
            let c1 = if codebook == Codebook4::Fp4 && c1 == 0b1000 {
                0
            } else {
                c1
            };
            assert_eq!(c2, c1, "{codebook:?}");
        }
        let e = dynamic_map_max_error();
        let a2 = f64::from(q2.double_quant().unwrap().absmax()[0]);
        for (&a1, &a2_hat) in q1.absmax().iter().zip(&q2.absmax()) {
            let err = (f64::from(a1) - f64::from(a2_hat)).abs();
            assert!(err <= a2 * e + 1e-6 * f64::from(a1), "{a1} vs {a2_hat}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Property: the reconstruction error stays within the format's budget

proptest! {
    #[test]
    fn error_within_budget(
        n in 1usize..600,
        block_pow in 1u32..8,
        fp4: bool,
        double_quant: bool,
        seed: u64,
        scale_exp in -30i32..30,
        spread in 0.0f32..3.0,
    ) {
        let block = 1usize << block_pow;
        let codebook = if fp4 { Codebook4::Fp4 } else { Codebook4::Nf4 };
        let mut r = rng::seeded(seed);
        let mut x: Vec<f32> = rng::normal_vec(&mut r, n)
            .into_iter()
            .map(|v| v * 2f32.powi(scale_exp))
            .collect();
        // Different scales per block, and some exact zeros.
        let factors = rng::uniform_vec(&mut r, n.div_ceil(block), -spread - 1e-3, spread + 1e-3);
        for (chunk, f) in x.chunks_mut(block).zip(&factors) {
            chunk.iter_mut().for_each(|v| *v *= f.exp());
        }
        for i in (0..n).step_by(7) {
            x[i] = 0.0;
        }
        let q = quantize(&x, params(codebook, block, double_quant)).unwrap();
        let y = q.dequantize();
        let a_hat = q.absmax();
        let budget = codebook.max_normalized_error() + 1e-6;
        let eps = f64::from(f32::EPSILON);
        for (b, chunk) in x.chunks(block).enumerate() {
            let a = f64::from(chunk.iter().fold(0.0f32, |m, v| m.max(v.abs())));
            let ah = f64::from(a_hat[b]);
            let dq_err = (ah - a).abs();
            if let Some(dq) = q.double_quant() {
                let a2 = f64::from(dq.absmax()[b / DOUBLE_QUANT_BLOCK]);
                prop_assert!(
                    dq_err <= a2 * dynamic_map_max_error() + 4.0 * eps * (a + a2),
                    "block {}: absmax {} reconstructed as {}", b, a, ah
                );
            } else {
                prop_assert_eq!(ah.to_bits(), a.to_bits());
            }
            for (k, &v) in chunk.iter().enumerate() {
                let i = b * block + k;
                let err = (f64::from(v) - f64::from(y[i])).abs();
                let bound = a * budget + dq_err + eps * f64::from(y[i]).abs();
                prop_assert!(
                    err <= bound,
                    "x[{}] = {:e} → {:e}: error {:e} > {:e}", i, v, y[i], err, bound
                );
            }
        }
    }
}
