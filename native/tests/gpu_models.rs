//! Whole models on the GPU backend against the CPU backend: MiniLM sentence
//! embeddings (cosine ≥ 0.9999 each) and SmolLM2-135M greedy decoding (the
//! same 32 tokens), with f16 weights (where the adapter has shader-f16) and
//! f32 weights, and with weight matrices split under a small storage-binding
//! limit (the embedding tables: 47 MB for MiniLM, 113 MB for SmolLM2 in f32).
//! Runs on whatever adapter wgpu finds (Mesa lavapipe in CI); with
//! `CAIRN_REQUIRE_GPU=1` a missing adapter fails instead of skipping.

mod common;

use cairn::embed::load_embedder;
use cairn::generate::load_generator;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::{GpuBackend, GpuContext, GpuOptions};
use cairn_core::embedder::{EmbedderOptions, cosine_similarity};
use cairn_core::generate::GenerationConfig;

fn gpu() -> Option<GpuBackend> {
    cairn_core::testing::gpu_backend_or_skip()
}

/// A second backend on a fresh context with `options`.
fn gpu_with(options: GpuOptions) -> GpuBackend {
    let ctx = pollster::block_on(GpuContext::new()).unwrap();
    pollster::block_on(GpuBackend::with_options(ctx, options)).unwrap()
}

#[test]
fn minilm_embeddings_on_gpu_equal_cpu() {
    let Some(g) = gpu() else { return };
    let dir = common::model("all-minilm-l6-v2");
    let opts = EmbedderOptions {
        batch_size: 4,
        ..Default::default()
    };
    let cpu = load_embedder(CpuBackend::new(), &dir, &opts).unwrap();
    let texts = [
        "Machine learning is transforming industries.",
        "I love hiking",
        "How do I install an R package from a local file?",
        "Network interfaces are configured in /etc/network/interfaces on Debian systems.",
        "naïve café — 東京 🚀",
        "a",
        "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog again and again, padding this batch.",
    ];
    let want = cpu.encode(&texts, true).unwrap();
    // Default (f16 weights where possible), then f32 weights split into 8 MiB row ranges.
    let split_f32 = gpu_with(GpuOptions {
        max_binding: 8 << 20,
        f16_weights: false,
    });
    for g in [g, split_f32] {
        let what = format!("f16 weights {}", g.f16_weights());
        let gpu = load_embedder(g, &dir, &opts).unwrap();
        let got = pollster::block_on(gpu.encode_async(&texts, true)).unwrap();
        assert_eq!((got.rows, got.dim), (want.rows, want.dim));
        for (i, text) in texts.iter().enumerate() {
            let c = cosine_similarity(want.row(i), got.row(i));
            assert!(c >= 0.9999, "{what}: {text:?}: cosine {c}");
        }
    }
}

#[test]
fn smollm2_greedy_tokens_on_gpu_equal_cpu() {
    let Some(g) = gpu() else { return };
    let path = common::model("smollm2-135m-instruct");
    drop(g);
    let cpu = load_generator(CpuBackend::new(), &path).unwrap();
    // f16 weights where the adapter has them, every matrix in ≤ 16 MiB bindings.
    let gpu = load_generator(
        gpu_with(GpuOptions {
            max_binding: 16 << 20,
            ..Default::default()
        }),
        &path,
    )
    .unwrap();
    // A short raw prompt keeps the lavapipe run (kernels at ~0.1 GFLOP/s) near a minute.
    let prompt = "The history of Rome began";
    let config = GenerationConfig {
        max_new_tokens: 32,
        ..Default::default()
    };
    let want = pollster::block_on(cpu.generate(prompt, &config)).unwrap();
    let got = pollster::block_on(gpu.generate(prompt, &config)).unwrap();
    assert_eq!(want.token_ids.len(), 32);
    assert_eq!(
        got.token_ids, want.token_ids,
        "gpu {:?} vs cpu {:?}",
        got.text, want.text
    );
}
