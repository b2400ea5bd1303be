// llvmpipe's loop budget: y[0] counts a 100 000-trip loop, y[1] a 1000×100 nest after it,
// y[2] (in a fresh invocation) a 30 000-trip loop around a constant 16-trip loop, y[3] a
// 30 000-trip loop around a constant 64-trip loop.
@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
    if (wid.x == 0u) {
        var n = 0u;
        for (var i = 0u; i < 100000u; i++) { n += 1u; }
        y[0] = n;
        var m = 0u;
        for (var a = 0u; a < 1000u; a++) { for (var b = 0u; b < 100u; b++) { m += 1u; } }
        y[1] = m;
    } else if (wid.x == 1u) {
        var n = 0u;
        for (var i = 0u; i < 30000u; i++) { for (var j = 0u; j < 16u; j++) { n += 1u; } }
        y[2] = n;
    } else {
        var n = 0u;
        for (var i = 0u; i < 30000u; i++) { for (var j = 0u; j < 64u; j++) { n += 1u; } }
        y[3] = n;
    }
}
