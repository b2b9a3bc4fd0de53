//! Helpers shared by the integration tests: fixtures and fetched models.

#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/<name>` at the workspace root.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A fetched model's path. Panics with the command to run when it is missing:
/// these tests use the real models and never fake them.
pub fn model(name: &str) -> PathBuf {
    let cache = cairn::cache::cache_dir(None);
    cairn::cache::resolve_model(name, &cache)
        .unwrap_or_else(|e| panic!("{e}\n(the test command runs `cairn fetch` first)"))
}

/// Writes a safetensors file: `(name, shape, dtype, little-endian bytes)` per tensor.
pub fn write_safetensors(path: &std::path::Path, tensors: &[(String, Vec<usize>, &str, Vec<u8>)]) {
    let mut header = std::collections::BTreeMap::new();
    let mut offset = 0;
    for (name, shape, dtype, data) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()] }),
        );
        offset += data.len();
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    for (_, _, _, data) in tensors {
        out.extend(data);
    }
    std::fs::write(path, out).unwrap();
}

/// Runs the `cairn` binary of this build: (success, stdout, stderr).
pub fn cairn(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("run cairn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fetched all-MiniLM-L6-v2 on the CPU, with its own pooling.
pub fn minilm() -> cairn_core::embedder::Embedder<cairn_core::backend::cpu::CpuBackend> {
    cairn::embed::load_embedder(
        cairn_core::backend::cpu::CpuBackend::new(),
        &model("all-minilm-l6-v2"),
        &cairn_core::embedder::EmbedderOptions::default(),
    )
    .unwrap()
}

/// The Python of the test venv (`openai`, `langchain-openai`, `jsonschema`),
/// which `scripts/setup.sh all` installs; panics with that hint when missing.
pub fn venv_python() -> PathBuf {
    let p = std::env::var_os("CAIRN_BUILD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cairn::cache::cache_dir(None))
        .join("venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: scripts/setup.sh all installs the test venv there",
        p.display()
    );
    p
}

/// Runs `tests/<script>` with the test venv's Python and `args`, and parses
/// the one JSON value it prints (panics with its stderr when it fails).
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(venv_python())
        .arg(fixture("..").join(script))
        .args(args)
        .output()
        .expect("run the test venv's python");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Checks a tokenizer against a golden `cases` array (`{"text", "ids"}`, at
/// least 1,000 of them): panics naming how many texts `encode` gets wrong.
pub fn assert_ids_match(cases: &serde_json::Value, encode: impl Fn(&str) -> Vec<u32>) {
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 1000, "only {} cases", cases.len());
    let bad: Vec<&str> = cases
        .iter()
        .filter(|c| {
            let want: Vec<u32> = c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            encode(c["text"].as_str().unwrap()) != want
        })
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} differ, e.g. {:?}",
        bad.len(),
        cases.len(),
        &bad[..bad.len().min(3)]
    );
}

/// Max |logits[i] − want| over a golden file's `top_logits` and
/// `strided_logits` lists of `[index, value]` pairs.
pub fn max_listed_logit_difference(logits: &[f32], golden: &serde_json::Value) -> f32 {
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
    worst
}

/// Writes the tiny HF-layout Llama of tests/scripts/make_hf_llama_golden.py
/// (same LCG weights, same order) as a Hugging Face directory.
pub fn write_tiny_hf_llama(dir: &std::path::Path) {
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
    write_safetensors(&dir.join("model.safetensors"), &tensors);
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
