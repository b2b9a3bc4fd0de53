//! SmolLM2-135M-Instruct (the real GGUF from MODELS.md) against references that
//! share no code with cairn: llama.cpp's tokenizer, a numpy f32 forward pass
//! over weights dequantized by PyPI `gguf`, and `gguf.quants` block bytes.
//! Fixtures and the script that made them: tests/scripts/make_llama_golden.py.

mod common;

use std::path::Path;

use cairn::generate::{load_generator, quantize_gguf, read_gguf};
use cairn_core::backend::block_on_ready;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::{GgmlType, Gguf};
use cairn_core::generate::{ChatMessage, FinishReason, GenerationConfig, Generator};
use cairn_core::quant;
use serde_json::Value as Json;

fn json(path: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn smollm2() -> Generator<CpuBackend> {
    load_generator(CpuBackend::new(), &common::model("smollm2-135m-instruct")).unwrap()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn gguf_tokenizer_matches_llama_cpp_on_1000_strings() {
    let g = smollm2();
    let golden = json(&common::fixture("smollm2_tokenizer_golden.json"));
    common::assert_ids_match(&golden["cases"], |t| {
        g.tokenizer().encode(t, false).unwrap().ids
    });
}

#[test]
fn chat_prompt_logits_and_greedy_tokens_match_the_numpy_reference() {
    let g = smollm2();
    let golden = json(&common::fixture("smollm2_forward.json"));
    // The chat template from the GGUF metadata renders the reference prompt.
    let prompt = g
        .apply_chat_template(
            &[ChatMessage::new("user", "What is the capital of France?")],
            true,
        )
        .unwrap();
    assert_eq!(prompt, golden["prompt"].as_str().unwrap());
    let prompt_ids = g.encode(&prompt).unwrap();
    assert_eq!(prompt_ids, ids(&golden["prompt_ids"]));
    // Last-position logits: f32 against f32, differing only in summation order.
    let logits = block_on_ready(g.next_logits(&prompt_ids)).unwrap();
    let worst = common::max_listed_logit_difference(&logits, &golden);
    println!("max |logit - reference| = {worst:.2e}");
    assert!(worst < 2e-3, "max logit difference {worst}");
    // Greedy decoding: identical tokens up to (at least) the first near-tie.
    for (prompt_key, steps_key) in [("prompt", "greedy"), ("long_prompt", "long_greedy")] {
        let steps = golden[steps_key].as_array().unwrap();
        let cfg = GenerationConfig {
            max_new_tokens: steps.len(),
            eos_token_ids: if steps_key == "greedy" {
                vec![2]
            } else {
                vec![u32::MAX]
            },
            ..Default::default()
        };
        let out = block_on_ready(g.generate(golden[prompt_key].as_str().unwrap(), &cfg)).unwrap();
        // The smallest top-2 gap in these references is 0.13, far above the
        // 4e-5 logit error, so every step must agree.
        let want: Vec<u32> = steps
            .iter()
            .map(|s| s["id"].as_u64().unwrap() as u32)
            .collect();
        assert_eq!(out.token_ids, want, "{steps_key}");
        if steps_key == "greedy" {
            assert_eq!(out.text, golden["greedy_text"].as_str().unwrap());
            assert_eq!(out.finish_reason, FinishReason::Eos);
        }
    }
}

#[test]
fn answers_the_capital_of_france_with_paris() {
    let g = smollm2();
    let prompt = g
        .apply_chat_template(
            &[ChatMessage::new("user", "What is the capital of France?")],
            true,
        )
        .unwrap();
    let out = block_on_ready(g.generate(
        &prompt,
        &GenerationConfig {
            max_new_tokens: 32,
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(out.text.contains("Paris"), "{:?}", out.text);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn quant_blocks_are_byte_compatible_with_gguf_py() {
    let golden = json(&common::fixture("quant_golden.json"));
    let data: Vec<f32> = golden["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    for (name, ty) in [
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
    ] {
        let want = hex(golden["quantized"][name].as_str().unwrap());
        let got = quant::quantize(ty, &data, name).unwrap();
        assert_eq!(got.len(), want.len());
        let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} bytes differ from gguf.quants.quantize"
        );
    }
    for (name, ty) in [
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
        ("Q4_K", GgmlType::Q4K),
        ("Q6_K", GgmlType::Q6K),
    ] {
        let b = &golden["dequantized"][name];
        let bytes = hex(b["bytes"].as_str().unwrap());
        let want: Vec<f32> = b["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = quant::dequantize(ty, &bytes, want.len(), name).unwrap();
        for (i, (a, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{name}[{i}]: {a} vs {w}"
            );
        }
    }
}

#[test]
fn quantize_rewrites_smollm2_and_the_result_still_answers() {
    let src = common::model("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smollm2-q8_0.gguf");
    // Already-quantized input is refused without --allow-requantize, and nothing is written.
    let e = quantize_gguf(&src, &out, GgmlType::Q8_0, false).unwrap_err();
    assert!(e.to_string().contains("already Q4_1"), "{e}");
    assert!(!out.exists());
    let r = quantize_gguf(&src, &out, GgmlType::Q8_0, true).unwrap();
    assert_eq!(r.quantized, 30 * 7);
    let bytes = read_gguf(&out).unwrap();
    let g = Gguf::parse(&bytes, "q8").unwrap();
    assert!(
        g.header
            .tensors
            .iter()
            .filter(|t| t.dims.len() == 2)
            .all(|t| t.ggml_type == GgmlType::Q8_0)
    );
    assert_eq!(g.header.require_u64("general.file_type").unwrap(), 7);
    let model = Generator::from_gguf(CpuBackend::new(), &g).unwrap();
    let prompt = model
        .apply_chat_template(
            &[ChatMessage::new("user", "What is the capital of France?")],
            true,
        )
        .unwrap();
    let a = block_on_ready(model.generate(
        &prompt,
        &GenerationConfig {
            max_new_tokens: 16,
            ..Default::default()
        },
    ))
    .unwrap();
    assert!(a.text.contains("Paris"), "{:?}", a.text);
}

/// Writes the tiny HF-layout Llama of tests/scripts/make_hf_llama_golden.py
/// (same LCG weights, same order) as a Hugging Face directory.
fn write_tiny_hf_llama(dir: &Path) {
    let (hidden, heads, kv, layers, ffn, vocab) =
        (64usize, 4usize, 2usize, 2usize, 96usize, 260usize);
    let d = hidden / heads;
    let mut spec: Vec<(String, Vec<usize>)> =
        vec![("model.embed_tokens.weight".into(), vec![vocab, hidden])];
    for l in 0..layers {
        let p = |x: &str| format!("model.layers.{l}.{x}.weight");
        spec.push((p("input_layernorm"), vec![hidden]));
        spec.push((p("self_attn.q_proj"), vec![heads * d, hidden]));
        spec.push((p("self_attn.k_proj"), vec![kv * d, hidden]));
        spec.push((p("self_attn.v_proj"), vec![kv * d, hidden]));
        spec.push((p("self_attn.o_proj"), vec![hidden, heads * d]));
        spec.push((p("post_attention_layernorm"), vec![hidden]));
        spec.push((p("mlp.gate_proj"), vec![ffn, hidden]));
        spec.push((p("mlp.up_proj"), vec![ffn, hidden]));
        spec.push((p("mlp.down_proj"), vec![hidden, ffn]));
    }
    spec.push(("model.norm.weight".into(), vec![hidden]));
    spec.push(("lm_head.weight".into(), vec![vocab, hidden]));
    let tensors: Vec<(String, Vec<usize>, &str, Vec<u8>)> = spec
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let v = cairn_core::util::pseudo_random(n, 100 + i as u64);
            let scale = if name.contains("embed") { 2.0 } else { 0.5 };
            let v: Vec<f32> = if shape.len() == 1 {
                v.iter().map(|x| 1.0 + 0.1 * x).collect()
            } else {
                v.iter().map(|x| x * scale).collect()
            };
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, shape, "F32", bytes)
        })
        .collect();
    common::write_safetensors(&dir.join("model.safetensors"), &tensors);
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "vocab_size": vocab, "tie_word_embeddings": false
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    // Byte-level BPE: the 256 byte characters and four merges.
    let mut v = serde_json::Map::new();
    for (i, c) in cairn_core::tokenizer::byte_level_chars().iter().enumerate() {
        v.insert(c.to_string(), i.into());
    }
    let merges = ["Ġ t", "h e", "i n", "e r"];
    for (i, m) in merges.iter().enumerate() {
        v.insert(m.replace(' ', ""), (256 + i).into());
    }
    let tok = serde_json::json!({
        "version": "1.0", "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null, "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": v, "merges": merges}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
}

#[test]
fn hf_llama_checkpoints_convert_to_gguf_with_llama_cpp_rope_layout() {
    use cairn_core::backend::Backend;
    use cairn_core::models::llama::{Llama, Logits};
    let golden = json(&common::fixture("hf_llama_tiny.json"));
    let dir = tempfile::tempdir().unwrap();
    write_tiny_hf_llama(dir.path());
    let ids_in = ids(&golden["ids"]);
    let want: Vec<Vec<f32>> = golden["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    for (ty, tol) in [(GgmlType::F32, 1e-4f32), (GgmlType::Q8_0, 0.1)] {
        let out = dir.path().join(format!("tiny-{}.gguf", ty.name()));
        quantize_gguf(dir.path(), &out, ty, false).unwrap();
        let bytes = read_gguf(&out).unwrap();
        let g = Gguf::parse(&bytes, "tiny").unwrap();
        let m = Llama::load(CpuBackend::new(), &g).unwrap();
        let mut cache = m.new_cache(16).unwrap();
        let logits = m.forward(&ids_in, &mut cache, Logits::All).unwrap();
        let got = block_on_ready(CpuBackend::new().read_f32(&logits)).unwrap();
        let vocab = m.config().vocab_size;
        let mut worst = 0f32;
        for (t, row) in want.iter().enumerate() {
            for (a, b) in row.iter().zip(&got[t * vocab..(t + 1) * vocab]) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(worst < tol, "{}: max logit difference {worst}", ty.name());
        // The converted tokenizer works too.
        Generator::from_gguf(CpuBackend::new(), &g).unwrap();
    }
    // GGUF F32 input → Q4_0 (no requantization needed): every matrix converted.
    let f32_file = dir.path().join("tiny-F32.gguf");
    let q4 = dir.path().join("tiny-q4_0.gguf");
    let r = quantize_gguf(&f32_file, &q4, GgmlType::Q4_0, false).unwrap();
    assert_eq!((r.quantized, r.kept), (2 + 2 * 7, 2 * 2 + 1));
    let bytes = read_gguf(&q4).unwrap();
    Llama::load(CpuBackend::new(), &Gguf::parse(&bytes, "q4").unwrap()).unwrap();
    // A broken config is named.
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let e =
        quantize_gguf(dir.path(), &dir.path().join("x.gguf"), GgmlType::F32, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("config.json: field 'hidden_size' is missing"),
        "{e}"
    );
}

#[test]
fn gguf_files_are_memory_mapped_not_copied() {
    use cairn::generate::FileBytes;
    let path = common::model("smollm2-135m-instruct");
    let bytes = read_gguf(&path).unwrap();
    assert!(matches!(bytes, FileBytes::Mapped(_)));
    assert_eq!(bytes.len() as u64, std::fs::metadata(&path).unwrap().len());
    assert_eq!(&bytes[..4], b"GGUF");
    // An empty file cannot be mapped: read (as nothing), then a clear error.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(read_gguf(&empty).unwrap(), FileBytes::Read(ref v) if v.is_empty()));
    let e = load_generator(CpuBackend::new(), &empty)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty.gguf"), "{e}");
}
