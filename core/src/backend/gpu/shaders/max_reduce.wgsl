// max_reduce.wgsl — maximum over one dimension: out[o, i] = max_d x[o, d, i].
//
// Layout: x contiguous, viewed as [outer, dim, inner]; out [outer, inner].
// Workgroup: 256 invocations, one output element each (the reduced
//   dimension is walked serially: it is a sequence length, not a hidden size).
// Bindings (group 0): 0 x (storage, read), 1 out (storage, read_write),
//   2 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(outer·inner / 256).

struct Params {
    outer: u32,
    dim: u32,
    inner: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= params.outer * params.inner) {
        return;
    }
    let o = i / params.inner;
    let j = i % params.inner;
    var m = -3.4e38;
    for (var d = 0u; d < params.dim; d = d + 1u) {
        m = max(m, x[(o * params.dim + d) * params.inner + j]);
    }
    out[i] = m;
}
