// qmatvec.wgsl — y[row, :] = x[row, :] · Wᵀ with W [n × k] kept in a ggml
// block format on the GPU (dequantized in registers, never in memory):
//   ty 0 Q8_0: value = d · q,        q int8,          32 per block
//   ty 1 Q4_0: value = d · (q − 8),  q 4-bit,         32 per block
//   ty 2 Q4_1: value = d · q + m,    q 4-bit,         32 per block
// Layout (repacked on upload from the GGUF blocks, structure of arrays so
//   every read is 4-byte aligned): scales f32 [n · k/32] (d per block, row
//   major), mins f32 [n · k/32] (m, Q4_1 only; bound but unused otherwise),
//   quants u32: Q8_0 8 words per block (4 int8 each, little-endian); Q4_0 and
//   Q4_1 4 words per block (16 bytes: byte i holds element i in its low
//   nibble and element i + 16 in its high nibble, as ggml stores them).
//   x f32 [rows, k], y f32 [rows, n], rows = m · batch.
// Workgroup: 64 invocations compute 16 outputs, 4 per output: an invocation
//   takes every 4th block of its output's row, then the 4 partial sums are
//   added in workgroup memory.
// Bindings (group 0): 0 x (storage, read), 1 scales (storage, read),
//   2 mins (storage, read), 3 quants (storage, read), 4 y (storage,
//   read_write), 5 params (uniform).
// Dispatch: (min(g, 65535), ceil(g / 65535), rows), g = ceil(n / 16).

struct Params {
    n: u32,
    k: u32,
    ty: u32,
    _pad: u32,
}

const LANES: u32 = 4u;
const OUTS: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> scales: array<f32>;
@group(0) @binding(2) var<storage, read> mins: array<f32>;
@group(0) @binding(3) var<storage, read> quants: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
) {
    let lid = lid3.x;
    let col = (wid.x + wid.y * groups.x) * OUTS + lid / LANES;
    let lane = lid % LANES;
    let row = wid.z;
    let nb = params.k / 32u;
    var s = 0.0;
    if (col < params.n) {
        let x0 = row * params.k;
        for (var b = lane; b < nb; b = b + LANES) {
            let blk = col * nb + b;
            let d = scales[blk];
            let xb = x0 + b * 32u;
            var acc = 0.0;
            if (params.ty == 0u) {
                for (var w = 0u; w < 8u; w = w + 1u) {
                    let word = bitcast<i32>(quants[blk * 8u + w]);
                    for (var j = 0u; j < 4u; j = j + 1u) {
                        acc = acc + f32(extractBits(word, j * 8u, 8u)) * x[xb + w * 4u + j];
                    }
                }
                s = s + d * acc;
            } else {
                var xsum = 0.0;
                for (var w = 0u; w < 4u; w = w + 1u) {
                    let word = quants[blk * 4u + w];
                    for (var j = 0u; j < 4u; j = j + 1u) {
                        let e = w * 4u + j;
                        let lo = f32(extractBits(word, j * 8u, 4u));
                        let hi = f32(extractBits(word, j * 8u + 4u, 4u));
                        acc = acc + lo * x[xb + e] + hi * x[xb + e + 16u];
                        xsum = xsum + x[xb + e] + x[xb + e + 16u];
                    }
                }
                if (params.ty == 1u) {
                    s = s + d * (acc - 8.0 * xsum);
                } else {
                    s = s + d * acc + mins[blk] * xsum;
                }
            }
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    if (lane == 0u && col < params.n) {
        y[row * params.n + col] = partial[lid] + partial[lid + 1u] + partial[lid + 2u] + partial[lid + 3u];
    }
}
