//! Llama-family decoder (Llama 2/3, SmolLM, TinyLlama, Qwen2/2.5, Qwen3,
//! Gemma 3, ...) from a GGUF file, written once against [`Backend`].
//!
//! The families differ in switches of [`LlamaConfig`]: Q/K/V biases (Qwen2),
//! per-head Q/K RMSNorm (Qwen3, Gemma 3), embedding scaling, GeGLU, norms
//! after attention and MLP, and sliding-window layers with their own RoPE
//! base (Gemma 3). Families whose GGUF files keep Hugging Face's Q/K row
//! order (rotate-half RoPE) have those rows pair-permuted at load, so one
//! pair-rotation op serves all: attention scores `q·k` do not change when q
//! and k are permuted alike, and V is untouched.
//!
//! Per layer: RMSNorm → Q/K/V projections (quantized matmuls) → RoPE on
//! adjacent pairs (llama.cpp permutes Q/K rows in GGUF files so that pair
//! rotation equals HF's rotate-half) → grouped-query attention against a
//! preallocated KV cache → output projection → residual → RMSNorm → SwiGLU
//! MLP (`down(silu(gate(x)) · up(x))`) → residual. The LM head is
//! `output.weight`, or the token embedding when the model ties them.
//!
//! Attention is the backend's [`Backend::attention`] op (grouped-query heads
//! read the shared K/V cache in place; the CPU backend fuses the decode case).

use std::borrow::Cow;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::gguf::{GgmlType, Gguf};
use crate::lora::Adapter;
use crate::lora::runtime::LoraHook;

use crate::formats::hf_llama::permute_rows;
pub use crate::formats::llama_config::{Activation, Family, LlamaConfig};

/// Prompt tokens processed per pass during prefill.
const PREFILL_CHUNK: usize = 512;

/// Which positions' logits a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (generation).
    Last,
    /// Every position of the chunk (perplexity, scoring).
    All,
}

/// Projections that read the same input. When their block types agree they
/// are stacked into one matrix (rows concatenate: each row is a whole number
/// of blocks), so a layer runs one matmul — one pass over the input, one
/// parallel region — instead of several.
enum Projections<B: Backend> {
    Stacked(B::QMatrix, Vec<usize>),
    Separate(Vec<B::QMatrix>),
}

impl<B: Backend> Projections<B> {
    fn apply(&self, b: &B, x: &B::Tensor, rowwise: bool) -> Result<Vec<B::Tensor>> {
        let mm = |x: &B::Tensor, w: &B::QMatrix| {
            if rowwise {
                b.qlinear_rowwise(x, w)
            } else {
                b.qlinear(x, w)
            }
        };
        match self {
            Projections::Separate(ws) => ws.iter().map(|w| mm(x, w)).collect(),
            Projections::Stacked(w, parts) => {
                let y = mm(x, w)?;
                let last = b.shape(&y).len() - 1;
                let mut start = 0;
                parts
                    .iter()
                    .map(|&n| {
                        let part = b.narrow(&y, last, start, n);
                        start += n;
                        part
                    })
                    .collect()
            }
        }
    }
}

struct Layer<B: Backend> {
    attn_norm: B::Tensor,
    /// Q, K and V projections.
    qkv: Projections<B>,
    /// Biases of Q, K and V (Qwen2).
    qkv_bias: Option<[B::Tensor; 3]>,
    /// RMSNorm weights of each query and key head (Qwen3, Gemma 3).
    qk_norm: Option<[B::Tensor; 2]>,
    wo: B::QMatrix,
    /// RMSNorm of the attention output before the residual (Gemma).
    post_attn_norm: Option<B::Tensor>,
    ffn_norm: B::Tensor,
    /// RMSNorm of the MLP output before the residual (Gemma).
    post_ffn_norm: Option<B::Tensor>,
    /// Gate and up projections of the MLP.
    gate_up: Projections<B>,
    down: B::QMatrix,
}

/// Keys and values of every layer, allocated once for `capacity` positions and
/// filled in place as the sequence grows.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    k: Vec<B::Tensor>,
    v: Vec<B::Tensor>,
    len: usize,
    capacity: usize,
}

