//! Compute backends and the op set models are written against.
//!
//! Model code (BERT, Llama, heads) is written once against [`Backend`]; a
//! backend supplies the tensors and the ops. Implementations:
//!
//! - [`cpu::CpuBackend`]: candle-core tensors (SIMD kernels natively and
//!   `simd128` in wasm32). Tensors carry candle's autodiff graph, so training
//!   reuses the same model code. It is also the reference every GPU kernel is
//!   checked against.
//! - [`gpu`]: wgpu running the WGSL kernels in `gpu/shaders/` — Vulkan, Metal or DX12
//!   natively, WebGPU in the browser.
//!
//! Conventions: shapes are outermost-first (`[batch, seq, hidden]`), data is
//! row-major, weights of linear layers are `[out, in]` as in PyTorch, and every
//! op that takes two tensors checks their shapes and names the op in its error.
//! Reading a tensor back to the host is `async` because a browser cannot block
//! on the GPU; [`block_on_ready`] runs such a future for backends whose reads
//! are immediate (the CPU).

// Kernels index host buffers by the shapes their op validated on entry (the
// rank and dimension checks that name the op in their errors), and GPU code
// indexes fixed-size parameter blocks; bounds checks there are invariants.
#![allow(clippy::indexing_slicing)]

pub mod conformance;
pub mod cpu;
pub mod gpu;

use std::future::Future;

use crate::error::{Error, Result};
use crate::quant::GgmlType;

/// The op set of cairn's models.
pub trait Backend: Clone + std::fmt::Debug {
    /// A tensor living on this backend.
    type Tensor: Clone + std::fmt::Debug;
    /// A weight matrix kept in a ggml block format (Q8_0, Q4_1, ...), used by
    /// [`Backend::qlinear`] without expanding it to f32.
    type QMatrix: Clone + std::fmt::Debug;

    /// Short name for logs and reports (`cpu`, `gpu`).
    fn name(&self) -> &'static str;

