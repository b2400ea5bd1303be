@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(1)
fn main() {
    var n = 0u;
    for (var i = 0u; i < 100000u; i++) { n += 1u; }
    y[0] = n;
    var m = 0u;
    for (var a = 0u; a < 1000u; a++) { for (var b = 0u; b < 100u; b++) { m += 1u; } }
    y[1] = m;
}
