// unary.wgsl — elementwise functions of one tensor.
//
// Ops (params.op): 0 scale (x · params.s), 1 GELU with erf
//   (x/2 · (1 + erf(x/√2)), erf from Abramowitz & Stegun 7.1.26, |error| ≤
//   1.5e-7, the same formula as the CPU backend's), 2 SiLU (x · σ(x)),
//   3 tanh (through exp of −2|x|, which cannot overflow), 4 ReLU.
// Layout: in and out contiguous, params.n elements.
// Workgroup: 256 invocations, one element each; 2-D dispatch for large
//   tensors as in binary.wgsl.
// Bindings (group 0): 0 x (storage, read), 1 out (storage, read_write),
//   2 params (uniform).
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(n / 256).

struct Params {
    n: u32,
    op: u32,
    s: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn erf_abs(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return 1.0 - poly * exp(-z * z);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = flat_index(gid, groups);
    if (i >= params.n) {
        return;
    }
    let v = x[i];
    if (params.op == 0u) {
        out[i] = v * params.s;
    } else if (params.op == 1u) {
        let e = erf_abs(abs(v) * 0.70710678118654752);
        out[i] = 0.5 * v * (1.0 + select(-e, e, v >= 0.0));
    } else if (params.op == 2u) {
        out[i] = v / (1.0 + exp(-v));
    } else if (params.op == 3u) {
        let e = exp(-2.0 * abs(v));
        out[i] = sign(v) * (1.0 - e) / (1.0 + e);
    } else {
        out[i] = max(v, 0.0);
    }
}