    /// A tensor from f32 host data in row-major order.
    fn tensor_f32(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor>;
    /// A weight matrix (`[out, in]` for [`Backend::linear`], or a table for
    /// [`Backend::embedding`]) from f32 host data. A backend may store it
    /// narrower or split: the GPU backend keeps it in f16 where the adapter
    /// has shader-f16, and splits matrices over the storage-binding limit into
    /// row ranges. Such a tensor is only an operand of `linear` and
    /// `embedding` (and can be read back).
    fn weight_f32(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor> {
        self.tensor_f32(data, shape)
    }
    /// A tensor of token ids (or other indices) from host data.
    fn tensor_u32(&self, data: &[u32], shape: &[usize]) -> Result<Self::Tensor>;
    /// Copies a tensor back to the host as f32, row-major.
    fn read_f32(&self, t: &Self::Tensor) -> impl Future<Output = Result<Vec<f32>>>;
    /// The tensor's shape.
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;

    /// Same data, new shape (element counts must agree).
    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;
    /// Swaps two dimensions; the result is contiguous.
    fn transpose(&self, t: &Self::Tensor, d0: usize, d1: usize) -> Result<Self::Tensor>;
    /// `len` entries of dimension `dim` starting at `start`.
    fn narrow(
        &self,
        t: &Self::Tensor,
        dim: usize,
        start: usize,
        len: usize,
    ) -> Result<Self::Tensor>;

    /// Batched matrix product over the last two dimensions: `[.., m, k] · [.., k, n]`.
    fn matmul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// A linear layer: `x[.., in] · wᵀ + bias` with `w` shaped `[out, in]`.
    fn linear(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        bias: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
    /// Elementwise sum with trailing-dimension broadcasting.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Elementwise product with trailing-dimension broadcasting.
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Multiplies every element by `s`.
    fn scale(&self, t: &Self::Tensor, s: f32) -> Result<Self::Tensor>;
    /// GELU with the exact erf formulation (BERT's `gelu`).
    fn gelu(&self, t: &Self::Tensor) -> Result<Self::Tensor>;
    /// Layer normalisation over the last dimension.
    fn layer_norm(
        &self,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        bias: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;
    /// Maximum over dimension `dim`, which is removed from the shape.
    fn max_dim(&self, t: &Self::Tensor, dim: usize) -> Result<Self::Tensor>;
    /// Softmax over the last dimension.
    fn softmax_last(&self, t: &Self::Tensor) -> Result<Self::Tensor>;
    /// Rows of `table[vocab, dim]` gathered by `ids` (any shape): result `[..ids, dim]`.
    fn embedding(&self, ids: &Self::Tensor, table: &Self::Tensor) -> Result<Self::Tensor>;

    /// Joins tensors along `dim` (all other dimensions must agree).
    fn cat(&self, parts: &[Self::Tensor], dim: usize) -> Result<Self::Tensor>;
    /// A zero-filled f32 tensor (KV caches are allocated once with this).
    fn zeros(&self, shape: &[usize]) -> Result<Self::Tensor>;
    /// Overwrites `dst[.., start..start + len, ..]` along `dim` with `src` in
    /// place, where `len` is `src`'s size in `dim` (the KV-cache append).
    fn write_slice(
        &self,
        dst: &Self::Tensor,
        src: &Self::Tensor,
        dim: usize,
        start: usize,
    ) -> Result<()>;
    /// `a · bᵀ` over the last two dimensions: `[.., m, k] · [.., n, k]ᵀ` (attention
    /// scores against a key cache without materialising its transpose).
    fn matmul_t(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Uploads a `[rows, cols]` weight stored as ggml blocks of type `ty`
    /// (`data` is the raw GGUF bytes, rows of `cols` values). `name` is used in errors.
    fn qmatrix(
        &self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        cols: usize,
        name: &str,
    ) -> Result<Self::QMatrix>;
    /// `[rows, cols]` of a quantized matrix.
    fn qmatrix_shape(&self, w: &Self::QMatrix) -> (usize, usize);
    /// `x[.., cols] · wᵀ` with a quantized `w[rows, cols]`: result `[.., rows]`.
    fn qlinear(&self, x: &Self::Tensor, w: &Self::QMatrix) -> Result<Self::Tensor>;
    /// [`Backend::qlinear`] with every row computed exactly as it would be
    /// alone (no switch to a different kernel for many rows): batched
    /// decoding uses it so that batching sequences changes no result. The
    /// default is `qlinear` (for backends whose kernel is row-independent).
    fn qlinear_rowwise(&self, x: &Self::Tensor, w: &Self::QMatrix) -> Result<Self::Tensor> {
        self.qlinear(x, w)
    }
    /// RMS normalisation over the last dimension: `x / √(mean(x²) + eps) · weight`.
    fn rms_norm(&self, x: &Self::Tensor, weight: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
    /// SiLU (`x · σ(x)`), the gate activation of SwiGLU.
    fn silu(&self, t: &Self::Tensor) -> Result<Self::Tensor>;
    /// Hyperbolic tangent (BERT's pooler activation).
    fn tanh(&self, t: &Self::Tensor) -> Result<Self::Tensor>;
    /// `max(x, 0)` (DistilBERT's classification-head activation).
    fn relu(&self, t: &Self::Tensor) -> Result<Self::Tensor>;
    /// Rotary position embedding on adjacent pairs `(x[2i], x[2i+1])` — the
    /// layout of llama.cpp's GGUF Q/K weights. `x` is `[batch, heads, seq, head_dim]`,
    /// `cos`/`sin` are `[seq, head_dim / 2]`.
    fn rope_pairs(
        &self,
        x: &Self::Tensor,
        cos: &Self::Tensor,
        sin: &Self::Tensor,
    ) -> Result<Self::Tensor>;

    /// Causal scaled-dot-product attention of `t` new queries against a KV
    /// cache, with grouped-query heads. `q` is `[1, heads, t, d]`; the caches
    /// are `[1, kv_heads, capacity, d]` with their first `len` positions
    /// filled, the queries being positions `len − t .. len`. Returns
    /// `[1, t, heads·d]`. The default composes matmuls and a softmax; a
    /// backend may fuse it.
    fn attention(
        &self,
        q: &Self::Tensor,
        k_cache: &Self::Tensor,
        v_cache: &Self::Tensor,
        len: usize,
    ) -> Result<Self::Tensor> {
        composed_attention(self, q, k_cache, v_cache, len)
    }

    /// The index of the largest value of each row (the last dimension) of
    /// `t`, read back to the host; ties go to the lowest index, as
    /// [`crate::generate::sampler::argmax`]. Greedy decoding uses it so that a
    /// GPU backend reads one number per row instead of the whole vocabulary.
    fn read_argmax(&self, t: &Self::Tensor) -> impl Future<Output = Result<Vec<u32>>> {
        async move {
            let cols = self.shape(t).last().copied().unwrap_or(0);
            if cols == 0 {
                return Err(Error::Shape {
                    op: "argmax",
                    detail: format!("rows of {:?} are empty", self.shape(t)),
                });
            }
            let values = self.read_f32(t).await?;
            Ok(values
                .chunks(cols)
                .map(|row| crate::util::argmax(row) as u32)
                .collect())
        }
    }

    /// Bidirectional (encoder) self-attention with key padding: `qkv` is
    /// `[batch, seq, 3·hidden]` (queries, keys, values side by side, as a
    /// stacked Q/K/V projection writes them), `mask` is `[batch, seq]` with
    /// 1 for tokens and 0 for padding. Returns `[batch, seq, hidden]`. The
    /// default composes primitive ops (differentiable on the CPU); a backend
    /// may fuse it.
    fn encoder_attention(
        &self,
        qkv: &Self::Tensor,
        mask: &[u32],
        heads: usize,
    ) -> Result<Self::Tensor> {
        composed_encoder_attention(self, qkv, mask, heads)
    }
}

/// Checks that `src` (shape `sd`) fits into `dst` (shape `dd`) at `start`
/// along `dim`, as [`Backend::write_slice`] requires.
pub fn check_write_slice(dd: &[usize], sd: &[usize], dim: usize, start: usize) -> Result<()> {
    let fits = dd.len() == sd.len()
        && dim < dd.len()
        && dd
            .iter()
            .zip(sd)
            .enumerate()
            .all(|(i, (a, b))| if i == dim { start + b <= *a } else { a == b });
    if !fits {
        return Err(Error::Shape {
            op: "write_slice",
            detail: format!("cannot write {sd:?} into {dd:?} at {start} along dim {dim}"),
        });
    }
    Ok(())
}

/// Checks [`Backend::encoder_attention`]'s operands: `(batch, seq, hidden)`.
pub fn encoder_attention_shape(
    qkv: &[usize],
    mask: usize,
    heads: usize,
) -> Result<(usize, usize, usize)> {
    let bad = || Error::Shape {
        op: "encoder_attention",
        detail: format!(
            "qkv {qkv:?} with {mask} mask values and {heads} heads (expected [batch, seq, 3·hidden], hidden a multiple of heads, one mask value per token)"
        ),
    };
    let [b, s, w] = qkv else { return Err(bad()) };
    let (b, s, w) = (*b, *s, *w);
    if heads == 0 || !w.is_multiple_of(3 * heads) || mask != b * s {
        return Err(bad());
    }
    Ok((b, s, w / 3))
}

/// [`Backend::encoder_attention`] from primitive ops.
pub fn composed_encoder_attention<B: Backend>(
    b: &B,
    qkv: &B::Tensor,
    mask: &[u32],
    heads: usize,
) -> Result<B::Tensor> {
    let (batch, seq, h) = encoder_attention_shape(&b.shape(qkv), mask.len(), heads)?;
    let d = h / heads;
    let split = |i: usize| -> Result<B::Tensor> {
        let part = b.narrow(qkv, 2, i * h, h)?;
        b.transpose(&b.reshape(&part, &[batch, seq, heads, d])?, 1, 2)
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let bias: Vec<f32> = mask
        .iter()
        .map(|&m| if m == 0 { -1e9 } else { 0.0 })
        .collect();
    let bias = b.tensor_f32(&bias, &[batch, 1, 1, seq])?;
    let scores = b.scale(&b.matmul_t(&q, &k)?, 1.0 / (d as f32).sqrt())?;
    let probs = b.softmax_last(&b.add(&scores, &bias)?)?;
    b.reshape(
        &b.transpose(&b.matmul(&probs, &v)?, 1, 2)?,
        &[batch, seq, h],
    )
}

/// [`Backend::attention`] from primitive ops (differentiable on the CPU).
///
/// GQA without copying K/V: the query heads that share a KV head are
/// consecutive, so `[1, heads, t, d]` reshapes to `[1, kv_heads, rep·t, d]`
/// and one batched matmul scores them all against the shared cache.
pub fn composed_attention<B: Backend>(
    b: &B,
    q: &B::Tensor,
    k_cache: &B::Tensor,
    v_cache: &B::Tensor,
    len: usize,
) -> Result<B::Tensor> {
    composed_window_attention(b, q, k_cache, v_cache, len, None, None)
}

/// [`composed_attention`] where, with `window = Some(w)`, each query sees
/// only its own position and the `w − 1` before it (sliding-window layers):
/// keys before the first query's window are not read at all, and the band
/// is masked per query. With `softcap = Some(c)` the scaled scores become
/// `c · tanh(s / c)` before masking (Gemma 2).
pub fn composed_window_attention<B: Backend>(
    b: &B,
    q: &B::Tensor,
    k_cache: &B::Tensor,
    v_cache: &B::Tensor,
    len: usize,
    window: Option<usize>,
    softcap: Option<f32>,
) -> Result<B::Tensor> {
    let (qd, kd) = (b.shape(q), b.shape(k_cache));
    if qd.len() != 4 || kd.len() != 4 || qd[3] != kd[3] || kd[1] == 0 || qd[1] % kd[1] != 0 {
        return Err(Error::Shape {
            op: "attention",
            detail: format!("queries {qd:?} do not fit cache {kd:?}"),
        });
    }
    let (nh, t, d, nkv) = (qd[1], qd[2], qd[3], kd[1]);
    if t > len || len > kd[2] {
        return Err(Error::Shape {
            op: "attention",
            detail: format!("{t} queries at the end of {len} positions do not fit cache {kd:?}"),
        });
    }
    if window == Some(0) {
        return Err(Error::Shape {
            op: "attention",
            detail: "a sliding window of 0 keys".into(),
        });
    }
    let rep = nh / nkv;
    let pos = len - t;
    // Keys from the first query's window start (0 without a window).
    let first = window.map_or(0, |w| (pos + 1).saturating_sub(w));
    let n = len - first;
    let keys = b.narrow(k_cache, 2, first, n)?;
    let values = b.narrow(v_cache, 2, first, n)?;
    let q = b.reshape(q, &[1, nkv, rep * t, d])?;
    let mut scores = b.scale(&b.matmul_t(&q, &keys)?, 1.0 / (d as f32).sqrt())?;
    if let Some(c) = softcap {
        scores = b.scale(&b.tanh(&b.scale(&scores, 1.0 / c)?)?, c)?;
    }
    let banded = window.is_some_and(|w| len - first > w);
    if t > 1 || banded {
        let mut m = vec![0f32; rep * t * n];
        for r in 0..rep * t {
            let qpos = pos + r % t;
            let row = &mut m[r * n..(r + 1) * n];
            row[qpos + 1 - first..].fill(f32::NEG_INFINITY);
            if let Some(w) = window {
                let start = (qpos + 1).saturating_sub(w).saturating_sub(first);
                row[..start].fill(f32::NEG_INFINITY);
            }
        }
        scores = b.add(&scores, &b.tensor_f32(&m, &[rep * t, n])?)?;
    }
    let attn = b.matmul(&b.softmax_last(&scores)?, &values)?;
    let attn = b.transpose(&b.reshape(&attn, &[1, nh, t, d])?, 1, 2)?;
    b.reshape(&attn, &[1, t, nh * d])
}

/// Runs a future that completes without waiting (the CPU backend's reads).
/// Errors instead of blocking when the future is not ready at once.
pub fn block_on_ready<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(Error::Backend(
            "this backend reads asynchronously; use the async API (e.g. encode_async)".into(),
        )),
    }
}