impl<B: Backend> KvCache<B> {
    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The key and value tensors of layer `l`.
    fn layer(&self, l: usize) -> Result<(&B::Tensor, &B::Tensor)> {
        self.k
            .get(l)
            .zip(self.v.get(l))
            .ok_or_else(|| Error::Shape {
                op: "kv cache",
                detail: format!("layer {l} of a cache of {} layers", self.k.len()),
            })
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets positions from `len` on (the buffers stay allocated).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Copies the filled part of `other` into this cache (beam reordering),
    /// reusing this cache's buffers.
    pub fn copy_from(&mut self, backend: &B, other: &KvCache<B>) -> Result<()> {
        if other.len > self.capacity || self.k.len() != other.k.len() {
            return Err(Error::Shape {
                op: "kv cache copy",
                detail: format!(
                    "{} positions of {} layers do not fit a cache of {} positions and {} layers",
                    other.len,
                    other.k.len(),
                    self.capacity,
                    self.k.len()
                ),
            });
        }
        if other.len > 0 {
            let layers = self.k.iter().zip(&self.v).zip(other.k.iter().zip(&other.v));
            for ((dk, dv), (sk, sv)) in layers {
                backend.write_slice(dk, &backend.narrow(sk, 2, 0, other.len)?, 2, 0)?;
                backend.write_slice(dv, &backend.narrow(sv, 2, 0, other.len)?, 2, 0)?;
            }
        }
        self.len = other.len;
        Ok(())
    }
}

/// The KV caches a forward pass appends to.
enum Caches<'a, 'b, B: Backend> {
    /// Training: no cache, causal attention over the ids alone.
    None,
    /// One sequence, any number of new tokens.
    One(&'a mut KvCache<B>),
    /// One new token for each of several sequences.
    Many(&'a mut [&'b mut KvCache<B>]),
}

/// A Llama-family decoder on backend `B`.
pub struct Llama<B: Backend> {
    backend: B,
    config: LlamaConfig,
    /// The token embedding, kept in its file's block format on the host:
    /// a forward pass expands only the rows of its ids (Gemma 3's 262k × 640
    /// table is 179 MB as Q8_0, 671 MB as f32).
    embed: HostEmbedding,
    layers: Vec<Layer<B>>,
    norm: B::Tensor,
    lm_head: B::QMatrix,
    /// `cos`/`sin` of every position up to the context length: `[ctx, head_dim/2]`.
    rope_cos: B::Tensor,
    rope_sin: B::Tensor,
    /// The tables of the sliding-window layers, when their base differs.
    rope_local: Option<(B::Tensor, B::Tensor)>,
    /// The LoRA hook: the active adapter, applied unmerged (see [`crate::lora::runtime`]).
    lora: LoraHook<B>,
}

impl<B: Backend> std::fmt::Debug for Llama<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("backend", &self.backend.name())
            .field("config", &self.config)
            .finish()
    }
}

