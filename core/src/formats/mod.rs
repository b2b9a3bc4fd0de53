//! Ecosystem file formats. No private formats: what llama.cpp and the Hugging
//! Face ecosystem write, cairn reads.
//!
//! - [`gguf`]: GGUF v2/v3 headers — metadata and tensor directory.
//! - [`safetensors`]: the safetensors header — tensor names, dtypes, shapes, offsets.

pub mod gguf;
pub mod safetensors;
