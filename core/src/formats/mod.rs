//! Ecosystem file formats. No private formats: what llama.cpp and the Hugging
//! Face ecosystem write, cairn reads.
//!
//! - [`gguf`]: GGUF v2/v3 headers — metadata and tensor directory.
//! - [`hf_llama`]: Hugging Face Llama checkpoints converted to GGUF layout.
//! - [`llama_config`]: a Llama decoder's hyper-parameters from GGUF metadata.
//! - [`safetensors`]: the safetensors header — tensor names, dtypes, shapes, offsets.
//! - [`tensors`]: tensor data from an in-memory safetensors file, as f32.

pub mod gguf;
pub mod hf_llama;
pub mod llama_config;
pub mod safetensors;
pub mod tensors;
