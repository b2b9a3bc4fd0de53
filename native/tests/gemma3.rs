//! Gemma 3 270M (the real Q4_K_M GGUF from MODELS.md: a second decoder
//! family with a SentencePiece vocabulary, sliding-window layers and
//! K-quants) against references that share no code with cairn: llama.cpp's
//! tokenizer on 1,000 strings, and `transformers`' Gemma3ForCausalLM on the
//! same GGUF dequantized to f32, for a short prompt and one past the
//! 512-token sliding window. Fixture and script:
//! tests/scripts/make_gemma3_golden.py.

mod common;

use cairn::generate::{load_generator, quantize_gguf};
use cairn_core::backend::block_on_ready;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::GgmlType;
use cairn_core::generate::{GenerationConfig, Generator};
use serde_json::Value as Json;

fn golden() -> Json {
    serde_json::from_slice(&std::fs::read(common::fixture("gemma3_golden.json")).unwrap()).unwrap()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn gemma() -> Generator<CpuBackend> {
    load_generator(CpuBackend::new(), &common::model("gemma-3-270m")).unwrap()
}

#[test]
fn sentencepiece_vocabulary_matches_llama_cpp_on_1000_strings() {
    let g = gemma();
    let golden = golden();
    common::assert_ids_match(&golden["tokenizer"], |t| {
        g.tokenizer().encode(t, false).unwrap().ids
    });
}

/// Max |cairn − transformers| over the fixture's logits of each prompt.
fn logit_differences(g: &Generator<CpuBackend>) -> Vec<f32> {
    golden()["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let text = p["text"].as_str().unwrap();
            let prompt = ids(&p["ids"]);
            // BOS added as the file asks, then llama.cpp's ids.
            assert_eq!(g.encode(text).unwrap(), prompt, "{text:.40}");
            let logits = block_on_ready(g.next_logits(&prompt)).unwrap();
            let worst = common::max_listed_logit_difference(&logits, p);
            eprintln!("{} tokens: max logit difference {worst}", prompt.len());
            worst
        })
        .collect()
}

#[test]
fn f32_weights_match_transformers_past_the_sliding_window() {
    // The same blocks expanded to f32 (as transformers' GGUF loader does):
    // the architecture alone decides the logits, summation order aside.
    let dir = tempfile::tempdir().unwrap();
    let f32_file = dir.path().join("gemma-f32.gguf");
    quantize_gguf(
        &common::model("gemma-3-270m"),
        &f32_file,
        GgmlType::F32,
        true,
    )
    .unwrap();
    let g = load_generator(CpuBackend::new(), &f32_file).unwrap();
    let worst = logit_differences(&g);
    assert_eq!(worst.len(), 2);
    for (w, what) in worst.iter().zip(["6-token prompt", "879-token prompt"]) {
        assert!(*w < 1e-3, "{what}: max logit difference {w}");
    }
}

#[test]
fn q4_k_m_logits_and_greedy_tokens_match_transformers() {
    let g = gemma();
    // A short prompt runs the per-token kernels: Q4_K, Q5_0 and Q8_0 with
    // f32 activations (repacked exactly), the 9 Q6_K tensors through
    // candle's kernels, which round activations to 8 bits as llama.cpp's do
    // — measured 0.27 (0.49 before Q4_K/Q5_0 were repacked). A long prompt
    // expands each matrix once for a GEMM with f32 activations: 3e-4.
    let worst = logit_differences(&g);
    assert!(
        worst[0] < 0.4,
        "6-token prompt: max logit difference {}",
        worst[0]
    );
    assert!(
        worst[1] < 1e-3,
        "879-token prompt: max logit difference {}",
        worst[1]
    );
    for p in golden()["prompts"].as_array().unwrap() {
        let prompt = ids(&p["ids"]);
        // Greedy decoding agrees up to the first step whose two best logits
        // are closer than that noise allows (0.3).
        let want = ids(&p["greedy"]);
        let gaps: Vec<f64> = p["greedy_gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let sure = gaps.iter().take_while(|&&gap| gap >= 0.3).count();
        assert!(sure >= 3, "only {sure} decisive steps in the fixture");
        let cfg = GenerationConfig {
            max_new_tokens: sure,
            ..GenerationConfig::default()
        };
        let out = block_on_ready(g.generate_ids_stream(&prompt, &cfg, |_| true)).unwrap();
        assert_eq!(out.token_ids, want[..sure], "{} tokens", prompt.len());
    }
}

#[test]
fn base_model_continues_a_sentence() {
    let g = gemma();
    let cfg = GenerationConfig {
        max_new_tokens: 8,
        ..GenerationConfig::default()
    };
    let out = block_on_ready(g.generate("The capital of France is", &cfg)).unwrap();
    assert!(out.text.contains("capital"), "{:?}", out.text);
}

#[test]
fn cli_tokenizes_from_the_gguf_and_info_names_the_family() {
    // `cairn tokenize` reads the GGUF's vocabulary (BOS as the file asks);
    // the ids are llama.cpp's for the same text (llama-server /tokenize).
    let (ok, out, err) = common::cairn(&[
        "tokenize",
        "--model",
        "gemma-3-270m",
        "Hello world, naïve café 東京\n\n<start_of_turn>user",
    ]);
    assert!(ok, "{err}");
    let v: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        ids(&v["ids"]),
        [2, 9259, 1902, 236764, 120362, 33443, 86459, 108, 105, 2364]
    );
    assert_eq!(v["tokens"][2], "▁world");
    let (ok, out, err) = common::cairn(&["info", "gemma-3-270m"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "cairn: supported (gemma3 decoder, 18 layers, head dim 256, sliding window 512)"
        ),
        "{out}"
    );
    // A tiny Qwen2 file without a vocabulary: the decoder runs, the tokenizer is named.
    let tiny = common::fixture("families/tiny-qwen2.gguf");
    let (ok, out, err) = common::cairn(&["info", tiny.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("the qwen2 decoder runs, but its tokenizer does not")
            && out.contains("tokenizer.ggml.model = 'none'"),
        "{out}"
    );
}
