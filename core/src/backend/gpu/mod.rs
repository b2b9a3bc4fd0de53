//! GPU backend: wgpu running the WGSL kernels in `shaders/`.
//!
//! The same code runs natively (Vulkan, Metal, DX12 — and Mesa lavapipe on a
//! CPU-only machine) and in the browser through WebGPU. All entry points are
//! `async` because the browser cannot block on the GPU; native callers wrap them
//! in `pollster::block_on`.

mod backend;
mod context;
mod kernels;
mod matmul;
mod readback;

pub use backend::{GpuBackend, GpuOptions, GpuQMatrix, GpuTensor};
pub use context::{AdapterSummary, GpuContext};
pub use kernels::Kernel;
pub use matmul::matmul_f32;
