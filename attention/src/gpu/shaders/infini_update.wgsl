// Infini-attention (Munkhdalai et al. 2024, arXiv:2404.07143 §2.1) memory write over the
// valid keys t of one range: M[g] += Σ_t σ(k_t)ᵀ w_t, z[g] += Σ_t σ(k_t), σ = ELU + 1,
// with w = V (linear rule) or the delta rule's corrected values (infini_retrieve mode 1).
//
// One invocation per entry (a, b) of M[g] (workgroup y = g); the invocations with b = 0
// also update z[g][a]. Keys are summed in order.

override WG: u32 = 64u;

struct Params {
    n_k: u32,        // rows per head of K (and of valid)
    d: u32,
    k0: u32,         // first key row (per head) of the range
    count: u32,      // keys in the range
    w_rows: u32,     // rows per head of w
    w0: u32,         // row of w for key k0
    has_valid: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> valid: array<u32>;
@group(0) @binding(3) var<storage, read_write> mem: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn sigma(x: f32) -> f32 {
    return select(exp(min(x, 0.0)), x + 1.0, x > 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let d = p.d;
    let g = wid.y;
    let e = wid.x * WG + lid;
    if (e >= d * d) {
        return;
    }
    let a = e / d;
    let b = e - a * d;
    var acc = 0.0;
    var zs = 0.0;
    for (var t = 0u; t < p.count; t++) {
        let key = p.k0 + t;
        if (p.has_valid != 0u && valid[key] == 0u) {
            continue;
        }
        let s = sigma(k[(g * p.n_k + key) * d + a]);
        acc = fma(s, w[(g * p.w_rows + p.w0 + t) * d + b], acc);
        zs = zs + s;
    }
    mem[g * d * d + e] += acc;
    if (b == 0u) {
        z[g * d + a] += zs;
    }
}
