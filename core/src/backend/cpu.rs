//! CPU backend: candle-core tensors.
//!
//! Size: ~690 lines of code (every op of the trait, one job) and ~215 of unit
//! tests after `#[cfg(test)]`; the quantized matmul kernels live apart in
//! `quant/matmul.rs`.

use candle_core::quantized::QMatMul;
use candle_core::{D, DType, Device, Module, Tensor};
use rayon::prelude::*;

use super::Backend;
use crate::error::{Error, Result};
use crate::quant::GgmlType;
use crate::quant::matmul::PackedMatrix;
use crate::util::fast_exp;

/// The CPU backend: candle-core tensors on the host, with candle's SIMD
/// kernels (and `simd128` in wasm32). Tensors keep candle's autodiff graph, so
/// the same model code trains.
///
/// For inference ([`CpuBackend::new`]) softmax and layer norm run as fused
/// single-pass kernels (candle-nn's), which have no backward pass; a backend
/// made with [`CpuBackend::for_training`] composes them from differentiable
/// primitives instead.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    fused: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// The CPU backend for inference.
    pub fn new() -> Self {
        CpuBackend { fused: true }
    }

    /// The CPU backend with every op differentiable (for training).
    pub fn for_training() -> Self {
        CpuBackend { fused: false }
    }

    /// `x · wᵀ`, switching the packed kernel to a dequantized GEMM from
    /// `gemm_rows` rows on.
    fn qlinear_with(&self, x: &Tensor, w: &CpuQMatrix, gemm_rows: usize) -> Result<Tensor> {
        let xd = x.dims();
        if xd.last() != Some(&w.cols) {
            return Err(Error::Shape {
                op: "qlinear",
                detail: format!(
                    "input {xd:?} does not fit quantized weight [{}, {}]",
                    w.rows, w.cols
                ),
            });
        }
        let inner = w.cols;
        let rows = x.elem_count() / inner.max(1);
        let x2 = x.reshape((rows, inner))?;
        let y = match w.inner.as_ref() {
            // Many tokens (prefill): expand the weights once and run one GEMM.
            QKernel::Packed(p) if rows >= gemm_rows => {
                let wf = Tensor::from_vec(p.dequantize(), (w.rows, w.cols), &Device::Cpu)?;
                x2.matmul(&wf.t()?)?
            }
            QKernel::Packed(p) => {
                let xs = x2.flatten_all()?.to_vec1::<f32>()?;
                Tensor::from_vec(p.matmul(&xs, rows), (rows, w.rows), &Device::Cpu)?
            }
            // Many tokens: one GEMM on the expanded weights (f32
            // activations); few: candle's block kernels.
            QKernel::Candle(QMatMul::QTensor(q)) if rows >= gemm_rows => {
                let wf = q.dequantize(&Device::Cpu)?;
                x2.matmul(&wf.t()?)?
            }
            QKernel::Candle(q) => q.forward(&x2.contiguous()?)?,
            QKernel::Frozen(q) => x2.contiguous()?.apply_op1(FrozenLinear(q.clone()))?,
        };
        let mut out = xd.to_vec();
        if let Some(last) = out.last_mut() {
            *last = w.rows;
        }
        Ok(y.reshape(out)?)
    }
}

impl Backend for CpuBackend {
    type Tensor = Tensor;
    type QMatrix = CpuQMatrix;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn tensor_f32(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_count("tensor_f32", data.len(), shape)?;
        Ok(Tensor::from_slice(data, shape, &Device::Cpu)?)
    }

    fn tensor_u32(&self, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        check_count("tensor_u32", data.len(), shape)?;
        Ok(Tensor::from_slice(data, shape, &Device::Cpu)?)
    }

