//! # cairn-core
//!
//! Library code does not `unwrap`, `expect`, `panic!` or index/slice with
//! `[]` (denied below outside tests): input reaches errors, never panics.
//! Where an invariant makes it safe — the compute kernels of [`backend`] and
//! `quant::matmul`, whose ops check every shape on entry — an `#[allow]`
//! says why. Test helpers in [`testing`] may panic.
//!
//! The platform-neutral heart of cairn. Everything here compiles for native
//! targets (x86_64, aarch64) and for `wasm32-unknown-unknown`, and does no I/O
//! beyond byte slices and readers: files, threads, HTTP and progress bars live
//! in the `cairn` binary, JS types and browser storage in `cairn-wasm`.
//!
//! Modules (one concept each):
//! - [`agent`]: tool calling, built-in tools (calculator, search) and the ReAct agent loop.
//! - [`backend`]: the compute backends — the CPU reference (candle-core) and the
//!   GPU backend (wgpu running the WGSL kernels in `shaders/`).
//! - [`classify`]: text classification (labels and scores per text).
//! - [`eval`]: evaluation metrics (classification report).
//! - [`formats`]: ecosystem file formats (GGUF, safetensors headers).
//! - [`lora`]: LoRA adapters in PEFT's layout, applied unmerged or merged.
//! - [`quant`]: ggml quantized blocks (Q8_0, Q4_0, Q4_1, Q4_K, ...), pack and unpack.
//! - [`rag`]: the persistent hybrid index and grounded answering with citations.
//! - [`text`]: document loaders (PDF, HTML, Markdown, text) and chunkers.
//! - [`tokenizer`]: `tokenizer.json` tokenizers (WordPiece, BPE) via the
//!   `tokenizers` crate.
//! - `train` (feature `train`, native only): fine-tuning through candle's autodiff.
//! - [`util`]: small shared helpers (deterministic pseudo-random data).
//! - [`error`]: the crate's one error type.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

pub mod agent;
pub mod backend;
pub mod classify;
pub mod embedder;
pub mod error;
pub mod eval;
pub mod formats;
pub mod generate;
pub mod lora;
pub mod models;
pub mod quant;
pub mod rag;
pub mod retrieve;
pub mod testing;
pub mod text;
pub mod tokenizer;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod train;
pub mod util;
pub mod word2vec;

pub use error::{Error, Result};

/// The crate version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
