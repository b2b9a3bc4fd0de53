//! # cairn-wasm
//!
//! cairn's core in JavaScript (browser and node) through wasm-bindgen. Built
//! with wasm-pack into an npm package with TypeScript types.
//!
//! - [`Tokenizer`]: `tokenizer.json` tokenizers (ids equal to Python `tokenizers`).
//! - [`Embedder`]: sentence embeddings.
//! - [`Generator`]: GGUF decoders with every decoding option and streaming.
//! - [`Agent`]: the ReAct agent loop with tools the page runs ([`calculate`] built in).
//! - [`Index`]: the RAG index — ingest PDF/HTML/Markdown/text from bytes,
//!   hybrid search, grounded answers with numbered citations.
//! - [`WordVectors`]: word2vec vectors — nearest words, analogies.
//!
//! Models run on WebGPU when the environment has an adapter and on the CPU
//! backend (candle, wasm SIMD) otherwise; each object reports which.

#![warn(missing_docs)]

mod agent;
mod embedder;
mod engine;
mod generator;
mod index;
pub mod options;
mod words;

pub use agent::{Agent, calculate, calculator_spec};
pub use embedder::Embedder;
pub use engine::webgpu_available;
pub use generator::Generator;
pub use index::Index;
use wasm_bindgen::prelude::*;
pub use words::WordVectors;

/// A Rust value as a plain JS object (maps as objects, not `Map`s).
pub(crate) fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()).into())
}

pub(crate) fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The cairn version this package was built from.
#[wasm_bindgen]
pub fn version() -> String {
    cairn_core::VERSION.to_string()
}

/// One encoded text, as returned by [`Tokenizer::encode`].
#[derive(serde::Serialize)]
struct EncodingJs {
    ids: Vec<u32>,
    tokens: Vec<String>,
    #[serde(rename = "attentionMask")]
    attention_mask: Vec<u32>,
    offsets: Vec<(usize, usize)>,
}

/// A tokenizer loaded from the bytes of a `tokenizer.json`.
#[wasm_bindgen]
pub struct Tokenizer {
    inner: cairn_core::tokenizer::Tokenizer,
}

#[wasm_bindgen]
impl Tokenizer {
    /// Parses `tokenizer.json` bytes (e.g. from `fetch(url).then(r => r.arrayBuffer())`).
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<Tokenizer, JsError> {
        let inner = cairn_core::tokenizer::Tokenizer::from_bytes(bytes, "tokenizer.json")
            .map_err(js_err)?;
        Ok(Tokenizer { inner })
    }

    /// Encodes `text`: `{ ids, tokens, attentionMask, offsets }`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<JsValue, JsError> {
        let e = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(js_err)?;
        let out = EncodingJs {
            ids: e.ids,
            tokens: e.tokens,
            attention_mask: e.attention_mask,
            offsets: e.offsets,
        };
        serde_wasm_bindgen::to_value(&out).map_err(js_err)
    }

    /// Token ids only, as a `Uint32Array`.
    #[wasm_bindgen(js_name = encodeIds)]
    pub fn encode_ids(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, JsError> {
        Ok(self
            .inner
            .encode(text, add_special_tokens)
            .map_err(js_err)?
            .ids)
    }

    /// Decodes ids back to text.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, JsError> {
        self.inner.decode(ids, skip_special_tokens).map_err(js_err)
    }

    /// Vocabulary size including added tokens.
    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}

/// `C[m×n] = A[m×k] · B[k×n]` on the CPU backend (candle-core, wasm SIMD);
/// with `transposeB`, `B` is stored `n×k`.
#[wasm_bindgen]
pub fn matmul(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    transpose_b: bool,
) -> Result<Vec<f32>, JsError> {
    cairn_core::backend::cpu::matmul_f32(a, b, m, k, n, transpose_b).map_err(js_err)
}

/// Summary of a GGUF header.
#[derive(serde::Serialize)]
struct GgufSummaryJs {
    version: u32,
    architecture: Option<String>,
    #[serde(rename = "tensorCount")]
    tensor_count: usize,
    #[serde(rename = "metadataCount")]
    metadata_count: usize,
    #[serde(rename = "dataOffset")]
    data_offset: u64,
    #[serde(rename = "dataBytes")]
    data_bytes: u64,
}

/// Reads the header of a GGUF file from its first bytes (the whole file is not
/// needed): `{ version, architecture, tensorCount, metadataCount, dataOffset, dataBytes }`.
#[wasm_bindgen(js_name = inspectGguf)]
pub fn inspect_gguf(bytes: &[u8]) -> Result<JsValue, JsError> {
    let h =
        cairn_core::formats::gguf::Header::read(&mut &bytes[..], "model.gguf").map_err(js_err)?;
    let out = GgufSummaryJs {
        version: h.version,
        architecture: h.architecture().map(str::to_string),
        tensor_count: h.tensors.len(),
        metadata_count: h.metadata.len(),
        data_offset: h.data_offset,
        data_bytes: h.data_len(),
    };
    serde_wasm_bindgen::to_value(&out).map_err(js_err)
}

/// Cosine similarity of two vectors.
#[wasm_bindgen(js_name = cosineSimilarity)]
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    cairn_core::embedder::cosine_similarity(a, b)
}
