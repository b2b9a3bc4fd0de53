//! `matmul_f32`: the tiled f32 matrix multiply kernel.

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::kernels::Kernel;
use super::readback::read_f32;
use crate::backend::cpu::matmul_operands;
use crate::error::{Error, Result};

/// Side of the square tile in `shaders/matmul_f32.wgsl`.
pub(crate) const TILE: u32 = 16;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub(crate) m: u32,
    pub(crate) n: u32,
    pub(crate) k: u32,
    pub(crate) transpose_b: u32,
    pub(crate) a_stride: u32,
    pub(crate) b_stride: u32,
    pub(crate) has_bias: u32,
    pub(crate) pad: u32,
}

/// `C[m×n] = A[m×k] · B[k×n]` (or `A · Bᵀ` with `B` stored `n×k` when
/// `transpose_b`), all row-major, on the GPU with `shaders/matmul_f32.wgsl`.
///
/// Same contract as [`crate::backend::cpu::matmul_f32`], which is its reference.
pub async fn matmul_f32(
    ctx: &GpuContext,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    transpose_b: bool,
) -> Result<Vec<f32>> {
    matmul_operands(a, b, m, k, n, transpose_b)?;
    if m == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let dim = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| Error::Shape {
            op: "matmul_f32",
            detail: format!("{what} = {v} exceeds u32"),
        })
    };
    let params = Params {
        m: dim(m, "m")?,
        n: dim(n, "n")?,
        k: dim(k, "k")?,
        transpose_b: transpose_b as u32,
        a_stride: 0,
        b_stride: 0,
        has_bias: 0,
        pad: 0,
    };
    let device = &ctx.device;
    // wgpu rejects zero-sized bindings; a k = 0 product is all zeros but still runs the kernel.
    let storage = |label: &str, data: &[f32]| {
        let bytes: &[u8] = if data.is_empty() {
            &[0u8; 4]
        } else {
            bytemuck::cast_slice(data)
        };
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let a_buf = storage("matmul A", a);
    let b_buf = storage("matmul B", b);
    let c_size = (m * n * std::mem::size_of::<f32>()) as u64;
    let c_buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("matmul C"),
        size: c_size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let p_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("matmul params"),
        contents: bytemuck::bytes_of(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let pipeline = ctx.pipeline(Kernel::MatmulF32);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("matmul bindings"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: a_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: b_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: c_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: p_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: b_buf.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("matmul"),
    });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(params.n.div_ceil(TILE), params.m.div_ceil(TILE), 1);
    }
    ctx.queue.submit(Some(encoder.finish()));
    read_f32(device, &ctx.queue, &c_buf, "matmul C", c_size).await
}
