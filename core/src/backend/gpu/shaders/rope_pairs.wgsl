// rope_pairs.wgsl — rotary position embedding on adjacent pairs
// (x[2i], x[2i+1]), the layout of llama.cpp's GGUF Q/K weights:
//   out[2i]   = x[2i]·cos − x[2i+1]·sin
//   out[2i+1] = x[2i]·sin + x[2i+1]·cos
//
// Layout: x and out contiguous [batch·heads, seq, 2·half]; cos and sin
//   [seq, half] (the position's angles).
// Workgroup: 256 invocations, one pair each; 2-D dispatch for large inputs
//   as in binary.wgsl.
// Bindings (group 0): 0 x (storage, read), 1 cos (storage, read),
//   2 sin (storage, read), 3 out (storage, read_write), 4 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(rows·seq·half / 256).

struct Params {
    rows: u32,
    seq: u32,
    half: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> cos_t: array<f32>;
@group(0) @binding(2) var<storage, read> sin_t: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= params.rows * params.seq * params.half) {
        return;
    }
    let p = i % params.half;
    let s = (i / params.half) % params.seq;
    let c = cos_t[s * params.half + p];
    let sn = sin_t[s * params.half + p];
    let x0 = x[2u * i];
    let x1 = x[2u * i + 1u];
    out[2u * i] = x0 * c - x1 * sn;
    out[2u * i + 1u] = x0 * sn + x1 * c;
}
