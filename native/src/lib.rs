//! The `cairn` command line as a library: fetching, caching, inspecting,
//! loading decoders and quantizing GGUF files.
//! `cli` holds the command line (one file per command); `main.rs` only
//! parses and dispatches.

#![warn(missing_docs)]

pub mod atomic;
pub mod cache;
pub mod cli;
pub mod embed;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod inspect;
pub mod lora;
pub mod manifest;
pub mod progress;
pub mod rag;
pub mod serve;
pub mod train;

pub use error::{Error, Result};
