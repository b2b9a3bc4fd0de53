//! Per-op timing on each backend: the conformance cases
//! (`cairn_core::backend::conformance`) in timing mode, like llama.cpp's
//! `test-backend-ops perf`. Each case is checked once (CPU vs GPU, within its
//! tolerance), then run repeatedly on both backends with the result read back
//! each time; prints ms per call and the GPU/CPU ratio.
//!
//! `cargo bench -p cairn --bench ops -- [--small] [FILTER]` — model-sized
//! cases by default, the small conformance shapes with `--small`; FILTER
//! keeps cases whose names contain one of its comma-separated words.
//! On lavapipe (a software driver) the GPU column measures overhead only.

use std::time::Instant;

use cairn_core::backend::Backend;
use cairn_core::backend::conformance::{self, OpCase};
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;

/// Median ms per call of `case` on `b` over at least 3 calls and 0.3 s.
fn time<B: Backend>(b: &B, case: &OpCase) -> f64 {
    let x = conformance::upload(b, case).expect("upload");
    let one = || {
        let t = Instant::now();
        let y = conformance::apply(b, case, &x).expect("op");
        pollster::block_on(b.read_f32(&y)).expect("read");
        t.elapsed().as_secs_f64() * 1e3
    };
    one(); // warm-up (pipelines, pools)
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 3 || (started.elapsed().as_secs_f64() < 0.3 && times.len() < 1000) {
        times.push(one());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let small = args.iter().any(|a| a == "--small");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let all = if small {
        conformance::cases()
    } else {
        conformance::bench_cases()
    };
    let cases = conformance::filtered(all, &filter);
    let cpu = CpuBackend::new();
    let gpu = match pollster::block_on(GpuBackend::new()) {
        Ok(g) => {
            println!("GPU adapter: {}", g.adapter());
            Some(g)
        }
        Err(e) => {
            println!("no GPU backend ({e}): CPU timings only");
            None
        }
    };
    println!(
        "{:52} {:>10} {:>10} {:>8}",
        "case", "cpu ms", "gpu ms", "gpu/cpu"
    );
    for case in &cases {
        let c = time(&cpu, case);
        match &gpu {
            Some(g) => {
                let want = pollster::block_on(conformance::run(&cpu, case)).expect("cpu");
                let got = pollster::block_on(conformance::run(g, case)).expect("gpu");
                let check = match conformance::compare(case, &want, &got) {
                    Ok(()) => String::new(),
                    Err(e) => format!("  MISMATCH: {e}"),
                };
                let gt = time(g, case);
                println!(
                    "{:52} {c:>10.3} {gt:>10.3} {:>8.2}{check}",
                    case.name,
                    gt / c
                );
            }
            None => println!("{:52} {c:>10.3} {:>10} {:>8}", case.name, "-", "-"),
        }
    }
}