    async fn read_f32(&self, t: &Tensor) -> Result<Vec<f32>> {
        Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    fn shape(&self, t: &Tensor) -> Vec<usize> {
        t.dims().to_vec()
    }

    fn reshape(&self, t: &Tensor, shape: &[usize]) -> Result<Tensor> {
        check_count("reshape", t.elem_count(), shape)?;
        Ok(t.reshape(shape)?)
    }

    fn transpose(&self, t: &Tensor, d0: usize, d1: usize) -> Result<Tensor> {
        Ok(t.transpose(d0, d1)?.contiguous()?)
    }

    fn narrow(&self, t: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        Ok(t.narrow(dim, start, len)?)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (ad, bd) = (a.dims(), b.dims());
        if ad.len() < 2 || bd.len() < 2 || ad[ad.len() - 1] != bd[bd.len() - 2] {
            return Err(Error::Shape {
                op: "matmul",
                detail: format!("cannot multiply {ad:?} by {bd:?}"),
            });
        }
        Ok(a.broadcast_matmul(b)?)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (xd, wd) = (x.dims(), w.dims());
        let inner = *xd.last().unwrap_or(&0);
        if wd.len() != 2 || wd[1] != inner {
            return Err(Error::Shape {
                op: "linear",
                detail: format!(
                    "input {xd:?} does not fit weight {wd:?} (expected [out, {inner}])"
                ),
            });
        }
        if let Some(b) = bias
            && b.dims() != [wd[0]]
        {
            return Err(Error::Shape {
                op: "linear",
                detail: format!("bias {:?} does not fit weight {wd:?}", b.dims()),
            });
        }
        // Fold all leading dimensions into rows: one GEMM against the transposed weight.
        let rows = x.elem_count() / inner.max(1);
        let y = x.reshape((rows, inner))?.matmul(&w.t()?)?;
        let y = match bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out = xd.to_vec();
        if let Some(last) = out.last_mut() {
            *last = wd[0];
        }
        Ok(y.reshape(out)?)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(a.broadcast_add(b)?)
    }

    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok(a.broadcast_mul(b)?)
    }

    fn scale(&self, t: &Tensor, s: f32) -> Result<Tensor> {
        Ok(t.affine(f64::from(s), 0.0)?)
    }

    fn gelu(&self, t: &Tensor) -> Result<Tensor> {
        if self.fused && t.dtype() == DType::F32 && t.is_contiguous() {
            return map_f32(t, crate::util::gelu_erf);
        }
        Ok(t.gelu_erf()?)
    }

