//! `Embedder`: sentence embeddings (BERT / MiniLM / DistilBERT) from a
//! model's files, on WebGPU or the CPU.

use std::rc::Rc;

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use cairn_core::embedder::{EmbedderOptions, ModelFiles};
use wasm_bindgen::prelude::*;

use crate::engine::{CPU_NAME, Choice, OnBackend, Opened, on_backend};
use crate::js_err;

pub(crate) type Emb = OnBackend<
    cairn_core::embedder::Embedder<CpuBackend>,
    cairn_core::embedder::Embedder<GpuBackend>,
>;

/// A sentence embedder built from the bytes of a model's files.
#[wasm_bindgen]
pub struct Embedder {
    pub(crate) inner: Rc<Emb>,
    backend: String,
}

fn files<'a>(
    config: &'a [u8],
    weights: &'a [u8],
    tokenizer: &'a [u8],
    pooling: Option<&'a [u8]>,
    sentence_bert: Option<&'a [u8]>,
) -> ModelFiles<'a> {
    ModelFiles {
        config,
        weights,
        tokenizer,
        pooling,
        sentence_bert,
    }
}

#[wasm_bindgen]
impl Embedder {
    /// On the CPU backend, synchronously: `config.json`, `model.safetensors`
    /// and `tokenizer.json` bytes, plus the optional `1_Pooling/config.json`
    /// and `sentence_bert_config.json`. See `Embedder.load` for WebGPU.
    #[wasm_bindgen(constructor)]
    pub fn new(
        config: &[u8],
        weights: &[u8],
        tokenizer: &[u8],
        pooling: Option<Vec<u8>>,
        sentence_bert: Option<Vec<u8>>,
    ) -> Result<Embedder, JsError> {
        let inner = cairn_core::embedder::Embedder::from_files(
            CpuBackend::new(),
            files(
                config,
                weights,
                tokenizer,
                pooling.as_deref(),
                sentence_bert.as_deref(),
            ),
            &EmbedderOptions::default(),
        )
        .map_err(js_err)?;
        Ok(Embedder {
            inner: Rc::new(OnBackend::Cpu(inner)),
            backend: CPU_NAME.into(),
        })
    }

    /// The same files on `backend` (`"auto"`, `"cpu"` or `"webgpu"`).
    pub async fn load(
        config: Vec<u8>,
        weights: Vec<u8>,
        tokenizer: Vec<u8>,
        pooling: Option<Vec<u8>>,
        sentence_bert: Option<Vec<u8>>,
        backend: Option<String>,
    ) -> Result<Embedder, JsError> {
        let opened = Opened::open(Choice::parse(backend)?).await?;
        let backend = opened.describe();
        let f = files(
            &config,
            &weights,
            &tokenizer,
            pooling.as_deref(),
            sentence_bert.as_deref(),
        );
        let o = EmbedderOptions::default();
        let inner = match opened {
            Opened::Cpu(b) => OnBackend::Cpu(
                cairn_core::embedder::Embedder::from_files(b, f, &o).map_err(js_err)?,
            ),
            Opened::Gpu(b) => OnBackend::Gpu(
                cairn_core::embedder::Embedder::from_files(b, f, &o).map_err(js_err)?,
            ),
        };
        Ok(Embedder {
            inner: Rc::new(inner),
            backend,
        })
    }

    /// Embeds `texts`: resolves to one `Float32Array` of `texts.length × dim`
    /// values, row-major (unit length with `normalize`).
    pub fn encode(&self, texts: Vec<String>, normalize: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let e = on_backend!(&*inner, m => m.encode_async(&refs, normalize).await)
                .map_err(js_err)?;
            Ok(js_sys::Float32Array::from(e.data.as_slice()).into())
        })
    }

    /// Embedding dimension.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        on_backend!(&*self.inner, m => m.dim())
    }

    /// The backend running the model.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }
}
