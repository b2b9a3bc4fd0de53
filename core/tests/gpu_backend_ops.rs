//! Conformance of every [`Backend`] op on the GPU backend against the CPU
//! backend, in the spirit of llama.cpp's test-backend-ops: each op across
//! shapes including odd sizes and non-multiples of the kernels' tiles, with a
//! per-op tolerance. Runs on whatever adapter wgpu finds (Mesa lavapipe in
//! CI); with `CAIRN_REQUIRE_GPU=1` a missing adapter fails instead of skipping.

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use cairn_core::backend::{Backend, conformance};
use cairn_core::formats::gguf::GgmlType;

fn gpu() -> Option<GpuBackend> {
    cairn_core::testing::gpu_backend_or_skip()
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    cairn_core::util::pseudo_random(n, seed)
        .into_iter()
        .map(|v| v * 4.0)
        .collect()
}

/// Runs `op` on both backends from the same host inputs and compares.
struct Check<'a> {
    g: &'a GpuBackend,
    c: CpuBackend,
}

impl Check<'_> {
    fn run(
        &self,
        name: &str,
        inputs: &[(Vec<f32>, Vec<usize>)],
        tol: f32,
        op_c: impl Fn(
            &CpuBackend,
            &[<CpuBackend as Backend>::Tensor],
        ) -> <CpuBackend as Backend>::Tensor,
        op_g: impl Fn(
            &GpuBackend,
            &[<GpuBackend as Backend>::Tensor],
        ) -> <GpuBackend as Backend>::Tensor,
    ) {
        let tc: Vec<_> = inputs
            .iter()
            .map(|(d, s)| self.c.tensor_f32(d, s).unwrap())
            .collect();
        let tg: Vec<_> = inputs
            .iter()
            .map(|(d, s)| self.g.tensor_f32(d, s).unwrap())
            .collect();
        let (rc, rg) = (op_c(&self.c, &tc), op_g(self.g, &tg));
        assert_eq!(self.c.shape(&rc), self.g.shape(&rg), "{name}: shapes");
        let want = pollster::block_on(self.c.read_f32(&rc)).unwrap();
        let got = pollster::block_on(self.g.read_f32(&rg)).unwrap();
        assert_eq!(want.len(), got.len(), "{name}");
        let worst = want
            .iter()
            .zip(&got)
            .map(|(w, g)| (w - g).abs() / (1.0 + w.abs()))
            .fold(0f32, f32::max);
        assert!(worst <= tol, "{name}: worst relative error {worst} > {tol}");
    }
}

/// Every op of the trait (but the quantized ones, checked below): the
/// [`conformance::cases`] list, each case on the CPU and on the GPU.
/// `CAIRN_OPS=matmul,softmax` runs only the cases whose names contain one of
/// the words (`cargo bench -p cairn --bench ops` times the same cases).
#[test]
fn every_op_matches_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    let c = CpuBackend::new();
    let cases = conformance::filtered(
        conformance::cases(),
        &std::env::var("CAIRN_OPS").unwrap_or_default(),
    );
    assert!(!cases.is_empty(), "CAIRN_OPS matches no case");
    let mut failures = Vec::new();
    for case in &cases {
        let want = pollster::block_on(conformance::run(&c, case))
            .unwrap_or_else(|e| panic!("{} on the CPU: {e}", case.name));
        let got = pollster::block_on(conformance::run(&g, case))
            .unwrap_or_else(|e| panic!("{} on the GPU: {e}", case.name));
        if let Err(e) = conformance::compare(case, &want, &got) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} op cases match", cases.len());
}