    fn layer_norm(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
        if self.fused && x.is_contiguous() {
            return Ok(candle_nn::ops::layer_norm(x, weight, bias, eps)?);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + f64::from(eps))?.sqrt()?)?;
        Ok(normed.broadcast_mul(weight)?.broadcast_add(bias)?)
    }

    fn max_dim(&self, t: &Tensor, dim: usize) -> Result<Tensor> {
        Ok(t.max(dim)?)
    }

    fn softmax_last(&self, t: &Tensor) -> Result<Tensor> {
        if self.fused && t.is_contiguous() {
            return Ok(candle_nn::ops::softmax_last_dim(t)?);
        }
        let max = t.max_keepdim(D::Minus1)?;
        let e = t.broadcast_sub(&max)?.exp()?;
        Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
    }

    fn embedding(&self, ids: &Tensor, table: &Tensor) -> Result<Tensor> {
        let td = table.dims();
        if td.len() != 2 {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("table must be [vocab, dim], got {td:?}"),
            });
        }
        let flat = ids.flatten_all()?;
        let max = flat.max(0)?.to_dtype(DType::U32)?.to_scalar::<u32>()? as usize;
        if max >= td[0] {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("id {max} is out of range for a table of {} rows", td[0]),
            });
        }
        let mut shape = ids.dims().to_vec();
        shape.push(td[1]);
        Ok(table.index_select(&flat, 0)?.reshape(shape)?)
    }

    fn cat(&self, parts: &[Tensor], dim: usize) -> Result<Tensor> {
        if parts.is_empty() {
            return Err(Error::Shape {
                op: "cat",
                detail: "nothing to join".into(),
            });
        }
        Ok(Tensor::cat(parts, dim)?)
    }

    fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::zeros(shape, DType::F32, &Device::Cpu)?)
    }

    fn write_slice(&self, dst: &Tensor, src: &Tensor, dim: usize, start: usize) -> Result<()> {
        super::check_write_slice(dst.dims(), src.dims(), dim, start)?;
        Ok(dst.slice_set(&src.contiguous()?, dim, start)?)
    }

    fn matmul_t(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (ad, bd) = (a.dims(), b.dims());
        if ad.len() < 2 || bd.len() < 2 || ad[ad.len() - 1] != bd[bd.len() - 1] {
            return Err(Error::Shape {
                op: "matmul_t",
                detail: format!("cannot multiply {ad:?} by the transpose of {bd:?}"),
            });
        }
        let n = bd.len();
        Ok(a.broadcast_matmul(&b.transpose(n - 2, n - 1)?)?)
    }

    fn qmatrix(
        &self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        cols: usize,
        name: &str,
    ) -> Result<CpuQMatrix> {
        let inner = if self.fused && PackedMatrix::supports(ty) {
            QKernel::Packed(PackedMatrix::new(ty, data, rows, cols, name)?)
        } else {
            let q = crate::quant::qtensor(ty, data, &[rows, cols], name)?;
            if self.fused {
                QKernel::Candle(QMatMul::from_qtensor(q)?)
            } else {
                // Training (QLoRA): the frozen weight stays in its blocks;
                // forward and backward dequantize it transiently.
                QKernel::Frozen(std::sync::Arc::new(q))
            }
        };
        Ok(CpuQMatrix {
            inner: std::sync::Arc::new(inner),
            rows,
            cols,
        })
    }

    fn qmatrix_shape(&self, w: &CpuQMatrix) -> (usize, usize) {
        (w.rows, w.cols)
    }

    fn qlinear(&self, x: &Tensor, w: &CpuQMatrix) -> Result<Tensor> {
        self.qlinear_with(x, w, PREFILL_GEMM_ROWS)
    }

    fn qlinear_rowwise(&self, x: &Tensor, w: &CpuQMatrix) -> Result<Tensor> {
        // The packed kernel computes each row on its own; the GEMM path
        // (dequantized weights) would round differently.
        self.qlinear_with(x, w, usize::MAX)
    }

    fn rms_norm(&self, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
        let (xd, wd) = (x.dims(), weight.dims());
        if wd.len() != 1 || xd.last() != Some(&wd[0]) {
            return Err(Error::Shape {
                op: "rms_norm",
                detail: format!("weight {wd:?} does not fit input {xd:?}"),
            });
        }
        if self.fused && x.is_contiguous() {
            return Ok(candle_nn::ops::rms_norm(x, weight, eps)?);
        }
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(ms + f64::from(eps))?.sqrt()?)?;
        Ok(normed.broadcast_mul(weight)?)
    }

    fn silu(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.silu()?)
    }

    fn tanh(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.tanh()?)
    }

    fn relu(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.relu()?)
    }

    fn rope_pairs(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (xd, cd) = (x.dims(), cos.dims());
        if xd.len() != 4 || cd.len() != 2 || cd[0] != xd[2] || cd[1] * 2 != xd[3] {
            return Err(Error::Shape {
                op: "rope_pairs",
                detail: format!(
                    "x must be [batch, heads, seq, head_dim] and cos/sin [seq, head_dim/2]; got {xd:?} and {cd:?}"
                ),
            });
        }
        if self.fused {
            Ok(candle_nn::rotary_emb::rope_i(&x.contiguous()?, cos, sin)?)
        } else {
            Ok(candle_nn::rotary_emb::rope_i_slow(x, cos, sin)?)
        }
    }

    fn encoder_attention(&self, qkv: &Tensor, mask: &[u32], heads: usize) -> Result<Tensor> {
        if self.fused && qkv.dtype() == DType::F32 {
            fused_encoder_attention(qkv, mask, heads)
        } else {
            super::composed_encoder_attention(self, qkv, mask, heads)
        }
    }

    fn attention(
        &self,
        q: &Tensor,
        k_cache: &Tensor,
        v_cache: &Tensor,
        len: usize,
    ) -> Result<Tensor> {
        // Decoding (a few queries): one fused pass over the cache, reading it
        // in place. Prefill and training: batched matmuls.
        if self.fused && q.dims().len() == 4 && q.dims()[2] <= FUSED_ATTENTION_MAX_QUERIES {
            // A cache narrowed to a sliding window is a strided view: copy it.
            if !(k_cache.is_contiguous() && v_cache.is_contiguous()) {
                let (k, v) = (k_cache.contiguous()?, v_cache.contiguous()?);
                return fused_attention(q, &k, &v, len);
            }
            fused_attention(q, k_cache, v_cache, len)
        } else {
            super::composed_attention(self, q, k_cache, v_cache, len)
        }
    }
}