impl<B: Backend> Llama<B> {
    /// Loads the weights of a `llama` GGUF file onto `backend`. Matrices stay
    /// in their block format; norms and the embedding table become f32.
    pub fn load(backend: B, g: &Gguf<'_>) -> Result<Self> {
        let config = LlamaConfig::from_gguf(g)?;
        let c = &config;
        // Heads whose rows a tensor's Q/K layout pair-permutes at load
        // (rotate-half families only; `llama` files come permuted).
        let heads_of = |name: &str| -> Option<usize> {
            if !c.family.neox_rope() {
                return None;
            }
            if name.contains("attn_q.") {
                Some(c.num_heads)
            } else if name.contains("attn_k.") {
                Some(c.num_kv_heads)
            } else if name.contains("attn_q_norm.") || name.contains("attn_k_norm.") {
                Some(1)
            } else {
                None
            }
        };
        let vector = |name: &str, len: usize| -> Result<B::Tensor> {
            let (values, dims) = g.dequantize(name)?;
            if dims != [len] {
                return Err(shape_err(g, name, &dims, &[len]));
            }
            let values = match heads_of(name) {
                Some(heads) => permute_rows(&values, heads, len, 1)?,
                None => values,
            };
            backend.tensor_f32(&values, &[len])
        };
        let checked = |name: &str, rows: usize, cols: usize| -> Result<(GgmlType, Cow<'_, [u8]>)> {
            let (info, data) = g.tensor(name)?;
            let dims: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
            if dims != [rows, cols] {
                return Err(shape_err(g, name, &dims, &[rows, cols]));
            }
            let data = match heads_of(name) {
                // Whole rows move: each row is a whole number of blocks.
                Some(heads) => Cow::Owned(permute_rows(
                    data,
                    heads,
                    rows,
                    data.len().checked_div(rows).unwrap_or(0),
                )?),
                None => Cow::Borrowed(data),
            };
            Ok((info.ggml_type, data))
        };
        let matrix = |name: &str, rows: usize, cols: usize| -> Result<B::QMatrix> {
            let (ty, data) = checked(name, rows, cols)?;
            backend.qmatrix(
                ty,
                &data,
                rows,
                cols,
                &format!("GGUF {} tensor '{name}'", g.name()),
            )
        };
        let optional = |name: &str, len: usize| -> Result<Option<B::Tensor>> {
            match g.header.tensor(name) {
                Some(_) => vector(name, len).map(Some),
                None => Ok(None),
            }
        };
        let required = |name: String, len: usize, why: &str| -> Result<B::Tensor> {
            match g.header.tensor(&name) {
                Some(_) => vector(&name, len),
                None => Err(Error::Model {
                    file: g.name().into(),
                    detail: format!("tensor '{name}' is missing ({why})"),
                }),
            }
        };
        // Phi-3's fused matrices: Q, K and V (or gate and up) rows stacked in
        // one tensor, read as one stacked projection; Q and K rows are
        // pair-permuted within their own part.
        let fused = |name: &str,
                     parts: &[(usize, Option<usize>)],
                     cols: usize|
         -> Result<Projections<B>> {
            let rows: usize = parts.iter().map(|p| p.0).sum();
            let (info, data) = g.tensor(name)?;
            let dims: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
            if dims != [rows, cols] {
                return Err(shape_err(g, name, &dims, &[rows, cols]));
            }
            let row_bytes = data.len() / rows;
            let mut bytes = Vec::with_capacity(data.len());
            let mut start = 0;
            for &(n, heads) in parts {
                let part = data
                    .get(start * row_bytes..(start + n) * row_bytes)
                    .ok_or_else(|| shape_err(g, name, &[data.len()], &[(start + n) * row_bytes]))?;
                match heads.filter(|_| c.family.neox_rope()) {
                    Some(h) => bytes.extend(permute_rows(part, h, n, row_bytes)?),
                    None => bytes.extend_from_slice(part),
                }
                start += n;
            }
            let w = backend.qmatrix(
                info.ggml_type,
                &bytes,
                rows,
                cols,
                &format!("GGUF {} tensor '{name}'", g.name()),
            )?;
            Ok(Projections::Stacked(w, parts.iter().map(|p| p.0).collect()))
        };
        let projections = |parts: &[(String, usize)], cols: usize| -> Result<Projections<B>> {
            let found = parts
                .iter()
                .map(|(n, rows)| checked(n, *rows, cols))
                .collect::<Result<Vec<_>>>()?;
            let first = found.first().map(|f| f.0);
            if let Some(ty) = first.filter(|ty| found.iter().all(|f| f.0 == *ty)) {
                let rows: usize = parts.iter().map(|p| p.1).sum();
                let data: Vec<u8> = found.iter().flat_map(|(_, d)| d.iter().copied()).collect();
                let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
                let w = backend.qmatrix(
                    ty,
                    &data,
                    rows,
                    cols,
                    &format!("GGUF {} tensors {}", g.name(), names.join(" + ")),
                )?;
                Ok(Projections::Stacked(w, parts.iter().map(|p| p.1).collect()))
            } else {
                parts
                    .iter()
                    .map(|(n, rows)| matrix(n, *rows, cols))
                    .collect::<Result<Vec<_>>>()
                    .map(Projections::Separate)
            }
        };
        let embed = {
            let (info, data) = g.tensor("token_embd.weight")?;
            let dims: Vec<usize> = info.dims.iter().rev().map(|&d| d as usize).collect();
            if dims != [c.vocab_size, c.hidden_size] {
                return Err(shape_err(
                    g,
                    "token_embd.weight",
                    &dims,
                    &[c.vocab_size, c.hidden_size],
                ));
            }
            HostEmbedding::new(info.ggml_type, data, c.vocab_size, c.hidden_size, g.name())?
        };
        let q_out = c.num_heads * c.head_dim;
        let kv_out = c.num_kv_heads * c.head_dim;
        let mut layers = Vec::with_capacity(c.num_layers);
        let arch = c.family.arch();
        for i in 0..c.num_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let bias = |s: &str| format!("blk.{i}.{s}.bias");
            let qkv_bias = match (
                optional(&bias("attn_q"), q_out)?,
                optional(&bias("attn_k"), kv_out)?,
                optional(&bias("attn_v"), kv_out)?,
            ) {
                (Some(q), Some(k), Some(v)) => Some([q, k, v]),
                (None, None, None) if c.family != Family::Qwen2 => None,
                _ => {
                    return Err(Error::Model {
                        file: g.name().into(),
                        detail: format!(
                            "layer {i}: {arch} needs all of attn_q.bias, attn_k.bias and attn_v.bias"
                        ),
                    });
                }
            };
            let qk_norm = if c.qk_norm {
                let why = format!("{arch} normalises each query and key head");
                Some([
                    required(n("attn_q_norm"), c.head_dim, &why)?,
                    required(n("attn_k_norm"), c.head_dim, &why)?,
                ])
            } else {
                None
            };
            let (post_attn_norm, post_ffn_norm) = if c.post_norms {
                let why = format!("{arch} normalises attention and MLP outputs");
                (
                    Some(required(n("post_attention_norm"), c.hidden_size, &why)?),
                    Some(required(n("post_ffw_norm"), c.hidden_size, &why)?),
                )
            } else {
                (None, None)
            };
            layers.push(Layer {
                qkv_bias,
                qk_norm,
                post_attn_norm,
                post_ffn_norm,
                attn_norm: vector(&n("attn_norm"), c.hidden_size)?,
                qkv: if g.header.tensor(&n("attn_qkv")).is_some() {
                    fused(
                        &n("attn_qkv"),
                        &[
                            (q_out, Some(c.num_heads)),
                            (kv_out, Some(c.num_kv_heads)),
                            (kv_out, None),
                        ],
                        c.hidden_size,
                    )?
                } else {
                    projections(
                        &[
                            (n("attn_q"), q_out),
                            (n("attn_k"), kv_out),
                            (n("attn_v"), kv_out),
                        ],
                        c.hidden_size,
                    )?
                },
                wo: matrix(&n("attn_output"), c.hidden_size, q_out)?,
                ffn_norm: vector(&n("ffn_norm"), c.hidden_size)?,
                gate_up: if g.header.tensor(&n("ffn_gate")).is_none() && c.family == Family::Phi3 {
                    // Phi-3: `ffn_up` holds the gate rows, then the up rows.
                    fused(
                        &n("ffn_up"),
                        &[(c.intermediate_size, None), (c.intermediate_size, None)],
                        c.hidden_size,
                    )?
                } else {
                    projections(
                        &[
                            (n("ffn_gate"), c.intermediate_size),
                            (n("ffn_up"), c.intermediate_size),
                        ],
                        c.hidden_size,
                    )?
                },
                down: matrix(&n("ffn_down"), c.hidden_size, c.intermediate_size)?,
            });
        }
        let head_name = if g.header.tensor("output.weight").is_some() {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let lm_head = matrix(head_name, c.vocab_size, c.hidden_size)?;
        let half = c.head_dim / 2;
        // Llama 3.x's `llama3` RoPE scaling: llama.cpp's converter stores one
        // divisor per frequency in `rope_freqs.weight` (global layers only).
        // Phi-3's LongRoPE: the short factors (the context is capped at the
        // original length, see LlamaConfig).
        let factors_name = ["rope_freqs.weight", "rope_factors_short.weight"]
            .into_iter()
            .find(|n| g.header.tensor(n).is_some());
        let freq_factors = match factors_name {
            Some(name) => {
                let (f, dims) = g.dequantize(name)?;
                if dims != [half] {
                    return Err(shape_err(g, name, &dims, &[half]));
                }
                if let Some(bad) = f.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                    return Err(Error::Model {
                        file: g.name().into(),
                        detail: format!("{name} holds {bad}; RoPE factors must be positive"),
                    });
                }
                Some(f)
            }
            None => None,
        };
        let table =
            |theta: f32, factor: f32, ff: Option<&[f32]>| -> Result<(B::Tensor, B::Tensor)> {
                let (mut cos, mut sin) = rope_tables(c, theta, factor, ff);
                if c.rope_attn_factor != 1.0 {
                    cos.iter_mut()
                        .chain(sin.iter_mut())
                        .for_each(|v| *v *= c.rope_attn_factor);
                }
                Ok((
                    backend.tensor_f32(&cos, &[c.context_length, half])?,
                    backend.tensor_f32(&sin, &[c.context_length, half])?,
                ))
            };
        let (rope_cos, rope_sin) =
            table(c.rope_theta, c.rope_linear_factor, freq_factors.as_deref())?;
        let rope_local = match (c.sliding_window, c.rope_theta_local) {
            (Some(_), Some(theta)) => Some(table(theta, 1.0, None)?),
            _ => None,
        };
        Ok(Llama {
            rope_local,
            lora: LoraHook::default(),
            norm: vector("output_norm.weight", c.hidden_size)?,
            backend,
            config,
            embed,
            layers,
            lm_head,
            rope_cos,
            rope_sin,
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The backend the weights live on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// `(in, out)` of a LoRA-targetable projection ([`crate::lora::MODULES`]).
    pub fn projection_dims(&self, module: &str) -> (usize, usize) {
        self.config.projection_dims(module)
    }

    /// Activates a LoRA adapter, applied unmerged on every forward pass
    /// (`None` removes it). Swapping is cheap: the base weights are not
    /// touched. An adapter for another base (layer count or widths) is an
    /// error naming the module.
    pub fn set_adapter(&mut self, adapter: Option<&Adapter>) -> Result<()> {
        self.lora.set(&self.backend, &self.config, adapter)
    }

    /// The active adapter's tensors for training (`(PEFT name, tensor)`;
    /// a trainer swaps each for a variable). `B` of Q/K is in GGUF row order.
    pub fn lora_parameters_mut(&mut self) -> Vec<(String, &mut B::Tensor)> {
        self.lora.parameters_mut()
    }

    /// The active adapter read back from the backend (Hugging Face row order).
    pub async fn adapter(&self) -> Result<Option<Adapter>> {
        self.lora.read_back(&self.backend, &self.config).await
    }

    /// Training: drop LoRA inputs with probability `p` (masks drawn from a
    /// generator seeded with `seed`, as PEFT's `lora_dropout`); `None` turns
    /// dropout off (inference).
    pub fn set_lora_dropout(&self, dropout: Option<(f32, u64)>) {
        self.lora.set_dropout(dropout);
    }

    /// `y + s·(dropout(x)·Aᵀ)·Bᵀ` when layer `l` adapts module `j`, else `y`.
    fn adapt(&self, l: usize, j: usize, x: &B::Tensor, y: B::Tensor) -> Result<B::Tensor> {
        self.lora.adapt(&self.backend, l, j, x, y)
    }

    /// Logits `[ids.len(), vocab]` of every position of one sequence, with
    /// no KV cache (causal attention over `ids` only): the training forward
    /// pass, differentiable on [`crate::backend::cpu::CpuBackend::for_training`].
    pub fn forward_train(&self, ids: &[u32]) -> Result<B::Tensor> {
        self.forward_inner(ids, Caches::None, Logits::All)
    }

    /// A KV cache for up to `capacity` positions (at most the context length).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache<B>> {
        let c = &self.config;
        if capacity == 0 || capacity > c.context_length {
            return Err(Error::Input(format!(
                "a KV cache of {capacity} positions is outside 1..={} (the model's context length)",
                c.context_length
            )));
        }
        let shape = [1, c.num_kv_heads, capacity, c.head_dim];
        let mut k = Vec::with_capacity(c.num_layers);
        let mut v = Vec::with_capacity(c.num_layers);
        for _ in 0..c.num_layers {
            k.push(self.backend.zeros(&shape)?);
            v.push(self.backend.zeros(&shape)?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            capacity,
        })
    }

    /// Runs `ids` (the next tokens of the sequence in `cache`) through the
    /// model in one pass, appends their keys/values to the cache and returns
    /// logits `[1 or ids.len(), vocab]`.
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache<B>, which: Logits) -> Result<B::Tensor> {
        // Long prompts run in chunks: attention scores of one chunk against
        // the cache stay small ([heads, chunk, len] instead of [heads, t, t]).
        if ids.len() > PREFILL_CHUNK {
            let mut all = Vec::new();
            let mut last = None;
            for part in ids.chunks(PREFILL_CHUNK) {
                let is_last = part.as_ptr_range().end == ids.as_ptr_range().end;
                let want = if which == Logits::All {
                    Logits::All
                } else {
                    Logits::Last
                };
                let logits = self.forward_chunk(part, cache, want)?;
                if which == Logits::All {
                    all.push(logits);
                } else if is_last {
                    last = Some(logits);
                }
            }
            return match which {
                Logits::All => self.backend.cat(&all, 0),
                Logits::Last => {
                    last.ok_or_else(|| Error::Input("forward needs at least one token".into()))
                }
            };
        }
        self.forward_chunk(ids, cache, which)
    }

