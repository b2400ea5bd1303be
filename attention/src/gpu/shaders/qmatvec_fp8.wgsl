// y = W·x for an FP8 weight W [rows, cols] (quant::fp8: OCP E4M3FN, or E5M2 with
// E5M2 = true) with one scale per row (per-tensor scales are repeated per row on upload):
// w_ij = s_i · fp8(code_ij), decoded on the fly with shifts.
//
// w holds the codes, one byte each, four to a u32 (little-endian). One workgroup per row
// (rows beyond 65535 wrap onto the grid's y axis), a strided loop over the row and a tree
// reduction. WG must be a power of two. Entry points: `main` decodes one byte per step,
// `main_words` one word of four (for cols a multiple of 4).

override WG: u32 = 256u;
override E5M2: bool = false;

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> scales: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

const QNAN: u32 = 0x7fc00000u;
const INF: u32 = 0x7f800000u;

// E4M3FN: bias 7, no infinities, S.1111.111 is NaN. E5M2: bias 15, IEEE-like specials.
fn decode(b: u32) -> f32 {
    let sign = select(1.0, -1.0, (b & 0x80u) != 0u);
    var mag: f32;
    if (E5M2) {
        let e = (b >> 2u) & 31u;
        let m = b & 3u;
        if (e == 31u) {
            mag = select(bitcast<f32>(QNAN), bitcast<f32>(INF), m == 0u);
        } else if (e == 0u) {
            mag = ldexp(f32(m), -16);
        } else {
            mag = ldexp(f32(4u + m), i32(e) - 17);
        }
    } else {
        let e = (b >> 3u) & 15u;
        let m = b & 7u;
        if (e == 15u && m == 7u) {
            mag = bitcast<f32>(QNAN);
        } else if (e == 0u) {
            mag = ldexp(f32(m), -9);
        } else {
            mag = ldexp(f32(8u + m), i32(e) - 10);
        }
    }
    return sign * mag;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var acc = 0.0;
    for (var e = lid; e < p.cols; e += WG) {
        let i = base + e;
        let b = (w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
        acc += decode(b) * x[e];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[row] = scales[row] * red[0];
    }
}

@compute @workgroup_size(WG)
fn main_words(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= p.rows) {
        return;
    }
    let words = p.cols / 4u;
    let w0 = row * words;
    var acc = 0.0;
    for (var i = lid; i < words; i += WG) {
        let word = w[w0 + i];
        let e0 = 4u * i;
        acc += decode(word & 0xffu) * x[e0];
        acc += decode((word >> 8u) & 0xffu) * x[e0 + 1u];
        acc += decode((word >> 16u) & 0xffu) * x[e0 + 2u];
        acc += decode(word >> 24u) * x[e0 + 3u];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[row] = scales[row] * red[0];
    }
}
