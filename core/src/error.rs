//! The one error type of `cairn-core`. Messages name the file, tensor, field
//! or shape at fault so that a user can act on them.

/// Everything that can go wrong in `cairn-core`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter; `found` lists what the system offered.
    #[error(
        "no GPU adapter available (found: {found}); use the CPU backend or install a Vulkan/Metal/DX12 driver (Mesa lavapipe works on any CPU)"
    )]
    NoGpuAdapter {
        /// Human-readable description of the adapters that were enumerated.
        found: String,
    },
    /// The adapter exists but refused to create a device.
    #[error("GPU device request failed on adapter '{adapter}': {message}")]
    GpuDevice {
        /// Name of the adapter.
        adapter: String,
        /// What wgpu reported.
        message: String,
    },
    /// A GPU buffer could not be read back.
    #[error("GPU readback of '{buffer}' failed: {message}")]
    GpuReadback {
        /// Label of the buffer.
        buffer: String,
        /// What wgpu reported.
        message: String,
    },
    /// Operand shapes do not fit the operation.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation that was called.
        op: &'static str,
        /// Which operand and which dimensions are wrong.
        detail: String,
    },
    /// A file in an ecosystem format (GGUF, safetensors, config.json, ...) is malformed.
    #[error("{format}: {detail}")]
    Format {
        /// Format name and, where known, the file (e.g. `GGUF model.gguf`).
        format: String,
        /// What is wrong, naming the field or tensor.
        detail: String,
    },
    /// An I/O error while reading a format from a reader.
    #[error("{context}: {source}")]
    Io {
        /// What was being read.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The tokenizer could not be loaded or failed to encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A backend cannot do what was asked (e.g. a blocking read on an async backend).
    #[error("backend: {0}")]
    Backend(String),
    /// A model's weights or configuration do not fit what the code expects.
    #[error("{file}: {detail}")]
    Model {
        /// The file at fault (`config.json`, `model.safetensors`, ...).
        file: String,
        /// What is wrong, naming the field or tensor.
        detail: String,
    },
    /// An input is too long or otherwise unusable.
    #[error("input: {0}")]
    Input(String),
    /// An error from the candle-core tensor library (CPU backend).
    #[error("CPU backend: {0}")]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