    fn forward_chunk(
        &self,
        ids: &[u32],
        cache: &mut KvCache<B>,
        which: Logits,
    ) -> Result<B::Tensor> {
        self.forward_inner(ids, Caches::One(cache), which)
    }

    /// One decoding step of several sequences in one pass (continuous
    /// batching): `ids[i]` is the next token of the sequence cached in
    /// `caches[i]`. The projections and the MLP read each weight once for
    /// all rows, each row computed exactly as it would be alone
    /// ([`Backend::qlinear_rowwise`]); RoPE and attention use each
    /// sequence's own position and cache. Returns logits `[ids.len(), vocab]`.
    pub fn forward_batch(&self, ids: &[u32], caches: &mut [&mut KvCache<B>]) -> Result<B::Tensor> {
        if ids.len() != caches.len() {
            return Err(Error::Shape {
                op: "forward_batch",
                detail: format!("{} tokens for {} sequences", ids.len(), caches.len()),
            });
        }
        self.forward_inner(ids, Caches::Many(caches), Logits::All)
    }

    fn forward_inner(
        &self,
        ids: &[u32],
        mut caches: Caches<'_, '_, B>,
        which: Logits,
    ) -> Result<B::Tensor> {
        let b = &self.backend;
        let c = &self.config;
        let t = ids.len();
        if t == 0 {
            return Err(Error::Input("forward needs at least one token".into()));
        }
        // Where each sequence's new tokens start, and the room it has.
        let spans: Vec<(usize, usize, usize)> = match &caches {
            Caches::None => vec![(0, t, c.context_length)],
            Caches::One(k) => vec![(k.len, t, k.capacity)],
            Caches::Many(ks) => ks.iter().map(|k| (k.len, 1, k.capacity)).collect(),
        };
        for &(pos, n, capacity) in &spans {
            if pos + n > capacity {
                return Err(Error::Input(format!(
                    "sequence of {} tokens does not fit the KV cache of {} positions (context length {})",
                    pos + n,
                    capacity,
                    c.context_length
                )));
            }
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        let (nh, nkv, hd) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let first_pos = spans.first().map_or(0, |s| s.0);
        let rowwise = matches!(caches, Caches::Many(_));
        let rope =
            |(cos_table, sin_table): (&B::Tensor, &B::Tensor)| -> Result<(B::Tensor, B::Tensor)> {
                if rowwise {
                    // Row i rotates by its own sequence's position: gather the table rows.
                    let positions: Vec<u32> = spans.iter().map(|s| s.0 as u32).collect();
                    let at = b.tensor_u32(&positions, &[t])?;
                    Ok((b.embedding(&at, cos_table)?, b.embedding(&at, sin_table)?))
                } else {
                    let pos = first_pos;
                    Ok((
                        b.narrow(cos_table, 0, pos, t)?,
                        b.narrow(sin_table, 0, pos, t)?,
                    ))
                }
            };
        let global_rope = rope((&self.rope_cos, &self.rope_sin))?;
        let local_rope = match &self.rope_local {
            Some((cos, sin)) => Some(rope((cos, sin))?),
            None => None,
        };
        let mut x = b.tensor_f32(&self.embed.rows(ids)?, &[1, t, c.hidden_size])?;
        if c.embed_scale != 1.0 {
            x = b.scale(&x, c.embed_scale)?;
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let window = c.layer_window(l);
            let (cos, sin) = match (&local_rope, window) {
                (Some(local), Some(_)) => local,
                _ => &global_rope,
            };
            let h = b.rms_norm(&x, &layer.attn_norm, c.rms_eps)?;
            let mut qkv = layer
                .qkv
                .apply(b, &h, rowwise)?
                .into_iter()
                .enumerate()
                .map(|(j, y)| self.adapt(l, j, &h, y))
                .collect::<Result<Vec<_>>>()?;
            if let Some(bias) = &layer.qkv_bias {
                for (y, bias) in qkv.iter_mut().zip(bias) {
                    *y = b.add(y, bias)?;
                }
            }
            let heads = |y: &B::Tensor, n: usize| -> Result<B::Tensor> {
                b.transpose(&b.reshape(y, &[1, t, n, hd])?, 1, 2)
            };
            let [qy, ky, vy] = qkv.as_slice() else {
                return Err(Error::Shape {
                    op: "attention projections",
                    detail: format!("{} projections, expected q, k, v", qkv.len()),
                });
            };
            let (mut q, mut k) = (heads(qy, nh)?, heads(ky, nkv)?);
            if let Some([qn, kn]) = &layer.qk_norm {
                q = b.rms_norm(&q, qn, c.rms_eps)?;
                k = b.rms_norm(&k, kn, c.rms_eps)?;
            }
            let mut q = b.rope_pairs(&q, cos, sin)?;
            if c.query_scale != 1.0 {
                q = b.scale(&q, c.query_scale)?;
            }
            let k = b.rope_pairs(&k, cos, sin)?;
            let cap = c.attn_softcap;
            let v = heads(vy, nkv)?;
            let attn = match &mut caches {
                Caches::One(kv) => {
                    let pos = first_pos;
                    let (kc, vc) = kv.layer(l)?;
                    b.write_slice(kc, &k, 2, pos)?;
                    b.write_slice(vc, &v, 2, pos)?;
                    windowed_attention(b, &q, kc, vc, pos + t, window, cap)?
                }
                Caches::Many(kvs) => {
                    let mut rows = Vec::with_capacity(t);
                    for (i, (kv, span)) in kvs.iter_mut().zip(&spans).enumerate() {
                        let pos = span.0;
                        let at = |y: &B::Tensor| b.narrow(y, 2, i, 1);
                        let (kc, vc) = kv.layer(l)?;
                        b.write_slice(kc, &at(&k)?, 2, pos)?;
                        b.write_slice(vc, &at(&v)?, 2, pos)?;
                        rows.push(windowed_attention(
                            b,
                            &at(&q)?,
                            kc,
                            vc,
                            pos + 1,
                            window,
                            cap,
                        )?);
                    }
                    b.cat(&rows, 1)?
                }
                // Training: the keys and values of this sequence are the whole "cache".
                Caches::None => windowed_attention(b, &q, &k, &v, t, window, cap)?,
            };
            let mm = |x: &B::Tensor, w: &B::QMatrix| {
                if rowwise {
                    b.qlinear_rowwise(x, w)
                } else {
                    b.qlinear(x, w)
                }
            };
            let mut o = self.adapt(l, 3, &attn, mm(&attn, &layer.wo)?)?;
            if let Some(norm) = &layer.post_attn_norm {
                o = b.rms_norm(&o, norm, c.rms_eps)?;
            }
            x = b.add(&x, &o)?;
            let h = b.rms_norm(&x, &layer.ffn_norm, c.rms_eps)?;
            let gate_up = layer
                .gate_up
                .apply(b, &h, rowwise)?
                .into_iter()
                .enumerate()
                .map(|(j, y)| self.adapt(l, 4 + j, &h, y))
                .collect::<Result<Vec<_>>>()?;
            let [gate, up] = gate_up.as_slice() else {
                return Err(Error::Shape {
                    op: "mlp projections",
                    detail: format!("{} projections, expected gate, up", gate_up.len()),
                });
            };
            let gate = match c.activation {
                Activation::Silu => b.silu(gate)?,
                Activation::GeluTanh => gelu_tanh(b, gate)?,
            };
            let act = b.mul(&gate, up)?;
            let mut mlp = self.adapt(l, 6, &act, mm(&act, &layer.down)?)?;
            if let Some(norm) = &layer.post_ffn_norm {
                mlp = b.rms_norm(&mlp, norm, c.rms_eps)?;
            }
            x = b.add(&x, &mlp)?;
        }
        match caches {
            Caches::One(kv) => kv.len += t,
            Caches::Many(kvs) => kvs.iter_mut().for_each(|kv| kv.len += 1),
            Caches::None => {}
        }
        let x = match which {
            Logits::Last => b.narrow(&x, 1, t - 1, 1)?,
            Logits::All => x,
        };
        let x = b.rms_norm(&x, &self.norm, c.rms_eps)?;
        let logits = if rowwise {
            b.qlinear_rowwise(&x, &self.lm_head)?
        } else {
            b.qlinear(&x, &self.lm_head)?
        };
        let logits = match c.final_softcap {
            Some(cap) => b.scale(&b.tanh(&b.scale(&logits, 1.0 / cap)?)?, cap)?,
            None => logits,
        };
        let rows = match which {
            Logits::Last => 1,
            Logits::All => t,
        };
        b.reshape(&logits, &[rows, c.vocab_size])
    }
}

/// An embedding table in its GGUF block format, expanded row by row.
struct HostEmbedding {
    ty: GgmlType,
    data: Vec<u8>,
    row_bytes: usize,
    cols: usize,
}

impl HostEmbedding {
    fn new(ty: GgmlType, data: &[u8], rows: usize, cols: usize, file: &str) -> Result<Self> {
        let bad = |detail: String| Error::Model {
            file: file.into(),
            detail,
        };
        let (block, _) = ty.block();
        if rows == 0 || !(cols as u64).is_multiple_of(block) || !data.len().is_multiple_of(rows) {
            return Err(bad(format!(
                "token_embd.weight: {} bytes of {} do not split into {rows} rows of {cols}",
                data.len(),
                ty.name()
            )));
        }
        let e = HostEmbedding {
            ty,
            data: data.to_vec(),
            row_bytes: data.len() / rows,
            cols,
        };
        // Decode one row now: a type without a decoder fails at load.
        e.rows(&[0])?;
        Ok(e)
    }

