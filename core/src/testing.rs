//! Tiny randomly initialised models, written in the real file formats, for
//! fast tests and benchmarks that must not depend on downloaded weights.

// Test helpers: failing loudly (e.g. `CAIRN_REQUIRE_GPU` set but no adapter)
// is their job.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

pub mod fuzz;

use crate::formats::gguf::{self, GgmlType, TensorData, Value};
use crate::generate::chat_template::CHATML;
use crate::quant;
use crate::util::pseudo_random;

/// Shape of a tiny Llama written by [`tiny_llama_gguf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyLlama {
    /// Model width (a multiple of 32).
    pub hidden: usize,
    /// MLP width (a multiple of 32).
    pub ffn: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Context length written to the metadata.
    pub context: usize,
    /// Block type of the weight matrices.
    pub matrix_type: GgmlType,
    /// Seed of the weights.
    pub seed: u64,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama {
            hidden: 64,
            ffn: 96,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            context: 128,
            matrix_type: GgmlType::Q8_0,
            seed: 7,
        }
    }
}

/// The byte-level vocabulary of the tiny model: the 256 GPT-2 byte
/// characters, a few merges, then `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
fn vocab() -> (Vec<String>, Vec<String>, Vec<i32>) {
    let unmap = crate::tokenizer::byte_level_chars();
    let mut tokens: Vec<String> = unmap.iter().map(|c| c.to_string()).collect();
    let merges: Vec<String> = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    let mut types = vec![1; tokens.len()];
    for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(s.into());
        types.push(3);
    }
    (tokens, merges, types)
}

/// A complete GGUF file (metadata, tokenizer, ChatML template, weights) of a
/// randomly initialised Llama with the given shape.
pub fn tiny_llama_gguf(t: &TinyLlama) -> crate::Result<Vec<u8>> {
    let (tokens, merges, types) = vocab();
    let vocab_size = tokens.len();
    let n = tokens.len() as u32;
    let head_dim = t.hidden / t.heads;
    let s = |v: &str| Value::String(v.into());
    let meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s("llama")),
        ("general.name".into(), s("tiny-random-llama")),
        ("llama.block_count".into(), Value::U32(t.layers as u32)),
        ("llama.context_length".into(), Value::U32(t.context as u32)),
        ("llama.embedding_length".into(), Value::U32(t.hidden as u32)),
        ("llama.feed_forward_length".into(), Value::U32(t.ffn as u32)),
        (
            "llama.attention.head_count".into(),
            Value::U32(t.heads as u32),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Value::U32(t.kv_heads as u32),
        ),
        ("llama.rope.freq_base".into(), Value::F32(10000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.iter().map(|&v| Value::I32(v)).collect()),
        ),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(n - 2)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(n - 1)),
        ("tokenizer.chat_template".into(), s(CHATML)),
    ];
    let mut seed = t.seed;
    let mut tensor = |name: String,
                      dims: [usize; 2],
                      ty: GgmlType,
                      scale: f32|
     -> crate::Result<TensorData<'static>> {
        seed += 1;
        let vals: Vec<f32> = pseudo_random(dims[0] * dims[1], seed)
            .into_iter()
            .map(|v| v * scale)
            .collect();
        let data = quant::quantize(ty, &vals, &name)?;
        let ggml_dims = if dims[0] == 1 {
            vec![dims[1] as u64]
        } else {
            vec![dims[1] as u64, dims[0] as u64]
        };
        Ok(TensorData {
            name,
            ggml_type: ty,
            dims: ggml_dims,
            data: data.into(),
        })
    };
    let norm = |name: String| TensorData {
        name,
        ggml_type: GgmlType::F32,
        dims: vec![t.hidden as u64],
        data: (0..t.hidden)
            .flat_map(|i| (1.0f32 + 0.01 * (i % 5) as f32).to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    };
    let mt = t.matrix_type;
    let mut ts = vec![tensor(
        "token_embd.weight".into(),
        [vocab_size, t.hidden],
        GgmlType::Q8_0,
        2.0,
    )?];
    for l in 0..t.layers {
        let p = |x: &str| format!("blk.{l}.{x}.weight");
        ts.push(norm(p("attn_norm")));
        ts.push(tensor(
            p("attn_q"),
            [t.heads * head_dim, t.hidden],
            mt,
            0.5,
        )?);
        ts.push(tensor(
            p("attn_k"),
            [t.kv_heads * head_dim, t.hidden],
            mt,
            0.5,
        )?);
        ts.push(tensor(
            p("attn_v"),
            [t.kv_heads * head_dim, t.hidden],
            mt,
            0.5,
        )?);
        ts.push(tensor(
            p("attn_output"),
            [t.hidden, t.heads * head_dim],
            mt,
            0.5,
        )?);
        ts.push(norm(p("ffn_norm")));
        ts.push(tensor(p("ffn_gate"), [t.ffn, t.hidden], mt, 0.5)?);
        ts.push(tensor(p("ffn_up"), [t.ffn, t.hidden], mt, 0.5)?);
        ts.push(tensor(p("ffn_down"), [t.hidden, t.ffn], mt, 0.5)?);
    }
    ts.push(norm("output_norm.weight".into()));
    let mut out = Vec::new();
    gguf::write(&mut out, &meta, &ts, 32)?;
    Ok(out)
}