/// Applies `f` to every value of a contiguous f32 tensor (in parallel for
/// large ones) into a new tensor of the same shape.
fn map_f32(t: &Tensor, f: impl Fn(f32) -> f32 + Copy + Sync) -> Result<Tensor> {
    let out = with_f32_slice(t, "input", |x| {
        let mut out = vec![0f32; x.len()];
        let run = |(o, i): (&mut [f32], &[f32])| crate::util::map_into(o, i, f);
        if x.len() >= PARALLEL_MIN_WORK / 8 {
            out.par_chunks_mut(1 << 14)
                .zip(x.par_chunks(1 << 14))
                .for_each(run);
        } else {
            run((&mut out, x));
        }
        out
    })?;
    Ok(Tensor::from_vec(out, t.dims(), &Device::Cpu)?)
}

/// [`Backend::encoder_attention`] as one pass per (sequence, head), reading
/// Q/K/V in place from the stacked projection: scores against the
/// sequence's real tokens only (padding keys are skipped, not masked), a
/// softmax, and the weighted sum of values written straight into
/// `[batch, seq, hidden]`.
fn fused_encoder_attention(qkv: &Tensor, mask: &[u32], heads: usize) -> Result<Tensor> {
    let (batch, seq, h) = super::encoder_attention_shape(qkv.dims(), mask.len(), heads)?;
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let qkv = qkv.contiguous()?;
    let mut out = vec![0f32; batch * seq * h];
    with_f32_slice(&qkv, "qkv", |x| {
        // One task per (sequence, head); each writes its own [seq, d] block,
        // interleaved into the output afterwards.
        let task = |(task, o): (usize, &mut [f32])| {
            crate::util::with_avx2(|| {
                let (bi, hi) = (task / heads, task % heads);
                let keys: Vec<usize> = (0..seq).filter(|&j| mask[bi * seq + j] != 0).collect();
                let nk = keys.len();
                let row = |j: usize, part: usize| {
                    let at = (bi * seq + j) * 3 * h + part * h + hi * d;
                    &x[at..at + d]
                };
                // Keys transposed to [d, nk] and values gathered to [nk, d], so
                // both inner loops run along contiguous memory without
                // horizontal sums.
                let mut kt = vec![0f32; d * nk];
                let mut vs = vec![0f32; nk * d];
                for (c, &j) in keys.iter().enumerate() {
                    for (e, &k) in row(j, 1).iter().enumerate() {
                        kt[e * nk + c] = k;
                    }
                    vs[c * d..(c + 1) * d].copy_from_slice(row(j, 2));
                }
                let mut scores = vec![0f32; nk];
                for i in 0..seq {
                    scores.fill(0.0);
                    for (e, &qe) in row(i, 0).iter().enumerate() {
                        let a = qe * scale;
                        for (s, &k) in scores.iter_mut().zip(&kt[e * nk..(e + 1) * nk]) {
                            *s += a * k;
                        }
                    }
                    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                    let mut sum = 0f32;
                    for s in &mut scores {
                        *s = fast_exp(*s - max);
                        sum += *s;
                    }
                    let oi = &mut o[i * d..(i + 1) * d];
                    for (s, v) in scores.iter().zip(vs.chunks_exact(d)) {
                        let w = s / sum;
                        for (a, v) in oi.iter_mut().zip(v) {
                            *a += w * v;
                        }
                    }
                }
            })
        };
        let mut per_head = vec![0f32; batch * heads * seq * d];
        if batch * heads * seq * seq * d >= PARALLEL_MIN_WORK {
            per_head.par_chunks_mut(seq * d).enumerate().for_each(task);
        } else {
            per_head.chunks_mut(seq * d).enumerate().for_each(task);
        }
        for bi in 0..batch {
            for hi in 0..heads {
                let src = &per_head[(bi * heads + hi) * seq * d..][..seq * d];
                for i in 0..seq {
                    out[(bi * seq + i) * h + hi * d..][..d].copy_from_slice(&src[i * d..][..d]);
                }
            }
        }
    })?;
    Ok(Tensor::from_vec(out, (batch, seq, h), &Device::Cpu)?)
}

