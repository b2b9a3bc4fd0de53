//! `Generator`: a GGUF decoder (Llama family) with every decoding option,
//! streaming text pieces to a callback as they are decoded.

use std::rc::Rc;

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use cairn_core::formats::gguf::Gguf;
use cairn_core::generate::{ChatMessage, FinishReason, Generation};
use wasm_bindgen::prelude::*;

use crate::engine::{Choice, OnBackend, Opened, on_backend};
use crate::{js_err, options, to_js};

pub(crate) type Gen = OnBackend<
    cairn_core::generate::Generator<CpuBackend>,
    cairn_core::generate::Generator<GpuBackend>,
>;

/// A text generator loaded from a GGUF file's bytes.
#[wasm_bindgen]
pub struct Generator {
    pub(crate) inner: Rc<Gen>,
    backend: String,
}

/// A prompt as text or as token ids.
enum Prompt {
    Text(String),
    Ids(Vec<u32>),
}

/// What `generate` and `chat` resolve to.
#[derive(serde::Serialize)]
pub(crate) struct GenerationJs {
    text: String,
    #[serde(rename = "tokenIds")]
    token_ids: Vec<u32>,
    #[serde(rename = "promptTokens")]
    prompt_tokens: usize,
    /// `"eos"`, `"stop"`, `"length"` or `"cancelled"` (the callback returned `false`).
    #[serde(rename = "finishReason")]
    finish_reason: &'static str,
}

impl From<Generation> for GenerationJs {
    fn from(g: Generation) -> Self {
        GenerationJs {
            text: g.text,
            token_ids: g.token_ids,
            prompt_tokens: g.prompt_tokens,
            finish_reason: match g.finish_reason {
                FinishReason::Eos => "eos",
                FinishReason::Stop(_) => "stop",
                FinishReason::Length => "length",
                FinishReason::Cancelled => "cancelled",
                FinishReason::Loop => "loop",
            },
        }
    }
}

/// Wraps an optional JS callback `(piece: string) => boolean | void` as the
/// core's `on_text`: returning `false` stops generation; a throw stops it
/// and is reported as the call's error.
pub(crate) struct Streamer {
    f: Option<js_sys::Function>,
    pub(crate) error: Option<JsValue>,
}

impl Streamer {
    pub(crate) fn new(f: Option<js_sys::Function>) -> Self {
        Streamer { f, error: None }
    }

