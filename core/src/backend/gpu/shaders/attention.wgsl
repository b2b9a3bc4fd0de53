// attention.wgsl — fused scaled-dot-product attention with an online
// (flash-style) softmax: scores, mask, softmax and the weighted sum of values
// in one pass over the keys, never materialising the [rows, keys] score matrix.
// One kernel for the three cases cairn runs:
//   decode   (causal, 1 query per head against the KV cache),
//   prefill  (causal, t queries per head, query i sees keys ≤ len − t + i),
//   encoder  (bidirectional, keys masked by a padding mask).
//
// Rows: the queries that share one KV head (grouped-query attention: the
//   `rep` query heads of a KV head are consecutive) are numbered
//   r = head_in_group · t + query, r < rep · t. A workgroup takes a tile of
//   ROWS = 8 such rows, so each key and value it reads serves up to 8 queries
//   (the tiling that makes prefill efficient; decode with rep heads fills rep
//   rows).
// Keys run in blocks of 64: invocation j scores key j of the block against
//   every row (queries sit in workgroup memory, pre-scaled by 1/√d); the row
//   maxima and the rescaling factor α = exp(m_old − m_new) are kept per row;
//   then invocation i accumulates output dimensions i and i + 64 of every row
//   over the block's 64 probabilities. d ≤ 128 (the host falls back to the
//   composed ops above that).
// Layout (element strides, all in params):
//   q[b, head, query, i]    at q_off + b·q_b + head·q_h + query·q_t + i
//   k[b, kvhead, key, i]    at k_off + b·k_b + kvhead·k_h + key·k_t + i (v alike)
//   out[b, query, head·d+i] contiguous [batch, t, heads·d]
//   mask u32 [batch, keys] (1 = token), read only when params.causal == 0.
// Bindings (group 0): 0 q (storage, read), 1 k (storage, read),
//   2 v (storage, read), 3 mask (storage, read), 4 out (storage, read_write),
//   5 params (uniform).
// Dispatch: (ceil(rep · t / 8), kv_heads, batch); workgroup 64 invocations.

struct Params {
    t: u32,
    keys: u32,
    d: u32,
    rep: u32,
    heads: u32,
    causal: u32,
    scale: f32,
    q_off: u32,
    q_b: u32,
    q_h: u32,
    q_t: u32,
    k_off: u32,
    k_b: u32,
    k_h: u32,
    k_t: u32,
    v_off: u32,
}

