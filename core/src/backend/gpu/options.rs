//! Options of the GPU backend, given explicitly by the caller (the CLI
//! maps its flags and environment onto them; core reads no environment).

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

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            max_binding: u64::MAX,
            f16_weights: true,
        }
    }
}