/// The ops whose inputs are not plain f32 tensors: the encoder's padded
/// attention, the embedding gather (u32 ids), zeros and the in-place slice write.
#[test]
fn masked_gather_and_in_place_ops_match_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    let mask: Vec<u32> = [5u32, 3]
        .iter()
        .flat_map(|&n| (0..5).map(move |j| u32::from(j < n)))
        .collect();
    let real: Vec<usize> = (0..10).filter(|&r| mask[r] == 1).collect();
    let attn_c = {
        let c = CpuBackend::new();
        let qkv = c
            .tensor_f32(&values(2 * 5 * 3 * 32, 40), &[2, 5, 96])
            .unwrap();
        pollster::block_on(c.read_f32(&c.encoder_attention(&qkv, &mask, 4).unwrap())).unwrap()
    };
    let qkv = g
        .tensor_f32(&values(2 * 5 * 3 * 32, 40), &[2, 5, 96])
        .unwrap();
    let attn_g =
        pollster::block_on(g.read_f32(&g.encoder_attention(&qkv, &mask, 4).unwrap())).unwrap();
    for r in real {
        for i in r * 32..(r + 1) * 32 {
            assert!(
                (attn_c[i] - attn_g[i]).abs() < 1e-4,
                "encoder_attention row {r}"
            );
        }
    }
    // Embedding gather, zeros and the in-place slice write.
    let table = values(11 * 6, 41);
    let ids = [3u32, 0, 10, 3];
    let c = CpuBackend::new();
    let want = pollster::block_on(
        c.read_f32(
            &c.embedding(
                &c.tensor_u32(&ids, &[2, 2]).unwrap(),
                &c.tensor_f32(&table, &[11, 6]).unwrap(),
            )
            .unwrap(),
        ),
    )
    .unwrap();
    let got = pollster::block_on(
        g.read_f32(
            &g.embedding(
                &g.tensor_u32(&ids, &[2, 2]).unwrap(),
                &g.tensor_f32(&table, &[11, 6]).unwrap(),
            )
            .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(want, got);
    let e = g
        .embedding(
            &g.tensor_u32(&[11], &[1]).unwrap(),
            &g.tensor_f32(&table, &[11, 6]).unwrap(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("id 11 is out of range"), "{e}");
    let cache = g.zeros(&[1, 2, 6, 4]).unwrap();
    g.write_slice(
        &cache,
        &g.tensor_f32(&values(16, 42), &[1, 2, 2, 4]).unwrap(),
        2,
        3,
    )
    .unwrap();
    let cc = c.zeros(&[1, 2, 6, 4]).unwrap();
    c.write_slice(
        &cc,
        &c.tensor_f32(&values(16, 42), &[1, 2, 2, 4]).unwrap(),
        2,
        3,
    )
    .unwrap();
    assert_eq!(
        pollster::block_on(g.read_f32(&cache)).unwrap(),
        pollster::block_on(c.read_f32(&cc)).unwrap()
    );
}

#[test]
fn quantized_linear_matches_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    let c = CpuBackend::new();
    let (rows, cols) = (37, 64);
    let w = values(rows * cols, 50);
    let x = values(3 * cols, 51);
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        let bytes = cairn_core::quant::quantize(ty, &w, "w").unwrap();
        let qc = c.qmatrix(ty, &bytes, rows, cols, "w").unwrap();
        let qg = g.qmatrix(ty, &bytes, rows, cols, "w").unwrap();
        let want = pollster::block_on(
            c.read_f32(
                &c.qlinear(&c.tensor_f32(&x, &[3, cols]).unwrap(), &qc)
                    .unwrap(),
            ),
        )
        .unwrap();
        let got = pollster::block_on(
            g.read_f32(
                &g.qlinear(&g.tensor_f32(&x, &[3, cols]).unwrap(), &qg)
                    .unwrap(),
            ),
        )
        .unwrap();
        assert_eq!(want.len(), got.len(), "GPU and CPU output lengths");
        for (a, b) in want.iter().zip(&got) {
            // The CPU's Q8_0/Q4 kernels keep activations in f32 too, so only summation order differs.
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{ty:?}: {a} vs {b}");
        }
    }
}

#[test]
fn bad_shapes_are_named_errors() {
    let Some(g) = gpu() else { return };
    let a = g.tensor_f32(&[1.0; 6], &[2, 3]).unwrap();
    let b = g.tensor_f32(&[1.0; 4], &[2, 2]).unwrap();
    assert!(
        g.matmul(&a, &b)
            .unwrap_err()
            .to_string()
            .contains("shape mismatch in matmul")
    );
    assert!(
        g.add(&a, &b)
            .unwrap_err()
            .to_string()
            .contains("cannot broadcast [2, 3] with [2, 2]")
    );
    assert!(
        g.tensor_f32(&[1.0; 5], &[2, 3])
            .unwrap_err()
            .to_string()
            .contains("5 values do not fill shape [2, 3]")
    );
    let five = g.tensor_f32(&[1.0; 32], &[1, 2, 2, 2, 4]).unwrap();
    assert!(
        g.transpose(&five, 0, 1)
            .unwrap_err()
            .to_string()
            .contains("rank 5 is above")
    );
}

