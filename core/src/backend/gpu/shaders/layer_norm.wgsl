// layer_norm.wgsl — layer normalisation over the last dimension:
//   out = (x − mean) / √(var + eps) · weight + bias
//
// Layout: x and out contiguous [rows, cols]; weight and bias [cols].
// Workgroup: 64 invocations per row; each sums a strided share of the row,
//   then a tree reduction in workgroup memory gives the mean, and a second
//   pass the (biased, as PyTorch) variance of the centred values.
// Bindings (group 0): 0 x (storage, read), 1 weight (storage, read),
//   2 bias (storage, read), 3 out (storage, read_write), 4 params (uniform).
// Dispatch: (min(rows, 65535), ceil(rows / 65535), 1) — one group per row.

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

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
    var s = 0.0;
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        s = s + x[base + j];
    }
    let mean = reduce_sum(lid, s) / f32(params.cols);
    var v = 0.0;
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        let d = x[base + j] - mean;
        v = v + d * d;
    }
    let inv = 1.0 / sqrt(reduce_sum(lid, v) / f32(params.cols) + params.eps);
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        out[base + j] = (x[base + j] - mean) * inv * weight[j] + bias[j];
    }
}
