//! Prefill and decode speed of SmolLM2-135M-Instruct (Q4_1 GGUF) on the CPU
//! backend, with the memory-bandwidth bound measured in the same process.
//! Run through `bench/scripts/decode_vs_llamacpp.py`, which measures llama.cpp on the
//! same file and thread count in the same run and prints the ratios; alone:
//!
//!     cargo bench -p cairn --bench decode -- [PROMPT_TOKENS] [DECODE_TOKENS]
//!
//! Prints one JSON line: prefill and decode tokens/s, the STREAM-style copy
//! bandwidth, the bytes one decode step must read (weights + KV cache), and
//! the decode bound those give.

use std::time::Instant;

use cairn::cache::{cache_dir, resolve_model};
use cairn::generate::{load_generator, read_gguf};
use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::Gguf;
use cairn_core::generate::sampler::argmax;
use cairn_core::models::llama::Logits;

/// Best-of-5 copy bandwidth (bytes read + written per second) over 256 MiB buffers.
fn stream_copy_bandwidth() -> f64 {
    let n = 64 << 20; // f32s = 256 MiB
    let a = vec![1.0f32; n];
    let mut b = vec![0.0f32; n];
    let threads = rayon::current_num_threads();
    let chunk = n.div_ceil(threads);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        rayon::scope(|s| {
            for (dst, src) in b.chunks_mut(chunk).zip(a.chunks(chunk)) {
                s.spawn(move |_| dst.copy_from_slice(src));
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&b);
    2.0 * (n * 4) as f64 / best
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let prompt_len = args.first().copied().unwrap_or(512);
    let decode_len = args.get(1).copied().unwrap_or(128);
    let path = resolve_model("smollm2-135m-instruct", &cache_dir(None))
        .expect("model (run `cairn fetch`)");
    let g = load_generator(CpuBackend::new(), &path).expect("load");
    let m = g.model();
    let b = m.backend();
    // A deterministic prompt of exactly `prompt_len` tokens.
    let text = "The R FAQ answers questions about installing packages, data frames, \
                plotting, and the Debian reference explains apt, dpkg and systemd. "
        .repeat(prompt_len / 8 + 8);
    let ids: Vec<u32> = g.encode(&text).expect("encode")[..prompt_len].to_vec();
    let mut cache = m.new_cache(prompt_len + decode_len + 1).expect("cache");
    // Warm-up (page in weights, spin up threads).
    m.forward(&ids[..16], &mut cache, Logits::Last)
        .expect("warm-up");
    cache.truncate(0);
    let t = Instant::now();
    let logits = m.forward(&ids, &mut cache, Logits::Last).expect("prefill");
    let mut last = b.read_f32_blocking(&logits);
    let prefill_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..decode_len {
        let next = argmax(&last) as u32;
        let logits = m
            .forward(&[next], &mut cache, Logits::Last)
            .expect("decode");
        last = b.read_f32_blocking(&logits);
    }
    let decode_s = t.elapsed().as_secs_f64();
    // Bytes one decode step reads: every weight matrix and norm once (the
    // tied LM head is the whole embedding), plus the K/V cache at mid-decode.
    let bytes = read_gguf(&path).expect("read");
    let gg = Gguf::parse(&bytes, "model").expect("parse");
    let weights: u64 = gg.header.tensors.iter().map(|t| t.byte_len()).sum();
    let c = m.config();
    let kv = 2 * c.num_layers * c.num_kv_heads * c.head_dim * 4 * (prompt_len + decode_len / 2);
    let per_token = weights as f64 + kv as f64;
    let bw = stream_copy_bandwidth();
    println!(
        "{}",
        serde_json::json!({
            "threads": rayon::current_num_threads(),
            "prompt_tokens": prompt_len,
            "decode_tokens": decode_len,
            "prefill_tokens_per_s": prompt_len as f64 / prefill_s,
            "decode_tokens_per_s": decode_len as f64 / decode_s,
            "bytes_per_token": per_token,
            "copy_bandwidth_bytes_per_s": bw,
            "bandwidth_bound_tokens_per_s": bw / per_token,
        })
    );
}

trait ReadBlocking<B: Backend> {
    fn read_f32_blocking(&self, t: &B::Tensor) -> Vec<f32>;
}

impl ReadBlocking<CpuBackend> for CpuBackend {
    fn read_f32_blocking(&self, t: &<CpuBackend as Backend>::Tensor) -> Vec<f32> {
        cairn_core::backend::block_on_ready(self.read_f32(t)).expect("read")
    }
}
