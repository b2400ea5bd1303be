// Infini-attention (Munkhdalai et al. 2024, arXiv:2404.07143 §2.1) memory retrieval:
// ret = σ(x)·M / (σ(x)·z), σ = ELU + 1, zero where σ(x)·z ≤ 0 (before any write).
//
// One workgroup per (row, head); invocations loop over the d output columns.
// mode 0 (mix):   x = query row (h·n_q + i0 + row) of Q, memory of kv head h / group,
//                 dst[row] = gate[h]·ret + (1 − gate[h])·dst[row] (dst = the local
//                 attention output, mixed in place);
// mode 1 (delta): x = key row (g·n_k + i0 + row) of K (h = g, group = 1),
//                 dst[g·rows_total + row] = V[same row] − ret (the delta rule's values).

override WG: u32 = 64u;

const DMAX: u32 = 128u;

struct Params {
    n_src: u32,      // rows per head of src (n_q for Q, n_k for K)
    d: u32,
    i0: u32,         // first src row (per head) of this dispatch
    group: u32,      // heads per memory
    mode: u32,
    dst_rows: u32,   // rows per head of dst in mode 1 (mode 0: n_src)
    row0: u32,       // first dst row (per head) in mode 1
    pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> mem: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>; // gates (mode 0) or V (mode 1)
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> phi: array<f32, DMAX>;

fn sigma(x: f32) -> f32 {
    return select(exp(min(x, 0.0)), x + 1.0, x > 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let d = p.d;
    let h = wid.y;
    let g = h / p.group;
    let srow = h * p.n_src + p.i0 + wid.x;
    for (var a = lid; a < d; a += WG) {
        phi[a] = sigma(src[srow * d + a]);
    }
    workgroupBarrier();
    var den = 0.0;
    for (var a = 0u; a < d; a++) {
        den = fma(phi[a], z[g * d + a], den);
    }
    let mbase = g * d * d;
    for (var b = lid; b < d; b += WG) {
        var num = 0.0;
        for (var a = 0u; a < d; a++) {
            num = fma(phi[a], mem[mbase + a * d + b], num);
        }
        var ret = 0.0;
        if (den > 0.0) {
            ret = num / den;
        }
        if (p.mode == 0u) {
            let gate = aux[h];
            let at = srow * d + b;
            dst[at] = gate * ret + (1.0 - gate) * dst[at];
        } else {
            dst[(h * p.dst_rows + p.row0 + wid.x) * d + b] = aux[srow * d + b] - ret;
        }
    }
}
