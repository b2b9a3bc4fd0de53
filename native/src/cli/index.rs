//! `cairn index`: documents into a named collection of a RAG index.

use std::path::{Path, PathBuf};

use cairn_core::embedder::EmbedderOptions;

use super::args::{BackendArgs, IndexArgs};
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::Result;
use crate::on_backend;

/// Arguments of `cairn index`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A directory (walked recursively) or a single file to index.
    #[arg(value_name = "PATH")]
    pub dir: PathBuf,
    /// Collection name.
    #[arg(long)]
    pub collection: String,
    /// The RAG index and its embedder.
    #[command(flatten)]
    pub index: IndexArgs,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Runs `cairn index`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let path = a.index.path(cache);
    let dir = resolve_model(&a.index.embedder, cache)?;
    let started = std::time::Instant::now();
    let r = on_backend!(a.backend.pick()?, b => {
        let emb = load_embedder(b, &dir, &EmbedderOptions::default())?;
        crate::rag::index_dir(&emb, &a.index.embedder, &a.dir, &a.collection, &path)?
    });
    let s = started.elapsed().as_secs_f64();
    println!(
        "{}: collection '{}': {} files indexed, {} unchanged, {} removed, {} failed, {} skipped; {} pages, {} passages, {} indexed chunks in {s:.1} s ({:.1} pages/s, {:.1} chunks/s)",
        path.display(),
        a.collection,
        r.indexed,
        r.unchanged,
        r.removed,
        r.failed.len(),
        r.skipped.len(),
        r.pages,
        r.parents,
        r.children,
        r.pages as f64 / s.max(1e-9),
        r.children as f64 / s.max(1e-9)
    );
    for f in &r.failed {
        eprintln!("failed: {f}");
    }
    Ok(())
}
