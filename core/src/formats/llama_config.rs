//! The hyper-parameters of a Llama-family decoder as GGUF stores them
//! (`{arch}.*` metadata, as llama.cpp's converter writes them), read and
//! checked once for the model, the LoRA runtime and `cairn merge`.
//!
//! One configuration covers the families that share Llama's block (RMSNorm,
//! rotary attention with grouped-query heads, gated MLP) and differ in
//! switches: Qwen2 (Q/K/V biases, rotate-half RoPE), Qwen3 (per-head Q/K
//! RMSNorm), Gemma 3 (embedding scaling, GeGLU, norms after attention and
//! MLP, Q/K norms, sliding-window layers with their own RoPE base).

use crate::error::{Error, Result};
use crate::formats::gguf::{Gguf, Header};

/// The longest context a GGUF may declare (RoPE tables are built for all of it).
pub const MAX_CONTEXT: usize = 1 << 20;

/// A decoder family: the GGUF `general.architecture` names cairn runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `llama`: Llama 2/3, SmolLM, TinyLlama, Mistral (without sliding windows).
    Llama,
    /// `qwen2`: Qwen2 / Qwen2.5 (biases on Q, K and V; rotate-half RoPE).
    Qwen2,
    /// `qwen3`: Qwen3 dense (RMSNorm of each query and key head; rotate-half RoPE).
    Qwen3,
    /// `phi3`: Phi-3 / Phi-3.5 / Phi-4-mini (fused Q/K/V and gate/up
    /// matrices, rotate-half RoPE, LongRoPE factors, an optional sliding
    /// window on every layer).
    Phi3,
    /// `gemma2`: Gemma 2 (embeddings × √width, GeGLU, post-norms,
    /// attention-score and final-logit soft-capping, sliding-window layers
    /// alternating with global ones).
    Gemma2,
    /// `gemma3`: Gemma 3 text (embeddings × √width, GeGLU, post-norms,
    /// Q/K norms, five sliding-window layers per global one).
    Gemma3,
}

impl Family {
    /// Every family, in the order `cairn models` lists them.
    pub const ALL: [Family; 6] = [
        Family::Llama,
        Family::Qwen2,
        Family::Qwen3,
        Family::Phi3,
        Family::Gemma2,
        Family::Gemma3,
    ];

    /// The `general.architecture` value of this family.
    pub fn arch(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Phi3 => "phi3",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
        }
    }

    /// The family of a `general.architecture` value.
    pub fn from_arch(arch: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.arch() == arch)
    }

    /// Whether GGUF files of this family keep Hugging Face's Q/K row order
    /// (rotate-half RoPE, llama.cpp's `NEOX` type) rather than the
    /// pair-permuted order llama.cpp's converter writes for `llama`.
    pub fn neox_rope(self) -> bool {
        !matches!(self, Family::Llama)
    }
}

/// The supported families, as an error message lists them.
pub fn supported_architectures() -> String {
    Family::ALL.map(Family::arch).join(", ")
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `silu(gate) · up`.
    Silu,
    /// GeGLU with GELU's tanh approximation (Gemma).
    GeluTanh,
}

/// Hyper-parameters read from GGUF metadata (`{arch}.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The decoder family.
    pub family: Family,
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
    /// MLP gate activation.
    pub activation: Activation,
    /// Multiplier of the token embeddings (Gemma: √width), else 1.
    pub embed_scale: f32,
    /// RMSNorm of every query and key head before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// RMSNorm of the attention output and of the MLP output before each
    /// residual add (Gemma 2/3).
    pub post_norms: bool,
    /// Keys visible to a query in a sliding-window layer (the query's own
    /// position and the `window − 1` before it); `None`: every layer is global.
    pub sliding_window: Option<usize>,
    /// Every `n`-th layer is global (attends to the whole context), the
    /// others slide; 0: every layer slides. Only read when `sliding_window`
    /// is set.
    pub global_every: usize,
    /// Multiplier of RoPE's cos/sin (LongRoPE's attention factor), else 1.
    pub rope_attn_factor: f32,
    /// RoPE of the sliding-window layers, when it differs from the global
    /// layers' (Gemma 3: base 10,000, no scaling); `None`: the same RoPE.
    pub rope_theta_local: Option<f32>,
    /// Attention scores pass through `cap · tanh(s / cap)` before the
    /// softmax (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// Logits pass through `cap · tanh(l / cap)` (Gemma 2).
    pub final_softcap: Option<f32>,
    /// Multiplier of the queries before attention's `1/√head_dim` scaling,
    /// `√(head_dim / query_pre_attn_scalar)`; 1 for most models (Gemma 2
    /// 27B scales by its width per head instead of its head size).
    pub query_scale: f32,
    /// Linear RoPE scaling of the global layers (`rope.scaling.type = linear`):
    /// positions are divided by this factor; 1 means none.
    pub rope_linear_factor: f32,
}

