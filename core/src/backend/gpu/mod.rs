//! GPU backend: wgpu running the WGSL kernels in `shaders/` beside this
//! module (`core/src/backend/gpu/shaders/`, inside the crate so that it
//! packages and builds on its own), dispatched by the op families of `ops/`.
//!
//! The same code runs natively (Vulkan, Metal, DX12 — and Mesa lavapipe on a
//! CPU-only machine) and in the browser through WebGPU. All entry points are
//! `async` because the browser cannot block on the GPU; native callers wrap them
//! in `pollster::block_on`.

mod backend;
mod context;
mod kernels;
mod matmul;
mod ops;
mod options;
mod params;
mod readback;
mod tensor;

pub use backend::GpuBackend;
pub use context::{AdapterSummary, GpuContext};
pub use kernels::Kernel;
pub use matmul::matmul_f32;
pub use options::GpuOptions;
pub use tensor::{GpuQMatrix, GpuTensor};
