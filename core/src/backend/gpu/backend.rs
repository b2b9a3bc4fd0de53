//! [`GpuBackend`]: the op trait on wgpu.
//!
//! Ops do not run when called: each records one compute dispatch into a
//! pending command encoder, and the whole recording is submitted once, when a
//! tensor is read back (so a forward pass is one submission, not one per op).
//! Op outputs come from a buffer pool keyed by size class and go back to it
//! when the last tensor using them is dropped, so a steady decode loop stops
//! allocating storage after its first token. Uploads (weights, ids, masks)
//! get fresh buffers initialised at creation, which cannot race recorded work.
//! Tensors are contiguous, row-major, rank ≤ 4 for the strided kernels.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::kernels::Kernel;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::quant::GgmlType;

use super::options::GpuOptions;
use super::params::*;
use super::tensor::*;

/// Slots of the kernel-parameter buffer: each dispatch of a forward pass takes
/// the next one; when they run out the pending work is submitted and the ring
/// starts over (queue writes for the next submission are ordered after the
/// work already submitted).
pub(super) struct UniformRing {
    pub(super) buffer: wgpu::Buffer,
    pub(super) stride: u64,
    pub(super) next: u64,
}

/// Parameter slots in the ring (a SmolLM2 decode step takes about 300).
pub(super) const UNIFORM_SLOTS: u64 = 2048;
/// The largest parameter block a kernel takes, in bytes.
pub(super) const MAX_PARAMS: u64 = 64;

pub(super) struct Inner {
    pub(super) ctx: GpuContext,
    pub(super) pool: Arc<Pool>,
    pub(super) pending: Mutex<Option<wgpu::CommandEncoder>>,
    pub(super) max_binding: u64,
    /// Weight matrices are stored as f16.
    pub(super) f16: bool,
    /// Kernel parameters: one uniform buffer of fixed slots, filled with
    /// `queue.write_buffer`, so dispatches allocate nothing.
    pub(super) uniforms: Mutex<UniformRing>,
    /// A 4-byte buffer bound where a kernel's optional input is unused (the
    /// attention mask of causal attention).
    pub(super) unused: wgpu::Buffer,
}

/// The GPU backend (wgpu: Vulkan, Metal, DX12, WebGPU).
#[derive(Clone)]
pub struct GpuBackend {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBackend({})", self.inner.ctx.adapter())
    }
}

impl GpuBackend {
    /// Opens the best GPU adapter (see [`GpuContext::new`]) and compiles every
    /// kernel, with the default [`GpuOptions`] (f16 weights where the
    /// adapter has shader-f16, the adapter's own binding limit); a missing
    /// adapter or a shader that does not compile is an error. Core reads no
    /// environment: callers pass other settings with [`Self::with_options`].
    pub async fn new() -> Result<Self> {
        Self::new_with(GpuOptions::default()).await
    }

    /// Opens the best GPU adapter and compiles every kernel, with `options`.
    pub async fn new_with(options: GpuOptions) -> Result<Self> {
        let ctx = GpuContext::new().await?;
        Self::with_options(ctx, options).await
    }

    /// The backend on an existing context.
    pub async fn from_context(ctx: GpuContext) -> Result<Self> {
        Self::with_binding_limit(ctx, u64::MAX).await
    }

    /// The backend on an existing context, refusing any storage buffer
    /// larger than `bytes` even where the adapter allows more: with
    /// 128 MiB (WebGPU's default, what phones give) a model that would not
    /// load on a phone fails here too, with the same message.
    pub async fn with_binding_limit(ctx: GpuContext, bytes: u64) -> Result<Self> {
        Self::with_options(
            ctx,
            GpuOptions {
                max_binding: bytes,
                ..GpuOptions::default()
            },
        )
        .await
    }

