//! BERT-family encoders: BERT (and MiniLM, which is BERT-shaped), DistilBERT
//! and RoBERTa / XLM-RoBERTa.
//!
//! All are post-LayerNorm transformers; they differ in weight names, in
//! DistilBERT having no token-type embeddings, in RoBERTa's positions
//! starting after the padding id, and in config field names. The
//! weights are mapped onto one [`Encoder`] so the forward pass exists once.
//! Weight names follow Hugging Face transformers (`BertModel`,
//! `DistilBertModel`), with or without the `bert.` / `distilbert.` prefix that
//! task-head checkpoints add.

use serde::Deserialize;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::safetensors::NamedTensor;
use crate::formats::tensors::SafeTensors;

/// Which architecture a `config.json` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `model_type: "bert"` (BERT, MiniLM, many sentence-transformers models).
    Bert,
    /// `model_type: "distilbert"`.
    DistilBert,
    /// `model_type: "roberta"` or `"xlm-roberta"` (RoBERTa, XLM-R, multilingual
    /// E5, BGE-M3 and bge-reranker checkpoints): BERT's layers, positions
    /// counted from `pad_token_id + 1`, the `roberta.` task prefix.
    Roberta,
}

/// The fields of `config.json` the encoder needs, normalised across architectures.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Architecture.
    pub architecture: Architecture,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size (DistilBERT: `dim`).
    pub hidden_size: usize,
    /// Number of layers (DistilBERT: `n_layers`).
    pub num_layers: usize,
    /// Attention heads (DistilBERT: `n_heads`).
    pub num_heads: usize,
    /// Feed-forward size (DistilBERT: `hidden_dim`).
    pub intermediate_size: usize,
    /// Longest input in tokens.
    pub max_position_embeddings: usize,
    /// Token-type vocabulary (0 for DistilBERT).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (DistilBERT: 1e-12).
    pub layer_norm_eps: f32,
    /// Padding token id.
    pub pad_token_id: u32,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    hidden_act: Option<String>,
    activation: Option<String>,
    position_embedding_type: Option<String>,
    dim: Option<usize>,
    n_layers: Option<usize>,
    n_heads: Option<usize>,
    hidden_dim: Option<usize>,
}

impl BertConfig {
    /// The position-embedding row of a sequence's first token: 0, or
    /// `pad_token_id + 1` for RoBERTa.
    pub fn first_position(&self) -> usize {
        match self.architecture {
            Architecture::Roberta => self.pad_token_id as usize + 1,
            _ => 0,
        }
    }

    /// The longest input in tokens (RoBERTa: the position table less the
    /// rows before its first position).
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.first_position())
    }

    /// Parses a `config.json`. An architecture other than BERT or DistilBERT,
    /// an activation other than GELU, or a missing field is a clear error.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let err = |detail: String| Error::Model {
            file: "config.json".into(),
            detail,
        };
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let need = |v: Option<usize>, field: &str| {
            v.ok_or_else(|| err(format!("missing field '{field}'")))
        };
        let model_type = raw
            .model_type
            .clone()
            .ok_or_else(|| err("missing field 'model_type'".into()))?;
        let cfg = match model_type.as_str() {
            "bert" | "roberta" | "xlm-roberta" => {
                if let Some(act) = raw.hidden_act.as_deref().filter(|a| *a != "gelu") {
                    return Err(err(format!(
                        "hidden_act '{act}' is not supported (only 'gelu')"
                    )));
                }
                if let Some(p) = raw
                    .position_embedding_type
                    .as_deref()
                    .filter(|p| *p != "absolute")
                {
                    return Err(err(format!(
                        "position_embedding_type '{p}' is not supported (only 'absolute')"
                    )));
                }
                let roberta = model_type != "bert";
                BertConfig {
                    architecture: if roberta {
                        Architecture::Roberta
                    } else {
                        Architecture::Bert
                    },
                    vocab_size: need(raw.vocab_size, "vocab_size")?,
                    hidden_size: need(raw.hidden_size, "hidden_size")?,
                    num_layers: need(raw.num_hidden_layers, "num_hidden_layers")?,
                    num_heads: need(raw.num_attention_heads, "num_attention_heads")?,
                    intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
                    max_position_embeddings: need(
                        raw.max_position_embeddings,
                        "max_position_embeddings",
                    )?,
                    type_vocab_size: raw.type_vocab_size.unwrap_or(if roberta { 1 } else { 2 }),
                    layer_norm_eps: raw
                        .layer_norm_eps
                        .unwrap_or(if roberta { 1e-5 } else { 1e-12 })
                        as f32,
                    pad_token_id: raw.pad_token_id.unwrap_or(if roberta { 1 } else { 0 }),
                }
            }
            "distilbert" => {
                if let Some(act) = raw.activation.as_deref().filter(|a| *a != "gelu") {
                    return Err(err(format!(
                        "activation '{act}' is not supported (only 'gelu')"
                    )));
                }
                BertConfig {
                    architecture: Architecture::DistilBert,
                    vocab_size: need(raw.vocab_size, "vocab_size")?,
                    hidden_size: need(raw.dim, "dim")?,
                    num_layers: need(raw.n_layers, "n_layers")?,
                    num_heads: need(raw.n_heads, "n_heads")?,
                    intermediate_size: need(raw.hidden_dim, "hidden_dim")?,
                    max_position_embeddings: need(
                        raw.max_position_embeddings,
                        "max_position_embeddings",
                    )?,
                    type_vocab_size: 0,
                    layer_norm_eps: 1e-12,
                    pad_token_id: raw.pad_token_id.unwrap_or(0),
                }
            }
            other => {
                return Err(err(format!(
                    "model_type '{other}' is not supported by the encoder (supported: bert, distilbert, roberta, xlm-roberta)"
                )));
            }
        };
        if cfg.architecture == Architecture::Roberta
            && cfg.max_position_embeddings <= cfg.pad_token_id as usize + 1
        {
            return Err(err(format!(
                "max_position_embeddings {} leaves no positions after the padding id {}",
                cfg.max_position_embeddings, cfg.pad_token_id
            )));
        }
        if cfg.num_heads == 0 || cfg.hidden_size % cfg.num_heads != 0 {
            return Err(err(format!(
                "hidden size {} is not divisible by {} heads",
                cfg.hidden_size, cfg.num_heads
            )));
        }
        Ok(cfg)
    }
}

