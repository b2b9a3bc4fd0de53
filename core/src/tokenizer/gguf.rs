//! The tokenizer embedded in a GGUF file (`tokenizer.ggml.*` metadata), built
//! as a `tokenizers` pipeline so it shares the encoder/decoder code with
//! `tokenizer.json` files.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the
//! pre-tokenizers llama.cpp names in `tokenizer.ggml.pre`. Control and
//! user-defined tokens (`token_type` 3 and 4) become added tokens, so chat
//! markers such as `<|im_start|>` are matched whole in the text, as
//! llama.cpp does when parsing specials.

use serde_json::{Value as Json, json};

use super::Tokenizer;
use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};

/// GPT-2's split regex (also the second stage of StarCoder/SmolLM's).
const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's split regex (`llama-bpe`).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split regex.
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn split(regex: &str) -> Json {
    json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false})
}

fn byte_level() -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false})
}

/// The pre-tokenizer for llama.cpp's `tokenizer.ggml.pre` name.
fn pre_tokenizer(pre: &str) -> Result<Json> {
    let stages = match pre {
        "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => {
            vec![split(GPT2_REGEX), byte_level()]
        }
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" => {
            vec![split(r"\p{N}"), split(GPT2_REGEX), byte_level()]
        }
        "llama-bpe" | "llama3" | "dbrx" | "smaug-bpe" => vec![split(LLAMA3_REGEX), byte_level()],
        "qwen2" | "stablelm2" => vec![split(QWEN2_REGEX), byte_level()],
        other => {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.pre = '{other}' is not supported (supported: gpt2, smollm, starcoder, llama-bpe, qwen2 and their aliases)"
            )));
        }
    };
    Ok(json!({"type": "Sequence", "pretokenizers": stages}))
}

fn strings<'h>(h: &'h Header, key: &str) -> Result<Vec<&'h str>> {
    h.require_array(key)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .ok_or_else(|| Error::Tokenizer(format!("GGUF {key}[{i}] is not a string")))
        })
        .collect()
}

impl Tokenizer {
    /// Builds the tokenizer stored in a GGUF header.
    pub fn from_gguf(h: &Header) -> Result<Self> {
        let model = h.require_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.model = '{model}' is not supported yet (supported: gpt2 byte-level BPE)"
            )));
        }
        let pre = h
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let tokens = strings(h, "tokenizer.ggml.tokens")?;
        let merges = strings(h, "tokenizer.ggml.merges")?;
        let types: Vec<u64> = match h.get("tokenizer.ggml.token_type") {
            Some(v) => {
                let arr = v.as_array().ok_or_else(|| {
                    Error::Tokenizer("GGUF tokenizer.ggml.token_type is not an array".into())
                })?;
                if arr.len() != tokens.len() {
                    return Err(Error::Tokenizer(format!(
                        "GGUF tokenizer.ggml.token_type has {} entries for {} tokens",
                        arr.len(),
                        tokens.len()
                    )));
                }
                arr.iter().map(|v| v.as_u64().unwrap_or(1)).collect()
            }
            None => vec![1; tokens.len()],
        };
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (id, (tok, ty)) in tokens.iter().zip(&types).enumerate() {
            vocab.insert((*tok).to_string(), json!(id));
            // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
            if *ty == 3 || *ty == 4 {
                added.push(json!({
                    "id": id, "content": tok, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": *ty == 3
                }));
            }
        }
        if vocab.len() != tokens.len() {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.tokens has duplicate entries ({} unique of {})",
                vocab.len(),
                tokens.len()
            )));
        }
        let doc = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer(pre)?,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges
            }
        });
        let bytes = serde_json::to_vec(&doc)
            .map_err(|e| Error::Tokenizer(format!("cannot build tokenizer from GGUF: {e}")))?;
        Tokenizer::from_bytes(&bytes, "GGUF tokenizer")
    }
}