    /// The backend on an existing context with `options`.
    pub async fn with_options(ctx: GpuContext, options: GpuOptions) -> Result<Self> {
        ctx.compile_all().await?;
        let f16 = options.f16_weights && ctx.has_f16();
        if f16 {
            ctx.compile(Kernel::F16_WEIGHTS).await?;
        }
        let max_binding = ctx
            .device
            .limits()
            .max_storage_buffer_binding_size
            .min(options.max_binding);
        let unused = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("cairn unused binding"),
                contents: &[0u8; 4],
                usage: wgpu::BufferUsages::STORAGE,
            });
        let stride = u64::from(ctx.device.limits().min_uniform_buffer_offset_alignment)
            .max(MAX_PARAMS)
            .next_power_of_two();
        let uniforms = Mutex::new(UniformRing {
            buffer: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("cairn params"),
                size: stride * UNIFORM_SLOTS,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            stride,
            next: 0,
        });
        Ok(GpuBackend {
            inner: Arc::new(Inner {
                uniforms,
                f16,
                unused,
                ctx,
                pool: Arc::default(),
                pending: Mutex::new(None),
                max_binding,
            }),
        })
    }

    /// Whether weight matrices are kept in f16 (see [`GpuOptions::f16_weights`]).
    pub fn f16_weights(&self) -> bool {
        self.inner.f16
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &super::AdapterSummary {
        self.inner.ctx.adapter()
    }

    pub(super) fn device(&self) -> &wgpu::Device {
        &self.inner.ctx.device
    }

    pub(super) fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.inner.max_binding {
            return Err(Error::Backend(format!(
                "{what} needs a {bytes}-byte storage buffer, above this adapter's limit of {} bytes ({}); use the CPU backend for this model",
                self.inner.max_binding,
                self.adapter()
            )));
        }
        Ok(())
    }

    /// An output buffer of at least `n` elements from the pool.
    pub(super) fn output(
        &self,
        op: &'static str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<GpuTensor> {
        let n: usize = shape.iter().product();
        let bytes = (n.max(1) * 4) as u64;
        self.check_size(op, bytes)?;
        let class = if bytes <= 1 << 20 {
            bytes.next_power_of_two()
        } else {
            bytes.div_ceil(1 << 20) << 20
        };
        let reused = self
            .inner
            .pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&class)
            .and_then(Vec::pop);
        let buf = reused.unwrap_or_else(|| {
            self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(op),
                size: class,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        Ok(GpuTensor {
            storage: Arc::new(Storage {
                buf: Some(buf),
                class,
                pool: Some(self.inner.pool.clone()),
            }),
            shape: shape.to_vec(),
            dtype,
            max_id: None,
            parts: None,
        })
    }

    pub(super) fn upload(&self, bytes: &[u8], shape: &[usize], dtype: DType) -> Result<GpuTensor> {
        self.check_size("upload", bytes.len() as u64)?;
        let contents: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
        let buf = self
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("cairn upload"),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            });
        Ok(GpuTensor {
            storage: Arc::new(Storage {
                buf: Some(buf),
                class: 0,
                pool: None,
            }),
            shape: shape.to_vec(),
            dtype,
            max_id: None,
            parts: None,
        })
    }

    /// A tensor from host data: f16 when `f16`, and when `split` a 2-D matrix
    /// over the binding limit split into row ranges that each fit.
    pub(super) fn weight(
        &self,
        data: &[f32],
        shape: &[usize],
        f16: bool,
        split: bool,
    ) -> Result<GpuTensor> {
        check_count("tensor_f32", data.len(), shape)?;
        let elem = if f16 { 2 } else { 4 };
        let upload = |d: &[f32], shape: &[usize]| -> Result<GpuTensor> {
            if !f16 {
                return self.upload(bytemuck::cast_slice(d), shape, DType::F32);
            }
            let mut halves: Vec<half::f16> = d.iter().map(|&v| half::f16::from_f32(v)).collect();
            if halves.len() % 2 == 1 {
                halves.push(half::f16::ZERO);
            }
            self.upload(bytemuck::cast_slice(&halves), shape, DType::F16)
        };
        let bytes = (data.len() * elem) as u64;
        let ([rows, cols], true) = (shape, split) else {
            return upload(data, shape);
        };
        if bytes <= self.inner.max_binding || *cols == 0 {
            return upload(data, shape);
        }
        let per_part = (self.inner.max_binding / (cols * elem) as u64) as usize;
        if per_part == 0 {
            self.check_size("one row of a weight matrix", (cols * elem) as u64)?;
        }
        let mut parts = Vec::with_capacity(rows.div_ceil(per_part));
        for first in (0..*rows).step_by(per_part) {
            let n = per_part.min(rows - first);
            parts.push(upload(
                &data[first * cols..(first + n) * cols],
                &[n, *cols],
            )?);
        }
        let mut whole = parts[0].clone();
        whole.shape = shape.to_vec();
        whole.parts = Some(Arc::new(parts));
        Ok(whole)
    }

    /// Records one dispatch of `kernel` with `buffers` bound at 0, 1, … and
    /// the uniform `params` bound at `params_at`.
    pub(super) fn dispatch(
        &self,
        kernel: Kernel,
        buffers: &[&wgpu::Buffer],
        params: &[u8],
        params_at: u32,
        groups: (u32, u32, u32),
    ) {
        let device = self.device();
        debug_assert!(params.len() as u64 <= MAX_PARAMS && params.len().is_multiple_of(16));
        let mut ring = self
            .inner
            .uniforms
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if ring.next == UNIFORM_SLOTS {
            self.flush();
            ring.next = 0;
        }
        let offset = ring.next * ring.stride;
        ring.next += 1;
        self.inner
            .ctx
            .queue
            .write_buffer(&ring.buffer, offset, params);
        let uniform = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &ring.buffer,
            offset,
            size: std::num::NonZeroU64::new(params.len() as u64),
        });
        let pipeline = self.inner.ctx.pipeline(kernel);
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = Vec::with_capacity(buffers.len() + 1);
        let mut slot = 0u32;
        let mut it = buffers.iter();
        while entries.len() < buffers.len() + 1 {
            let resource = if slot == params_at {
                uniform.clone()
            } else {
                match it.next() {
                    Some(b) => b.as_entire_binding(),
                    None => break,
                }
            };
            entries.push(wgpu::BindGroupEntry {
                binding: slot,
                resource,
            });
            slot += 1;
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file_name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.record(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.file_name()),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        });
    }

    /// Runs `f` on the pending command encoder, starting one if needed.
    pub(super) fn record(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        f(pending.get_or_insert_with(|| {
            self.device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("cairn forward"),
                })
        }));
    }

    /// Submits everything recorded so far.
    pub fn flush(&self) {
        let encoder = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(e) = encoder {
            self.inner.ctx.queue.submit(Some(e.finish()));
        }
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;

    type QMatrix = GpuQMatrix;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn tensor_f32(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        self.weight(data, shape, false, false)
    }

    fn weight_f32(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        self.weight(data, shape, self.inner.f16 && shape.len() == 2, true)
    }

    fn tensor_u32(&self, data: &[u32], shape: &[usize]) -> Result<GpuTensor> {
        check_count("tensor_u32", data.len(), shape)?;
        let mut t = self.upload(bytemuck::cast_slice(data), shape, DType::U32)?;
        t.max_id = data.iter().copied().max();
        Ok(t)
    }

    async fn read_f32(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        self.op_read_f32(t).await
    }

    fn shape(&self, t: &GpuTensor) -> Vec<usize> {
        t.shape.clone()
    }

    fn reshape(&self, t: &GpuTensor, shape: &[usize]) -> Result<GpuTensor> {
        self.op_reshape(t, shape)
    }

    fn transpose(&self, t: &GpuTensor, d0: usize, d1: usize) -> Result<GpuTensor> {
        self.op_transpose(t, d0, d1)
    }

    fn narrow(&self, t: &GpuTensor, dim: usize, start: usize, len: usize) -> Result<GpuTensor> {
        self.op_narrow(t, dim, start, len)
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.op_matmul(a, b)
    }

    fn linear(&self, x: &GpuTensor, w: &GpuTensor, bias: Option<&GpuTensor>) -> Result<GpuTensor> {
        self.op_linear(x, w, bias)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.op_add(a, b)
    }

    fn mul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.op_mul(a, b)
    }

    fn scale(&self, t: &GpuTensor, s: f32) -> Result<GpuTensor> {
        self.op_scale(t, s)
    }

    fn gelu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.op_gelu(t)
    }

    fn layer_norm(
        &self,
        x: &GpuTensor,
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
    ) -> Result<GpuTensor> {
        self.op_layer_norm(x, weight, bias, eps)
    }

    fn max_dim(&self, t: &GpuTensor, dim: usize) -> Result<GpuTensor> {
        self.op_max_dim(t, dim)
    }

    fn softmax_last(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.op_softmax_last(t)
    }

    fn embedding(&self, ids: &GpuTensor, table: &GpuTensor) -> Result<GpuTensor> {
        self.op_embedding(ids, table)
    }

    fn cat(&self, parts: &[GpuTensor], dim: usize) -> Result<GpuTensor> {
        self.op_cat(parts, dim)
    }

    fn zeros(&self, shape: &[usize]) -> Result<GpuTensor> {
        self.op_zeros(shape)
    }

    fn write_slice(
        &self,
        dst: &GpuTensor,
        src: &GpuTensor,
        dim: usize,
        start: usize,
    ) -> Result<()> {
        self.op_write_slice(dst, src, dim, start)
    }

    fn matmul_t(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.op_matmul_t(a, b)
    }

    fn qmatrix(
        &self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        cols: usize,
        name: &str,
    ) -> Result<GpuQMatrix> {
        self.op_qmatrix(ty, data, rows, cols, name)
    }

    fn qmatrix_shape(&self, w: &GpuQMatrix) -> (usize, usize) {
        self.op_qmatrix_shape(w)
    }

    fn qlinear(&self, x: &GpuTensor, w: &GpuQMatrix) -> Result<GpuTensor> {
        self.op_qlinear(x, w)
    }

    fn rms_norm(&self, x: &GpuTensor, weight: &GpuTensor, eps: f32) -> Result<GpuTensor> {
        self.op_rms_norm(x, weight, eps)
    }

    fn silu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.op_silu(t)
    }

    fn tanh(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.op_tanh(t)
    }

    fn relu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.op_relu(t)
    }

    fn rope_pairs(&self, x: &GpuTensor, cos: &GpuTensor, sin: &GpuTensor) -> Result<GpuTensor> {
        self.op_rope_pairs(x, cos, sin)
    }

    async fn read_argmax(&self, t: &GpuTensor) -> Result<Vec<u32>> {
        self.op_read_argmax(t).await
    }

    fn attention(
        &self,
        q: &GpuTensor,
        k_cache: &GpuTensor,
        v_cache: &GpuTensor,
        len: usize,
    ) -> Result<GpuTensor> {
        self.op_attention(q, k_cache, v_cache, len)
    }

    fn encoder_attention(&self, qkv: &GpuTensor, mask: &[u32], heads: usize) -> Result<GpuTensor> {
        self.op_encoder_attention(qkv, mask, heads)
    }
}