impl LlamaConfig {
    /// Reads the configuration of a GGUF decoder (`general.architecture`
    /// one of [`Family`]); any other architecture is an error naming it.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self> {
        Self::from_header(&g.header, g.name())
    }

    /// [`LlamaConfig::from_gguf`] from the header alone (`file` names the
    /// file in errors): what `cairn info` checks without reading weights.
    pub fn from_header(h: &Header, file: &str) -> Result<Self> {
        let arch = h.require_str("general.architecture")?;
        let Some(family) = Family::from_arch(arch) else {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "general.architecture is '{arch}'; the decoder supports {} (Llama, SmolLM, TinyLlama, Mistral-style, Qwen2/2.5, Qwen3, Gemma 3)",
                    supported_architectures()
                ),
            });
        };
        let key = |k: &str| format!("{arch}.{k}");
        let u = |k: &str| h.require_u64(&key(k)).map(|v| v as usize);
        let opt_u = |k: &str| -> Result<Option<usize>> {
            match h.get(&key(k)) {
                Some(_) => u(k).map(Some),
                None => Ok(None),
            }
        };
        let f = |k: &str| h.get(&key(k)).and_then(|v| v.as_f64());
        let hidden_size = u("embedding_length")?;
        let num_heads = u("attention.head_count")?;
        let num_kv_heads = opt_u("attention.head_count_kv")?.unwrap_or(num_heads);
        let head_dim = match opt_u("attention.key_length")? {
            Some(d) => d,
            None => hidden_size.checked_div(num_heads).unwrap_or(0),
        };
        if let Some(v) = opt_u("attention.value_length")?
            && v != head_dim
        {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "{arch}.attention.value_length = {v} differs from key_length {head_dim}; not supported"
                ),
            });
        }
        let emb = h.tensor("token_embd.weight").ok_or_else(|| Error::Model {
            file: file.into(),
            detail: "tensor 'token_embd.weight' is missing".into(),
        })?;
        let vocab_size = emb.dims.get(1).copied().unwrap_or(0) as usize;
        let gemma = matches!(family, Family::Gemma2 | Family::Gemma3);
        let phi3 = family == Family::Phi3;
        // LongRoPE (Phi-3 128k): the short factors serve contexts up to the
        // original length (as llama.cpp with a context at most that long);
        // beyond it the long factors would rotate every position anew, which
        // a KV cache cannot follow, so the context is capped there.
        let mut context_length = u("context_length")?;
        if h.tensor("rope_factors_short.weight").is_some() {
            let orig = opt_u("rope.scaling.original_context_length")?.ok_or_else(|| Error::Model {
                file: file.into(),
                detail: format!(
                    "rope_factors_short.weight without {arch}.rope.scaling.original_context_length"
                ),
            })?;
            context_length = context_length.min(orig);
        }
        let rope_linear_factor = match h.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
            None | Some("none") => 1.0,
            Some("linear") => f("rope.scaling.factor").unwrap_or(1.0) as f32,
            Some(other) => {
                return Err(Error::Model {
                    file: file.into(),
                    detail: format!(
                        "{arch}.rope.scaling.type = '{other}' is not supported (supported: none, linear; Phi-3's LongRoPE factors as tensors)"
                    ),
                });
            }
        };
        if let Some(a) = f("rope.scaling.attn_factor")
            && !(a.is_finite() && a > 0.0)
        {
            return Err(Error::Model {
                file: file.into(),
                detail: format!("{arch}.rope.scaling.attn_factor = {a} is not positive"),
            });
        }
        if !(rope_linear_factor.is_finite() && rope_linear_factor > 0.0) {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "{arch}.rope.scaling.factor = {rope_linear_factor} is not positive"
                ),
            });
        }
        let cfg = LlamaConfig {
            family,
            vocab_size,
            hidden_size,
            intermediate_size: u("feed_forward_length")?,
            num_layers: u("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rope_theta: f("rope.freq_base").unwrap_or(10_000.0) as f32,
            rms_eps: h.require_f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            context_length,
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            embed_scale: if gemma {
                (hidden_size as f32).sqrt()
            } else {
                1.0
            },
            qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
            attn_softcap: f("attn_logit_softcapping")
                .filter(|c| *c != 0.0)
                .map(|c| c as f32),
            final_softcap: f("final_logit_softcapping")
                .filter(|c| *c != 0.0)
                .map(|c| c as f32),
            // llama.cpp's rule: Gemma 2 27B (46 layers, width 4608) scales
            // queries by 1/√(width/heads), the others by 1/√head_dim.
            query_scale: if family == Family::Gemma2
                && u("block_count")? == 46
                && hidden_size == 4608
                && num_heads > 0
            {
                (head_dim as f32 / (hidden_size / num_heads) as f32).sqrt()
            } else {
                1.0
            },
            post_norms: gemma,
            // llama.cpp's Gemma 3: five sliding-window layers, then a global
            // one; the local layers' RoPE base is fixed at 10,000.
            sliding_window: if gemma || phi3 {
                opt_u("attention.sliding_window")?.filter(|&w| w > 0)
            } else {
                None
            },
            global_every: if family == Family::Gemma2 {
                2
            } else if gemma {
                6
            } else if phi3 {
                0
            } else {
                1
            },
            rope_attn_factor: f("rope.scaling.attn_factor").unwrap_or(1.0) as f32,
            rope_theta_local: (family == Family::Gemma3).then_some(10_000.0),
            rope_linear_factor,
        };
        cfg.check(file)?;
        if let Some(rope_dims) = h.get(&key("rope.dimension_count")).and_then(|v| v.as_u64())
            && rope_dims as usize != cfg.head_dim
        {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "{arch}.rope.dimension_count = {rope_dims} (partial rotary) is not supported; head_dim is {}",
                    cfg.head_dim
                ),
            });
        }
        for cap in [cfg.attn_softcap, cfg.final_softcap].into_iter().flatten() {
            if !(cap.is_finite() && cap > 0.0) {
                return Err(Error::Model {
                    file: file.into(),
                    detail: format!("{arch}: logit soft-capping {cap} is not positive"),
                });
            }
        }
        Ok(cfg)
    }

    /// Whether layer `l` attends through a sliding window (and which RoPE
    /// base it uses): `Some(window)` for a local layer.
    pub fn layer_window(&self, l: usize) -> Option<usize> {
        let w = self.sliding_window?;
        if self.global_every == 0 {
            return Some(w);
        }
        (!(l + 1).is_multiple_of(self.global_every)).then_some(w)
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
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.head_dim == 0 {
            return bad(format!(
                "{} heads of width {} (hidden size {}) cannot make attention",
                self.num_heads, self.head_dim, self.hidden_size
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
                "{}.context_length = {} is above the {MAX_CONTEXT} positions cairn supports (corrupt or crafted header?)",
                self.family.arch(),
                self.context_length
            ));
        }
        if self.hidden_size > 1 << 16
            || self.intermediate_size > 1 << 18
            || self.num_layers > 1 << 10
            || self.head_dim > 1 << 12
            || self.num_heads > 1 << 12
        {
            return bad(format!("implausible configuration {self:?}"));
        }
        if self.vocab_size == 0 || self.num_layers == 0 || self.context_length == 0 {
            return bad(format!("degenerate configuration {self:?}"));
        }
        Ok(())
    }
}
