//! The tokenizer embedded in a GGUF file (`tokenizer.ggml.*` metadata), built
//! as a `tokenizers` pipeline so it shares the encoder/decoder code with
//! `tokenizer.json` files.
//!
//! Supported: `tokenizer.ggml.model = "gpt2"` (byte-level BPE) with the
//! pre-tokenizers llama.cpp names in `tokenizer.ggml.pre`, and `"llama"`
//! (SentencePiece BPE with scores: Llama 2, Mistral, Gemma, Phi-3). Control and
//! user-defined tokens (`token_type` 3 and 4) become added tokens, so chat
//! markers such as `<|im_start|>` are matched whole in the text, as
//! llama.cpp does when parsing specials.
//!
//! SentencePiece BPE (llama.cpp's `llm_tokenizer_spm`) repeatedly merges the
//! adjacent pair whose concatenation is the highest-scoring vocabulary
//! piece, leftmost first; symbols left outside the vocabulary become their
//! `<0xXX>` byte tokens. A BPE whose merges are every split `(l, r)` of every
//! piece `l+r` with `l` and `r` in the vocabulary, ranked by the score of
//! `l+r` (Hugging Face's `SentencePieceExtractor`), makes the same choices.

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

/// SentencePiece's word-boundary mark, which stands for a space.
const SPM_SPACE: &str = "\u{2581}";

/// Merges equivalent to SentencePiece BPE scoring: every split `(l, r)` of
/// every piece with both halves in the vocabulary, the highest-scoring
/// piece's splits first (ties: the piece with the lower id, then the split
/// whose halves have lower ids).
fn spm_merges<'t>(tokens: &[&'t str], scores: &[f32]) -> Vec<(&'t str, &'t str)> {
    let ids: std::collections::HashMap<&str, usize> =
        tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut found: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (id, (piece, &score)) in tokens.iter().zip(scores).enumerate() {
        for (cut, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(cut);
            if let (Some(&li), Some(&ri)) = (ids.get(l), ids.get(r)) {
                found.push((score, id, li, ri));
            }
        }
    }
    found.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    found
        .into_iter()
        .filter_map(|(_, _, l, r)| Some((*tokens.get(l)?, *tokens.get(r)?)))
        .collect()
}

/// The numbers of a GGUF float array (`tokenizer.ggml.scores`).
fn floats(h: &Header, key: &str, len: usize) -> Result<Vec<f32>> {
    let arr = h.require_array(key)?;
    if arr.len() != len {
        return Err(Error::Tokenizer(format!(
            "GGUF {key} has {} entries for {len} tokens",
            arr.len()
        )));
    }
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .map(|x| x as f32)
                .filter(|x| x.is_finite())
                .ok_or_else(|| Error::Tokenizer(format!("GGUF {key}[{i}] is not a finite number")))
        })
        .collect()
}

impl Tokenizer {
    /// Builds the tokenizer stored in a GGUF header.
    pub fn from_gguf(h: &Header) -> Result<Self> {
        let model = h.require_str("tokenizer.ggml.model")?;
        if model != "gpt2" && model != "llama" {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.model = '{model}' is not supported yet (supported: gpt2 byte-level BPE, llama SentencePiece BPE)"
            )));
        }
        let spm = model == "llama";
        let pre = h
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let tokens = strings(h, "tokenizer.ggml.tokens")?;
        let scores = if spm {
            floats(h, "tokenizer.ggml.scores", tokens.len())?
        } else {
            Vec::new()
        };
        let merges: Vec<(&str, &str)> = if spm {
            spm_merges(&tokens, &scores)
        } else {
            strings(h, "tokenizer.ggml.merges")?
                .into_iter()
                .map(|m| m.split_once(' ').unwrap_or((m, "")))
                .collect()
        };
        if let Some(bad) = merges.iter().find(|(_, r)| r.is_empty()) {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.merges entry {:?} is not two tokens separated by a space",
                bad.0
            )));
        }
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
        let merges: Vec<[&str; 2]> = merges.into_iter().map(|(l, r)| [l, r]).collect();
        let doc = if spm {
            // Spaces become "▁" (and one is prepended to the text when the
            // file asks, as Llama 2's tokenizer does; Gemma's does not).
            let prefix = h
                .get("tokenizer.ggml.add_space_prefix")
                .and_then(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .unwrap_or(true);
            let unk = h
                .get("tokenizer.ggml.unknown_token_id")
                .and_then(Value::as_u64)
                .and_then(|i| tokens.get(i as usize).copied());
            let mut normalizers = Vec::new();
            let mut decoders = vec![
                json!({"type": "Replace", "pattern": {"String": SPM_SPACE}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if prefix {
                normalizers.push(json!({"type": "Prepend", "prepend": SPM_SPACE}));
                decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            normalizers
                .push(json!({"type": "Replace", "pattern": {"String": " "}, "content": SPM_SPACE}));
            json!({
                "version": "1.0",
                "truncation": null,
                "padding": null,
                "added_tokens": added,
                "normalizer": {"type": "Sequence", "normalizers": normalizers},
                "pre_tokenizer": null,
                "post_processor": null,
                "decoder": {"type": "Sequence", "decoders": decoders},
                "model": {
                    "type": "BPE", "dropout": null, "unk_token": unk,
                    "continuing_subword_prefix": null, "end_of_word_suffix": null,
                    "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                    "vocab": vocab, "merges": merges
                }
            })
        } else {
            json!({
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
            })
        };
        let bytes = serde_json::to_vec(&doc)
            .map_err(|e| Error::Tokenizer(format!("cannot build tokenizer from GGUF: {e}")))?;
        Tokenizer::from_bytes(&bytes, "GGUF tokenizer")
    }
}
