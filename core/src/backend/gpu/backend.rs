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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::kernels::Kernel;
use super::matmul::{Params as MatmulParams, TILE};
use super::readback::read_f32;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::quant::GgmlType;

/// Element type of a GPU tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    U32,
    /// Weights only ([`Backend::weight_f32`] on an adapter with shader-f16).
    F16,
}

/// Free buffers by size class.
#[derive(Default)]
struct Pool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

/// A buffer that returns to its pool when dropped (pooled outputs) or is
/// freed (uploads).
struct Storage {
    buf: Option<wgpu::Buffer>,
    class: u64,
    pool: Option<Arc<Pool>>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let (Some(pool), Some(buf)) = (&self.pool, self.buf.take()) {
            pool.free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(self.class)
                .or_default()
                .push(buf);
        }
    }
}

impl Storage {
    fn buffer(&self) -> &wgpu::Buffer {
        // Only `drop` takes the buffer out.
        self.buf
            .as_ref()
            .expect("storage buffer present until drop")
    }
}

/// A tensor on the GPU: a (shared) buffer, its shape and element type.
#[derive(Clone)]
pub struct GpuTensor {
    storage: Arc<Storage>,
    shape: Vec<usize>,
    dtype: DType,
    /// For id tensors uploaded from the host: the largest id (checked by
    /// `embedding` without reading the GPU).
    max_id: Option<u32>,
    /// A weight matrix over the storage-binding limit: its row ranges, each
    /// its own buffer (`storage` is then the first one's). Only `linear`,
    /// `embedding` and reads take such a tensor; every other op refuses it.
    parts: Option<Arc<Vec<GpuTensor>>>,
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuTensor({:?}, {:?}", self.dtype, self.shape)?;
        if let Some(parts) = &self.parts {
            write!(f, ", split into {} row ranges", parts.len())?;
        }
        write!(f, ")")
    }
}

impl GpuTensor {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
    fn buf(&self) -> &wgpu::Buffer {
        self.storage.buffer()
    }
    /// The row ranges of a weight matrix: itself when it is not split.
    fn row_parts(&self) -> Vec<GpuTensor> {
        match &self.parts {
            Some(p) => p.to_vec(),
            None => vec![self.clone()],
        }
    }
}

/// Slots of the kernel-parameter buffer: each dispatch of a forward pass takes
/// the next one; when they run out the pending work is submitted and the ring
/// starts over (queue writes for the next submission are ordered after the
/// work already submitted).
struct UniformRing {
    buffer: wgpu::Buffer,
    stride: u64,
    next: u64,
}

/// Parameter slots in the ring (a SmolLM2 decode step takes about 300).
const UNIFORM_SLOTS: u64 = 2048;
/// The largest parameter block a kernel takes, in bytes.
const MAX_PARAMS: u64 = 64;

/// Options of [`GpuBackend::with_options`].
#[derive(Debug, Clone, Copy)]
pub struct GpuOptions {
    /// Largest storage buffer to bind, capped by the adapter's limit. Weight
    /// matrices above it are split into row ranges; any other tensor above it
    /// is an error naming the op. WebGPU guarantees 128 MiB, which phones give.
    pub max_binding: u64,
    /// Store weight matrices ([`Backend::weight_f32`]) as f16 when the
    /// adapter has shader-f16 (half the memory and bandwidth; arithmetic stays
    /// f32). Without shader-f16 weights stay f32 whatever this says.
    pub f16_weights: bool,
}

impl GpuOptions {
    /// The defaults, overridden by `CAIRN_GPU_F16=0` (f32 weights) and
    /// `CAIRN_GPU_MAX_BINDING=<bytes>` (e.g. 134217728 to load models as a
    /// phone's WebGPU would). Unset or unreadable values keep the defaults
    /// (in a browser there is no environment).
    pub fn from_env() -> Self {
        let mut o = GpuOptions::default();
        if let Ok(v) = std::env::var("CAIRN_GPU_F16") {
            o.f16_weights = !matches!(v.trim(), "0" | "off" | "false");
        }
        if let Some(bytes) = std::env::var("CAIRN_GPU_MAX_BINDING")
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            o.max_binding = bytes;
        }
        o
    }
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            max_binding: u64::MAX,
            f16_weights: true,
        }
    }
}

/// A weight matrix for [`Backend::qlinear`]. Q8_0, Q4_0 and Q4_1 stay in
/// their block format on the GPU (repacked into aligned scale / min / quant
/// arrays, `shaders/qmatmul.wgsl` dequantizes in registers); other block
/// types are expanded to f32 on upload.
#[derive(Debug, Clone)]
pub struct GpuQMatrix {
    kind: QKind,
    rows: usize,
    cols: usize,
}

#[derive(Debug, Clone)]
enum QKind {
    /// `ty` is the qmatmul.wgsl type code; `parts` are row ranges, more than
    /// one when the matrix is over the storage-binding limit.
    Blocks {
        ty: u32,
        parts: Vec<QPart>,
    },
    Dense(GpuTensor),
}

