// y = W·x for a GGML-quantized weight W [rows, cols] (rows of 32-element blocks, as in
// ggml-quants.c and GGUF): entry points q4_0 (18-byte blocks: f16 d, 16 bytes of nibbles,
// w = d·(q − 8)), q4_1 (20 bytes: f16 d, f16 m, nibbles, w = d·q + m) and q8_0 (34 bytes:
// f16 d, 32 i8, w = d·q). Nibble byte j holds element j (low) and j + 16 (high).
//
// w holds the blocks' raw bytes, four to a u32 (little-endian) plus a padding word; blocks
// of 18 and 34 bytes start at even offsets, so 16-bit fields never straddle a word and
// 32-bit reads at offset 2 mod 4 splice two words. Scales are decoded with
// shifts (f16_bits_to_f32). One workgroup per row (rows beyond 65535 wrap onto the grid's y axis),
// each invocation taking whole blocks, then a tree reduction. WG must be a power of two.

override WG: u32 = 64u;

struct Params {
    rows: u32,
    cols: u32,
    blocks_per_row: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

// IEEE binary16 bits (low 16 bits of h) to f32, by shifts: what unpack2x16float does, spelt
// out because naga gates unpack2x16float behind a capability (SHADER_FLOAT16_IN_FLOAT32)
// that downlevel devices lack.
fn f16_bits_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0u) {
        // Zero or subnormal: m · 2⁻²⁴.
        return bitcast<f32>(sign | bitcast<u32>(ldexp(f32(m), -24)));
    }
    if (e == 31u) {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

// The f16 at byte offset `off` (even).
fn half_at(off: u32) -> f32 {
    let word = w[off >> 2u];
    return f16_bits_to_f32(select(word, word >> 16u, (off & 2u) != 0u) & 0xffffu);
}

// The u32 at byte offset `off` (even).
fn word_at(off: u32) -> u32 {
    let i = off >> 2u;
    if ((off & 2u) == 0u) {
        return w[i];
    }
    return (w[i] >> 16u) | (w[i + 1u] << 16u);
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Sums red[0..WG] into red[0]; invocation 0 stores it.
fn reduce_store(lid: u32, row: u32, acc: f32) {
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

// Σ_j (nibble_j · d + m)·x_j over one block of nibbles at byte offset `qs`, x from `x0`.
fn nibble_block(qs: u32, d: f32, m: f32, x0: u32) -> f32 {
    var acc = 0.0;
    for (var q = 0u; q < 4u; q++) {
        let word = word_at(qs + 4u * q);
        for (var bb = 0u; bb < 4u; bb++) {
            let byte = (word >> (8u * bb)) & 0xffu;
            let j = 4u * q + bb;
            acc += (f32(byte & 15u) * d + m) * x[x0 + j];
            acc += (f32(byte >> 4u) * d + m) * x[x0 + j + 16u];
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn q4_0(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = row_of(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    var acc = 0.0;
    for (var blk = lid; blk < p.blocks_per_row; blk += WG) {
        let off = (row * p.blocks_per_row + blk) * 18u;
        let d = half_at(off);
        // d·(q − 8) = q·d − 8d
        acc += nibble_block(off + 2u, d, -8.0 * d, blk * 32u);
    }
    reduce_store(lid, row, acc);
}

@compute @workgroup_size(WG)
fn q4_1(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = row_of(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    var acc = 0.0;
    for (var blk = lid; blk < p.blocks_per_row; blk += WG) {
        let off = (row * p.blocks_per_row + blk) * 20u;
        let dm = w[off >> 2u];
        let d = f16_bits_to_f32(dm & 0xffffu);
        let m = f16_bits_to_f32(dm >> 16u);
        acc += nibble_block(off + 4u, d, m, blk * 32u);
    }
    reduce_store(lid, row, acc);
}

@compute @workgroup_size(WG)
fn q8_0(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = row_of(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    var acc = 0.0;
    for (var blk = lid; blk < p.blocks_per_row; blk += WG) {
        let off = (row * p.blocks_per_row + blk) * 34u;
        let d = half_at(off);
        let x0 = blk * 32u;
        for (var q = 0u; q < 8u; q++) {
            let word = word_at(off + 2u + 4u * q);
            for (var bb = 0u; bb < 4u; bb++) {
                let v = bitcast<i32>(word << (24u - 8u * bb)) >> 24u;
                acc += f32(v) * d * x[x0 + 4u * q + bb];
            }
        }
    }
    reduce_store(lid, row, acc);
}
