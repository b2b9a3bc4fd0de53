// gather_rows.wgsl — embedding lookup: out[r, :] = table[ids[r], :].
//
// Layout: ids u32 [rows]; table f32 [vocab, cols]; out f32 [rows, cols].
//   Ids are range-checked on the host before dispatch; an id ≥ vocab here
//   (never expected) reads row vocab − 1 rather than out of bounds.
// Workgroup: 256 invocations, one output element each; 2-D dispatch for
//   large outputs as in binary.wgsl.
// Bindings (group 0): 0 ids (storage, read), 1 table (storage, read),
//   2 out (storage, read_write), 3 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(rows·cols / 256).

struct Params {
    rows: u32,
    cols: u32,
    vocab: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= params.rows * params.cols) {
        return;
    }
    let r = i / params.cols;
    let c = i % params.cols;
    let id = min(ids[r], params.vocab - 1u);
    out[i] = table[id * params.cols + c];
}
