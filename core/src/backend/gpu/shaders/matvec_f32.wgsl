// matvec_f32.wgsl — C[batch][m×n] = A[batch][m×k] · Bᵀ (+ bias[n]) for few
// rows (decoding: m is 1), B a linear layer's weight stored n×k.
//
// The tiled matmul_f32.wgsl would run a 16×16 workgroup per 16 outputs and
// idle 15 of 16 rows when m = 1; here a workgroup of 64 invocations computes
// 16 outputs, 4 invocations each: an invocation sums every 4th product of
// its output's row of B, then the 4 partial sums are added in workgroup
// memory. (Few, fuller workgroups also suit software adapters such as
// lavapipe, where each workgroup has a fixed cost.)
// Layout: row-major; A batch stride params.a_stride (0: shared), B batch
//   stride params.b_stride (0: one weight for every batch); C contiguous.
// Bindings (group 0): 0 A (storage, read), 1 B (storage, read),
//   2 C (storage, read_write), 3 params (uniform), 4 bias (storage, read).
// Dispatch: (min(g, 65535), ceil(g / 65535), m · batch), g = ceil(n / 16).
// Weight type: `WT` is f32 here; kernels.rs builds an f16-weight variant
//   (`enable f16;`, `alias WT = f16;`) for adapters with shader-f16, where
//   weights are stored as f16 and everything is computed in f32.

alias WT = f32;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    transpose_b: u32,
    a_stride: u32,
    b_stride: u32,
    has_bias: u32,
    _pad: u32,
}

const LANES: u32 = 4u;
const OUTS: u32 = 16u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<WT>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
) {
    let lid = lid3.x;
    let col = (wid.x + wid.y * groups.x) * OUTS + lid / LANES;
    let lane = lid % LANES;
    let row = wid.z % params.m;
    let batch = wid.z / params.m;
    var s = 0.0;
    if (col < params.n) {
        let a0 = batch * params.a_stride + row * params.k;
        let b0 = batch * params.b_stride + col * params.k;
        for (var i = lane; i < params.k; i = i + LANES) {
            s = s + a[a0 + i] * f32(b[b0 + i]);
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    if (lane == 0u && col < params.n) {
        var v = partial[lid] + partial[lid + 1u] + partial[lid + 2u] + partial[lid + 3u];
        if (params.has_bias == 1u) {
            v = v + bias[col];
        }
        c[(batch * params.m + row) * params.n + col] = v;
    }
}