    pub(crate) fn push(&mut self, piece: &str) -> bool {
        let Some(f) = &self.f else { return true };
        match f.call1(&JsValue::NULL, &JsValue::from_str(piece)) {
            Ok(v) => v.as_bool() != Some(false),
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

#[wasm_bindgen]
impl Generator {
    /// Loads a GGUF model (`Uint8Array` of the whole file) on `backend`
    /// (`"auto"` — WebGPU when available, else CPU —, `"cpu"` or `"webgpu"`).
    pub async fn load(gguf: Vec<u8>, backend: Option<String>) -> Result<Generator, JsError> {
        let choice = Choice::parse(backend)?;
        let g = Gguf::parse(&gguf, "model.gguf").map_err(js_err)?;
        let opened = Opened::open(choice).await?;
        let backend = opened.describe();
        let inner = match opened {
            Opened::Cpu(b) => {
                OnBackend::Cpu(cairn_core::generate::Generator::from_gguf(b, &g).map_err(js_err)?)
            }
            Opened::Gpu(b) => {
                OnBackend::Gpu(cairn_core::generate::Generator::from_gguf(b, &g).map_err(js_err)?)
            }
        };
        Ok(Generator {
            inner: Rc::new(inner),
            backend,
        })
    }

    /// The backend running the model: `"cpu (wasm simd128)"` or `"webgpu: <adapter>"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// The model's context length in tokens.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        on_backend!(&*self.inner, g => g.model().config().context_length)
    }

    /// Activates a LoRA adapter in PEFT's layout (the bytes of
    /// `adapter_config.json` and `adapter_model.safetensors`, as `cairn
    /// train lora` or HF PEFT write them), applied unmerged; `null` for both
    /// restores the base model exactly. An adapter for another base model or
    /// with other shapes is an error naming the tensor or field, and the
    /// model keeps what it had.
    #[wasm_bindgen(js_name = setAdapter)]
    pub fn set_adapter(
        &mut self,
        config: Option<Vec<u8>>,
        weights: Option<Vec<u8>>,
    ) -> Result<(), JsError> {
        let gen_ = Rc::get_mut(&mut self.inner).ok_or_else(|| {
            JsError::new(
                "setAdapter: the generator is busy (a generation is running); try when it ends",
            )
        })?;
        let adapter = match (config, weights) {
            (None, None) => None,
            (Some(c), Some(w)) => {
                let cfg = on_backend!(&*gen_, g => g.model().config().clone());
                Some(
                    cairn_core::lora::Adapter::from_peft(&c, &w, cfg.num_layers, |m| {
                        cfg.projection_dims(m)
                    })
                    .map_err(js_err)?,
                )
            }
            _ => {
                return Err(JsError::new(
                    "setAdapter: pass both adapter_config.json and adapter_model.safetensors, or neither",
                ));
            }
        };
        on_backend!(gen_, g => g.model_mut().set_adapter(adapter.as_ref())).map_err(js_err)
    }

    /// Token ids of `text` (as the model's tokenizer encodes a prompt).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, JsError> {
        on_backend!(&*self.inner, g => g.encode(text)).map_err(js_err)
    }

    /// Text of token ids.
    pub fn decode(&self, ids: &[u32]) -> String {
        on_backend!(&*self.inner, g => g.decode(ids))
    }

    /// Renders `messages` (`[{ role, content }]`) with the model's chat template.
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(
        &self,
        messages: JsValue,
        add_generation_prompt: Option<bool>,
    ) -> Result<String, JsError> {
        let messages: Vec<ChatMessage> = serde_wasm_bindgen::from_value(messages)
            .map_err(|e| JsError::new(&format!("messages: expected [{{ role, content }}]: {e}")))?;
        on_backend!(&*self.inner, g => g.apply_chat_template(&messages, add_generation_prompt.unwrap_or(true)))
            .map_err(js_err)
    }

    /// Continues `prompt` (raw text, no template). `options` are the decoding
    /// options (`maxNewTokens`, `doSample`, `temperature`, `topK`, `topP`,
    /// `repetitionPenalty`, `noRepeatNgramSize`, `numBeams`, `lengthPenalty`,
    /// `earlyStopping`, `stop`, `eosTokenIds`, `seed`) and at most one
    /// output format (text prompts only): `jsonSchema` (a JSON Schema
    /// object), `regex` (a pattern the whole output matches) or `choice`
    /// (a list of strings); `onText(piece)` gets
    /// each decoded piece and may return `false` to stop. Resolves to
    /// `{ text, tokenIds, promptTokens, finishReason }`.
    ///
    /// `prompt` is text, or token ids (`Uint32Array` or an array of numbers)
    /// used exactly as given.
    pub fn generate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint32Array | number[]")] prompt: JsValue,
        options: JsValue,
        on_text: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let opts = options::object(&options, "generate")
            .and_then(|o| options::generate(o).map_err(JsError::from));
        let prompt = match prompt.as_string() {
            Some(text) => Ok(Prompt::Text(text)),
            None => serde_wasm_bindgen::from_value::<Vec<u32>>(prompt)
                .map(Prompt::Ids)
                .map_err(|e| {
                    JsError::new(&format!(
                        "generate: the prompt must be a string or token ids ({e})"
                    ))
                }),
        };
        wasm_bindgen_futures::future_to_promise(async move {
            let (grammar, config) = opts?;
            let prompt = prompt?;
            let mut s = Streamer::new(on_text);
            let out = on_backend!(&*inner, g => match (&prompt, grammar) {
                (Prompt::Text(t), None) => g.generate_stream(t, &config, |p| s.push(p)).await,
                (Prompt::Ids(ids), None) => g.generate_ids_stream(ids, &config, |p| s.push(p)).await,
                (Prompt::Text(t), Some(gr)) => {
                    let mut c = g.grammar_constraint(gr, &config);
                    g.generate_constrained_stream(t, &config, &mut c, |p| s.push(p)).await
                }
                (Prompt::Ids(_), Some(_)) => Err(cairn_core::Error::Input(
                    "generate: jsonSchema, regex and choice need a text prompt".into(),
                )),
            });
            if let Some(e) = s.error {
                return Err(e);
            }
            to_js(&GenerationJs::from(out.map_err(js_err)?))
        })
    }

    /// Chat: renders `messages` with the model's template and generates the
    /// assistant's reply (same options and streaming as `generate`).
    pub fn chat(
        &self,
        messages: JsValue,
        options: JsValue,
        on_text: Option<js_sys::Function>,
    ) -> Result<js_sys::Promise, JsError> {
        let prompt = self.apply_chat_template(messages, Some(true))?;
        Ok(self.generate(JsValue::from_str(&prompt), options, on_text))
    }
}