/// Up to this many queries, attention runs as one fused loop.
const FUSED_ATTENTION_MAX_QUERIES: usize = 8;

/// The f32 data of a contiguous CPU tensor, without copying.
fn with_f32_slice<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(Error::Backend(format!("{what} is not a CPU tensor")));
    };
    if !layout.is_contiguous() {
        return Err(Error::Backend(format!("{what} is not contiguous")));
    }
    let data = cpu.as_slice::<f32>()?;
    let start = layout.start_offset();
    Ok(f(&data[start..start + layout.shape().elem_count()]))
}

/// [`Backend::attention`] as one pass per (head, query): scores against the
/// cached keys, a softmax, and the weighted sum of cached values.
fn fused_attention(q: &Tensor, k_cache: &Tensor, v_cache: &Tensor, len: usize) -> Result<Tensor> {
    let (qd, kd) = (q.dims(), k_cache.dims());
    if qd.len() != 4
        || kd.len() != 4
        || qd[3] != kd[3]
        || kd[1] == 0
        || !qd[1].is_multiple_of(kd[1])
        || v_cache.dims() != kd
        || qd[2] > len
        || len > kd[2]
    {
        return Err(Error::Shape {
            op: "attention",
            detail: format!(
                "queries {qd:?} at the end of {len} positions do not fit caches {kd:?} / {:?}",
                v_cache.dims()
            ),
        });
    }
    let (nh, t, d, nkv, cap) = (qd[1], qd[2], qd[3], kd[1], kd[2]);
    let rep = nh / nkv;
    let pos = len - t;
    let scale = 1.0 / (d as f32).sqrt();
    let qv = q.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = vec![0f32; t * nh * d];
    with_f32_slice(k_cache, "key cache", |kc| {
        with_f32_slice(v_cache, "value cache", |vc| {
            let head = |h: usize, o: &mut [f32]| {
                // o: this head's outputs for every query, [t, d].
                let kv = h / rep;
                let keys = &kc[kv * cap * d..(kv * cap + len) * d];
                let values = &vc[kv * cap * d..(kv * cap + len) * d];
                let mut scores = vec![0f32; len];
                for i in 0..t {
                    let visible = pos + i + 1;
                    let qi = &qv[(h * t + i) * d..(h * t + i + 1) * d];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores[..visible].iter_mut().enumerate() {
                        *s = crate::util::dot(qi, &keys[j * d..(j + 1) * d]) * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0f32;
                    for s in &mut scores[..visible] {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let oi = &mut o[i * d..(i + 1) * d];
                    oi.fill(0.0);
                    for (j, s) in scores[..visible].iter().enumerate() {
                        let w = s / sum;
                        for (a, v) in oi.iter_mut().zip(&values[j * d..(j + 1) * d]) {
                            *a += w * v;
                        }
                    }
                }
            };
            // Head-major scratch, then interleave to [t, heads·d].
            let mut per_head = vec![0f32; nh * t * d];
            if nh * t * len * d >= PARALLEL_MIN_WORK {
                per_head
                    .par_chunks_mut(t * d)
                    .enumerate()
                    .for_each(|(h, o)| head(h, o));
            } else {
                per_head
                    .chunks_mut(t * d)
                    .enumerate()
                    .for_each(|(h, o)| head(h, o));
            }
            for h in 0..nh {
                for i in 0..t {
                    out[(i * nh + h) * d..(i * nh + h + 1) * d]
                        .copy_from_slice(&per_head[(h * t + i) * d..(h * t + i + 1) * d]);
                }
            }
        })
    })??;
    Ok(Tensor::from_vec(out, (1, t, nh * d), &Device::Cpu)?)
}

use crate::util::PARALLEL_MIN_WORK;

/// A quantized weight on the CPU. Q4_0/Q4_1/Q8_0 use cairn's kernels with
/// f32 activations ([`PackedMatrix`]); other block types use candle's
/// ggml-style kernels (activations quantized to 8 bits).
#[derive(Debug, Clone)]
pub struct CpuQMatrix {
    inner: std::sync::Arc<QKernel>,
    rows: usize,
    cols: usize,
}

/// From this many input rows on, a quantized linear layer expands its
/// weights to f32 and runs a GEMM instead of per-row dot products. Below,
/// the packed kernel (four rows share each decoded block) is faster: on
/// SmolLM2 Q4_1 with 2 threads, a 24-token prefill runs at 328 tokens/s
/// packed vs 244 through the GEMM, a 40-token one at 325 vs 334, a
/// 128-token one at 198 vs 421 (`cargo bench -p cairn --bench decode -- N 4`).
const PREFILL_GEMM_ROWS: usize = 40;

#[derive(Debug)]
enum QKernel {
    Packed(PackedMatrix),
    Candle(QMatMul),
    /// A frozen quantized weight for training (see [`FrozenLinear`]).
    Frozen(std::sync::Arc<candle_core::quantized::QTensor>),
}

/// `x · Wᵀ` with a quantized, frozen `W[rows, cols]` and a backward pass
/// for `x` only (`∂x = ∂y · W`): QLoRA's base layer. The weight stays in
/// its ggml blocks; each pass dequantizes it into a transient f32 matrix
/// for one GEMM, so memory holds the quantized model plus one layer's
/// expansion at a time.
struct FrozenLinear(std::sync::Arc<candle_core::quantized::QTensor>);

impl candle_core::CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-quantized-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("frozen-quantized-linear: f32 input required");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-quantized-linear: contiguous input required");
        };
        let (rows, inner) = layout.shape().dims2()?;
        let x = Tensor::from_slice(&data[start..end], (rows, inner), &Device::Cpu)?;
        let w = self.0.dequantize(&Device::Cpu)?;
        let y = x.matmul(&w.t()?)?;
        let out_cols = y.dim(1)?;
        let values = y.flatten_all()?.to_vec1::<f32>()?;
        Ok((
            candle_core::CpuStorage::F32(values),
            candle_core::Shape::from((rows, out_cols)),
        ))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let w = self.0.dequantize(&Device::Cpu)?;
        Ok(Some(grad_res.matmul(&w)?))
    }
}

