// common.wgsl — helpers prepended (by core/src/backend/gpu/kernels.rs) to
// every kernel in this folder; WGSL has no includes. Defines nothing that
// binds resources.

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
