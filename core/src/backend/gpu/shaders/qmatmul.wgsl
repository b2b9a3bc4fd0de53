// qmatmul.wgsl — y[row, :] = x[row, :] · Wᵀ with W [n × k] kept in a ggml
// block format on the GPU (dequantized in registers, never in memory), for
// one row (decoding) up to whole prompts (prefill):
//   ty 0 Q8_0: value = d · q,        q int8,          32 per block
//   ty 1 Q4_0: value = d · (q − 8),  q 4-bit,         32 per block
//   ty 2 Q4_1: value = d · q + m,    q 4-bit,         32 per block
// Layout (repacked on upload from the GGUF blocks, structure of arrays so
//   every read is 4-byte aligned): scales f32 [n · k/32] (d per block, row
//   major), mins f32 [n · k/32] (m, Q4_1 only; bound but unused otherwise),
//   quants u32: Q8_0 8 words per block (4 int8 each, little-endian); Q4_0 and
//   Q4_1 4 words per block (16 bytes: byte i holds element i in its low
//   nibble and element i + 16 in its high nibble, as ggml stores them).
//   x f32 [rows, k]; y f32 with row stride out_stride, this matrix's outputs
//   at columns out_offset .. out_offset + n (a weight over the storage-binding
//   limit is uploaded in row ranges, one dispatch each).
// Workgroup: 64 invocations compute 16 outputs for a tile of up to ROWS = 8
//   input rows, 4 invocations per output: an invocation takes every 4th
//   block of its output's weight row, dequantizes each block once and applies
//   it to every row of the tile (so prefill reads each weight once per 8
//   tokens, not once per token); the 4 partial sums are added in workgroup
//   memory.
// Bindings (group 0): 0 x (storage, read), 1 scales (storage, read),
//   2 mins (storage, read), 3 quants (storage, read), 4 y (storage,
//   read_write), 5 params (uniform).
// Dispatch: (min(g, 65535), ceil(g / 65535), ceil(rows / 8)), g = ceil(n / 16).

struct Params {
    n: u32,
    k: u32,
    ty: u32,
    rows: u32,
    out_stride: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const LANES: u32 = 4u;
const OUTS: u32 = 16u;
const ROWS: u32 = 8u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> scales: array<f32>;
@group(0) @binding(2) var<storage, read> mins: array<f32>;
@group(0) @binding(3) var<storage, read> quants: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> sums: array<f32, 512>; // ROWS · 64

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
) {
    let lid = lid3.x;
    let col = (wid.x + wid.y * groups.x) * OUTS + lid / LANES;
    let lane = lid % LANES;
    let r0 = wid.z * ROWS;
    let nr = min(ROWS, params.rows - r0);
    let nb = params.k / 32u;
    var s: array<f32, 8>;
    for (var r = 0u; r < ROWS; r = r + 1u) {
        s[r] = 0.0;
    }
    if (col < params.n) {
        for (var b = lane; b < nb; b = b + LANES) {
            let blk = col * nb + b;
            let d = scales[blk];
            // The block's 32 weights, without its scale (and offset).
            var w: array<f32, 32>;
            if (params.ty == 0u) {
                for (var i = 0u; i < 8u; i = i + 1u) {
                    let word = bitcast<i32>(quants[blk * 8u + i]);
                    for (var j = 0u; j < 4u; j = j + 1u) {
                        w[i * 4u + j] = f32(extractBits(word, j * 8u, 8u));
                    }
                }
            } else {
                for (var i = 0u; i < 4u; i = i + 1u) {
                    let word = quants[blk * 4u + i];
                    for (var j = 0u; j < 4u; j = j + 1u) {
                        w[i * 4u + j] = f32(extractBits(word, j * 8u, 4u));
                        w[i * 4u + j + 16u] = f32(extractBits(word, j * 8u + 4u, 4u));
                    }
                }
            }
            var offset = 0.0;
            if (params.ty == 1u) {
                offset = -8.0 * d;
            } else if (params.ty == 2u) {
                offset = mins[blk];
            }
            for (var r = 0u; r < nr; r = r + 1u) {
                let xb = (r0 + r) * params.k + b * 32u;
                var acc = 0.0;
                var xsum = 0.0;
                for (var e = 0u; e < 32u; e = e + 1u) {
                    let xv = x[xb + e];
                    acc = acc + w[e] * xv;
                    xsum = xsum + xv;
                }
                s[r] = s[r] + d * acc + offset * xsum;
            }
        }
    }
    for (var r = 0u; r < ROWS; r = r + 1u) {
        sums[r * 64u + lid] = s[r];
    }
    workgroupBarrier();
    if (lane == 0u && col < params.n) {
        for (var r = 0u; r < nr; r = r + 1u) {
            let p = r * 64u + lid;
            y[(r0 + r) * params.out_stride + params.out_offset + col] = sums[p] + sums[p + 1u] + sums[p + 2u] + sums[p + 3u];
        }
    }
}
