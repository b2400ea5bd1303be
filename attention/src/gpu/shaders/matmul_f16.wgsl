enable f16;

// C = A·B with A and B stored as f16 (`enable f16;`), products in f16, sums in f32, C f32:
// the SHADER_F16 variant of matmul.wgsl.
// A [m, k], B [k, n], C [m, n].
//
// Each workgroup computes a TILE_M × TILE_N tile of C, stepping through k in slices of
// TILE_K staged in workgroup memory; each invocation holds an RM × RN register block whose
// rows and columns are strided by the workgroup's height and width (so neighbouring
// invocations touch neighbouring columns: coalesced loads and stores). Every load and store
// is bounds-checked, so m, k and n need not be multiples of the tile.

override TILE_M: u32 = 64u;
override TILE_N: u32 = 64u;
override TILE_K: u32 = 16u;

// The register block: TILE_M / RM rows × TILE_N / RN columns of invocations.
const RM: u32 = 4u;
const RN: u32 = 4u;

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f16>;
@group(0) @binding(1) var<storage, read> b: array<f16>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// A's slice transposed ([TILE_K][TILE_M]) and B's slice ([TILE_K][TILE_N]).
var<workgroup> a_tile: array<f16, TILE_M * TILE_K>;
var<workgroup> b_tile: array<f16, TILE_K * TILE_N>;

@compute @workgroup_size(TILE_N / RN, TILE_M / RM)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let wx = TILE_N / RN;
    let wy = TILE_M / RM;
    let threads = wx * wy;
    let tid = lid.y * wx + lid.x;
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;

    var acc: array<f32, 16>; // RM * RN
    var av: array<f16, 4>; // RM
    var bv: array<f16, 4>; // RN

    for (var t = 0u; t < p.k; t += TILE_K) {
        for (var i = tid; i < TILE_M * TILE_K; i += threads) {
            let r = i / TILE_K;
            let kk = i % TILE_K;
            let gr = row0 + r;
            let gk = t + kk;
            var v = 0.0h;
            if (gr < p.m && gk < p.k) {
                v = a[gr * p.k + gk];
            }
            a_tile[kk * TILE_M + r] = v;
        }
        for (var i = tid; i < TILE_K * TILE_N; i += threads) {
            let kk = i / TILE_N;
            let cc = i % TILE_N;
            let gk = t + kk;
            let gc = col0 + cc;
            var v = 0.0h;
            if (gk < p.k && gc < p.n) {
                v = b[gk * p.n + gc];
            }
            b_tile[kk * TILE_N + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            for (var i = 0u; i < RM; i++) {
                av[i] = a_tile[kk * TILE_M + lid.y + i * wy];
            }
            for (var j = 0u; j < RN; j++) {
                bv[j] = b_tile[kk * TILE_N + lid.x + j * wx];
            }
            for (var i = 0u; i < RM; i++) {
                for (var j = 0u; j < RN; j++) {
                    acc[i * RN + j] += f32(av[i] * bv[j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < RM; i++) {
        let r = row0 + lid.y + i * wy;
        for (var j = 0u; j < RN; j++) {
            let cc = col0 + lid.x + j * wx;
            if (r < p.m && cc < p.n) {
                c[r * p.n + cc] = acc[i * RN + j];
            }
        }
    }
}
