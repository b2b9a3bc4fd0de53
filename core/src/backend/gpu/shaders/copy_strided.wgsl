// copy_strided.wgsl — strided copy, up to rank 4: the one kernel behind
// transpose, narrow, cat and the in-place KV-cache write.
//
// For every coordinate c of params.shape (outermost first, padded with
// leading 1s):  dst[dst_offset + c·dst_strides] = src[src_offset + c·src_strides].
// Element strides let the source be a permuted (transpose) or offset
// (narrow) view, and the destination a slab of a larger tensor (cat,
// write_slice).
// Workgroup: 256 invocations, one element each; 2-D dispatch for large
//   copies as in binary.wgsl.
// Bindings (group 0): 0 src (storage, read), 1 dst (storage, read_write),
//   2 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(n / 256).

struct Params {
    shape: vec4<u32>,
    src_strides: vec4<u32>,
    dst_strides: vec4<u32>,
    n: u32,
    src_offset: u32,
    dst_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

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
    dst[params.dst_offset + dot(c, params.dst_strides)] = src[params.src_offset + dot(c, params.src_strides)];
}