    /// The f32 rows of `ids`, one after another (ids are checked by the caller).
    fn rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        for &id in ids {
            let start = id as usize * self.row_bytes;
            let row = self
                .data
                .get(start..start + self.row_bytes)
                .ok_or_else(|| {
                    Error::Input(format!("token id {id} is outside the embedding table"))
                })?;
            out.extend(crate::quant::dequantize(
                self.ty,
                row,
                self.cols,
                "token_embd.weight",
            )?);
        }
        Ok(out)
    }
}

fn shape_err(g: &Gguf<'_>, name: &str, got: &[usize], want: &[usize]) -> Error {
    Error::Model {
        file: g.name().into(),
        detail: format!("tensor '{name}' has shape {got:?}, expected {want:?}"),
    }
}

/// GELU with the tanh approximation (`gelu_pytorch_tanh`, Gemma's MLP):
/// `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, composed of primitive ops.
fn gelu_tanh<B: Backend>(b: &B, x: &B::Tensor) -> Result<B::Tensor> {
    let x3 = b.mul(&b.mul(x, x)?, x)?;
    let inner = b.scale(
        &b.add(x, &b.scale(&x3, 0.044715)?)?,
        (2.0 / std::f32::consts::PI).sqrt(),
    )?;
    let t = b.tanh(&inner)?;
    b.scale(&b.add(x, &b.mul(x, &t)?)?, 0.5)
}

