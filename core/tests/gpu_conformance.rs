//! GPU kernels against the CPU backend, on whatever adapter wgpu finds (Mesa
//! lavapipe in CI). With `CAIRN_REQUIRE_GPU=1` a missing adapter fails the test
//! instead of skipping it, so CI cannot pass without running the kernels.

use cairn_core::backend::{cpu, gpu};

fn context() -> Option<gpu::GpuContext> {
    match pollster::block_on(gpu::GpuContext::new()) {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.adapter());
            Some(ctx)
        }
        Err(e) if cairn_core::testing::gpu_required() => {
            panic!("CAIRN_REQUIRE_GPU is set but no GPU backend: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

/// Deterministic values in [-1, 1), the same on every run and platform.
fn values(n: usize, seed: u64) -> Vec<f32> {
    cairn_core::util::pseudo_random(n, seed)
        .into_iter()
        .map(|v| v * 2.0)
        .collect()
}

#[test]
fn matmul_f32_matches_cpu_across_shapes() {
    let Some(ctx) = context() else { return };
    // Tile multiples, odd sizes, thin and wide shapes, k not a multiple of 16, vectors, k = 0.
    let shapes = [
        (1, 1, 1),
        (16, 16, 16),
        (17, 33, 15),
        (1, 384, 1536),
        (7, 64, 3),
        (64, 1, 64),
        (100, 257, 31),
        (3, 0, 5),
    ];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        for transpose_b in [false, true] {
            let a = values(m * k, i as u64 * 2 + 1);
            let b = values(k * n, i as u64 * 2 + 2);
            let want = cpu::matmul_f32(&a, &b, m, k, n, transpose_b).unwrap();
            let got =
                pollster::block_on(gpu::matmul_f32(&ctx, &a, &b, m, k, n, transpose_b)).unwrap();
            assert_eq!(got.len(), want.len(), "m={m} k={k} n={n}");
            // f32 sums of k products in a different order: error grows like sqrt(k)·eps·|terms|.
            let tol = 1e-5 * (k.max(1) as f32).sqrt() * 4.0;
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * (1.0 + w.abs()),
                    "m={m} k={k} n={n} transpose_b={transpose_b} C[{j}]: gpu {g} cpu {w}"
                );
            }
        }
    }
    eprintln!(
        "matmul_f32: {} shapes × 2 layouts match the CPU backend on {}",
        shapes.len(),
        ctx.adapter()
    );
}

#[test]
fn matmul_f32_rejects_bad_shapes_before_touching_the_gpu() {
    let Some(ctx) = context() else { return };
    let err = pollster::block_on(gpu::matmul_f32(&ctx, &[1.0; 6], &[1.0; 5], 2, 3, 2, false))
        .unwrap_err();
    assert!(
        err.to_string().contains("B has 5 elements, expected 3×2"),
        "{err}"
    );
}
