//! Hugging Face Llama checkpoints (`config.json` + `model.safetensors` +
//! `tokenizer.json`) to GGUF, as llama.cpp's `convert_hf_to_gguf.py` lays
//! them out: `llama.*` hyper-parameters, the `tokenizer.ggml.*` vocabulary,
//! tensor names `blk.N.attn_q.weight`…, and Q/K rows permuted so that
//! llama.cpp's adjacent-pair RoPE equals HF's rotate-half.

use serde_json::Value as Json;

use super::gguf::{GgmlType, TensorData, Value};
use super::tensors::SafeTensors;
use crate::error::{Error, Result};
use crate::util::json_at;

fn cfg_err(detail: String) -> Error {
    Error::Model {
        file: "config.json".into(),
        detail,
    }
}

fn tok_err(detail: String) -> Error {
    Error::Model {
        file: "tokenizer.json".into(),
        detail,
    }
}

/// HF → GGUF row order for a Q or K projection `[heads·d, in]`: within each
/// head, rows `(i, d/2 + i)` become adjacent (`convert_hf_to_gguf.py`'s
/// `permute`: reshape `[heads, 2, d/2, in]`, swap axes 1 and 2). Rows are
/// `cols` elements of any type: f32 values, or the bytes of a quantized row.
/// A shape that does not split into `heads` pairs of halves is an error.
pub fn permute_rows<T: Copy>(w: &[T], heads: usize, rows: usize, cols: usize) -> Result<Vec<T>> {
    reorder_rows(w, heads, rows, cols, |h, half, two, i| {
        (h * 2 * half + two * half + i, h * 2 * half + i * 2 + two)
    })
}

/// GGUF → HF row order: the inverse of [`permute_rows`].
pub fn unpermute_rows(w: &[f32], heads: usize, rows: usize, cols: usize) -> Result<Vec<f32>> {
    reorder_rows(w, heads, rows, cols, |h, half, two, i| {
        (h * 2 * half + i * 2 + two, h * 2 * half + two * half + i)
    })
}