/// Causal attention of the last `q`-length queries against the first `len`
/// cached positions; in a sliding-window layer each query sees only its own
/// position and the `window − 1` before it; with `softcap`, scores become
/// `cap · tanh(s / cap)` before the softmax. A single query (decoding) reads
/// the cache narrowed to its window through the backend's attention op;
/// several queries past the window (a long prefill) take the composed
/// attention with a banded mask.
fn windowed_attention<B: Backend>(
    b: &B,
    q: &B::Tensor,
    k: &B::Tensor,
    v: &B::Tensor,
    len: usize,
    window: Option<usize>,
    softcap: Option<f32>,
) -> Result<B::Tensor> {
    if softcap.is_some() {
        // Soft-capped scores (Gemma 2): the composed ops, any query count.
        return crate::backend::composed_window_attention(b, q, k, v, len, window, softcap);
    }
    let Some(w) = window.filter(|&w| len > w) else {
        return b.attention(q, k, v, len);
    };
    if b.shape(q).get(2) == Some(&1) {
        let start = len - w;
        let kj = b.narrow(k, 2, start, w)?;
        let vj = b.narrow(v, 2, start, w)?;
        return b.attention(q, &kj, &vj, w);
    }
    crate::backend::composed_window_attention(b, q, k, v, len, Some(w), None)
}

/// RoPE angles `(pos / factor) · θ^(−2i/d)` for every position and pair, as
/// cos and sin (`factor` is linear RoPE scaling, 1 for none; `freq_factors`
/// divide each frequency, as llama.cpp's `rope_freqs` tensor).
fn rope_tables(
    c: &LlamaConfig,
    theta: f32,
    factor: f32,
    freq_factors: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let half = c.head_dim / 2;
    let inv: Vec<f64> = (0..half)
        .map(|i| {
            let ff = freq_factors
                .and_then(|f| f.get(i))
                .map_or(1.0, |&v| f64::from(v));
            1.0 / f64::from(theta).powf(2.0 * i as f64 / c.head_dim as f64) / ff
        })
        .collect();
    let mut cos = Vec::with_capacity(c.context_length * half);
    let mut sin = Vec::with_capacity(c.context_length * half);
    for p in 0..c.context_length {
        for f in &inv {
            let a = p as f64 / f64::from(factor) * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

/// The quantized block types a [`Llama`] loads (anything candle has kernels for).
pub fn supported_weight_type(ty: GgmlType) -> bool {
    crate::quant::candle_dtype(ty, "").is_ok()
}
