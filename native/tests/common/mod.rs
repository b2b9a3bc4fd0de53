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
