//! Which compute backend runs a model in JavaScript: WebGPU when the
//! environment has an adapter, the CPU backend (candle, wasm SIMD) otherwise.

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu::GpuBackend;
use wasm_bindgen::prelude::*;

use crate::js_err;

/// A model on one of the two backends.
pub(crate) enum OnBackend<Cpu, Gpu> {
    /// candle-core on the wasm CPU (simd128).
    Cpu(Cpu),
    /// wgpu on the browser's WebGPU.
    Gpu(Gpu),
}

/// Runs `$body` with `$m` bound to the model, whichever backend holds it.
macro_rules! on_backend {
    ($v:expr, $m:ident => $body:expr) => {
        match $v {
            $crate::engine::OnBackend::Cpu($m) => $body,
            $crate::engine::OnBackend::Gpu($m) => $body,
        }
    };
}
pub(crate) use on_backend;

/// The backend a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Auto,
    Cpu,
    WebGpu,
}

impl Choice {
    pub(crate) fn parse(s: Option<String>) -> Result<Choice, JsError> {
        match s.as_deref().unwrap_or("auto") {
            "auto" => Ok(Choice::Auto),
            "cpu" | "wasm" => Ok(Choice::Cpu),
            "webgpu" | "gpu" => Ok(Choice::WebGpu),
            other => Err(JsError::new(&format!(
                "backend: unknown value '{other}' (use \"auto\", \"cpu\" or \"webgpu\")"
            ))),
        }
    }
}

/// The backend that was opened, with a description for the caller.
pub(crate) enum Opened {
    Cpu(CpuBackend),
    Gpu(GpuBackend),
}

impl Opened {
    /// Opens the chosen backend: `webgpu` fails with the reason when no
    /// adapter exists; `auto` falls back to the CPU.
    pub(crate) async fn open(choice: Choice) -> Result<Opened, JsError> {
        if choice == Choice::Cpu {
            return Ok(Opened::Cpu(CpuBackend::new()));
        }
        match GpuBackend::new().await {
            Ok(g) => Ok(Opened::Gpu(g)),
            Err(e) if choice == Choice::WebGpu => Err(js_err(e)),
            Err(_) => Ok(Opened::Cpu(CpuBackend::new())),
        }
    }

    /// `"cpu (wasm simd128)"` or `"webgpu: <adapter>"`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Opened::Cpu(_) => CPU_NAME.to_string(),
            Opened::Gpu(g) => {
                let a = g.adapter();
                if a.name.is_empty() {
                    // Browsers may hide the adapter's name.
                    format!("webgpu: unnamed adapter ({}, {})", a.backend, a.device_type)
                } else {
                    format!("webgpu: {a}")
                }
            }
        }
    }
}

/// How the CPU backend is reported.
pub(crate) const CPU_NAME: &str = "cpu (wasm simd128)";

/// Whether this JavaScript environment offers WebGPU (`navigator.gpu` with an
/// adapter and a device). The browser demo reports it. Only the device is
/// opened: the kernels are compiled when a model is loaded on it.
#[wasm_bindgen(js_name = webgpuAvailable)]
pub async fn webgpu_available() -> bool {
    cairn_core::backend::gpu::GpuContext::new().await.is_ok()
}
