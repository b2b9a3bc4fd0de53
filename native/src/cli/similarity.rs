//! `cairn similarity`: cosine of two texts under a sentence encoder.

use std::path::Path;

use cairn_core::embedder::{EmbedderOptions, cosine_similarity};

use super::args::{BackendArgs, DEFAULT_EMBEDDER};
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::Result;
use crate::on_backend;

/// Arguments of `cairn similarity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name or directory.
    #[arg(short, long, default_value = DEFAULT_EMBEDDER)]
    pub model: String,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// First text.
    pub a: String,
    /// Second text.
    pub b: String,
}

/// Runs `cairn similarity`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let dir = resolve_model(&a.model, cache)?;
    let emb = on_backend!(a.backend.pick()?, b => {
        let e = load_embedder(b, &dir, &EmbedderOptions::default())?;
        pollster::block_on(e.encode_async(&[a.a.as_str(), a.b.as_str()], true))?
    });
    println!("{:.4}", cosine_similarity(emb.row(0), emb.row(1)));
    Ok(())
}
