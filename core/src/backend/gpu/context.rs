//! Adapter and device selection, and the pipeline cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kernels::Kernel;
use crate::error::{Error, Result};

/// What was picked (or found): enough to tell a real GPU from a software one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// Graphics API in use (Vulkan, Metal, Dx12, BrowserWebGpu).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Driver name and version, where known.
    pub driver: String,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

/// A wgpu device with its queue and the compiled kernels.
///
/// Pipelines are compiled once per kernel and reused; create one context per
/// process and share it.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: AdapterSummary,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

/// Ranks adapters: real GPUs before virtual ones before software rasterisers.
/// (The browser picks its own adapter, so wasm32 does not rank.)
#[cfg(not(target_arch = "wasm32"))]
fn rank(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Opens the best adapter: a discrete GPU, then an integrated one, then a
    /// virtual one, and a software adapter (Mesa lavapipe, SwiftShader) only when
    /// nothing else exists. `WGPU_BACKEND` (e.g. `vulkan`) narrows the search natively.
    ///
    /// Errors with [`Error::NoGpuAdapter`] listing what was found when no adapter
    /// can be used.
    pub async fn new() -> Result<Self> {
        // wgpu's WebGPU instance panics where `navigator.gpu` is missing
        // (node, old browsers): ask first.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(Error::NoGpuAdapter {
                found: "this JavaScript environment has no WebGPU (navigator.gpu)".to_string(),
            });
        }
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = Self::pick_adapter(&instance).await?;
        let summary = AdapterSummary::from_info(&adapter.get_info());
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("cairn"),
                // f16 weights where the adapter can (kernels fall back to f32 otherwise).
                required_features: adapter.features() & wgpu::Features::SHADER_F16,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::GpuDevice {
                adapter: summary.to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            device,
            queue,
            adapter: summary,
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
        let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        if let Some(best) = adapters.into_iter().next() {
            return Ok(best);
        }
        Err(Error::NoGpuAdapter {
            found: "no adapters on any backend".to_string(),
        })
    }

    #[cfg(target_arch = "wasm32")]
    async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoGpuAdapter {
                found: format!("navigator.gpu.requestAdapter() gave none: {e}"),
            })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// Whether the device runs f16 shaders (WGSL `enable f16;`).
    pub fn has_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    /// Compiles every kernel (once), turning a WGSL validation error into an
    /// error that names the shader file instead of a panic.
    pub async fn compile_all(&self) -> Result<()> {
        self.compile(Kernel::ALL).await
    }

    /// Compiles `kernels` (once each), as [`GpuContext::compile_all`].
    pub async fn compile(&self, kernels: &[Kernel]) -> Result<()> {
        for &kernel in kernels {
            let cached = self
                .pipelines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&kernel);
            if cached {
                continue;
            }
            let pipeline = self.validated(kernel.file_name(), &kernel.source()).await?;
            self.pipelines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(kernel, Arc::new(pipeline));
        }
        Ok(())
    }

    /// Compiles WGSL `source` (entry point `main`) under a validation error
    /// scope: a shader that does not compile is an error naming `file` and
    /// the adapter instead of a panic.
    pub async fn validated(&self, file: &str, source: &str) -> Result<wgpu::ComputePipeline> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self.build(file, source);
        match scope.pop().await {
            Some(e) => Err(Error::Backend(format!(
                "shaders/{file} does not compile on {}: {e}",
                self.adapter
            ))),
            None => Ok(pipeline),
        }
    }

    fn build(&self, file: &str, source: &str) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(file),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    /// The compiled pipeline for `kernel`, compiling it on first use.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(kernel)
            .or_insert_with(|| Arc::new(self.build(kernel.file_name(), &kernel.source())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_gpus_rank_before_software() {
        assert!(rank(wgpu::DeviceType::DiscreteGpu) < rank(wgpu::DeviceType::IntegratedGpu));
        assert!(rank(wgpu::DeviceType::IntegratedGpu) < rank(wgpu::DeviceType::Cpu));
        assert!(rank(wgpu::DeviceType::VirtualGpu) < rank(wgpu::DeviceType::Cpu));
    }
}