#[test]
fn shader_errors_and_storage_limits_are_named_errors() {
    let Some(g) = gpu() else { return };
    drop(g);
    let ctx = pollster::block_on(cairn_core::backend::gpu::GpuContext::new()).unwrap();
    let e = pollster::block_on(ctx.validated("broken.wgsl", "fn main( {")).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("shaders/broken.wgsl does not compile on"), "{e}");
    // A 1 KiB binding limit: a 256-value tensor fits, a 1,000-value one is refused.
    let small = pollster::block_on(GpuBackend::with_binding_limit(ctx, 1024)).unwrap();
    assert!(small.tensor_f32(&[0.5; 256], &[256]).is_ok());
    let e = small
        .tensor_f32(&[0.5; 1000], &[1000])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs a 4000-byte storage buffer, above this adapter's limit of 1024 bytes"),
        "{e}"
    );
}

/// `shaders/attention.wgsl` (decode, prefill, grouped-query heads, encoder
/// padding) against the CPU's composed matmul–softmax–matmul, on head sizes
/// and lengths around its 8-row and 64-key tiles; heads above 128 take the
/// composed path on the GPU too.
#[test]
fn fused_attention_matches_the_composed_ops() {
    let Some(g) = gpu() else { return };
    let k = Check {
        g: &g,
        c: CpuBackend::new(),
    };
    let t = |shape: &[usize], seed| (values(shape.iter().product(), seed), shape.to_vec());
    // (query heads, kv heads, new queries, cached length incl. them, capacity, head dim)
    for (i, &(nh, nkv, nq, len, cap, d)) in [
        (9, 3, 1, 1, 4, 64),
        (9, 3, 1, 70, 80, 64),
        (4, 4, 1, 130, 130, 32),
        (6, 2, 1, 65, 100, 80),
        (9, 3, 17, 17, 20, 64),
        (9, 3, 5, 40, 40, 64),
        (2, 1, 70, 70, 70, 128),
        (3, 3, 9, 9, 9, 1),
        (2, 2, 3, 3, 3, 160),
    ]
    .iter()
    .enumerate()
    {
        let seed = 100 + 3 * i as u64;
        k.run(
            &format!("attention heads {nh}/{nkv}, {nq} queries, {len} of {cap}, d {d}"),
            &[
                t(&[1, nh, nq, d], seed),
                t(&[1, nkv, cap, d], seed + 1),
                t(&[1, nkv, cap, d], seed + 2),
            ],
            2e-4,
            |b, x| b.attention(&x[0], &x[1], &x[2], len).unwrap(),
            |b, x| b.attention(&x[0], &x[1], &x[2], len).unwrap(),
        );
    }
    let c = CpuBackend::new();
    for (i, (heads, d, lens)) in [
        (4, 32, vec![5, 3]),
        (12, 32, vec![70, 1, 33]),
        (2, 128, vec![9]),
        (2, 144, vec![4, 2]),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = *lens.iter().max().unwrap();
        let batch = lens.len();
        let mask: Vec<u32> = lens
            .iter()
            .flat_map(|&n| (0..seq).map(move |j| u32::from(j < n)))
            .collect();
        let shape = [batch, seq, 3 * heads * d];
        let data = values(shape.iter().product(), 200 + i as u64);
        let want = pollster::block_on(
            c.read_f32(
                &c.encoder_attention(&c.tensor_f32(&data, &shape).unwrap(), &mask, heads)
                    .unwrap(),
            ),
        )
        .unwrap();
        let got = pollster::block_on(
            g.read_f32(
                &g.encoder_attention(&g.tensor_f32(&data, &shape).unwrap(), &mask, heads)
                    .unwrap(),
            ),
        )
        .unwrap();
        let h = heads * d;
        for (r, _) in mask.iter().enumerate().filter(|(_, m)| **m == 1) {
            for j in r * h..(r + 1) * h {
                assert!(
                    (want[j] - got[j]).abs() <= 2e-4 * (1.0 + want[j].abs()),
                    "encoder_attention heads {heads} d {d} lens {lens:?} token {r}: {} vs {}",
                    want[j],
                    got[j]
                );
            }
        }
    }
}

