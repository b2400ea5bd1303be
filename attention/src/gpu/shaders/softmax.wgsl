// Row softmax of x [rows, cols] (row-major f32): y = exp(x − max) / Σ exp(x − max).
//
// One workgroup per row (rows beyond 65535 wrap onto the grid's y axis): a max reduction,
// a sum reduction, then the normalized write, each a strided loop over the row followed by
// a tree reduction in workgroup memory. A row whose entries are all −∞ (a fully masked row)
// gives zeros, never NaN; −∞ entries of other rows give exact zeros. WG must be a power of
// two.

override WG: u32 = 256u;

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

const NEG_INF: u32 = 0xff800000u;

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
    let neg_inf = bitcast<f32>(NEG_INF);

    var m = neg_inf;
    for (var i = lid; i < p.cols; i += WG) {
        m = max(m, x[base + i]);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();
    // An all −∞ row: shift by 0, so every exp is exp(−∞) = 0 and the sum is 0.
    let shift = select(m, 0.0, m == neg_inf);

    var sum = 0.0;
    for (var i = lid; i < p.cols; i += WG) {
        sum += exp(x[base + i] - shift);
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    let inv = select(1.0 / total, 0.0, total == 0.0);
    for (var i = lid; i < p.cols; i += WG) {
        y[base + i] = exp(x[base + i] - shift) * inv;
    }
}
