// gather_rows.wgsl — embedding lookup: out[r, :] = table[ids[r], :].
//
// Layout: ids u32 [rows]; table [count, cols] holding rows first .. first +
//   count of the whole table (a table over the storage-binding limit is
//   uploaded in row ranges and gathered with one dispatch per range: an id
//   outside this range is left to the dispatch that has it); out f32
//   [rows, cols]. Ids are range-checked on the host before dispatch.
// Workgroup: 256 invocations, one output element each; 2-D dispatch for
//   large outputs as in binary.wgsl.
// Bindings (group 0): 0 ids (storage, read), 1 table (storage, read),
//   2 out (storage, read_write), 3 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(rows·cols / 256).
// Weight type: `WT` is f32 here; kernels.rs builds an f16-weight variant
//   (`enable f16;`, `alias WT = f16;`) for adapters with shader-f16, where
//   weights are stored as f16 and everything is computed in f32.

alias WT = f32;

struct Params {
    rows: u32,
    cols: u32,
    first: u32,
    count: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<WT>;
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
    let id = ids[r];
    if (id < params.first || id - params.first >= params.count) {
        return;
    }
    out[i] = f32(table[(id - params.first) * params.cols + c]);
}
