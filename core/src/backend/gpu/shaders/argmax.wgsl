// argmax.wgsl — index of the largest value of each row (greedy decoding
// reads back one u32 per row instead of the whole vocabulary of logits).
// Ties go to the lowest index, as the host's argmax does; NaN never wins.
//
// Layout: x contiguous [rows, cols]; out u32 [rows].
// Workgroup: 64 invocations per row: each scans a strided share keeping its
//   first maximum, then a tree reduction picks the larger value (on equal
//   values the lower index).
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
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> best_idx: array<u32, 64>;

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
    var m = -3.0e38; // below every logit; −∞ entries never win (a row of them gives 0)
    var at = 0xffffffffu;
    for (var j = lid; j < params.cols; j = j + ROW_WG) {
        let v = x[base + j];
        if (v > m || (at == 0xffffffffu && v == m)) {
            m = v;
            at = j;
        }
    }
    partial[lid] = m;
    best_idx[lid] = at;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            let vo = partial[lid + s];
            let io = best_idx[lid + s];
            let vm = partial[lid];
            let im = best_idx[lid];
            if (io != 0xffffffffu && (im == 0xffffffffu || vo > vm || (vo == vm && io < im))) {
                partial[lid] = vo;
                best_idx[lid] = io;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[row] = select(best_idx[0], 0u, best_idx[0] == 0xffffffffu);
    }
}