/// Whether `CAIRN_REQUIRE_GPU` asks the GPU tests to fail rather than skip
/// when no adapter works: any value but empty, `0`, `false`, `no` or `off`
/// (any case) means yes.
pub fn gpu_required() -> bool {
    std::env::var("CAIRN_REQUIRE_GPU").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

#[cfg(not(target_arch = "wasm32"))]
/// The GPU backend for a test, or `None` (test skipped, reason printed) when
/// no adapter works. With `CAIRN_REQUIRE_GPU` set ([`gpu_required`]) a missing adapter panics
/// instead, so CI cannot pass without running the GPU tests.
pub fn gpu_backend_or_skip() -> Option<crate::backend::gpu::GpuBackend> {
    match pollster::block_on(crate::backend::gpu::GpuBackend::new()) {
        Ok(g) => {
            eprintln!("GPU adapter: {}", g.adapter());
            Some(g)
        }
        Err(e) if gpu_required() => {
            panic!("CAIRN_REQUIRE_GPU is set but no GPU backend: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

/// A tiny randomly initialised BERT (`BertModel` names plus a pooler):
/// `config.json` and `model.safetensors` bytes. Vocabulary `vocab`, width
/// `hidden` (heads of 4), `layers` blocks, 32 positions.
pub fn tiny_bert(
    vocab: usize,
    hidden: usize,
    layers: usize,
    seed: u64,
) -> crate::Result<(Vec<u8>, Vec<u8>)> {
    let ff = 2 * hidden;
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": vocab, "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": hidden / 4,
        "intermediate_size": ff, "max_position_embeddings": 32, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0
    });
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![vocab, hidden],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![32, hidden],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, hidden],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![hidden]),
        ("embeddings.LayerNorm.bias".into(), vec![hidden]),
        ("pooler.dense.weight".into(), vec![hidden, hidden]),
        ("pooler.dense.bias".into(), vec![hidden]),
    ];
    for i in 0..layers {
        let p = format!("encoder.layer.{i}");
        for (n, out, inp) in [
            ("attention.self.query", hidden, hidden),
            ("attention.self.key", hidden, hidden),
            ("attention.self.value", hidden, hidden),
            ("attention.output.dense", hidden, hidden),
            ("intermediate.dense", ff, hidden),
            ("output.dense", hidden, ff),
        ] {
            shapes.push((format!("{p}.{n}.weight"), vec![out, inp]));
            shapes.push((format!("{p}.{n}.bias"), vec![out]));
        }
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            shapes.push((format!("{p}.{n}.weight"), vec![hidden]));
            shapes.push((format!("{p}.{n}.bias"), vec![hidden]));
        }
    }
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = shapes
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n = shape.iter().product();
            let ln = name.ends_with("LayerNorm.weight");
            let v = pseudo_random(n, seed.wrapping_add(k as u64))
                .into_iter()
                .map(|x| if ln { 1.0 + 0.2 * x } else { 0.4 * x })
                .collect();
            (name, shape, v)
        })
        .collect();
    let weights = crate::formats::safetensors::write_f32(&tensors, &Default::default())?;
    Ok((config.to_string().into_bytes(), weights))
}

/// A one-collection RAG index of width 2: file "a" with two passages
/// ("cats sit", "dogs run") and three chunks ("cats", "dogs", "run"), for
/// tests of the index file format and of search.
pub fn tiny_rag_index() -> crate::rag::RagIndex {
    use crate::text::Chunk;
    let chunk = |text: &str, parent: Option<usize>| Chunk {
        text: text.into(),
        source: "a".into(),
        page: Some(1),
        headings: vec![],
        segment: 0,
        start: 0,
        parent,
    };
    let mut ix = crate::rag::RagIndex::new("e", 2);
    ix.add_file(
        "c",
        crate::rag::FileChunks {
            source: "a".into(),
            hash: "h".into(),
            pages: 1,
            parents: vec![chunk("cats sit", None), chunk("dogs run", None)],
            children: vec![
                chunk("cats", Some(0)),
                chunk("dogs", Some(1)),
                chunk("run", Some(1)),
            ],
            vectors: vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8],
        },
    )
    .expect("a consistent index");
    ix
}
