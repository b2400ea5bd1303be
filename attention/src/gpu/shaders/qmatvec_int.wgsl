// y = W·x for a uniform-integer weight W [rows, cols] (quant::uniform: 1- to 8-bit codes,
// symmetric or affine, per output channel, per group along the row, or per tensor),
// dequantized on the fly: w_ij = s_g · (code_ij − z_g).
//
// w holds the packed codes exactly as quant stores them, a little-endian bit stream (code i
// in bits [i·BITS, (i+1)·BITS)), four bytes to a u32 plus one padding word; sz holds
// (scale, zero point) per group, group g = row · groups_per_row + col / group. One workgroup
// per row (rows beyond 65535 wrap onto the grid's y axis), a strided loop over the row and
// a tree reduction. WG must be a power of two.
//
// Entry points: `main` decodes one code per step (any width, codes may straddle words);
// `main_words` one u32 word of 32 / BITS codes per step, for widths dividing 32 when rows
// and groups are whole words (cols and group multiples of 32 / bits).

override WG: u32 = 256u;

struct Params {
    rows: u32,
    cols: u32,
    bits: u32,
    group: u32,
    groups_per_row: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> sz: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

// Code i of the bit stream.
fn code(i: u32) -> u32 {
    let bit = i * p.bits;
    let word = bit >> 5u;
    let sh = bit & 31u;
    var v = w[word] >> sh;
    if (sh + p.bits > 32u) {
        v |= w[word + 1u] << (32u - sh);
    }
    return v & ((1u << p.bits) - 1u);
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
    let g0 = row * p.groups_per_row;
    var acc = 0.0;
    for (var e = lid; e < p.cols; e += WG) {
        let s = sz[g0 + e / p.group];
        acc += s.x * (f32(code(base + e)) - s.y) * x[e];
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
        y[row] = red[0];
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
    let per_word = 32u / p.bits;
    let words = p.cols / per_word;
    let w0 = row * words;
    let g0 = row * p.groups_per_row;
    let mask = (1u << p.bits) - 1u;
    var acc = 0.0;
    for (var i = lid; i < words; i += WG) {
        let word = w[w0 + i];
        let e0 = i * per_word;
        let s = sz[g0 + e0 / p.group];
        var part = 0.0;
        for (var j = 0u; j < per_word; j++) {
            let q = (word >> (j * p.bits)) & mask;
            part += (f32(q) - s.y) * x[e0 + j];
        }
        acc += s.x * part;
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
        y[row] = red[0];
    }
}
