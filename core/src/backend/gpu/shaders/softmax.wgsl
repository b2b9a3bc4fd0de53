// softmax.wgsl — softmax over the last dimension, max-subtracted for range.
//
// Layout: x and out contiguous [rows, cols].
// Workgroup: 64 invocations per row: a max reduction, a sum of exp(x − max),
//   then each invocation writes its strided share. −inf inputs (masked
//   positions) give 0.
// Bindings (group 0): 0 x (storage, read), 1 out (storage, read_write),
//   2 params (uniform).
// Dispatch: (min(rows, 65535), ceil(rows / 65535), 1) — one group per row.

struct Params {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
) {
    let row = wid.x + wid.y * groups.x;
    if (row >= params.rows) {
        return;
    }
    let lid = lid3.x;
    let base = row * params.cols;
    var m = -3.0e38;
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        m = max(m, x[base + j]);
    }
    let row_max = reduce_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        s = s + exp(x[base + j] - row_max);
    }
    let inv = 1.0 / reduce_sum(lid, s);
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        out[base + j] = exp(x[base + j] - row_max) * inv;
    }
}
