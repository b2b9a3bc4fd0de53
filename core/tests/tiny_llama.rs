//! The decoder on tiny randomly initialised Llama GGUF files written by the
//! test itself: KV-cache consistency, every decoding strategy, streaming, stop
//! sequences, perplexity and the errors bad inputs must give.

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::{Backend, block_on_ready};
use cairn_core::formats::gguf::{self, GgmlType, Gguf};
use cairn_core::generate::{FinishReason, GenerationConfig, Generator};
use cairn_core::models::llama::{Llama, Logits};
use cairn_core::testing::{TinyLlama, tiny_llama_gguf};

fn generator(t: &TinyLlama) -> Generator<CpuBackend> {
    let bytes = tiny_llama_gguf(t).unwrap();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    Generator::from_gguf(CpuBackend::new(), &g).unwrap()
}

fn read(t: &<CpuBackend as Backend>::Tensor) -> Vec<f32> {
    block_on_ready(CpuBackend::new().read_f32(t)).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn one_pass_prefill_equals_token_by_token_decoding() {
    for ty in [
        GgmlType::F32,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4K,
    ] {
        let t = TinyLlama {
            matrix_type: ty,
            hidden: if ty == GgmlType::Q4K { 256 } else { 64 },
            ffn: if ty == GgmlType::Q4K { 256 } else { 96 },
            ..Default::default()
        };
        let bytes = tiny_llama_gguf(&t).unwrap();
        let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
        let m = Llama::load(CpuBackend::new(), &g).unwrap();
        let ids = [5u32, 71, 200, 33, 9, 260, 101];
        let mut c1 = m.new_cache(16).unwrap();
        let all = read(&m.forward(&ids, &mut c1, Logits::All).unwrap());
        assert_eq!(c1.len(), ids.len());
        let mut c2 = m.new_cache(16).unwrap();
        let vocab = m.config().vocab_size;
        for (i, &id) in ids.iter().enumerate() {
            let step = read(&m.forward(&[id], &mut c2, Logits::Last).unwrap());
            let d = max_diff(&step, &all[i * vocab..(i + 1) * vocab]);
            assert!(d < 1e-3, "{}: position {i} differs by {d}", ty.name());
        }
        // Logits::Last of a prefill is the last row of Logits::All.
        let mut c3 = m.new_cache(16).unwrap();
        let last = read(&m.forward(&ids, &mut c3, Logits::Last).unwrap());
        assert!(max_diff(&last, &all[(ids.len() - 1) * vocab..]) < 1e-4);
        // Overflowing the cache is an error, not a panic.
        let e = m.forward(&[1; 10], &mut c3, Logits::Last).unwrap_err();
        assert!(e.to_string().contains("does not fit the KV cache"), "{e}");
    }
}

#[test]
fn long_prompts_are_prefilled_in_chunks_with_the_same_logits() {
    let t = TinyLlama {
        context: 1400,
        ..Default::default()
    };
    let bytes = tiny_llama_gguf(&t).unwrap();
    let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
    let m = Llama::load(CpuBackend::new(), &g).unwrap();
    let ids: Vec<u32> = (0..1100u32).map(|i| (i * 37 + 11) % 260).collect();
    let vocab = m.config().vocab_size;
    let mut c1 = m.new_cache(1100).unwrap();
    let all = read(&m.forward(&ids, &mut c1, Logits::All).unwrap());
    assert_eq!(all.len(), 1100 * vocab);
    let mut c2 = m.new_cache(1100).unwrap();
    let last = read(&m.forward(&ids, &mut c2, Logits::Last).unwrap());
    assert!(max_diff(&last, &all[1099 * vocab..]) < 1e-4);
    // Against one-token steps at positions on both sides of the 512 boundary.
    let mut c3 = m.new_cache(1100).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let step = read(&m.forward(&[id], &mut c3, Logits::Last).unwrap());
        if [0, 511, 512, 700, 1099].contains(&i) {
            let d = max_diff(&step, &all[i * vocab..(i + 1) * vocab]);
            assert!(d < 1e-3, "position {i} differs by {d}");
        }
    }
}

