//! `cairn doctor`: which GPU adapter wgpu finds, and whether its kernels agree
//! with the CPU.

use std::path::Path;

use cairn_core::backend::{cpu, gpu};

use crate::error::{Error, Result};

/// Arguments of `cairn doctor`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fail when no GPU adapter exists (CI uses this to prove the kernels ran).
    #[arg(long)]
    pub require_gpu: bool,
}

/// Runs `cairn doctor`.
pub fn run(a: Args, _cache: &Path) -> Result<()> {
    println!(
        "cairn {} — CPU backend: candle-core ({} threads)",
        cairn_core::VERSION,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let ctx = match pollster::block_on(gpu::GpuContext::new()) {
        Ok(ctx) => ctx,
        Err(e) if a.require_gpu => return Err(e.into()),
        Err(e) => {
            println!("GPU backend: unavailable — {e}");
            return Ok(());
        }
    };
    println!(
        "GPU backend: {} driver {}",
        ctx.adapter(),
        ctx.adapter().driver
    );
    let (m, k, n) = (64, 96, 80);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let want = cpu::matmul_f32(&a, &b, m, k, n, false)?;
    let got = pollster::block_on(gpu::matmul_f32(&ctx, &a, &b, m, k, n, false))?;
    if got.len() != want.len() {
        return Err(Error::Model(format!(
            "GPU matmul returned {} values, the CPU {}: the driver is not trustworthy",
            got.len(),
            want.len()
        )));
    }
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    println!("matmul_f32 {m}×{k}·{k}×{n}: max |gpu − cpu| = {max_err:.2e}");
    if max_err.is_nan() || max_err > 1e-3 {
        return Err(Error::Model(format!(
            "GPU matmul disagrees with the CPU by {max_err}: the driver is not trustworthy"
        )));
    }
    Ok(())
}
