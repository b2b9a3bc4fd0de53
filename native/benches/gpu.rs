//! The GPU backend against the CPU backend in the same run: SmolLM2-135M
//! (Q4_1) prefill and decode tokens/s, and all-MiniLM-L6-v2 sentences/s.
//! On Mesa lavapipe the GPU numbers measure overhead, not a GPU.
//!
//!     cargo bench -p cairn --bench gpu -- [PROMPT_TOKENS] [DECODE_TOKENS] [SENTENCES]
//!
//! Defaults 64, 16, 64. Prints one JSON line per backend and the GPU/CPU ratios.

use std::time::Instant;

use cairn::cache::{cache_dir, resolve_model};
use cairn::embed::load_embedder;
use cairn::generate::load_generator;
use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use cairn_core::embedder::EmbedderOptions;
use cairn_core::models::llama::Logits;

struct Speeds {
    prefill: f64,
    decode: f64,
    sentences: f64,
}

fn measure<B: Backend>(backend: B, prompt_len: usize, decode_len: usize, n_sent: usize) -> Speeds {
    let cache = cache_dir(None);
    let g = load_generator(
        backend.clone(),
        &resolve_model("smollm2-135m-instruct", &cache).expect("model (run `cairn fetch`)"),
    )
    .expect("load decoder");
    let m = g.model();
    let b = m.backend();
    let text = "The R FAQ answers questions about installing packages, data frames, \
                plotting, and the Debian reference explains apt, dpkg and systemd. "
        .repeat(prompt_len / 8 + 8);
    let ids: Vec<u32> = g.encode(&text).expect("encode")[..prompt_len].to_vec();
    let mut kv = m.new_cache(prompt_len + decode_len + 1).expect("cache");
    // Greedy, as `cairn generate` runs it: the backend's argmax, so a GPU
    // reads back one token id per step.
    let next = |t: &B::Tensor| pollster::block_on(b.read_argmax(t)).expect("read")[0];
    next(
        &m.forward(&ids[..4], &mut kv, Logits::Last)
            .expect("warm-up"),
    );
    kv.truncate(0);
    let t = Instant::now();
    let mut id = next(&m.forward(&ids, &mut kv, Logits::Last).expect("prefill"));
    let prefill = prompt_len as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..decode_len {
        id = next(&m.forward(&[id], &mut kv, Logits::Last).expect("decode"));
    }
    let decode = decode_len as f64 / t.elapsed().as_secs_f64();
    let e = load_embedder(
        backend,
        &resolve_model("all-minilm-l6-v2", &cache).expect("model"),
        &EmbedderOptions::default(),
    )
    .expect("load embedder");
    let sentences: Vec<String> = (0..n_sent)
        .map(|i| format!("Sentence {i}: how do I configure network interfaces on Debian?"))
        .collect();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    pollster::block_on(e.encode_async(&refs[..refs.len().min(4)], true)).expect("warm-up");
    let t = Instant::now();
    pollster::block_on(e.encode_async(&refs, true)).expect("encode");
    let sentences = n_sent as f64 / t.elapsed().as_secs_f64();
    Speeds {
        prefill,
        decode,
        sentences,
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let p = args.first().copied().unwrap_or(64);
    let d = args.get(1).copied().unwrap_or(16);
    let s = args.get(2).copied().unwrap_or(64);
    let gpu = pollster::block_on(GpuBackend::new()).expect("GPU backend");
    let adapter = gpu.adapter().to_string();
    let g = measure(gpu, p, d, s);
    let c = measure(CpuBackend::new(), p, d, s);
    for (name, v) in [("gpu", &g), ("cpu", &c)] {
        println!(
            "{}",
            serde_json::json!({
                "backend": name,
                "adapter": if name == "gpu" { adapter.as_str() } else { "" },
                "prompt_tokens": p, "decode_tokens": d, "sentences": s,
                "prefill_tokens_per_s": v.prefill,
                "decode_tokens_per_s": v.decode,
                "sentences_per_s": v.sentences,
            })
        );
    }
    println!(
        "gpu/cpu on {adapter}: prefill {:.3}x, decode {:.3}x, embeddings {:.3}x",
        g.prefill / c.prefill,
        g.decode / c.decode,
        g.sentences / c.sentences
    );
}