/// Moves row `src` to row `dst` for every `(src, dst) = map(head, half, two, i)`.
fn reorder_rows<T: Copy>(
    w: &[T],
    heads: usize,
    rows: usize,
    cols: usize,
    map: impl Fn(usize, usize, usize, usize) -> (usize, usize),
) -> Result<Vec<T>> {
    if heads == 0
        || cols == 0
        || !rows.is_multiple_of(2 * heads)
        || rows.checked_mul(cols) != Some(w.len())
    {
        return Err(Error::Shape {
            op: "permute_rows",
            detail: format!(
                "{} values are not {rows} rows of {cols} in {heads} heads of row pairs",
                w.len()
            ),
        });
    }
    let half = rows / heads / 2;
    let src_rows: Vec<&[T]> = w.chunks_exact(cols).collect();
    let mut order = vec![0usize; rows];
    for h in 0..heads {
        for two in 0..2 {
            for i in 0..half {
                let (src, dst) = map(h, half, two, i);
                if let Some(o) = order.get_mut(dst) {
                    *o = src;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(w.len());
    for src in order {
        out.extend_from_slice(src_rows.get(src).copied().unwrap_or_default());
    }
    Ok(out)
}

/// GGUF metadata and tensors, ready for [`super::gguf::write`].
pub type GgufParts = (Vec<(String, Value)>, Vec<TensorData<'static>>);

/// Metadata and F32 tensors of a GGUF file equivalent to an HF Llama checkpoint.
pub fn convert(
    config_json: &[u8],
    st: &SafeTensors<'_>,
    tokenizer_json: &[u8],
    tokenizer_config_json: Option<&[u8]>,
) -> Result<GgufParts> {
    let cfg: Json =
        serde_json::from_slice(config_json).map_err(|e| cfg_err(format!("not valid JSON: {e}")))?;
    let arch_ok = json_at(&cfg, "model_type").as_str() == Some("llama")
        || json_at(&cfg, "architectures")
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("LlamaForCausalLM")));
    if !arch_ok {
        return Err(cfg_err(format!(
            "model_type {} is not a Llama checkpoint (expected \"llama\" / LlamaForCausalLM)",
            json_at(&cfg, "model_type")
        )));
    }
    let u = |k: &str| {
        json_at(&cfg, k)
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| cfg_err(format!("field '{k}' is missing or not an integer")))
    };
    let hidden = u("hidden_size")?;
    let heads = u("num_attention_heads")?;
    let kv_heads = json_at(&cfg, "num_key_value_heads")
        .as_u64()
        .map(|v| v as usize)
        .unwrap_or(heads);
    let layers = u("num_hidden_layers")?;
    let ffn = u("intermediate_size")?;
    let ctx = json_at(&cfg, "max_position_embeddings")
        .as_u64()
        .unwrap_or(2048) as u32;
    let eps = json_at(&cfg, "rms_norm_eps").as_f64().unwrap_or(1e-6) as f32;
    let theta = json_at(&cfg, "rope_theta").as_f64().unwrap_or(10_000.0) as f32;
    if !json_at(&cfg, "rope_scaling").is_null() {
        return Err(cfg_err("rope_scaling is not supported yet".into()));
    }
    if heads == 0 || kv_heads == 0 || hidden % heads != 0 || heads % kv_heads != 0 {
        return Err(cfg_err(format!(
            "hidden_size {hidden}, {heads} heads and {kv_heads} KV heads do not fit together"
        )));
    }
    let d = hidden / heads;

    // Tokenizer: byte-level BPE from tokenizer.json.
    let tok: Json = serde_json::from_slice(tokenizer_json)
        .map_err(|e| tok_err(format!("not valid JSON: {e}")))?;
    let model = &json_at(&tok, "model");
    if json_at(model, "type").as_str() != Some("BPE") {
        return Err(tok_err(format!(
            "model type {} is not BPE",
            json_at(model, "type")
        )));
    }
    let vocab = json_at(model, "vocab")
        .as_object()
        .ok_or_else(|| tok_err("model.vocab is missing".into()))?;
    let mut added: Vec<(usize, String, bool)> = json_at(&tok, "added_tokens")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        json_at(t, "id").as_u64()? as usize,
                        json_at(t, "content").as_str()?.to_string(),
                        json_at(t, "special").as_bool().unwrap_or(false),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    added.sort();
    let n_vocab = vocab
        .len()
        .max(added.iter().map(|a| a.0 + 1).max().unwrap_or(0));
    // Ids are dense: past the vocabulary and the added tokens one is missing
    // (and a huge id must not size the token table).
    if n_vocab > vocab.len() + added.len() {
        return Err(tok_err(format!(
            "added token id {} is out of range for {} tokens",
            n_vocab - 1,
            vocab.len() + added.len()
        )));
    }
    let mut tokens = vec![String::new(); n_vocab];
    let mut types = vec![1i32; n_vocab];
    for (t, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| tok_err(format!("vocab id of {t:?} is not an integer")))?
            as usize;
        if id >= n_vocab {
            return Err(tok_err(format!("vocab id {id} of {t:?} is out of range")));
        }
        if let Some(slot) = tokens.get_mut(id) {
            *slot = t.clone();
        }
    }
    for (id, content, special) in &added {
        if let (Some(slot), Some(ty)) = (tokens.get_mut(*id), types.get_mut(*id)) {
            *slot = content.clone();
            *ty = if *special { 3 } else { 4 };
        }
    }
    if let Some(i) = tokens.iter().position(String::is_empty) {
        return Err(tok_err(format!(
            "token id {i} has no entry in vocab or added_tokens"
        )));
    }
    let merges: Vec<Value> = json_at(model, "merges")
        .as_array()
        .ok_or_else(|| tok_err("model.merges is missing".into()))?
        .iter()
        .map(|m| match m {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Array(p) if p.len() == 2 => Ok(Value::String(format!(
                "{} {}",
                p.first().and_then(Json::as_str).unwrap_or_default(),
                p.get(1).and_then(Json::as_str).unwrap_or_default()
            ))),
            other => Err(tok_err(format!(
                "merge {other} is neither \"a b\" nor [a, b]"
            ))),
        })
        .collect::<Result<_>>()?;
    let pre = pre_tokenizer_name(json_at(&tok, "pre_tokenizer"))?;
    let tcfg: Json = match tokenizer_config_json {
        Some(b) => serde_json::from_slice(b).map_err(|e| Error::Model {
            file: "tokenizer_config.json".into(),
            detail: format!("not valid JSON: {e}"),
        })?,
        None => Json::Null,
    };
    let token_id = |key: &str| -> Option<u32> {
        let s = match &json_at(&tcfg, key) {
            Json::String(s) => s.clone(),
            Json::Object(o) => o.get("content")?.as_str()?.to_string(),
            _ => return None,
        };
        tokens.iter().position(|t| *t == s).map(|i| i as u32)
    };

    let s = |v: &str| Value::String(v.into());
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s("llama")),
        (
            "general.name".into(),
            s(json_at(&cfg, "_name_or_path").as_str().unwrap_or("llama")),
        ),
        ("llama.block_count".into(), Value::U32(layers as u32)),
        ("llama.context_length".into(), Value::U32(ctx)),
        ("llama.embedding_length".into(), Value::U32(hidden as u32)),
        ("llama.feed_forward_length".into(), Value::U32(ffn as u32)),
        (
            "llama.attention.head_count".into(),
            Value::U32(heads as u32),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Value::U32(kv_heads as u32),
        ),
        ("llama.rope.freq_base".into(), Value::F32(theta)),
        ("llama.rope.dimension_count".into(), Value::U32(d as u32)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(eps),
        ),
        ("general.file_type".into(), Value::U32(0)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s(pre)),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
    ];
    for (key, name) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ] {
        if let Some(id) = token_id(key) {
            meta.push((name.into(), Value::U32(id)));
        }
    }
    if let Some(b) = json_at(&tcfg, "add_bos_token").as_bool() {
        meta.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(b)));
    }
    if let Some(t) = json_at(&tcfg, "chat_template").as_str() {
        meta.push(("tokenizer.chat_template".into(), s(t)));
    }

    // Tensors.
    let mut out = Vec::new();
    let mut put =
        |name: String, src: &str, shape: &[usize], permute_heads: Option<usize>| -> Result<()> {
            let (mut vals, dims) = st.f32(src)?;
            if dims != shape {
                return Err(Error::Model {
                    file: st.file().into(),
                    detail: format!("tensor '{src}' has shape {dims:?}, expected {shape:?}"),
                });
            }
            if let (Some(h), [rows, cols]) = (permute_heads, shape) {
                vals = permute_rows(&vals, h, *rows, *cols)?;
            }
            let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.push(TensorData {
                name,
                ggml_type: GgmlType::F32,
                dims: shape.iter().rev().map(|&x| x as u64).collect(),
                data: data.into(),
            });
            Ok(())
        };
    let n_vocab_w = st
        .shape("model.embed_tokens.weight")
        .and_then(|s| s.first().copied())
        .ok_or_else(|| Error::Model {
            file: st.file().into(),
            detail: "tensor 'model.embed_tokens.weight' is missing".into(),
        })?;
    if n_vocab_w != n_vocab {
        return Err(Error::Model {
            file: st.file().into(),
            detail: format!(
                "model.embed_tokens.weight has {n_vocab_w} rows but tokenizer.json has {n_vocab} tokens"
            ),
        });
    }
    put(
        "token_embd.weight".into(),
        "model.embed_tokens.weight",
        &[n_vocab, hidden],
        None,
    )?;
    for l in 0..layers {
        let p = |x: &str| format!("model.layers.{l}.{x}.weight");
        let g = |x: &str| format!("blk.{l}.{x}.weight");
        put(g("attn_norm"), &p("input_layernorm"), &[hidden], None)?;
        put(
            g("attn_q"),
            &p("self_attn.q_proj"),
            &[heads * d, hidden],
            Some(heads),
        )?;
        put(
            g("attn_k"),
            &p("self_attn.k_proj"),
            &[kv_heads * d, hidden],
            Some(kv_heads),
        )?;
        put(
            g("attn_v"),
            &p("self_attn.v_proj"),
            &[kv_heads * d, hidden],
            None,
        )?;
        put(
            g("attn_output"),
            &p("self_attn.o_proj"),
            &[hidden, heads * d],
            None,
        )?;
        put(
            g("ffn_norm"),
            &p("post_attention_layernorm"),
            &[hidden],
            None,
        )?;
        put(g("ffn_gate"), &p("mlp.gate_proj"), &[ffn, hidden], None)?;
        put(g("ffn_up"), &p("mlp.up_proj"), &[ffn, hidden], None)?;
        put(g("ffn_down"), &p("mlp.down_proj"), &[hidden, ffn], None)?;
    }
    put(
        "output_norm.weight".into(),
        "model.norm.weight",
        &[hidden],
        None,
    )?;
    let tied = json_at(&cfg, "tie_word_embeddings")
        .as_bool()
        .unwrap_or(false);
    if st.contains("lm_head.weight") && !tied {
        put(
            "output.weight".into(),
            "lm_head.weight",
            &[n_vocab, hidden],
            None,
        )?;
    }
    Ok((meta, out))
}

