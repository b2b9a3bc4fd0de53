//! LoRA on the Llama decoder: an adapter with B = 0 changes nothing; a
//! trained-looking adapter applied unmerged equals the same adapter merged
//! into the weights; the GPU backend applies it like the CPU; adapters swap
//! per request; an adapter for another base is a clear error.

use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::{self, GgmlType, Gguf};
use cairn_core::lora::merge::merge;
use cairn_core::lora::{Adapter, LoraConfig, MODULES};
use cairn_core::models::llama::{Llama, Logits};
use cairn_core::testing::{TinyLlama, tiny_llama_gguf};

fn logits<B: Backend>(m: &Llama<B>, ids: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache(32).unwrap();
    let l = m.forward(ids, &mut cache, Logits::All).unwrap();
    pollster::block_on(m.backend().read_f32(&l)).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn adapter(m: &Llama<CpuBackend>, seed: u64) -> Adapter {
    let cfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: MODULES.iter().map(|s| s.to_string()).collect(),
        use_rslora: false,
        base_model: None,
    };
    let mut a = Adapter::init(cfg, m.config().num_layers, |x| m.projection_dims(x), seed);
    // As if trained: non-zero B everywhere.
    let mut k = 0u64;
    for layer in &mut a.layers {
        for p in layer.values_mut() {
            k += 1;
            p.b = cairn_core::util::pseudo_random(p.b.len(), seed + k)
                .iter()
                .map(|v| 0.2 * v)
                .collect();
        }
    }
    a
}

#[test]
fn unmerged_equals_merged_and_zero_b_changes_nothing() {
    let t = TinyLlama {
        matrix_type: GgmlType::F32,
        ..TinyLlama::default()
    };
    let bytes = tiny_llama_gguf(&t).unwrap();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let mut m = Llama::load(CpuBackend::new(), &g).unwrap();
    let ids = [5u32, 80, 17, 200, 33, 9];
    let base = logits(&m, &ids);

    let cfg = adapter(&m, 1).config.clone();
    let zero = Adapter::init(cfg, 2, |x| m.projection_dims(x), 3);
    m.set_adapter(Some(&zero)).unwrap();
    assert_eq!(
        logits(&m, &ids),
        base,
        "B = 0 must leave the model unchanged"
    );

    let a = adapter(&m, 1);
    m.set_adapter(Some(&a)).unwrap();
    let adapted = logits(&m, &ids);
    assert!(
        max_diff(&adapted, &base) > 1e-2,
        "the adapter changes nothing"
    );
    // Read back (GGUF → HF row order and back) equals what was set.
    assert_eq!(pollster::block_on(m.adapter()).unwrap().unwrap(), a);

    let tensors = merge(&g, &a, Some(GgmlType::F32)).unwrap();
    let mut out = Vec::new();
    gguf::write(&mut out, &g.header.metadata, &tensors, 32).unwrap();
    let merged = Llama::load(
        CpuBackend::new(),
        &Gguf::parse(&out, "merged.gguf").unwrap(),
    )
    .unwrap();
    let d = max_diff(&logits(&merged, &ids), &adapted);
    assert!(d < 1e-4, "merged and unmerged differ by {d}");

    // Hot swap: another adapter, then none again.
    m.set_adapter(Some(&adapter(&m, 9))).unwrap();
    assert!(max_diff(&logits(&m, &ids), &adapted) > 1e-3);
    m.set_adapter(None).unwrap();
    assert_eq!(logits(&m, &ids), base);
}

#[test]
fn gpu_applies_the_adapter_like_the_cpu() {
    let Some(gpu) = cairn_core::testing::gpu_backend_or_skip() else {
        return;
    };
    drop(gpu);
    // f32 weights: this compares the adapter path, not f16 rounding of the tiny model's table.
    let gpu = pollster::block_on(cairn_core::backend::gpu::GpuBackend::with_options(
        pollster::block_on(cairn_core::backend::gpu::GpuContext::new()).unwrap(),
        cairn_core::backend::gpu::GpuOptions {
            f16_weights: false,
            ..Default::default()
        },
    ))
    .unwrap();
    let bytes = tiny_llama_gguf(&TinyLlama::default()).unwrap();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let mut cpu = Llama::load(CpuBackend::new(), &g).unwrap();
    let mut gm = Llama::load(gpu, &g).unwrap();
    let a = adapter(&cpu, 4);
    cpu.set_adapter(Some(&a)).unwrap();
    gm.set_adapter(Some(&a)).unwrap();
    let ids = [1u32, 2, 3, 4, 5];
    let (want, got) = (logits(&cpu, &ids), logits(&gm, &ids));
    let d = max_diff(&want, &got);
    assert!(d < 1e-3, "GPU and CPU adapted logits differ by {d}");
}

#[test]
fn an_adapter_for_another_base_is_a_named_error() {
    let bytes = tiny_llama_gguf(&TinyLlama::default()).unwrap();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let mut m = Llama::load(CpuBackend::new(), &g).unwrap();
    let wider = tiny_llama_gguf(&TinyLlama {
        hidden: 96,
        ..TinyLlama::default()
    })
    .unwrap();
    let gw = Gguf::parse(&wider, "wide.gguf").unwrap();
    let other = Llama::load(CpuBackend::new(), &gw).unwrap();
    let a = adapter(&other, 2);
    let e = m.set_adapter(Some(&a)).unwrap_err().to_string();
    assert!(
        e.contains("the adapter is 96→96") && e.contains("another base"),
        "{e}"
    );
    let e = merge(&g, &a, None).unwrap_err().to_string();
    assert!(e.contains("another base"), "{e}");
}