struct Linear<T> {
    weight: T,
    bias: T,
}

struct Norm<T> {
    weight: T,
    bias: T,
}

struct Layer<T> {
    /// Query, key and value projections stacked into one `[3·h, h]` weight.
    qkv: Linear<T>,
    attn_out: Linear<T>,
    attn_norm: Norm<T>,
    ffn_in: Linear<T>,
    ffn_out: Linear<T>,
    ffn_norm: Norm<T>,
}

/// A BERT-family encoder on backend `B`: token ids in, hidden states out.
pub struct Encoder<B: Backend> {
    backend: B,
    config: BertConfig,
    word_embeddings: B::Tensor,
    position_embeddings: B::Tensor,
    token_type_embeddings: Option<B::Tensor>,
    embed_norm: Norm<B::Tensor>,
    layers: Vec<Layer<B::Tensor>>,
}

impl<B: Backend> std::fmt::Debug for Encoder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("backend", &self.backend.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The Hugging Face names of one layer's weights (without `.weight`/`.bias`).
struct LayerNames {
    qkv_prefix: String,
    qkv: [&'static str; 3],
    attn_out: String,
    attn_norm: String,
    ffn_in: String,
    ffn_out: String,
    ffn_norm: String,
}

impl LayerNames {
    fn of(arch: Architecture, i: usize) -> Self {
        match arch {
            Architecture::Bert | Architecture::Roberta => {
                let p = format!("encoder.layer.{i}");
                LayerNames {
                    qkv_prefix: format!("{p}.attention.self"),
                    qkv: ["query", "key", "value"],
                    attn_out: format!("{p}.attention.output.dense"),
                    attn_norm: format!("{p}.attention.output.LayerNorm"),
                    ffn_in: format!("{p}.intermediate.dense"),
                    ffn_out: format!("{p}.output.dense"),
                    ffn_norm: format!("{p}.output.LayerNorm"),
                }
            }
            Architecture::DistilBert => {
                let p = format!("transformer.layer.{i}");
                LayerNames {
                    qkv_prefix: format!("{p}.attention"),
                    qkv: ["q_lin", "k_lin", "v_lin"],
                    attn_out: format!("{p}.attention.out_lin"),
                    attn_norm: format!("{p}.sa_layer_norm"),
                    ffn_in: format!("{p}.ffn.lin1"),
                    ffn_out: format!("{p}.ffn.lin2"),
                    ffn_norm: format!("{p}.output_layer_norm"),
                }
            }
        }
    }
}

/// Finds weights by their Hugging Face names, trying the task-head prefixes.
struct Loader<'a, 'b, B: Backend> {
    st: &'a SafeTensors<'b>,
    backend: &'a B,
    prefix: &'static str,
}

impl<B: Backend> Loader<'_, '_, B> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        self.backend.tensor_f32(&self.host(name, shape)?, shape)
    }

    /// A matrix used only by `linear` / `embedding` ([`Backend::weight_f32`]).
    fn weight(&self, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        self.backend.weight_f32(&self.host(name, shape)?, shape)
    }

    /// Query, key and value projections (`prefix` + each name) stacked row-wise.
    fn qkv(&self, prefix: &str, names: [&str; 3], h: usize) -> Result<Linear<B::Tensor>> {
        let (mut w, mut b) = (Vec::with_capacity(3 * h * h), Vec::with_capacity(3 * h));
        for n in names {
            w.extend(self.host(&format!("{prefix}.{n}.weight"), &[h, h])?);
            b.extend(self.host(&format!("{prefix}.{n}.bias"), &[h])?);
        }
        Ok(Linear {
            weight: self.backend.weight_f32(&w, &[3 * h, h])?,
            bias: self.backend.tensor_f32(&b, &[3 * h])?,
        })
    }

    fn host(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        // Old BERT checkpoints call LayerNorm parameters gamma/beta.
        let full = if !self.st.contains(&full) && full.ends_with("LayerNorm.weight") {
            full.replace("LayerNorm.weight", "LayerNorm.gamma")
        } else if !self.st.contains(&full) && full.ends_with("LayerNorm.bias") {
            full.replace("LayerNorm.bias", "LayerNorm.beta")
        } else {
            full
        };
        let (data, got) = self.st.f32(&full)?;
        if got != shape {
            return Err(Error::Model {
                file: self.st.file().to_string(),
                detail: format!("tensor '{full}' has shape {got:?}, the config implies {shape:?}"),
            });
        }
        Ok(data)
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear<B::Tensor>> {
        Ok(Linear {
            weight: self.weight(&format!("{name}.weight"), &[out, inp])?,
            bias: self.tensor(&format!("{name}.bias"), &[out])?,
        })
    }

    fn norm(&self, name: &str, dim: usize) -> Result<Norm<B::Tensor>> {
        Ok(Norm {
            weight: self.tensor(&format!("{name}.weight"), &[dim])?,
            bias: self.tensor(&format!("{name}.bias"), &[dim])?,
        })
    }
}

impl<B: Backend> Encoder<B> {
    /// Loads the weights of `config`'s architecture from a safetensors file.
    pub fn load(backend: B, config: BertConfig, st: &SafeTensors<'_>) -> Result<Self> {
        let (h, ff) = (config.hidden_size, config.intermediate_size);
        let (word_key, prefixes): (&str, &[&'static str]) = match config.architecture {
            Architecture::Bert => ("embeddings.word_embeddings.weight", &["", "bert."]),
            Architecture::DistilBert => ("embeddings.word_embeddings.weight", &["", "distilbert."]),
            Architecture::Roberta => ("embeddings.word_embeddings.weight", &["", "roberta."]),
        };
        let prefix = prefixes
            .iter()
            .copied()
            .find(|p| st.contains(&format!("{p}{word_key}")))
            .ok_or_else(|| Error::Model {
                file: st.file().to_string(),
                detail: format!(
                    "no '{word_key}' (with prefixes {prefixes:?}); is this a {:?} checkpoint?",
                    config.architecture
                ),
            })?;
        let l = Loader {
            st,
            backend: &backend,
            prefix,
        };
        let word_embeddings = l.weight(word_key, &[config.vocab_size, h])?;
        let position_embeddings = l.tensor(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type_embeddings = match config.architecture {
            Architecture::Bert | Architecture::Roberta => Some(l.tensor(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?),
            Architecture::DistilBert => None,
        };
        let embed_norm = l.norm("embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(config.num_layers);
        for i in 0..config.num_layers {
            let n = LayerNames::of(config.architecture, i);
            layers.push(Layer {
                qkv: l.qkv(&n.qkv_prefix, n.qkv, h)?,
                attn_out: l.linear(&n.attn_out, h, h)?,
                attn_norm: l.norm(&n.attn_norm, h)?,
                ffn_in: l.linear(&n.ffn_in, ff, h)?,
                ffn_out: l.linear(&n.ffn_out, h, ff)?,
                ffn_norm: l.norm(&n.ffn_norm, h)?,
            });
        }
        Ok(Self {
            backend,
            config,
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embed_norm,
            layers,
        })
    }

    /// Every weight with its name, for training (a trainer swaps each for a
    /// variable of its own). Names are the Hugging Face ones without the task
    /// prefix, except the stacked Q/K/V projection of each layer, which is
    /// `<attention prefix>.qkv.weight` / `.bias` (`[3·hidden, hidden]`,
    /// query rows first).
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut B::Tensor)> {
        let arch = self.config.architecture;
        let mut out = vec![
            (
                "embeddings.word_embeddings.weight".to_string(),
                &mut self.word_embeddings,
            ),
            (
                "embeddings.position_embeddings.weight".to_string(),
                &mut self.position_embeddings,
            ),
        ];
        if let Some(t) = self.token_type_embeddings.as_mut() {
            out.push(("embeddings.token_type_embeddings.weight".to_string(), t));
        }
        out.push((
            "embeddings.LayerNorm.weight".into(),
            &mut self.embed_norm.weight,
        ));
        out.push((
            "embeddings.LayerNorm.bias".into(),
            &mut self.embed_norm.bias,
        ));
        for (i, l) in self.layers.iter_mut().enumerate() {
            let n = LayerNames::of(arch, i);
            let qkv = format!("{}.qkv", n.qkv_prefix);
            for (name, w, b) in [
                (qkv, &mut l.qkv.weight, &mut l.qkv.bias),
                (n.attn_out, &mut l.attn_out.weight, &mut l.attn_out.bias),
                (n.attn_norm, &mut l.attn_norm.weight, &mut l.attn_norm.bias),
                (n.ffn_in, &mut l.ffn_in.weight, &mut l.ffn_in.bias),
                (n.ffn_out, &mut l.ffn_out.weight, &mut l.ffn_out.bias),
                (n.ffn_norm, &mut l.ffn_norm.weight, &mut l.ffn_norm.bias),
            ] {
                out.push((format!("{name}.weight"), w));
                out.push((format!("{name}.bias"), b));
            }
        }
        out
    }

    /// The weights under their Hugging Face names with `prefix` (`"bert."`,
    /// `"distilbert."` or `""`) in front, the stacked Q/K/V split back into
    /// three projections: what `BertModel` / `DistilBertModel` (or a task
    /// model, with the prefix) loads. Values are read back to the host.
    pub async fn export(&self, prefix: &str) -> Result<Vec<NamedTensor>> {
        let b = &self.backend;
        let h = self.config.hidden_size;
        let mut named: Vec<(String, B::Tensor)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                self.word_embeddings.clone(),
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                self.position_embeddings.clone(),
            ),
        ];
        if let Some(t) = &self.token_type_embeddings {
            named.push(("embeddings.token_type_embeddings.weight".into(), t.clone()));
        }
        named.push((
            "embeddings.LayerNorm.weight".into(),
            self.embed_norm.weight.clone(),
        ));
        named.push((
            "embeddings.LayerNorm.bias".into(),
            self.embed_norm.bias.clone(),
        ));
        for (i, l) in self.layers.iter().enumerate() {
            let n = LayerNames::of(self.config.architecture, i);
            for (j, part) in n.qkv.iter().enumerate() {
                let name = format!("{}.{part}", n.qkv_prefix);
                named.push((
                    format!("{name}.weight"),
                    b.narrow(&l.qkv.weight, 0, j * h, h)?,
                ));
                named.push((format!("{name}.bias"), b.narrow(&l.qkv.bias, 0, j * h, h)?));
            }
            for (name, w, bias) in [
                (&n.attn_out, &l.attn_out.weight, &l.attn_out.bias),
                (&n.attn_norm, &l.attn_norm.weight, &l.attn_norm.bias),
                (&n.ffn_in, &l.ffn_in.weight, &l.ffn_in.bias),
                (&n.ffn_out, &l.ffn_out.weight, &l.ffn_out.bias),
                (&n.ffn_norm, &l.ffn_norm.weight, &l.ffn_norm.bias),
            ] {
                named.push((format!("{name}.weight"), w.clone()));
                named.push((format!("{name}.bias"), bias.clone()));
            }
        }
        let mut out = Vec::with_capacity(named.len());
        for (name, t) in named {
            let shape = b.shape(&t);
            out.push((format!("{prefix}{name}"), shape, b.read_f32(&t).await?));
        }
        Ok(out)
    }

    fn first_position(&self) -> usize {
        self.config.first_position()
    }

    /// The configuration the encoder was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The backend the encoder runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]` (row-major)
    /// with `attention_mask` (1 = token, 0 = padding). Token types are all 0.
    pub fn forward(
        &self,
        ids: &[u32],
        attention_mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        self.forward_typed(ids, None, attention_mask, batch, seq)
    }

    /// [`Encoder::forward`] with token types (segment ids, `[batch, seq]`):
    /// 0 for the first text of a pair, 1 for the second, as transformers'
    /// `token_type_ids`. DistilBERT has no segment embeddings and ignores them.
    pub fn forward_typed(
        &self,
        ids: &[u32],
        token_types: Option<&[u32]>,
        attention_mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        let b = &self.backend;
        if let Some(t) = token_types
            && t.len() != batch * seq
        {
            return Err(Error::Shape {
                op: "encoder forward",
                detail: format!("{} token types for batch {batch} × seq {seq}", t.len()),
            });
        }
        let cfg = &self.config;
        if ids.len() != batch * seq || attention_mask.len() != batch * seq {
            return Err(Error::Shape {
                op: "encoder forward",
                detail: format!(
                    "{} ids and {} mask values for batch {batch} × seq {seq}",
                    ids.len(),
                    attention_mask.len()
                ),
            });
        }
        let first_position = self.first_position();
        if seq + first_position > cfg.max_position_embeddings {
            return Err(Error::Input(format!(
                "sequence of {seq} tokens exceeds the model's maximum of {}",
                cfg.max_position_embeddings - first_position
            )));
        }
        let heads = cfg.num_heads;

        let ids_t = b.tensor_u32(ids, &[batch, seq])?;
        let mut x = b.embedding(&ids_t, &self.word_embeddings)?;
        // RoBERTa numbers real tokens from pad_token_id + 1 (padding sits at
        // the end of each row and is masked, so its positions do not matter).
        let positions = b.narrow(&self.position_embeddings, 0, first_position, seq)?;
        x = b.add(&x, &positions)?;
        match (&self.token_type_embeddings, token_types) {
            (Some(tt), Some(types)) => {
                x = b.add(&x, &b.embedding(&b.tensor_u32(types, &[batch, seq])?, tt)?)?;
            }
            // Token type 0 everywhere: add its row to every position.
            (Some(tt), None) => x = b.add(&x, &b.narrow(tt, 0, 0, 1)?)?,
            (None, _) => {}
        }
        x = b.layer_norm(
            &x,
            &self.embed_norm.weight,
            &self.embed_norm.bias,
            cfg.layer_norm_eps,
        )?;

        for layer in &self.layers {
            let qkv = b.linear(&x, &layer.qkv.weight, Some(&layer.qkv.bias))?;
            let ctx = b.encoder_attention(&qkv, attention_mask, heads)?;
            let attn = b.linear(&ctx, &layer.attn_out.weight, Some(&layer.attn_out.bias))?;
            x = b.layer_norm(
                &b.add(&attn, &x)?,
                &layer.attn_norm.weight,
                &layer.attn_norm.bias,
                cfg.layer_norm_eps,
            )?;
            let ff = b.gelu(&b.linear(&x, &layer.ffn_in.weight, Some(&layer.ffn_in.bias))?)?;
            let ff = b.linear(&ff, &layer.ffn_out.weight, Some(&layer.ffn_out.bias))?;
            x = b.layer_norm(
                &b.add(&ff, &x)?,
                &layer.ffn_norm.weight,
                &layer.ffn_norm.bias,
                cfg.layer_norm_eps,
            )?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_and_unsupported_ones_are_named() {
        let bert = br#"{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":32}"#;
        let c = BertConfig::from_json(bert).unwrap();
        assert_eq!(
            (c.architecture, c.hidden_size, c.type_vocab_size),
            (Architecture::Bert, 8, 2)
        );
        let distil = br#"{"model_type":"distilbert","vocab_size":10,"dim":8,"n_layers":1,"n_heads":2,"hidden_dim":16,"max_position_embeddings":32}"#;
        assert_eq!(
            BertConfig::from_json(distil).unwrap().architecture,
            Architecture::DistilBert
        );
        let e = BertConfig::from_json(br#"{"model_type":"llama"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: model_type 'llama' is not supported by the encoder (supported: bert, distilbert, roberta, xlm-roberta)"
        );
        let e = BertConfig::from_json(br#"{"model_type":"bert","vocab_size":10}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field 'hidden_size'"), "{e}");
        let e = BertConfig::from_json(b"{oops").unwrap_err().to_string();
        assert!(e.starts_with("config.json: invalid JSON"), "{e}");
    }
}