/// llama.cpp's `tokenizer.ggml.pre` name for a `tokenizer.json` pre-tokenizer.
fn pre_tokenizer_name(p: &Json) -> Result<&'static str> {
    let kinds: Vec<&Json> = match json_at(p, "type").as_str() {
        Some("Sequence") => json_at(p, "pretokenizers")
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        Some(_) => vec![p],
        None => vec![],
    };
    let types: Vec<&str> = kinds
        .iter()
        .filter_map(|k| json_at(k, "type").as_str())
        .collect();
    match types.as_slice() {
        ["ByteLevel"] => Ok("gpt-2"),
        ["Digits", "ByteLevel"]
            if kinds
                .first()
                .and_then(|k| json_at(k, "individual_digits").as_bool())
                == Some(true) =>
        {
            Ok("smollm")
        }
        other => Err(tok_err(format!(
            "pre_tokenizer {other:?} has no llama.cpp equivalent cairn knows (supported: ByteLevel, Digits(individual)+ByteLevel)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_pairs_each_heads_halves() {
        // One head of d = 4 over 1 column: HF rows [a0, a1, b0, b1] → [a0, b0, a1, b1].
        assert_eq!(
            permute_rows(&[0., 1., 2., 3.], 1, 4, 1).unwrap(),
            vec![0., 2., 1., 3.]
        );
        // Two heads, two columns; unpermute_rows inverts it.
        let w: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let p = permute_rows(&w, 2, 8, 2).unwrap();
        assert_eq!(&p[..8], &[0., 1., 4., 5., 2., 3., 6., 7.]);
        assert_eq!(&p[8..], &[8., 9., 12., 13., 10., 11., 14., 15.]);
        assert_eq!(unpermute_rows(&p, 2, 8, 2).unwrap(), w);
        // Shapes that do not split into head halves are errors, not panics.
        for (heads, rows, cols) in [(0, 8, 2), (3, 8, 2), (2, 8, 3), (2, 6, 2)] {
            let e = permute_rows(&w, heads, rows, cols).unwrap_err();
            assert!(e.to_string().contains("permute_rows"), "{e}");
        }
    }
}