/// Rows `first .. first + rows` of a quantized matrix, repacked.
#[derive(Debug, Clone)]
struct QPart {
    first: usize,
    rows: usize,
    scales: GpuTensor,
    mins: GpuTensor,
    quants: GpuTensor,
}

struct Inner {
    ctx: GpuContext,
    pool: Arc<Pool>,
    pending: Mutex<Option<wgpu::CommandEncoder>>,
    max_binding: u64,
    /// Weight matrices are stored as f16.
    f16: bool,
    /// Kernel parameters: one uniform buffer of fixed slots, filled with
    /// `queue.write_buffer`, so dispatches allocate nothing.
    uniforms: Mutex<UniformRing>,
    /// A 4-byte buffer bound where a kernel's optional input is unused (the
    /// attention mask of causal attention).
    unused: wgpu::Buffer,
}

/// The GPU backend (wgpu: Vulkan, Metal, DX12, WebGPU).
#[derive(Clone)]
pub struct GpuBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBackend({})", self.inner.ctx.adapter())
    }
}

/// Up to this many rows, `A · Bᵀ` runs as matrix-vector products
/// (`shaders/matvec_f32.wgsl`); from here on the tiled kernel wins.
const MATVEC_MAX_ROWS: usize = 4;

/// Input rows per workgroup of `shaders/qmatmul.wgsl`.
const QMATMUL_ROWS: usize = 8;

/// Query rows per workgroup of `shaders/attention.wgsl`, and the largest
/// head dimension it takes (larger heads use the composed ops).
const ATTN_ROWS: usize = 8;
const ATTN_MAX_D: usize = 128;

/// Groups for `n` one-element-per-invocation items (256 per group), spread
/// over two dimensions to stay under 65,535 groups per dimension.
fn groups_1d(n: usize, per_group: usize) -> (u32, u32, u32) {
    let g = n.div_ceil(per_group).max(1);
    let x = g.min(65_535);
    (x as u32, g.div_ceil(x) as u32, 1)
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Pads a shape/stride list to rank 4 (leading 1s / 0 strides).
fn pad4(op: &'static str, v: &[usize], fill: usize) -> Result<[u32; 4]> {
    if v.len() > 4 {
        return Err(Error::Shape {
            op,
            detail: format!("rank {} is above the GPU kernels' 4", v.len()),
        });
    }
    let mut out = [fill as u32; 4];
    for (i, &x) in v.iter().enumerate() {
        out[4 - v.len() + i] = u32::try_from(x).map_err(|_| Error::Shape {
            op,
            detail: format!("{x} exceeds u32"),
        })?;
    }
    Ok(out)
}

fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Shape {
        op,
        detail: format!("{v} exceeds u32"),
    })
}

