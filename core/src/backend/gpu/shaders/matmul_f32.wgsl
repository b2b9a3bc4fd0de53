// matmul_f32.wgsl — tiled, batched f32 matrix multiply:
//   C[batch][m×n] = A[batch][m×k] · op(B[batch]) (+ bias[n])
//
// Layout: all matrices row-major and densely packed.
//   A: batch × m×k, batch stride params.a_stride (0: one A for every batch).
//   B: k×n when params.transpose_b == 0, n×k when it is 1 (a linear layer's
//   weight [out × in], so C = A · Bᵀ without materialising Bᵀ); batch stride
//   params.b_stride (0: one B for every batch, e.g. a weight).
//   C: batch × m×n, contiguous. bias: n values added to every row when
//   params.has_bias == 1 (binding 4 must still be bound otherwise).
// Workgroup: 16×16 invocations (256, the WebGPU default maximum); each
//   invocation computes one element of C; global id x runs over columns, y over
//   rows, z over batches. Tiles of A and B are staged in workgroup memory
//   (2 × 16×16 f32 = 2 KiB). Any m, n, k are allowed: out-of-range tile loads
//   read 0 and out-of-range invocations write nothing.
// Bindings (group 0): 0 A (storage, read), 1 B (storage, read),
//   2 C (storage, read_write), 3 params (uniform), 4 bias (storage, read).
// Dispatch: (ceil(n / 16), ceil(m / 16), batch).
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

const TILE: u32 = 16u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<WT>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = gid.y;
    let col = gid.x;
    let a0 = gid.z * params.a_stride;
    let b0 = gid.z * params.b_stride;
    var acc = 0.0;
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t = t + 1u) {
        // Each invocation loads one element of the A tile and one of the B tile.
        let a_col = t * TILE + lid.x;
        if (row < params.m && a_col < params.k) {
            tile_a[lid.y][lid.x] = a[a0 + row * params.k + a_col];
        } else {
            tile_a[lid.y][lid.x] = 0.0;
        }
        let b_row = t * TILE + lid.y;
        if (b_row < params.k && col < params.n) {
            if (params.transpose_b == 1u) {
                tile_b[lid.y][lid.x] = f32(b[b0 + col * params.k + b_row]);
            } else {
                tile_b[lid.y][lid.x] = f32(b[b0 + b_row * params.n + col]);
            }
        } else {
            tile_b[lid.y][lid.x] = 0.0;
        }
        workgroupBarrier();
        for (var i = 0u; i < TILE; i = i + 1u) {
            acc = acc + tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.m && col < params.n) {
        if (params.has_bias == 1u) {
            acc = acc + bias[col];
        }
        c[gid.z * params.m * params.n + row * params.n + col] = acc;
    }
}