/// `shaders/argmax.wgsl`: the host's argmax (first index on ties, −∞ rows → 0).
#[test]
fn argmax_matches_the_host() {
    let Some(g) = gpu() else { return };
    let c = CpuBackend::new();
    let mut cases: Vec<(Vec<f32>, [usize; 2])> = vec![
        (values(49_152, 300), [1, 49_152]),
        (values(3 * 17, 301), [3, 17]),
        (vec![f32::NEG_INFINITY; 2 * 5], [2, 5]),
    ];
    let mut ties = values(2 * 65, 302);
    for row in ties.chunks_mut(65) {
        row[5] = 100.0;
        row[40] = 100.0;
        row[64] = 100.0;
    }
    cases.push((ties, [2, 65]));
    for (data, shape) in cases {
        let want =
            pollster::block_on(c.read_argmax(&c.tensor_f32(&data, &shape).unwrap())).unwrap();
        let got = pollster::block_on(g.read_argmax(&g.tensor_f32(&data, &shape).unwrap())).unwrap();
        assert_eq!(want, got, "argmax {shape:?}");
    }
    assert_eq!(
        pollster::block_on(c.read_argmax(&c.tensor_f32(&[1.0, 7.0, 7.0], &[3]).unwrap())).unwrap(),
        vec![1]
    );
}

/// `shaders/qmatmul.wgsl` on row counts around its 8-row tile (decode is
/// one row, prefill many).
#[test]
fn quantized_matmul_tiles_match_the_cpu_backend() {
    let Some(g) = gpu() else { return };
    let c = CpuBackend::new();
    let (n, cols) = (37, 96);
    let w = values(n * cols, 60);
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        let bytes = cairn_core::quant::quantize(ty, &w, "w").unwrap();
        let qc = c.qmatrix(ty, &bytes, n, cols, "w").unwrap();
        let qg = g.qmatrix(ty, &bytes, n, cols, "w").unwrap();
        for rows in [1, 4, 8, 9, 17, 70] {
            let x = values(rows * cols, 61 + rows as u64);
            let want = pollster::block_on(
                c.read_f32(
                    &c.qlinear(&c.tensor_f32(&x, &[rows, cols]).unwrap(), &qc)
                        .unwrap(),
                ),
            )
            .unwrap();
            let got = pollster::block_on(
                g.read_f32(
                    &g.qlinear(&g.tensor_f32(&x, &[rows, cols]).unwrap(), &qg)
                        .unwrap(),
                ),
            )
            .unwrap();
            assert_eq!(want.len(), got.len(), "GPU and CPU output lengths");
            for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!(
                    (a - b).abs() < 1e-3 * (1.0 + a.abs()),
                    "{ty:?} rows {rows} output {i}: {a} vs {b}"
                );
            }
        }
    }
}