fn bytes_of<T: bytemuck::Pod>(v: &T) -> Vec<u8> {
    bytemuck::bytes_of(v).to_vec()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Shape4Params {
    shape: [u32; 4],
    s1: [u32; 4],
    s2: [u32; 4],
    n: u32,
    a: u32,
    b: u32,
    c: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Quad {
    a: u32,
    b: u32,
    c: u32,
    d: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct QuadF {
    a: u32,
    b: u32,
    f: f32,
    d: u32,
}

/// Uniforms of `shaders/qmatmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct QMatmulParams {
    n: u32,
    k: u32,
    ty: u32,
    rows: u32,
    out_stride: u32,
    out_offset: u32,
    pad: [u32; 2],
}

/// Uniforms of `shaders/attention.wgsl` (element strides; see its header).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttentionParams {
    t: u32,
    keys: u32,
    d: u32,
    rep: u32,
    heads: u32,
    causal: u32,
    scale: f32,
    q_off: u32,
    q_b: u32,
    q_h: u32,
    q_t: u32,
    k_off: u32,
    k_b: u32,
    k_h: u32,
    k_t: u32,
    v_off: u32,
}

impl GpuBackend {
    /// Opens the best GPU adapter (see [`GpuContext::new`]) and compiles every
    /// kernel, with [`GpuOptions::from_env`]; a missing adapter or a shader
    /// that does not compile is an error.
    pub async fn new() -> Result<Self> {
        let ctx = GpuContext::new().await?;
        Self::with_options(ctx, GpuOptions::from_env()).await
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

    fn device(&self) -> &wgpu::Device {
        &self.inner.ctx.device
    }

    fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
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
    fn output(&self, op: &'static str, shape: &[usize], dtype: DType) -> Result<GpuTensor> {
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

    fn upload(&self, bytes: &[u8], shape: &[usize], dtype: DType) -> Result<GpuTensor> {
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
    fn weight(&self, data: &[f32], shape: &[usize], f16: bool, split: bool) -> Result<GpuTensor> {
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
    fn dispatch(
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
    fn record(&self, f: impl FnOnce(&mut wgpu::CommandEncoder)) {
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

    /// Copies `shape` elements from `src` to `dst`, each given as
    /// (tensor, element strides, element offset).
    fn copy_strided(
        &self,
        shape: &[usize],
        (src, src_strides, src_offset): (&GpuTensor, &[usize], usize),
        (dst, dst_strides, dst_offset): (&GpuTensor, &[usize], usize),
    ) -> Result<()> {
        let n: usize = shape.iter().product();
        if n == 0 {
            return Ok(());
        }
        let p = Shape4Params {
            shape: pad4("copy", shape, 1)?,
            s1: pad4("copy", src_strides, 0)?,
            s2: pad4("copy", dst_strides, 0)?,
            n: u32_of("copy", n)?,
            a: u32_of("copy", src_offset)?,
            b: u32_of("copy", dst_offset)?,
            c: 0,
        };
        self.dispatch(
            Kernel::CopyStrided,
            &[src.buf(), dst.buf()],
            &bytes_of(&p),
            2,
            groups_1d(n, 256),
        );
        Ok(())
    }

    fn f32_only(op: &'static str, ts: &[&GpuTensor]) -> Result<()> {
        if let Some(t) = ts.iter().find(|t| t.parts.is_some()) {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "{t:?} is a weight matrix split over the storage-binding limit; only linear and embedding take it"
                ),
            });
        }
        if let Some(t) = ts.iter().find(|t| t.dtype != DType::F32) {
            return Err(Error::Shape {
                op,
                detail: format!("expects f32 tensors, got {t:?}"),
            });
        }
        Ok(())
    }

    fn unary(&self, t: &GpuTensor, op: u32, s: f32) -> Result<GpuTensor> {
        Self::f32_only("unary", &[t])?;
        let out = self.output("unary", &t.shape, DType::F32)?;
        let n = t.len();
        if n > 0 {
            let p = QuadF {
                a: u32_of("unary", n)?,
                b: op,
                f: s,
                d: 0,
            };
            self.dispatch(
                Kernel::Unary,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                groups_1d(n, 256),
            );
        }
        Ok(out)
    }

    fn binary(
        &self,
        op_name: &'static str,
        a: &GpuTensor,
        b: &GpuTensor,
        op: u32,
    ) -> Result<GpuTensor> {
        Self::f32_only(op_name, &[a, b])?;
        let rank = a.shape.len().max(b.shape.len());
        let pad = |s: &[usize]| -> Vec<usize> {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (sa, sb) = (pad(&a.shape), pad(&b.shape));
        let mut out_shape = Vec::with_capacity(rank);
        for (&x, &y) in sa.iter().zip(&sb) {
            if x != y && x != 1 && y != 1 {
                return Err(Error::Shape {
                    op: op_name,
                    detail: format!("cannot broadcast {:?} with {:?}", a.shape, b.shape),
                });
            }
            out_shape.push(x.max(y));
        }
        let strides = |s: &[usize]| -> Vec<usize> {
            contiguous_strides(s)
                .into_iter()
                .zip(s.iter().zip(&out_shape))
                .map(|(st, (&d, &o))| if d == 1 && o != 1 { 0 } else { st })
                .collect()
        };
        let out = self.output(op_name, &out_shape, DType::F32)?;
        let n = out.len();
        if n > 0 {
            let p = Shape4Params {
                shape: pad4(op_name, &out_shape, 1)?,
                s1: pad4(op_name, &strides(&sa), 0)?,
                s2: pad4(op_name, &strides(&sb), 0)?,
                n: u32_of(op_name, n)?,
                a: op,
                b: 0,
                c: 0,
            };
            self.dispatch(
                Kernel::Binary,
                &[a.buf(), b.buf(), out.buf()],
                &bytes_of(&p),
                3,
                groups_1d(n, 256),
            );
        }
        Ok(out)
    }

    /// `[.., m, k] · [.., k, n]` (or `· [.., n, k]ᵀ`), batch dimensions equal
    /// or one side unbatched, plus an optional bias over `n`.
    fn matmul_impl(
        &self,
        op: &'static str,
        a: &GpuTensor,
        b: &GpuTensor,
        transpose_b: bool,
        bias: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        // f16 weights are a linear layer's B (transposed, unbatched).
        if b.dtype == DType::F16 && transpose_b && b.shape.len() == 2 && b.parts.is_none() {
            Self::f32_only(op, &[a])?;
        } else {
            Self::f32_only(op, &[a, b])?;
        }
        let f16 = b.dtype == DType::F16;
        let (ad, bd) = (&a.shape, &b.shape);
        let bad = || Error::Shape {
            op,
            detail: format!(
                "cannot multiply {ad:?} by {}{bd:?}",
                if transpose_b { "the transpose of " } else { "" }
            ),
        };
        if ad.len() < 2 || bd.len() < 2 {
            return Err(bad());
        }
        let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
        let (kb, n) = if transpose_b {
            (bd[bd.len() - 1], bd[bd.len() - 2])
        } else {
            (bd[bd.len() - 2], bd[bd.len() - 1])
        };
        if k != kb {
            return Err(bad());
        }
        let (lead_a, lead_b) = (&ad[..ad.len() - 2], &bd[..bd.len() - 2]);
        let (ba, bb): (usize, usize) = (lead_a.iter().product(), lead_b.iter().product());
        let (batch, lead) = if bb == 1 || (ba == bb && lead_a == lead_b) {
            (ba, lead_a.to_vec())
        } else if ba == 1 {
            (bb, lead_b.to_vec())
        } else {
            return Err(bad());
        };
        if let Some(bias) = bias
            && bias.shape != [n]
        {
            return Err(Error::Shape {
                op,
                detail: format!("bias {:?} does not fit {n} outputs", bias.shape),
            });
        }
        let mut out_shape = lead;
        out_shape.extend([m, n]);
        let out = self.output(op, &out_shape, DType::F32)?;
        if out.len() == 0 {
            return Ok(out);
        }
        if batch > 65_535 {
            return Err(Error::Shape {
                op,
                detail: format!("batch {batch} exceeds 65,535 dispatch groups"),
            });
        }
        let p = MatmulParams {
            m: u32_of(op, m)?,
            n: u32_of(op, n)?,
            k: u32_of(op, k)?,
            transpose_b: transpose_b as u32,
            a_stride: if ba == 1 { 0 } else { u32_of(op, m * k)? },
            b_stride: if bb == 1 { 0 } else { u32_of(op, k * n)? },
            has_bias: bias.is_some() as u32,
            pad: 0,
        };
        let bias_buf = bias.map(GpuTensor::buf).unwrap_or(b.buf());
        if transpose_b && m <= MATVEC_MAX_ROWS && m * batch <= 65_535 {
            // Few rows against a weight: one workgroup per output, no idle tile rows.
            let (x, y, _) = groups_1d(n, 16);
            self.dispatch(
                if f16 {
                    Kernel::MatvecF16w
                } else {
                    Kernel::MatvecF32
                },
                &[a.buf(), b.buf(), out.buf(), bias_buf],
                &bytes_of(&p),
                3,
                (x, y, (m * batch) as u32),
            );
            return Ok(out);
        }
        self.dispatch(
            if f16 {
                Kernel::MatmulF16w
            } else {
                Kernel::MatmulF32
            },
            &[a.buf(), b.buf(), out.buf(), bias_buf],
            &bytes_of(&p),
            3,
            (
                (n as u32).div_ceil(TILE),
                (m as u32).div_ceil(TILE),
                batch as u32,
            ),
        );
        Ok(out)
    }

    /// Records `shaders/attention.wgsl` over `rep · t` query rows per KV head.
    /// `mask` is the encoder's padding mask (`None`: causal).
    fn fused_attention(
        &self,
        (q, k, v): (&GpuTensor, &GpuTensor, &GpuTensor),
        p: AttentionParams,
        batch: usize,
        kv_heads: usize,
        mask: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let (t, d, heads) = (p.t as usize, p.d as usize, p.heads as usize);
        let out = self.output("attention", &[batch, t, heads * d], DType::F32)?;
        let tiles = (p.rep as usize * t).div_ceil(ATTN_ROWS);
        if out.len() == 0 {
            return Ok(out);
        }
        if tiles > 65_535 || kv_heads > 65_535 || batch > 65_535 {
            return Err(Error::Shape {
                op: "attention",
                detail: format!(
                    "{tiles} query tiles × {kv_heads} KV heads × batch {batch} exceed 65,535 dispatch groups per dimension"
                ),
            });
        }
        let mask_buf = mask.map(GpuTensor::buf).unwrap_or(&self.inner.unused);
        self.dispatch(
            Kernel::Attention,
            &[q.buf(), k.buf(), v.buf(), mask_buf, out.buf()],
            &bytes_of(&p),
            5,
            (tiles as u32, kv_heads as u32, batch as u32),
        );
        Ok(out)
    }

    fn rows_groups(rows: usize) -> (u32, u32, u32) {
        groups_1d(rows, 1)
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
        self.flush();
        if let Some(parts) = &t.parts {
            let mut all = Vec::with_capacity(t.len());
            for p in parts.iter() {
                all.extend(Box::pin(self.read_f32(p)).await?);
            }
            return Ok(all);
        }
        let n = t.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let words = match t.dtype {
            DType::F16 => n.div_ceil(2),
            DType::F32 | DType::U32 => n,
        };
        let raw = read_f32(
            self.device(),
            &self.inner.ctx.queue,
            t.buf(),
            "tensor",
            (words * 4) as u64,
        )
        .await?;
        Ok(match t.dtype {
            DType::F32 => raw,
            DType::U32 => raw.iter().map(|v| v.to_bits() as f32).collect(),
            DType::F16 => bytemuck::cast_slice::<f32, half::f16>(&raw)[..n]
                .iter()
                .map(|h| h.to_f32())
                .collect(),
        })
    }

    fn shape(&self, t: &GpuTensor) -> Vec<usize> {
        t.shape.clone()
    }

    fn reshape(&self, t: &GpuTensor, shape: &[usize]) -> Result<GpuTensor> {
        check_count("reshape", t.len(), shape)?;
        let mut r = t.clone();
        r.shape = shape.to_vec();
        Ok(r)
    }

    fn transpose(&self, t: &GpuTensor, d0: usize, d1: usize) -> Result<GpuTensor> {
        let rank = t.shape.len();
        if d0 >= rank || d1 >= rank {
            return Err(Error::Shape {
                op: "transpose",
                detail: format!("dims {d0}, {d1} of a rank-{rank} tensor"),
            });
        }
        Self::f32_only("transpose", &[t])?;
        let mut shape = t.shape.clone();
        shape.swap(d0, d1);
        let mut src = contiguous_strides(&t.shape);
        src.swap(d0, d1);
        let out = self.output("transpose", &shape, DType::F32)?;
        self.copy_strided(&shape, (t, &src, 0), (&out, &contiguous_strides(&shape), 0))?;
        Ok(out)
    }

    fn narrow(&self, t: &GpuTensor, dim: usize, start: usize, len: usize) -> Result<GpuTensor> {
        if dim >= t.shape.len() || start + len > t.shape[dim] {
            return Err(Error::Shape {
                op: "narrow",
                detail: format!("{start}..{} of dim {dim} in {:?}", start + len, t.shape),
            });
        }
        Self::f32_only("narrow", &[t])?;
        let mut shape = t.shape.clone();
        shape[dim] = len;
        let src = contiguous_strides(&t.shape);
        let out = self.output("narrow", &shape, DType::F32)?;
        self.copy_strided(
            &shape,
            (t, &src, start * src[dim]),
            (&out, &contiguous_strides(&shape), 0),
        )?;
        Ok(out)
    }

    fn matmul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.matmul_impl("matmul", a, b, false, None)
    }

    fn linear(&self, x: &GpuTensor, w: &GpuTensor, bias: Option<&GpuTensor>) -> Result<GpuTensor> {
        let inner = *x.shape.last().unwrap_or(&0);
        if w.shape.len() != 2 || w.shape[1] != inner {
            return Err(Error::Shape {
                op: "linear",
                detail: format!(
                    "input {:?} does not fit weight {:?} (expected [out, {inner}])",
                    x.shape, w.shape
                ),
            });
        }
        let rows = x.len() / inner.max(1);
        let x2 = self.reshape(x, &[rows, inner])?;
        let y = match &w.parts {
            None => self.matmul_impl("linear", &x2, w, true, bias)?,
            Some(parts) => {
                // One product per row range of the weight, joined along the outputs.
                let mut ys = Vec::with_capacity(parts.len());
                let mut first = 0;
                for p in parts.iter() {
                    let n = p.shape[0];
                    let b = bias.map(|b| self.narrow(b, 0, first, n)).transpose()?;
                    ys.push(self.matmul_impl("linear", &x2, p, true, b.as_ref())?);
                    first += n;
                }
                self.cat(&ys, 1)?
            }
        };
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = w.shape[0];
        }
        self.reshape(&y, &shape)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.binary("add", a, b, 0)
    }

    fn mul(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.binary("mul", a, b, 1)
    }

    fn scale(&self, t: &GpuTensor, s: f32) -> Result<GpuTensor> {
        self.unary(t, 0, s)
    }

    fn gelu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 1, 0.0)
    }

    fn layer_norm(
        &self,
        x: &GpuTensor,
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
    ) -> Result<GpuTensor> {
        Self::f32_only("layer_norm", &[x, weight, bias])?;
        let cols = *x.shape.last().unwrap_or(&0);
        if weight.shape != [cols] || bias.shape != [cols] {
            return Err(Error::Shape {
                op: "layer_norm",
                detail: format!(
                    "weight {:?} / bias {:?} do not fit input {:?}",
                    weight.shape, bias.shape, x.shape
                ),
            });
        }
        let out = self.output("layer_norm", &x.shape, DType::F32)?;
        let rows = x.len() / cols.max(1);
        if rows > 0 {
            let p = QuadF {
                a: u32_of("layer_norm", rows)?,
                b: u32_of("layer_norm", cols)?,
                f: eps,
                d: 0,
            };
            self.dispatch(
                Kernel::LayerNorm,
                &[x.buf(), weight.buf(), bias.buf(), out.buf()],
                &bytes_of(&p),
                4,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }

    fn max_dim(&self, t: &GpuTensor, dim: usize) -> Result<GpuTensor> {
        Self::f32_only("max_dim", &[t])?;
        if dim >= t.shape.len() {
            return Err(Error::Shape {
                op: "max_dim",
                detail: format!("dim {dim} of {:?}", t.shape),
            });
        }
        let outer: usize = t.shape[..dim].iter().product();
        let inner: usize = t.shape[dim + 1..].iter().product();
        let mut shape = t.shape.clone();
        shape.remove(dim);
        let out = self.output("max_dim", &shape, DType::F32)?;
        if outer * inner > 0 {
            let p = Quad {
                a: u32_of("max_dim", outer)?,
                b: u32_of("max_dim", t.shape[dim])?,
                c: u32_of("max_dim", inner)?,
                d: 0,
            };
            self.dispatch(
                Kernel::MaxReduce,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                groups_1d(outer * inner, 256),
            );
        }
        Ok(out)
    }

    fn softmax_last(&self, t: &GpuTensor) -> Result<GpuTensor> {
        Self::f32_only("softmax_last", &[t])?;
        let cols = *t.shape.last().unwrap_or(&0);
        let rows = t.len() / cols.max(1);
        let out = self.output("softmax_last", &t.shape, DType::F32)?;
        if rows > 0 && cols > 0 {
            let p = Quad {
                a: u32_of("softmax_last", rows)?,
                b: u32_of("softmax_last", cols)?,
                c: 0,
                d: 0,
            };
            self.dispatch(
                Kernel::Softmax,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }

    fn embedding(&self, ids: &GpuTensor, table: &GpuTensor) -> Result<GpuTensor> {
        if table.shape.len() != 2 || table.dtype == DType::U32 {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("table must be f32 (or f16) [vocab, dim], got {table:?}"),
            });
        }
        if ids.dtype != DType::U32 {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("ids must be u32, got {ids:?}"),
            });
        }
        let (vocab, cols) = (table.shape[0], table.shape[1]);
        match ids.max_id {
            Some(m) if m as usize >= vocab => {
                return Err(Error::Shape {
                    op: "embedding",
                    detail: format!("id {m} is out of range for a table of {vocab} rows"),
                });
            }
            _ => {}
        }
        let rows = ids.len();
        let mut shape = ids.shape.clone();
        shape.push(cols);
        let out = self.output("embedding", &shape, DType::F32)?;
        if rows * cols > 0 {
            // One dispatch per row range of a split table; each writes the ids it holds.
            let mut first = 0;
            for part in table.row_parts() {
                let count = part.shape[0];
                let p = Quad {
                    a: u32_of("embedding", rows)?,
                    b: u32_of("embedding", cols)?,
                    c: u32_of("embedding", first)?,
                    d: u32_of("embedding", count)?,
                };
                self.dispatch(
                    if part.dtype == DType::F16 {
                        Kernel::GatherRowsF16
                    } else {
                        Kernel::GatherRows
                    },
                    &[ids.buf(), part.buf(), out.buf()],
                    &bytes_of(&p),
                    3,
                    groups_1d(rows * cols, 256),
                );
                first += count;
            }
        }
        Ok(out)
    }

    fn cat(&self, parts: &[GpuTensor], dim: usize) -> Result<GpuTensor> {
        let Some(first) = parts.first() else {
            return Err(Error::Shape {
                op: "cat",
                detail: "nothing to join".into(),
            });
        };
        let refs: Vec<&GpuTensor> = parts.iter().collect();
        Self::f32_only("cat", &refs)?;
        let rank = first.shape.len();
        let fits = dim < rank
            && parts.iter().all(|p| {
                p.shape.len() == rank
                    && p.shape
                        .iter()
                        .zip(&first.shape)
                        .enumerate()
                        .all(|(i, (a, b))| i == dim || a == b)
            });
        if !fits {
            return Err(Error::Shape {
                op: "cat",
                detail: format!(
                    "cannot join {:?} along dim {dim}",
                    parts.iter().map(|p| p.shape.clone()).collect::<Vec<_>>()
                ),
            });
        }
        let mut shape = first.shape.clone();
        shape[dim] = parts.iter().map(|p| p.shape[dim]).sum();
        let out = self.output("cat", &shape, DType::F32)?;
        let dst = contiguous_strides(&shape);
        let mut at = 0;
        for p in parts {
            self.copy_strided(
                &p.shape,
                (p, &contiguous_strides(&p.shape), 0),
                (&out, &dst, at * dst[dim]),
            )?;
            at += p.shape[dim];
        }
        Ok(out)
    }

    fn zeros(&self, shape: &[usize]) -> Result<GpuTensor> {
        let out = self.output("zeros", shape, DType::F32)?;
        self.record(|encoder| encoder.clear_buffer(out.buf(), 0, None));
        Ok(out)
    }

    fn write_slice(
        &self,
        dst: &GpuTensor,
        src: &GpuTensor,
        dim: usize,
        start: usize,
    ) -> Result<()> {
        let (dd, sd) = (&dst.shape, &src.shape);
        crate::backend::check_write_slice(dd, sd, dim, start)?;
        Self::f32_only("write_slice", &[dst, src])?;
        let ds = contiguous_strides(dd);
        self.copy_strided(
            sd,
            (src, &contiguous_strides(sd), 0),
            (dst, &ds, start * ds[dim]),
        )
    }

    fn matmul_t(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        self.matmul_impl("matmul_t", a, b, true, None)
    }

    fn qmatrix(
        &self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        cols: usize,
        name: &str,
    ) -> Result<GpuQMatrix> {
        let (code, block_bytes) = match ty {
            GgmlType::Q8_0 => (0u32, 34usize),
            GgmlType::Q4_0 => (1, 18),
            GgmlType::Q4_1 => (2, 20),
            _ => {
                let values = crate::quant::dequantize(ty, data, rows * cols, name)?;
                return Ok(GpuQMatrix {
                    kind: QKind::Dense(self.weight_f32(&values, &[rows, cols])?),
                    rows,
                    cols,
                });
            }
        };
        let nb = cols / 32;
        if !cols.is_multiple_of(32) || data.len() != rows * nb * block_bytes {
            return Err(Error::Shape {
                op: "qmatrix",
                detail: format!(
                    "tensor '{name}' ({ty:?}, [{rows}, {cols}]) has {} bytes; expected {} in blocks of 32 columns",
                    data.len(),
                    rows * cols.div_ceil(32) * block_bytes
                ),
            });
        }
        let f16 = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        let words = if code == 0 { 8 } else { 4 };
        // Row ranges whose quants fit one storage binding.
        let row_bytes = (nb * words * 4).max(1) as u64;
        let per_part = (self.inner.max_binding / row_bytes) as usize;
        if per_part == 0 {
            self.check_size(&format!("one row of '{name}'"), row_bytes)?;
        }
        let mut parts = Vec::new();
        for first in (0..rows).step_by(per_part.max(1)) {
            let n = per_part.min(rows - first);
            let blocks = n * nb;
            let mut scales = Vec::with_capacity(blocks);
            let mut mins = Vec::with_capacity(if code == 2 { blocks } else { 1 });
            let mut quants: Vec<u32> = Vec::with_capacity(blocks * words);
            let bytes = &data[first * nb * block_bytes..(first + n) * nb * block_bytes];
            for blk in bytes.chunks_exact(block_bytes) {
                scales.push(f16(blk));
                let q = match code {
                    2 => {
                        mins.push(f16(&blk[2..]));
                        &blk[4..]
                    }
                    _ => &blk[2..],
                };
                quants.extend(
                    q.chunks_exact(4)
                        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
                );
            }
            if mins.is_empty() {
                mins.push(0.0);
            }
            parts.push(QPart {
                first,
                rows: n,
                scales: self.tensor_f32(&scales, &[scales.len()])?,
                mins: self.tensor_f32(&mins, &[mins.len()])?,
                quants: self.upload(bytemuck::cast_slice(&quants), &[quants.len()], DType::U32)?,
            });
        }
        Ok(GpuQMatrix {
            kind: QKind::Blocks { ty: code, parts },
            rows,
            cols,
        })
    }

    fn qmatrix_shape(&self, w: &GpuQMatrix) -> (usize, usize) {
        (w.rows, w.cols)
    }

    fn qlinear(&self, x: &GpuTensor, w: &GpuQMatrix) -> Result<GpuTensor> {
        let (parts, ty) = match &w.kind {
            QKind::Dense(t) => return self.linear(x, t, None),
            QKind::Blocks { ty, parts } => (parts, *ty),
        };
        Self::f32_only("qlinear", &[x])?;
        if x.shape.last() != Some(&w.cols) {
            return Err(Error::Shape {
                op: "qlinear",
                detail: format!(
                    "input {:?} does not fit quantized weight [{}, {}]",
                    x.shape, w.rows, w.cols
                ),
            });
        }
        let rows = x.len() / w.cols.max(1);
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = w.rows;
        }
        let out = self.output("qlinear", &shape, DType::F32)?;
        if rows == 0 || w.rows == 0 {
            return Ok(out);
        }
        let tiles = rows.div_ceil(QMATMUL_ROWS);
        if tiles > 65_535 {
            return Err(Error::Shape {
                op: "qlinear",
                detail: format!(
                    "{rows} input rows exceed 65,535 dispatch groups of {QMATMUL_ROWS}"
                ),
            });
        }
        // Each row range of the weight writes its columns of the output.
        for part in parts {
            let p = QMatmulParams {
                n: u32_of("qlinear", part.rows)?,
                k: u32_of("qlinear", w.cols)?,
                ty,
                rows: u32_of("qlinear", rows)?,
                out_stride: u32_of("qlinear", w.rows)?,
                out_offset: u32_of("qlinear", part.first)?,
                pad: [0; 2],
            };
            let (gx, gy, _) = groups_1d(part.rows, 16);
            self.dispatch(
                Kernel::QMatmul,
                &[
                    x.buf(),
                    part.scales.buf(),
                    part.mins.buf(),
                    part.quants.buf(),
                    out.buf(),
                ],
                &bytes_of(&p),
                5,
                (gx, gy, tiles as u32),
            );
        }
        Ok(out)
    }

    fn rms_norm(&self, x: &GpuTensor, weight: &GpuTensor, eps: f32) -> Result<GpuTensor> {
        Self::f32_only("rms_norm", &[x, weight])?;
        let cols = *x.shape.last().unwrap_or(&0);
        if weight.shape != [cols] {
            return Err(Error::Shape {
                op: "rms_norm",
                detail: format!("weight {:?} does not fit input {:?}", weight.shape, x.shape),
            });
        }
        let out = self.output("rms_norm", &x.shape, DType::F32)?;
        let rows = x.len() / cols.max(1);
        if rows > 0 {
            let p = QuadF {
                a: u32_of("rms_norm", rows)?,
                b: u32_of("rms_norm", cols)?,
                f: eps,
                d: 0,
            };
            self.dispatch(
                Kernel::RmsNorm,
                &[x.buf(), weight.buf(), out.buf()],
                &bytes_of(&p),
                3,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }

    fn silu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 2, 0.0)
    }

    fn tanh(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 3, 0.0)
    }

    fn relu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 4, 0.0)
    }

    fn rope_pairs(&self, x: &GpuTensor, cos: &GpuTensor, sin: &GpuTensor) -> Result<GpuTensor> {
        Self::f32_only("rope_pairs", &[x, cos, sin])?;
        let (xd, cd) = (&x.shape, &cos.shape);
        if xd.len() != 4
            || cd.len() != 2
            || cd[0] != xd[2]
            || cd[1] * 2 != xd[3]
            || sin.shape != *cd
        {
            return Err(Error::Shape {
                op: "rope_pairs",
                detail: format!(
                    "x must be [batch, heads, seq, head_dim] and cos/sin [seq, head_dim/2]; got {xd:?} and {cd:?}"
                ),
            });
        }
        let out = self.output("rope_pairs", xd, DType::F32)?;
        let (rows, seq, half) = (xd[0] * xd[1], xd[2], cd[1]);
        if rows * seq * half > 0 {
            let p = Quad {
                a: u32_of("rope_pairs", rows)?,
                b: u32_of("rope_pairs", seq)?,
                c: u32_of("rope_pairs", half)?,
                d: 0,
            };
            self.dispatch(
                Kernel::RopePairs,
                &[x.buf(), cos.buf(), sin.buf(), out.buf()],
                &bytes_of(&p),
                4,
                groups_1d(rows * seq * half, 256),
            );
        }
        Ok(out)
    }

    async fn read_argmax(&self, t: &GpuTensor) -> Result<Vec<u32>> {
        Self::f32_only("argmax", &[t])?;
        let cols = *t.shape.last().unwrap_or(&0);
        if cols == 0 {
            return Err(Error::Shape {
                op: "argmax",
                detail: format!("rows of {:?} are empty", t.shape),
            });
        }
        let rows = t.len() / cols;
        let out = self.output("argmax", &[rows], DType::U32)?;
        let p = Quad {
            a: u32_of("argmax", rows)?,
            b: u32_of("argmax", cols)?,
            c: 0,
            d: 0,
        };
        self.dispatch(
            Kernel::Argmax,
            &[t.buf(), out.buf()],
            &bytes_of(&p),
            2,
            Self::rows_groups(rows),
        );
        self.flush();
        let raw = read_f32(
            self.device(),
            &self.inner.ctx.queue,
            out.buf(),
            "argmax",
            (rows * 4) as u64,
        )
        .await?;
        Ok(raw.iter().map(|v| v.to_bits()).collect())
    }

    fn attention(
        &self,
        q: &GpuTensor,
        k_cache: &GpuTensor,
        v_cache: &GpuTensor,
        len: usize,
    ) -> Result<GpuTensor> {
        let (qd, kd) = (&q.shape, &k_cache.shape);
        let fits = qd.len() == 4
            && kd.len() == 4
            && qd[0] == 1
            && kd[0] == 1
            && qd[3] == kd[3]
            && kd[1] > 0
            && qd[1] % kd[1] == 0
            && v_cache.shape == *kd
            && qd[2] <= len
            && len <= kd[2];
        if !fits || qd[3] > ATTN_MAX_D {
            // Shape errors are named there; large heads take the composed ops.
            return crate::backend::composed_attention(self, q, k_cache, v_cache, len);
        }
        Self::f32_only("attention", &[q, k_cache, v_cache])?;
        let (nh, t, d, nkv, cap) = (qd[1], qd[2], qd[3], kd[1], kd[2]);
        let u = |v: usize| u32_of("attention", v);
        let p = AttentionParams {
            t: u(t)?,
            keys: u(len)?,
            d: u(d)?,
            rep: u(nh / nkv)?,
            heads: u(nh)?,
            causal: 1,
            scale: 1.0 / (d as f32).sqrt(),
            q_off: 0,
            q_b: u(nh * t * d)?,
            q_h: u(t * d)?,
            q_t: u(d)?,
            k_off: 0,
            k_b: u(nkv * cap * d)?,
            k_h: u(cap * d)?,
            k_t: u(d)?,
            v_off: 0,
        };
        self.fused_attention((q, k_cache, v_cache), p, 1, nkv, None)
    }

    fn encoder_attention(&self, qkv: &GpuTensor, mask: &[u32], heads: usize) -> Result<GpuTensor> {
        let (batch, seq, h) =
            crate::backend::encoder_attention_shape(&qkv.shape, mask.len(), heads)?;
        let d = h / heads;
        if d > ATTN_MAX_D {
            return crate::backend::composed_encoder_attention(self, qkv, mask, heads);
        }
        Self::f32_only("encoder_attention", &[qkv])?;
        let u = |v: usize| u32_of("encoder_attention", v);
        let p = AttentionParams {
            t: u(seq)?,
            keys: u(seq)?,
            d: u(d)?,
            rep: 1,
            heads: u(heads)?,
            causal: 0,
            scale: 1.0 / (d as f32).sqrt(),
            q_off: 0,
            q_b: u(seq * 3 * h)?,
            q_h: u(d)?,
            q_t: u(3 * h)?,
            k_off: u(h)?,
            k_b: u(seq * 3 * h)?,
            k_h: u(d)?,
            k_t: u(3 * h)?,
            v_off: u(2 * h)?,
        };
        let mask = self.tensor_u32(mask, &[batch, seq])?;
        self.fused_attention((qkv, qkv, qkv), p, batch, heads, Some(&mask))
    }
}
