// Flash attention forward (Dao et al. 2022, arXiv:2205.14135, algorithm 1) with the
// online softmax of Milakov & Gimelshein (arXiv:1805.02867), generalised to strided
// ("dilated") segments so that LongNet dilated attention (arXiv:2307.02486) and the local
// attention of Infini-attention (arXiv:2404.07143) run on the same kernel.
//
// One workgroup = (query block, query head, segment). One invocation owns one query row:
// its scaled query, running maximum m, running sum l and unnormalised output row o live in
// private memory; K/V tiles of BK rows are staged in workgroup memory (2 × 2048 f32 =
// 16 KiB: BK · d ≤ 2048, checked by the host).
//
// Positions. Segment `seg` covers positions [seg·w, seg·w + w); query head h keeps the
// positions base + r·u (u = 0, 1, …) with base = seg·w + o_h, o_h = h / ceil(heads / r).
// Query position p is row p − q_offset of Q; key position j is row j of K/V. Plain flash
// attention is w ≥ every position (one segment), r = 1 (o_h = 0).
//
// Masking: causal hides keys after the query's position; `valid` (one u32 per key
// position, used when has_valid = 1) hides padded keys. A row that sees no key keeps
// m = NEG and l = 0, and is written as zeros with lse = NEG (the host reads NEG as −∞).
//
// merge = 0 writes (out, lse); merge = 1 combines the row with the (out, lse) already in
// the buffers by log-sum-exp (the pairs of dilated attention).

// Loops over the head dimension run in chunks of 16 with a constant inner trip count, which
// compilers unroll: llvmpipe (lavapipe) gives each invocation a budget of 65 535 iterations
// of the loops it does not unroll, and a plain `for c < d` per key would exhaust it at
// n_k·d ≈ 32 000. What is left counts about 2·⌈d/16⌉ + 2 iterations per key.
override BQ: u32 = 64u;   // query rows per workgroup = invocations per workgroup
override BK: u32 = 32u;   // keys per tile: BK ≤ BKMAX and BK · d ≤ TILE

const TILE: u32 = 2048u;
const DMAX: u32 = 128u;
const BKMAX: u32 = 64u;
// "−∞": WGSL has no infinity literal.
const NEG: f32 = -3.0e38;

struct Params {
    heads: u32,
    group: u32,     // heads / kv_heads
    n_q: u32,
    n_k: u32,
    d: u32,
    q_offset: u32,
    causal: u32,
    has_valid: u32,
    scale_bits: u32,
    w: u32,         // segment length
    r: u32,         // dilation
    merge: u32,
    seg0: u32,      // segment of workgroup z = 0
    q_end: u32,     // q_offset + n_q
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> valid: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

var<workgroup> ks: array<f32, TILE>;
var<workgroup> vs: array<f32, TILE>;

@compute @workgroup_size(BQ)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let d = p.d;
    let r = p.r;
    let h = wid.y;
    let seg = p.seg0 + wid.z;
    let start = seg * p.w;
    let seg_end = start + p.w;
    let o_h = h / ((p.heads + r - 1u) / r);
    let base = start + o_h;
    let lo = max(p.q_offset, start);
    let hi = min(p.q_end, seg_end);
    if (base >= hi) {
        return;
    }
    var u0 = 0u;
    if (lo > base) {
        u0 = (lo - base + r - 1u) / r;
    }
    let first = base + r * u0;
    if (first >= hi) {
        return;
    }
    let nq = (hi - 1u - first) / r + 1u;
    let ub0 = u0 + wid.x * BQ;
    let ub_end = min(u0 + nq, ub0 + BQ);
    if (ub0 >= ub_end) {
        return;
    }
    let k_end = min(seg_end, p.n_k);
    var nk = 0u;
    if (base < k_end) {
        nk = (k_end - 1u - base) / r + 1u;
    }
    if (p.causal != 0u) {
        nk = min(nk, ub_end); // key t is visible to sparse query u iff t ≤ u
    }

    let g = h / p.group;
    let u = ub0 + lid;
    let live = u < ub_end;
    let pos = base + r * u;
    let row = h * p.n_q + (pos - p.q_offset);
    let scale = bitcast<f32>(p.scale_bits);

    var qr: array<f32, DMAX>;
    var o: array<f32, DMAX>;
    var s: array<f32, BKMAX>;
    if (live) {
        for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
            qr[c] = q[row * d + c] * scale;
            o[c] = 0.0;
        }
 }
 }
    }
    var m = NEG;
    var l = 0.0;

    let kv_row0 = g * p.n_k + base;
    for (var t0 = 0u; t0 < nk; t0 += BK) {
        let tn = min(BK, nk - t0);
        workgroupBarrier();
        for (var idx = lid; idx < tn * d; idx += BQ) {
            let tt = idx / d;
            let c = idx - tt * d;
            let src = (kv_row0 + r * (t0 + tt)) * d + c;
            ks[idx] = k[src];
            vs[idx] = v[src];
        }
        workgroupBarrier();
        if (live) {
            var mt = NEG;
            for (var tt = 0u; tt < tn; tt++) {
                let t = t0 + tt;
                var ok = p.causal == 0u || t <= u;
                if (p.has_valid != 0u) {
                    ok = ok && valid[base + r * t] != 0u;
                }
                var sc = NEG;
                if (ok) {
                    var acc = 0.0;
                    for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
                        acc = fma(qr[c], ks[tt * d + c], acc);
                    }
 }
 }
                    sc = acc;
                    mt = max(mt, sc);
                }
                s[tt] = sc;
            }
            let m_new = max(m, mt);
            if (m_new > NEG) {
                let alpha = exp(m - m_new);
                l = l * alpha;
                for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
                    o[c] = o[c] * alpha;
                }
 }
 }
                for (var tt = 0u; tt < tn; tt++) {
                    if (s[tt] > NEG) {
                        let e = exp(s[tt] - m_new);
                        l = l + e;
                        for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
                            o[c] = fma(e, vs[tt * d + c], o[c]);
                        }
 }
 }
                    }
                }
                m = m_new;
            }
        }
    }

    if (!live) {
        return;
    }
    var row_lse = NEG;
    var inv = 0.0;
    if (l > 0.0) {
        row_lse = m + log(l);
        inv = 1.0 / l;
    }
    if (p.merge == 0u) {
        for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
            out[row * d + c] = o[c] * inv;
        }
 }
 }
        lse[row] = row_lse;
        return;
    }
    if (row_lse <= NEG) {
        return;
    }
    let la = lse[row];
    if (la <= NEG) {
        for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
            out[row * d + c] = o[c] * inv;
        }
 }
 }
        lse[row] = row_lse;
        return;
    }
    let mm = max(la, row_lse);
    let total = mm + log(exp(la - mm) + exp(row_lse - mm));
    let wa = exp(la - total);
    let wb = exp(row_lse - total) * inv;
    for (var c0 = 0u; c0 < d; c0 += 16u) {
 for (var j16 = 0u; j16 < 16u; j16++) {
 let c = c0 + j16;
 if (c < d) {
        out[row * d + c] = wa * out[row * d + c] + wb * o[c];
    }
 }
 }
    lse[row] = total;
}
