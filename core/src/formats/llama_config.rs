//! The hyper-parameters of a Llama-family decoder as GGUF stores them
//! (`llama.*` metadata), read and checked once for the model, the LoRA
//! runtime and `cairn merge`.

use crate::error::{Error, Result};
use crate::formats::gguf::Gguf;

/// The longest context a GGUF may declare (RoPE tables are built for all of it).
pub const MAX_CONTEXT: usize = 1 << 20;

/// Hyper-parameters read from GGUF metadata (`llama.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (GQA: divides `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RoPE base frequency θ.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// Longest sequence the model was trained for.
    pub context_length: usize,
}

impl LlamaConfig {
    /// Reads the configuration of a `llama`-architecture GGUF file.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self> {
        let h = &g.header;
        let arch = h.require_str("general.architecture")?;
        if arch != "llama" {
            return Err(Error::Model {
                file: g.name().into(),
                detail: format!(
                    "general.architecture is '{arch}'; this decoder supports 'llama' (Llama, SmolLM, TinyLlama, Mistral-style)"
                ),
            });
        }
        let u = |k: &str| h.require_u64(&format!("llama.{k}")).map(|v| v as usize);
        let hidden_size = u("embedding_length")?;
        let num_heads = u("attention.head_count")?;
        let num_kv_heads = match h.get("llama.attention.head_count_kv") {
            Some(_) => u("attention.head_count_kv")?,
            None => num_heads,
        };
        let (emb, _) = g.tensor("token_embd.weight")?;
        let vocab_size = emb.dims.get(1).copied().unwrap_or(0) as usize;
        let cfg = LlamaConfig {
            vocab_size,
            hidden_size,
            intermediate_size: u("feed_forward_length")?,
            num_layers: u("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim: hidden_size.checked_div(num_heads).unwrap_or(0),
            rope_theta: h
                .get("llama.rope.freq_base")
                .and_then(|v| v.as_f64())
                .unwrap_or(10_000.0) as f32,
            rms_eps: h.require_f64("llama.attention.layer_norm_rms_epsilon")? as f32,
            context_length: u("context_length")?,
        };
        cfg.check(g.name())?;
        if let Some(rope_dims) = h.get("llama.rope.dimension_count").and_then(|v| v.as_u64())
            && rope_dims as usize != cfg.head_dim
        {
            return Err(Error::Model {
                file: g.name().into(),
                detail: format!(
                    "llama.rope.dimension_count = {rope_dims} (partial rotary) is not supported; head_dim is {}",
                    cfg.head_dim
                ),
            });
        }
        Ok(cfg)
    }

    /// `(in, out)` of a projection by its Hugging Face / PEFT name
    /// (`q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`, `up_proj`,
    /// `down_proj`; anything else is taken as `down_proj`).
    pub fn projection_dims(&self, module: &str) -> (usize, usize) {
        let (h, q, kv, ff) = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        );
        match module {
            "q_proj" => (h, q),
            "k_proj" | "v_proj" => (h, kv),
            "o_proj" => (q, h),
            "gate_proj" | "up_proj" => (h, ff),
            _ => (ff, h),
        }
    }

    fn check(&self, file: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Model {
                file: file.into(),
                detail,
            })
        };
        if self.num_heads == 0
            || self.num_kv_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_heads)
        {
            return bad(format!(
                "hidden size {} is not divisible by {} heads",
                self.hidden_size, self.num_heads
            ));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "{} query heads are not a multiple of {} KV heads",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head dim {} is odd; RoPE needs pairs",
                self.head_dim
            ));
        }
        // RoPE tables and KV caches are sized by the context: a claim far
        // beyond any real model (2^32 − 1 in a crafted file) would make them
        // terabytes. 2^20 positions covers every released model.
        if self.context_length > MAX_CONTEXT {
            return bad(format!(
                "llama.context_length = {} is above the {MAX_CONTEXT} positions cairn supports (corrupt or crafted header?)",
                self.context_length
            ));
        }
        if self.hidden_size > 1 << 16
            || self.intermediate_size > 1 << 18
            || self.num_layers > 1 << 10
        {
            return bad(format!("implausible configuration {self:?}"));
        }
        if self.vocab_size == 0 || self.num_layers == 0 || self.context_length == 0 {
            return bad(format!("degenerate configuration {self:?}"));
        }
        Ok(())
    }
}