fn check_count(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    let want: usize = shape.iter().product();
    if len != want {
        return Err(Error::Shape {
            op,
            detail: format!("{len} values do not fill shape {shape:?} ({want} elements)"),
        });
    }
    Ok(())
}

/// Checks that a row-major buffer holds exactly `rows × cols` values.
pub(crate) fn check_len(
    op: &'static str,
    name: &str,
    len: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if len != rows * cols {
        return Err(Error::Shape {
            op,
            detail: format!(
                "{name} has {len} elements, expected {rows}×{cols} = {}",
                rows * cols
            ),
        });
    }
    Ok(())
}

/// Checks the operands of a `matmul_f32` and returns `B`'s stored `(rows, cols)`.
pub(crate) fn matmul_operands(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    transpose_b: bool,
) -> Result<(usize, usize)> {
    check_len("matmul_f32", "A", a.len(), m, k)?;
    let (b_rows, b_cols) = if transpose_b { (n, k) } else { (k, n) };
    check_len("matmul_f32", "B", b.len(), b_rows, b_cols)?;
    Ok((b_rows, b_cols))
}

/// `C[m×n] = A[m×k] · B[k×n]` (or `A · Bᵀ` with `B` stored `n×k` when
/// `transpose_b`), all row-major, computed by candle-core on the CPU.
pub fn matmul_f32(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    transpose_b: bool,
) -> Result<Vec<f32>> {
    let (b_rows, b_cols) = matmul_operands(a, b, m, k, n, transpose_b)?;
    let dev = Device::Cpu;
    let a = Tensor::from_slice(a, (m, k), &dev)?;
    let b = Tensor::from_slice(b, (b_rows, b_cols), &dev)?;
    let b = if transpose_b { b.t()? } else { b };
    Ok(a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::block_on_ready;

    fn read(b: &CpuBackend, t: &Tensor) -> Vec<f32> {
        block_on_ready(b.read_f32(t)).unwrap()
    }

    #[test]
    fn ops_match_hand_computed_values() {
        for b in [CpuBackend::new(), CpuBackend::for_training()] {
            ops_match_hand_computed_values_on(b);
        }
    }

    #[test]
    fn fused_and_differentiable_paths_agree() {
        let (f, t) = (CpuBackend::new(), CpuBackend::for_training());
        let x: Vec<f32> = crate::util::pseudo_random(6 * 40, 5)
            .into_iter()
            .map(|v| v * 8.0)
            .collect();
        let w = crate::util::pseudo_random(40, 6);
        let bias = crate::util::pseudo_random(40, 7);
        let run = |b: &CpuBackend| {
            let xt = b.tensor_f32(&x, &[2, 3, 40]).unwrap();
            let ln = b
                .layer_norm(
                    &xt,
                    &b.tensor_f32(&w, &[40]).unwrap(),
                    &b.tensor_f32(&bias, &[40]).unwrap(),
                    1e-12,
                )
                .unwrap();
            let sm = b.softmax_last(&xt).unwrap();
            (read(b, &ln), read(b, &sm))
        };
        let ((l1, s1), (l2, s2)) = (run(&f), run(&t));
        for (a, b) in l1.iter().zip(&l2).chain(s1.iter().zip(&s2)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    fn ops_match_hand_computed_values_on(b: CpuBackend) {
        let x = b.tensor_f32(&[1., 2., 3., 4., 5., 6.], &[2, 3]).unwrap();
        // linear: x · wᵀ + bias, w = [[1,0,1],[0,1,0]], bias = [10, 20]
        let w = b.tensor_f32(&[1., 0., 1., 0., 1., 0.], &[2, 3]).unwrap();
        let bias = b.tensor_f32(&[10., 20.], &[2]).unwrap();
        assert_eq!(
            read(&b, &b.linear(&x, &w, Some(&bias)).unwrap()),
            vec![14., 22., 20., 25.]
        );
        // softmax of [0, ln 3] = [0.25, 0.75]
        let s = b
            .softmax_last(&b.tensor_f32(&[0., 3f32.ln()], &[1, 2]).unwrap())
            .unwrap();
        let s = read(&b, &s);
        assert!(
            (s[0] - 0.25).abs() < 1e-6 && (s[1] - 0.75).abs() < 1e-6,
            "{s:?}"
        );
        // layer norm of [1, 3] = [-1, 1] (eps 0), then ·w + b
        let ln = b
            .layer_norm(
                &b.tensor_f32(&[1., 3.], &[1, 2]).unwrap(),
                &b.tensor_f32(&[2., 2.], &[2]).unwrap(),
                &b.tensor_f32(&[1., 1.], &[2]).unwrap(),
                0.0,
            )
            .unwrap();
        assert_eq!(read(&b, &ln), vec![-1., 3.]);
        // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.841344746
        let g = read(&b, &b.gelu(&b.tensor_f32(&[1.0], &[1]).unwrap()).unwrap());
        assert!((g[0] - 0.841_344_7).abs() < 1e-6, "{g:?}");
        // embedding gather
        let table = b.tensor_f32(&[0., 0., 1., 1., 2., 2.], &[3, 2]).unwrap();
        let ids = b.tensor_u32(&[2, 0], &[1, 2]).unwrap();
        let e = b.embedding(&ids, &table).unwrap();
        assert_eq!(b.shape(&e), vec![1, 2, 2]);
        assert_eq!(read(&b, &e), vec![2., 2., 0., 0.]);
    }

    #[test]
    fn ops_name_themselves_in_shape_errors() {
        let b = CpuBackend::new();
        let x = b.tensor_f32(&[1.; 6], &[2, 3]).unwrap();
        let w = b.tensor_f32(&[1.; 4], &[2, 2]).unwrap();
        assert!(
            b.linear(&x, &w, None)
                .unwrap_err()
                .to_string()
                .contains("shape mismatch in linear")
        );
        assert!(
            b.matmul(&x, &x)
                .unwrap_err()
                .to_string()
                .contains("shape mismatch in matmul")
        );
        let ids = b.tensor_u32(&[7], &[1]).unwrap();
        assert!(
            b.embedding(&ids, &w)
                .unwrap_err()
                .to_string()
                .contains("id 7 is out of range")
        );
        assert!(
            b.tensor_f32(&[1.; 5], &[2, 3])
                .unwrap_err()
                .to_string()
                .contains("5 values do not fill shape [2, 3]")
        );
    }

    #[test]
    fn fused_attention_equals_composed_attention() {
        let b = CpuBackend::new();
        let (nh, nkv, d, cap) = (6, 2, 16, 12);
        let k = b
            .tensor_f32(
                &crate::util::pseudo_random(nkv * cap * d, 1),
                &[1, nkv, cap, d],
            )
            .unwrap();
        let v = b
            .tensor_f32(
                &crate::util::pseudo_random(nkv * cap * d, 2),
                &[1, nkv, cap, d],
            )
            .unwrap();
        for (t, len) in [(1, 1), (1, 9), (3, 7), (5, 12)] {
            let q = b
                .tensor_f32(&crate::util::pseudo_random(nh * t * d, 3), &[1, nh, t, d])
                .unwrap();
            let fused = read(&b, &fused_attention(&q, &k, &v, len).unwrap());
            let composed = read(
                &b,
                &crate::backend::composed_attention(&b, &q, &k, &v, len).unwrap(),
            );
            assert_eq!(fused.len(), t * nh * d);
            for (x, y) in fused.iter().zip(&composed) {
                assert!((x - y).abs() < 1e-5, "t={t} len={len}: {x} vs {y}");
            }
        }
        let q = b.tensor_f32(&[0.0; 6 * 16], &[1, 6, 1, 16]).unwrap();
        let e = fused_attention(&q, &k, &v, 13).unwrap_err();
        assert!(e.to_string().contains("shape mismatch in attention"), "{e}");
    }

    #[test]
    fn fused_encoder_attention_equals_composed_on_real_tokens() {
        let (b, t) = (CpuBackend::new(), CpuBackend::for_training());
        let (batch, seq, heads, d) = (3, 7, 4, 8);
        let h = heads * d;
        let data = crate::util::pseudo_random(batch * seq * 3 * h, 9);
        // Lengths 7, 4 and 1: padding at the end, as dynamic padding leaves it.
        let mask: Vec<u32> = [7, 4, 1]
            .iter()
            .flat_map(|&n| (0..seq).map(move |j| u32::from(j < n)))
            .collect();
        let qkv = b.tensor_f32(&data, &[batch, seq, 3 * h]).unwrap();
        let fused = read(&b, &b.encoder_attention(&qkv, &mask, heads).unwrap());
        let qkv_t = t.tensor_f32(&data, &[batch, seq, 3 * h]).unwrap();
        let composed = read(&t, &t.encoder_attention(&qkv_t, &mask, heads).unwrap());
        assert_eq!(fused.len(), batch * seq * h);
        for (row, m) in mask.iter().enumerate() {
            if *m == 0 {
                continue; // padded queries: pooling ignores them
            }
            for i in row * h..(row + 1) * h {
                assert!(
                    (fused[i] - composed[i]).abs() < 1e-5,
                    "row {row}: {} vs {}",
                    fused[i],
                    composed[i]
                );
            }
        }
        // A single real token attends only to itself: output = its value.
        let v_at = |r: usize| &data[r * 3 * h + 2 * h..r * 3 * h + 3 * h];
        for (x, y) in fused[2 * seq * h..(2 * seq + 1) * h]
            .iter()
            .zip(v_at(2 * seq))
        {
            assert!((x - y).abs() < 1e-6);
        }
        let e = b.encoder_attention(&qkv, &mask[1..], heads).unwrap_err();
        assert!(
            e.to_string()
                .contains("shape mismatch in encoder_attention"),
            "{e}"
        );
    }

    #[test]
    fn matmul_matches_hand_computed() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let c = matmul_f32(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2, false).unwrap();
        assert_eq!(c, vec![19., 22., 43., 50.]);
        // Same B stored transposed.
        let c = matmul_f32(&[1., 2., 3., 4.], &[5., 7., 6., 8.], 2, 2, 2, true).unwrap();
        assert_eq!(c, vec![19., 22., 43., 50.]);
    }

    #[test]
    fn matmul_rejects_wrong_lengths() {
        let err = matmul_f32(&[1., 2., 3.], &[1., 2.], 2, 2, 1, false).unwrap_err();
        assert!(
            err.to_string().contains("A has 3 elements, expected 2×2"),
            "{err}"
        );
    }
}
