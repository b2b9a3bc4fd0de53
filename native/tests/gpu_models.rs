//! Whole models on the GPU backend against the CPU backend: MiniLM sentence
//! embeddings (cosine ≥ 0.9999 each) and SmolLM2-135M greedy decoding (the
//! same 32 tokens). Runs on whatever adapter wgpu finds (Mesa lavapipe in
//! CI); with `CAIRN_REQUIRE_GPU=1` a missing adapter fails instead of skipping.

mod common;

use cairn::embed::load_embedder;
use cairn::generate::load_generator;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use cairn_core::embedder::{EmbedderOptions, cosine_similarity};
use cairn_core::generate::GenerationConfig;

fn gpu() -> Option<GpuBackend> {
    cairn_core::testing::gpu_backend_or_skip()
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
    let gpu = load_embedder(g, &dir, &opts).unwrap();
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
    let got = pollster::block_on(gpu.encode_async(&texts, true)).unwrap();
    assert_eq!((got.rows, got.dim), (want.rows, want.dim));
    for (i, text) in texts.iter().enumerate() {
        let c = cosine_similarity(want.row(i), got.row(i));
        assert!(c >= 0.9999, "{text:?}: cosine {c}");
    }
}

#[test]
fn smollm2_greedy_tokens_on_gpu_equal_cpu() {
    let Some(g) = gpu() else { return };
    let path = common::model("smollm2-135m-instruct");
    let cpu = load_generator(CpuBackend::new(), &path).unwrap();
    let gpu = load_generator(g, &path).unwrap();
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
