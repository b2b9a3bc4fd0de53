// common.wgsl — helpers prepended (by core/src/backend/gpu/kernels.rs) to
// every kernel in this folder; WGSL has no includes. Binds no resources;
// declares the 64-float workgroup array `partial` used by the reductions
// below and by the matvec kernels.

// Flat element index of a 256-wide 1-D kernel dispatched in 2-D (x up to
// 65,535 groups, y the overflow): gid.x + gid.y · groups.x · 256.
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// Coordinates of flat index i in a row-major shape of rank 4.
fn coords4(i: u32, s: vec4<u32>) -> vec4<u32> {
    var rem = i;
    let c3 = rem % s.w;
    rem = rem / s.w;
    let c2 = rem % s.z;
    rem = rem / s.z;
    let c1 = rem % s.y;
    return vec4<u32>(rem / s.y, c1, c2, c3);
}

// Row reductions for 64-invocation workgroups (one row per workgroup):
// every invocation passes its partial value and gets the row's total.
// Barriers inside: call from uniform control flow (all 64 invocations).
const ROW_WG: u32 = 64u;

var<workgroup> partial: array<f32, 64>;

fn reduce_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

fn reduce_max(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = ROW_WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            partial[lid] = max(partial[lid], partial[lid + s]);
        }
        workgroupBarrier();
    }
    let m = partial[0];
    workgroupBarrier();
    return m;
}
