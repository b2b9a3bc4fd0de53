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

#[test]
fn hf_llama_checkpoints_convert_to_gguf_with_llama_cpp_rope_layout() {
    use cairn_core::backend::Backend;
    use cairn_core::models::llama::{Llama, Logits};
    let golden = json(&common::fixture("hf_llama_tiny.json"));
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_hf_llama(dir.path());
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

/// Every decoding flag against `transformers`' `generate` on the tiny LCG
/// Llama (tests/scripts/make_generate_golden.py): the same token ids for
/// greedy, beams, penalties, n-gram bans, end-of-sequence and early stopping;
/// the same warped distributions for temperature / top-k / top-p, and
/// seeded draws that follow them.
#[test]
fn decoding_flags_match_transformers_generate() {
    use cairn_core::generate::processors;
    let golden = json(&common::fixture("generate_golden.json"));
    let dir = tempfile::tempdir().unwrap();
    common::write_tiny_hf_llama(dir.path());
    let out = dir.path().join("tiny.gguf");
    quantize_gguf(dir.path(), &out, GgmlType::F32, false).unwrap();
    let g = load_generator(CpuBackend::new(), &out).unwrap();
    let prompt = golden["prompt"].as_str().unwrap();
    let prompt_ids = g.encode(prompt).unwrap();
    assert_eq!(prompt_ids, ids(&golden["prompt_ids"]));
    let max_new = golden["meta"]["max_new_tokens"].as_u64().unwrap() as usize;
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let c = &case["config"];
        let f = |k: &str, d: f64| c[k].as_f64().unwrap_or(d) as f32;
        let cfg = GenerationConfig {
            max_new_tokens: max_new,
            num_beams: c["num_beams"].as_u64().unwrap_or(1) as usize,
            repetition_penalty: f("repetition_penalty", 1.0),
            no_repeat_ngram_size: c["no_repeat_ngram_size"].as_u64().unwrap_or(0) as usize,
            length_penalty: f("length_penalty", 1.0),
            early_stopping: c["early_stopping"].as_bool().unwrap_or(false),
            // No end-of-sequence id unless the case names one (as transformers' None).
            eos_token_ids: c
                .get("eos_token_ids")
                .map(ids)
                .unwrap_or_else(|| vec![u32::MAX]),
            ..Default::default()
        };
        let got = block_on_ready(g.generate(prompt, &cfg)).unwrap();
        assert_eq!(
            got.token_ids,
            ids(&case["tokens"]),
            "{}: {cfg:?}",
            case["name"]
        );
    }

    let logits = block_on_ready(g.next_logits(&prompt_ids)).unwrap();
    for w in golden["warped"].as_array().unwrap() {
        let cfg = GenerationConfig {
            do_sample: true,
            temperature: w["temperature"].as_f64().unwrap() as f32,
            top_k: w["top_k"].as_u64().unwrap() as usize,
            top_p: w["top_p"].as_f64().unwrap() as f32,
            max_new_tokens: 1,
            eos_token_ids: vec![u32::MAX],
            ..Default::default()
        };
        let mut l = logits.clone();
        processors::process(&mut l, &prompt_ids, 0, &cfg);
        let probs = processors::softmax(&l);
        let want: Vec<f64> = w["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), want.len());
        for (t, (p, q)) in probs.iter().zip(&want).enumerate() {
            assert_eq!(*p == 0.0, *q == 0.0, "{w}: token {t} kept differently");
            assert!((*p as f64 - q).abs() < 1e-5, "token {t}: {p} vs {q}");
        }
        // Seeded draws of the first token follow the warped distribution:
        // every count within 4.5 standard deviations, removed tokens never drawn.
        let n = 1500usize;
        let mut counts = vec![0usize; want.len()];
        for seed in 0..n as u64 {
            let s = block_on_ready(g.generate(
                prompt,
                &GenerationConfig {
                    seed,
                    ..cfg.clone()
                },
            ))
            .unwrap();
            counts[s.token_ids[0] as usize] += 1;
        }
        for (t, (&k, &p)) in counts.iter().zip(&want).enumerate() {
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (k as f64 - n as f64 * p).abs() <= 4.5 * sd + 1.0,
                "token {t}: drawn {k} of {n}, probability {p}"
            );
        }
    }
}