const ROWS: u32 = 8u;
const BLOCK: u32 = 64u;
const MAXD: u32 = 128u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> qs: array<f32, 1024>; // ROWS · MAXD
var<workgroup> ps: array<f32, 512>; // ROWS · BLOCK
var<workgroup> row_max: array<f32, 8>;
var<workgroup> row_alpha: array<f32, 8>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
) {
    let lid = lid3.x;
    let kvh = wid.y;
    let b = wid.z;
    let d = params.d;
    let t = params.t;
    let nrows = params.rep * t;
    let r0 = wid.x * ROWS;
    // The key positions this tile needs: all of them (encoder) or up to the
    // last query's own position (causal).
    let last_q = min(r0 + ROWS, nrows) - 1u;
    var nkeys = params.keys;
    if (params.causal == 1u) {
        var hi = 0u;
        for (var r = r0; r <= last_q; r = r + 1u) {
            hi = max(hi, r % t);
        }
        nkeys = params.keys - t + hi + 1u;
    }

    // Load this tile's queries, pre-scaled.
    for (var r = 0u; r < ROWS; r = r + 1u) {
        let gr = r0 + r;
        for (var i = lid; i < MAXD; i = i + 64u) {
            var val = 0.0;
            if (gr < nrows && i < d) {
                let head = kvh * params.rep + gr / t;
                val = q[params.q_off + b * params.q_b + head * params.q_h + (gr % t) * params.q_t + i] * params.scale;
            }
            qs[r * MAXD + i] = val;
        }
    }
    if (lid < ROWS) {
        row_max[lid] = NEG;
    }
    var l = 0.0; // running denominator of row `lid` (lid < ROWS)
    var acc0: array<f32, 8>;
    var acc1: array<f32, 8>;
    for (var r = 0u; r < ROWS; r = r + 1u) {
        acc0[r] = 0.0;
        acc1[r] = 0.0;
    }
    workgroupBarrier();

    let kbase = params.k_off + b * params.k_b + kvh * params.k_h;
    let vbase = params.v_off + b * params.k_b + kvh * params.k_h;
    for (var j0 = 0u; j0 < nkeys; j0 = j0 + BLOCK) {
        // Scores of key j0 + lid against every row of the tile.
        let j = j0 + lid;
        var key_ok = j < nkeys;
        if (key_ok && params.causal == 0u) {
            key_ok = mask[b * params.keys + j] != 0u;
        }
        for (var r = 0u; r < ROWS; r = r + 1u) {
            let gr = r0 + r;
            var ok = key_ok && gr < nrows;
            if (ok && params.causal == 1u) {
                ok = j <= params.keys - t + gr % t;
            }
            var s = NEG;
            if (ok) {
                s = 0.0;
                let kr = kbase + j * params.k_t;
                for (var i = 0u; i < d; i = i + 1u) {
                    s = s + qs[r * MAXD + i] * k[kr + i];
                }
            }
            ps[r * BLOCK + lid] = s;
        }
        workgroupBarrier();
        // New row maxima and the factor that rescales what was accumulated.
        if (lid < ROWS) {
            var m = row_max[lid];
            for (var jj = 0u; jj < BLOCK; jj = jj + 1u) {
                m = max(m, ps[lid * BLOCK + jj]);
            }
            row_alpha[lid] = exp(row_max[lid] - m);
            row_max[lid] = m;
        }
        workgroupBarrier();
        for (var r = 0u; r < ROWS; r = r + 1u) {
            let s = ps[r * BLOCK + lid];
            ps[r * BLOCK + lid] = select(exp(s - row_max[r]), 0.0, s <= NEG);
        }
        workgroupBarrier();
        if (lid < ROWS) {
            var sum = 0.0;
            for (var jj = 0u; jj < BLOCK; jj = jj + 1u) {
                sum = sum + ps[lid * BLOCK + jj];
            }
            l = l * row_alpha[lid] + sum;
        }
        // Weighted values: invocation lid owns dimensions lid and lid + 64.
        let jn = min(BLOCK, nkeys - j0);
        for (var r = 0u; r < ROWS; r = r + 1u) {
            let alpha = row_alpha[r];
            var a0 = acc0[r] * alpha;
            var a1 = acc1[r] * alpha;
            for (var jj = 0u; jj < jn; jj = jj + 1u) {
                let p = ps[r * BLOCK + jj];
                let vr = vbase + (j0 + jj) * params.k_t;
                if (lid < d) {
                    a0 = a0 + p * v[vr + lid];
                }
                if (lid + 64u < d) {
                    a1 = a1 + p * v[vr + lid + 64u];
                }
            }
            acc0[r] = a0;
            acc1[r] = a1;
        }
        workgroupBarrier();
    }

    // Normalise: invocation r < ROWS publishes its row's denominator.
    if (lid < ROWS) {
        row_alpha[lid] = select(1.0 / l, 0.0, l == 0.0);
    }
    workgroupBarrier();
    for (var r = 0u; r < ROWS; r = r + 1u) {
        let gr = r0 + r;
        if (gr < nrows) {
            let head = kvh * params.rep + gr / t;
            let o = (b * t + gr % t) * params.heads * d + head * d;
            let inv = row_alpha[r];
            if (lid < d) {
                out[o + lid] = acc0[r] * inv;
            }
            if (lid + 64u < d) {
                out[o + lid + 64u] = acc1[r] * inv;
            }
        }
    }
}