#[test]
fn greedy_sampling_and_beams_behave_as_documented() {
    let g = generator(&TinyLlama::default());
    let none_eos = GenerationConfig {
        max_new_tokens: 12,
        eos_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let greedy = block_on_ready(g.generate("the cat", &none_eos)).unwrap();
    assert_eq!(greedy.token_ids.len(), 12);
    assert_eq!(greedy.finish_reason, FinishReason::Length);
    assert_eq!(
        block_on_ready(g.generate("the cat", &none_eos)).unwrap(),
        greedy
    );
    // Greedy = argmax of the model's logits at every step.
    let mut ids = g.encode("the cat").unwrap();
    for &want in &greedy.token_ids {
        let logits = block_on_ready(g.next_logits(&ids)).unwrap();
        let arg = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as u32;
        assert_eq!(arg, want);
        ids.push(want);
    }
    // One beam is greedy.
    let beam1 = block_on_ready(g.generate(
        "the cat",
        &GenerationConfig {
            num_beams: 1,
            ..none_eos.clone()
        },
    ))
    .unwrap();
    assert_eq!(beam1.token_ids, greedy.token_ids);
    // Beam search: its hypothesis scores at least as well as greedy's under the model.
    let beams = GenerationConfig {
        num_beams: 4,
        ..none_eos.clone()
    };
    let b4 = block_on_ready(g.generate("the cat", &beams)).unwrap();
    assert_eq!(b4.token_ids.len(), 12);
    let score = |toks: &[u32]| -> f32 {
        let mut ids = g.encode("the cat").unwrap();
        let mut s = 0.0;
        for &t in toks {
            let l = block_on_ready(g.next_logits(&ids)).unwrap();
            s += cairn_core::generate::processors::log_softmax(&l)[t as usize];
            ids.push(t);
        }
        s
    };
    assert!(score(&b4.token_ids) >= score(&greedy.token_ids) - 1e-3);
    // Sampling: the seed decides; a tiny temperature is greedy.
    let sample = GenerationConfig {
        do_sample: true,
        top_k: 0,
        ..none_eos.clone()
    };
    let s1 = block_on_ready(g.generate("the cat", &sample)).unwrap();
    assert_eq!(block_on_ready(g.generate("the cat", &sample)).unwrap(), s1);
    let s2 = block_on_ready(g.generate(
        "the cat",
        &GenerationConfig {
            seed: 9,
            ..sample.clone()
        },
    ))
    .unwrap();
    assert_ne!(s1.token_ids, s2.token_ids);
    let cold = block_on_ready(g.generate(
        "the cat",
        &GenerationConfig {
            temperature: 1e-4,
            ..sample.clone()
        },
    ))
    .unwrap();
    assert_eq!(cold.token_ids, greedy.token_ids);
    // top_k = 1 is greedy too.
    let k1 = block_on_ready(g.generate(
        "the cat",
        &GenerationConfig {
            top_k: 1,
            ..sample.clone()
        },
    ))
    .unwrap();
    assert_eq!(k1.token_ids, greedy.token_ids);
    // no_repeat_ngram_size = 1 forbids any token twice.
    let nr = block_on_ready(g.generate(
        "x",
        &GenerationConfig {
            no_repeat_ngram_size: 1,
            ..none_eos.clone()
        },
    ))
    .unwrap();
    let mut all = g.encode("x").unwrap();
    all.extend(&nr.token_ids);
    let mut seen = std::collections::HashSet::new();
    assert!(all.iter().all(|t| seen.insert(*t)), "{all:?}");
}

#[test]
fn beam_length_penalty_and_early_stopping() {
    let g = generator(&TinyLlama::default());
    let base = GenerationConfig {
        max_new_tokens: 10,
        num_beams: 4,
        eos_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let free = block_on_ready(g.generate("the", &base)).unwrap();
    // Make a token the model likes early on the end-of-sequence id: hypotheses
    // now finish at different lengths, and the penalty picks among them.
    let eos = free.token_ids[2];
    let lens: Vec<usize> = [-3.0f32, 0.0, 3.0]
        .iter()
        .map(|&lp| {
            let cfg = GenerationConfig {
                eos_token_ids: vec![eos],
                length_penalty: lp,
                ..base.clone()
            };
            block_on_ready(g.generate("the", &cfg))
                .unwrap()
                .token_ids
                .len()
        })
        .collect();
    // Negative penalties favour short hypotheses, positive ones long ones.
    assert!(lens[0] <= lens[1] && lens[1] <= lens[2], "{lens:?}");
    assert!(lens[0] < lens[2], "{lens:?}");
    // The exact hypotheses, early stopping included, are checked against
    // transformers' `generate` in native/tests/decoder.rs
    // (`decoding_flags_match_transformers_generate`).
}

#[test]
fn streaming_stop_sequences_and_eos() {
    let g = generator(&TinyLlama::default());
    let cfg = GenerationConfig {
        max_new_tokens: 24,
        eos_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let mut pieces = Vec::new();
    let full = block_on_ready(g.generate_stream("in the", &cfg, |p| {
        pieces.push(p.to_string());
        true
    }))
    .unwrap();
    assert_eq!(pieces.concat(), full.text);
    assert_eq!(full.text, g.decode(&full.token_ids));
    // Stop at a piece of the text that appears after the start.
    let chars: Vec<char> = full.text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let at = full.text.find(&stop).unwrap();
    let mut streamed = String::new();
    let cut = block_on_ready(g.generate_stream(
        "in the",
        &GenerationConfig {
            stop: vec![stop.clone()],
            ..cfg.clone()
        },
        |p| {
            streamed.push_str(p);
            true
        },
    ))
    .unwrap();
    assert_eq!(cut.text, full.text[..at]);
    assert_eq!(streamed, cut.text);
    assert_eq!(cut.finish_reason, FinishReason::Stop(stop));
    // EOS: make the first greedy token the end-of-sequence id.
    let first = full.token_ids[0];
    let e = block_on_ready(g.generate(
        "in the",
        &GenerationConfig {
            eos_token_ids: vec![first],
            ..cfg.clone()
        },
    ))
    .unwrap();
    assert_eq!(e.finish_reason, FinishReason::Eos);
    assert_eq!(e.text, "");
    // The callback can cancel.
    let c = block_on_ready(g.generate_stream("in the", &cfg, |_| false)).unwrap();
    assert_eq!(c.finish_reason, FinishReason::Cancelled);
}

#[test]
fn perplexity_with_and_without_sliding_window() {
    let g = generator(&TinyLlama::default());
    let text = "the theory of the thing is that there are others in the sea";
    let whole = block_on_ready(g.perplexity(text, None, None)).unwrap();
    assert_eq!(whole.windows, 1);
    // By hand: mean −log p(token | prefix) over every token after the first.
    let ids = g.encode(text).unwrap();
    let mut nll = 0f64;
    for i in 1..ids.len() {
        let l = block_on_ready(g.next_logits(&ids[..i])).unwrap();
        nll -= f64::from(cairn_core::generate::processors::log_softmax(&l)[ids[i] as usize]);
    }
    let mean = nll / (ids.len() - 1) as f64;
    assert_eq!(whole.tokens, ids.len() - 1);
    assert!(
        (whole.mean_nll - mean).abs() < 1e-4,
        "{} vs {mean}",
        whole.mean_nll
    );
    let slid = block_on_ready(g.perplexity(text, Some(16), Some(8))).unwrap();
    assert!(slid.windows > 1);
    assert_eq!(slid.tokens, whole.tokens);
    assert!(slid.perplexity.is_finite() && slid.perplexity > 1.0);
    let e = block_on_ready(g.perplexity("a", None, None)).unwrap_err();
    assert!(e.to_string().contains("at least 2 tokens"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let t = TinyLlama::default();
    let g = generator(&t);
    // Prompt longer than the context (128).
    let long = "the ".repeat(200);
    let e = block_on_ready(g.generate(&long, &GenerationConfig::default())).unwrap_err();
    assert!(
        e.to_string().contains("but the model's context is 128"),
        "{e}"
    );
    // Invalid sampling values.
    for (cfg, want) in [
        (
            GenerationConfig {
                top_p: 0.0,
                do_sample: true,
                ..Default::default()
            },
            "top_p",
        ),
        (
            GenerationConfig {
                temperature: -1.0,
                do_sample: true,
                ..Default::default()
            },
            "temperature",
        ),
    ] {
        let e = block_on_ready(g.generate("x", &cfg)).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    let bytes = tiny_llama_gguf(&t).unwrap();
    // Truncated file.
    let e = Gguf::parse(&bytes[..bytes.len() - 100], "cut.gguf").unwrap_err();
    assert!(
        e.to_string().contains("GGUF cut.gguf: file is truncated"),
        "{e}"
    );
    // Unknown quant type: rewrite one tensor's type id in the directory.
    let g0 = Gguf::parse(&bytes, "t.gguf").unwrap();
    let mut meta = g0.header.metadata.clone();
    let mut tensors: Vec<gguf::TensorData> = g0
        .header
        .tensors
        .iter()
        .map(|i| gguf::TensorData {
            name: i.name.clone(),
            ggml_type: i.ggml_type,
            dims: i.dims.clone(),
            data: g0.tensor(&i.name).unwrap().1.to_vec().into(),
        })
        .collect();
    let pos = {
        let name = b"blk.0.attn_q.weight";
        bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len()
    };
    let mut bad = bytes.clone();
    // name, then u32 n_dims, 2 × u64 dims, then the u32 type id.
    bad[pos + 4 + 16..pos + 4 + 16 + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = Gguf::parse(&bad, "q.gguf").unwrap_err();
    assert!(
        e.to_string()
            .contains("tensor 'blk.0.attn_q.weight' has unknown ggml type id 99"),
        "{e}"
    );
    // Shape mismatch: a K projection with the wrong number of rows.
    let k = tensors
        .iter()
        .position(|x| x.name == "blk.1.attn_k.weight")
        .unwrap();
    let q = tensors
        .iter()
        .position(|x| x.name == "blk.1.attn_q.weight")
        .unwrap();
    tensors[k] = gguf::TensorData {
        name: tensors[k].name.clone(),
        ..tensors[q].clone()
    };
    let mut out = Vec::new();
    gguf::write(&mut out, &meta, &tensors, 32).unwrap();
    let e = Generator::from_gguf(CpuBackend::new(), &Gguf::parse(&out, "shape.gguf").unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "shape.gguf: tensor 'blk.1.attn_k.weight' has shape [64, 64], expected [32, 64]"
        ),
        "{e}"
    );
    // Unsupported architecture.
    meta[0].1 = gguf::Value::String("mamba".into());
    let mut out = Vec::new();
    gguf::write(&mut out, &meta, &tensors, 32).unwrap();
    let e = Llama::load(CpuBackend::new(), &Gguf::parse(&out, "arch.gguf").unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("general.architecture is 'mamba'"),
        "{e}"
    );
}

#[test]
fn max_new_tokens_of_usize_max_means_up_to_the_context() {
    // Context 128: with no EOS in the way, usize::MAX new tokens must give
    // exactly what 128 (everything the context leaves) gives, not wrap to
    // nothing.
    let g = generator(&TinyLlama::default());
    let cfg = |n| GenerationConfig {
        max_new_tokens: n,
        eos_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let want = block_on_ready(g.generate("the", &cfg(128))).unwrap();
    let got = block_on_ready(g.generate("the", &cfg(usize::MAX))).unwrap();
    assert!(want.token_ids.len() > 100, "{}", want.token_ids.len());
    assert_eq!(got.token_ids, want.token_ids);
    assert_eq!(got.finish_reason, FinishReason::Length);
}

#[test]
fn an_implausible_context_length_is_an_error_not_an_abort() {
    let t = TinyLlama {
        context: u32::MAX as usize,
        ..Default::default()
    };
    let bytes = tiny_llama_gguf(&t).unwrap();
    let g = Gguf::parse(&bytes, "huge.gguf").unwrap();
    let e = Llama::load(CpuBackend::new(), &g).unwrap_err().to_string();
    assert!(
        e.contains("huge.gguf") && e.contains("llama.context_length = 4294967295"),
        "{e}"
    );
}

#[test]
fn loop_period_finds_back_to_back_repeats_only() {
    use cairn_core::generate::loop_period;
    let rep = |unit: &[u32], n: usize| -> Vec<u32> {
        let mut v = vec![900, 901, 902];
        for _ in 0..n {
            v.extend_from_slice(unit);
        }
        v
    };
    // The thresholds: max(4, ⌈32/p⌉) copies of a unit of p tokens.
    for (unit, copies) in [
        (&[7u32][..], 32usize),
        (&[7, 8][..], 16),
        (&[1, 2, 3][..], 11),
        (&[1, 2, 3, 4, 5][..], 7),
        (&[1, 2, 3, 4, 5, 6, 7, 8][..], 4),
        (&(0..20).collect::<Vec<u32>>()[..], 4),
        (&(0..32).collect::<Vec<u32>>()[..], 4),
    ] {
        assert_eq!(
            loop_period(&rep(unit, copies)),
            Some(unit.len()),
            "{unit:?}"
        );
        assert_eq!(loop_period(&rep(unit, copies - 1)), None, "{unit:?}");
    }
    // The smallest period wins; a unit longer than 32 is no loop.
    assert_eq!(loop_period(&rep(&[5, 5], 16)), Some(1));
    assert_eq!(loop_period(&rep(&(0..33).collect::<Vec<u32>>(), 6)), None);
    // A broken repeat is not a loop, nor is ordinary varied text.
    let mut broken = rep(&[7, 8], 16);
    broken[10] = 9;
    assert_eq!(loop_period(&broken), None);
    assert_eq!(loop_period(&(0..500).collect::<Vec<u32>>()), None);
    assert_eq!(loop_period(&[]), None);
}

#[test]
fn stop_on_loop_ends_a_looping_generation_where_the_loop_is_first_complete() {
    use cairn_core::generate::loop_period;
    let g = generator(&TinyLlama::default());
    let free = GenerationConfig {
        max_new_tokens: 160,
        eos_token_ids: vec![u32::MAX],
        ..Default::default()
    };
    let long = block_on_ready(g.generate("the cat", &free)).unwrap();
    // The reference: the first prefix of the unguarded output that ends in a loop.
    let first = (1..=long.token_ids.len())
        .find(|&n| loop_period(&long.token_ids[..n]).is_some())
        .expect("the tiny model's greedy output loops within 160 tokens");
    let guarded = block_on_ready(g.generate(
        "the cat",
        &GenerationConfig {
            stop_on_loop: true,
            ..free.clone()
        },
    ))
    .unwrap();
    assert_eq!(guarded.finish_reason, FinishReason::Loop);
    assert_eq!(guarded.token_ids, long.token_ids[..first]);
    assert!(long.text.starts_with(&guarded.text));
    // Off by default: the same settings without the flag run to the budget.
    assert_eq!(long.finish_reason, FinishReason::Length);
}
