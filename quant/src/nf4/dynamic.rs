//! bitsandbytes' signed dynamic 8-bit map and its search, used for double quantization.

/// Block size of the second-level (double) quantization: bitsandbytes quantizes the
/// centred absmax values with `quantize_blockwise(…, blocksize=256)`.
pub const DOUBLE_QUANT_BLOCK: usize = 256;

/// bitsandbytes' `create_dynamic_map(signed=True)` (max_exponent_bits 7, total_bits 8): the
/// 256 sorted `f32` values its double quantization indexes with one byte.
///
/// Construction (Dettmers 2015, "8-Bit Approximations for Parallelism in Deep Learning"):
/// for each exponent `e` in `0..7`, take `b = torch.linspace(0.1, 1, 2^e + 1,
/// dtype=float32)`, the means `(b[k] + b[k+1]) / 2` of neighbouring points, and scale them
/// by `10^(e−6)`; these 127 positive values, their negatives, `0` and `1.0`, sorted. So
/// index 127 is `0.0`, index 255 is `1.0`, and the smallest value is `≈ −0.99296875` (there
/// is no `−1`): the map is not symmetric at its ends.
///
/// The values are the ones PyTorch produces on x86-64, which this constant reproduces
/// operation for operation:
/// - `linspace` (ATen `RangeFactoriesKernel.cpp`, scalar loop) computes `step = (1.0f −
///   0.1f) / (steps − 1)` in `f32`, then `start + step·k` for the first half of the points
///   and `end − step·(steps − 1 − k)` for the rest, each with a single rounding (the AVX2
///   build of the kernel contracts them into fused multiply-adds);
/// - the means are `f32` additions halved;
/// - the scale, a Python float, is cast to `f32` before the `f32` multiplication.
///
/// Checked bit for bit against a public dump of bitsandbytes' map (and spot-checked
/// against three more); only the fused `linspace` reproduces it: rounding `step·k` first
/// would change 42 of the 256 entries by an ulp or two.
pub const DYNAMIC_MAP: [f32; 256] = build_dynamic_map();

const fn build_dynamic_map() -> [f32; 256] {
    // 10^(e − 6) as f32 (the same f32 values as casting Python's `10 ** (e − 6)`).
    const SCALES: [f32; 7] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    let mut map = [0.0f32; 256];
    let mut written = 0usize;
    let mut e = 0usize;
    while e < SCALES.len() {
        let points = (1usize << e) + 1;
        let (start, end) = (0.1f32, 1.0f32);
        let step = (end - start) / (points - 1) as f32;
        let mut k = 0usize;
        while k + 1 < points {
            let lo = linspace_point(start, end, step, points, k);
            let hi = linspace_point(start, end, step, points, k + 1);
            let value = SCALES[e] * ((lo + hi) / 2.0);
            // Positive values ascend from index 128; their negatives descend from 126.
            map[128 + written] = value;
            map[126 - written] = -value;
            written += 1;
            k += 1;
        }
        e += 1;
    }
    map[127] = 0.0;
    map[255] = 1.0;
    map
}

/// Point `k` of a `points`-point `f32` linspace, with the fused multiply-add rounding of
/// ATen's scalar loop: `start + step·k` below the halfway index, `end − step·(points−1−k)`
/// from it on. Evaluated in `f64`, where it is exact (a 24-bit `step` times `k < 2^7` has at
/// most 31 significant bits, and the sum spans less than 31 bits between 2^−1 and 2^−30),
/// then rounded to `f32` once: the same result as an `f32` FMA.
const fn linspace_point(start: f32, end: f32, step: f32, points: usize, k: usize) -> f32 {
    if k < points / 2 {
        (start as f64 + step as f64 * k as f64) as f32
    } else {
        (end as f64 - step as f64 * (points - 1 - k) as f64) as f32
    }
}

/// The index bitsandbytes' `dQuantize<0>` (deterministic rounding) picks in [`DYNAMIC_MAP`]
/// for a normalized value `y`.
///
/// A 7-step binary search from index 127 (steps 64, 32, …, 1, going up when `y` is strictly
/// greater than the probed value), which always ends on an even index `p`; then `y` is
/// compared with the `f32` midpoint between `p` and the neighbour on its side: strictly
/// past it, the neighbour wins, otherwise `p`. So non-tie values get the nearest entry,
/// values beyond either end get the end entry, an exact midpoint goes to the even index
/// of the pair, and NaN goes to 0.
pub(super) fn dynamic_index(y: f32) -> u8 {
    let map = &DYNAMIC_MAP;
    let (mut below_idx, mut above_idx) = (0usize, 255usize);
    let (mut below, mut above) = (-1.0f32, 1.0f32);
    let mut p = 127usize;
    let mut step = 64usize;
    while step > 0 {
        let v = map[p];
        if y > v {
            below_idx = p;
            below = v;
            p += step;
        } else {
            above_idx = p;
            above = v;
            p -= step;
        }
        step /= 2;
    }
    // The search never probes the two ends; the kernel reads them in when a bound was
    // never moved off its initial index.
    if above_idx == 255 {
        above = map[255];
    }
    if below_idx == 0 {
        below = map[0];
    }
    let v = map[p];
    let chosen = if y > v {
        if y > (above + v) * 0.5 { above_idx } else { p }
    } else if y < (below + v) * 0.5 {
        below_idx
    } else {
        p
    };
    chosen as u8
}