fn f16_rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// Weight matrices through [`Backend::weight_f32`]: f16 storage (where the
/// adapter has shader-f16) and, under a small binding limit, row ranges that
/// each fit — `linear` (+ bias), `embedding`, quantized `qlinear` and reads
/// all give the CPU's results on the same (f16-rounded) weights, and other
/// ops refuse a split matrix by name.
#[test]
fn f16_and_split_weights_match_the_cpu_backend() {
    use cairn_core::backend::gpu::{GpuContext, GpuOptions};
    let Some(g) = gpu() else { return };
    drop(g);
    let c = CpuBackend::new();
    let read_c = |t| pollster::block_on(c.read_f32(&t)).unwrap();
    for (f16, limit) in [(true, u64::MAX), (false, 8192), (true, 8192)] {
        let ctx = pollster::block_on(GpuContext::new()).unwrap();
        let g = pollster::block_on(GpuBackend::with_options(
            ctx,
            GpuOptions {
                max_binding: limit,
                f16_weights: f16,
            },
        ))
        .unwrap();
        let f16 = g.f16_weights();
        let case = format!("f16 {f16}, limit {limit}");
        let round = |v: &[f32]| if f16 { f16_rounded(v) } else { v.to_vec() };
        let read_g = |t| pollster::block_on(g.read_f32(&t)).unwrap();
        for (m, k, n) in [(1, 100, 70), (3, 100, 70), (12, 33, 129)] {
            let (x, w, bias) = (values(m * k, 70), values(n * k, 71), values(n, 72));
            let wg = g.weight_f32(&w, &[n, k]).unwrap();
            assert_eq!(
                format!("{wg:?}").contains("split into"),
                limit < u64::MAX,
                "{case}: {wg:?}"
            );
            assert_eq!(read_g(wg.clone()), round(&w), "{case}: weight read back");
            let want = read_c(
                c.linear(
                    &c.tensor_f32(&x, &[m, k]).unwrap(),
                    &c.tensor_f32(&round(&w), &[n, k]).unwrap(),
                    Some(&c.tensor_f32(&bias, &[n]).unwrap()),
                )
                .unwrap(),
            );
            let got = read_g(
                g.linear(
                    &g.tensor_f32(&x, &[m, k]).unwrap(),
                    &wg,
                    Some(&g.tensor_f32(&bias, &[n]).unwrap()),
                )
                .unwrap(),
            );
            assert_eq!(want.len(), got.len(), "GPU and CPU output lengths");
            for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
                    "{case}: linear {m}x{k}x{n} output {i}: {a} vs {b}"
                );
            }
        }
        let table = values(1000 * 6, 73);
        let ids = [999u32, 0, 500, 3, 999, 341, 342];
        let tg = g.weight_f32(&table, &[1000, 6]).unwrap();
        assert_eq!(format!("{tg:?}").contains("split into"), limit < u64::MAX);
        let want = read_c(
            c.embedding(
                &c.tensor_u32(&ids, &[7]).unwrap(),
                &c.tensor_f32(&round(&table), &[1000, 6]).unwrap(),
            )
            .unwrap(),
        );
        let got = read_g(
            g.embedding(&g.tensor_u32(&ids, &[7]).unwrap(), &tg)
                .unwrap(),
        );
        assert_eq!(want, got, "{case}: embedding");
        if limit < u64::MAX {
            let e = g.add(&tg, &tg).unwrap_err().to_string();
            assert!(e.contains("split over the storage-binding limit"), "{e}");
        }
        let (rows, cols) = (200, 96);
        let w = values(rows * cols, 74);
        let x = values(5 * cols, 75);
        for ty in [GgmlType::Q8_0, GgmlType::Q4_1] {
            let bytes = cairn_core::quant::quantize(ty, &w, "w").unwrap();
            let want = read_c(
                c.qlinear(
                    &c.tensor_f32(&x, &[5, cols]).unwrap(),
                    &c.qmatrix(ty, &bytes, rows, cols, "w").unwrap(),
                )
                .unwrap(),
            );
            let got = read_g(
                g.qlinear(
                    &g.tensor_f32(&x, &[5, cols]).unwrap(),
                    &g.qmatrix(ty, &bytes, rows, cols, "w").unwrap(),
                )
                .unwrap(),
            );
            assert_eq!(want.len(), got.len(), "GPU and CPU output lengths");
            for (a, b) in want.iter().zip(&got) {
                assert!(
                    (a - b).abs() < 1e-3 * (1.0 + a.abs()),
                    "{case}: {ty:?}: {a} vs {b}"
                );
            }
        }
    }
}

/// More dispatches than the kernel-parameter ring has slots, recorded before
/// one read: the ring submits and starts over, and every op keeps its own
/// parameters (the scale factors differ per step).
#[test]
fn long_recordings_wrap_the_parameter_ring() {
    let Some(g) = gpu() else { return };
    let mut x = g.tensor_f32(&[1.0, -2.0, 0.5], &[3]).unwrap();
    let mut want = vec![1.0f32, -2.0, 0.5];
    for i in 0..5000 {
        let s = if i % 2 == 0 { 2.0 } else { 0.5 };
        x = g.scale(&x, s).unwrap();
        want.iter_mut().for_each(|v| *v *= s);
        if i % 1000 == 999 {
            x = g
                .add(&x, &g.tensor_f32(&[1.0, 1.0, 1.0], &[3]).unwrap())
                .unwrap();
            want.iter_mut().for_each(|v| *v += 1.0);
        }
    }
    assert_eq!(pollster::block_on(g.read_f32(&x)).unwrap(), want);
}
