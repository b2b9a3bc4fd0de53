// binary.wgsl — elementwise a ⊙ b with broadcasting, up to rank 4.
//
// Layout: out is contiguous with shape params.shape (outermost first, padded
//   with leading 1s to rank 4). a and b are read through per-dimension
//   element strides (0 along a broadcast dimension).
// Ops (params.op): 0 add, 1 multiply.
// Workgroup: 256 invocations, one element each; the flat index is
//   gid.x + gid.y · (groups in x) · 256, so large tensors dispatch in 2-D
//   (at most 65,535 groups per dimension).
// Bindings (group 0): 0 a (storage, read), 1 b (storage, read),
//   2 out (storage, read_write), 3 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(n / 256).

struct Params {
    shape: vec4<u32>,
    a_strides: vec4<u32>,
    b_strides: vec4<u32>,
    n: u32,
    op: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= params.n) {
        return;
    }
    let c = coords4(i, params.shape);
    let x = a[dot(c, params.a_strides)];
    let y = b[dot(c, params.b_strides)];
    if (params.op == 0u) {
        out[i] = x + y;
    } else {
        out[i] = x * y;
    }
}
