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
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 1000);
    let mut bad = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let got = g.tokenizer().encode(text, false).unwrap().ids;
        if got != ids(&c["ids"]) {
            bad.push(text.to_string());
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ, e.g. {:?}",
        bad.len(),
        cases.len(),
        &bad[..bad.len().min(3)]
    );
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
    let mut worst = 0f32;
    for key in ["top_logits", "strided_logits"] {
        for pair in golden[key].as_array().unwrap() {
            let (i, want) = (
                pair[0].as_u64().unwrap() as usize,
                pair[1].as_f64().unwrap() as f32,
            );
            worst = worst.max((logits[i] - want).abs());
        }
    }
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
