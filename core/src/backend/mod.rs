//! Compute backends.
//!
//! - [`cpu`]: tensors on the CPU through candle-core (SIMD kernels natively and
//!   `simd128` in wasm32). It is the reference every GPU kernel is checked against.
//! - [`gpu`]: wgpu running the WGSL kernels in `shaders/` — Vulkan, Metal or DX12
//!   natively, WebGPU in the browser.

pub mod cpu;
pub mod gpu;
