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
    /// Directories (walked recursively) or files to index, one after the
    /// other into the same collection.
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Collection name.
    #[arg(long)]
    pub collection: String,
    /// The RAG index and its embedder.
    #[command(flatten)]
    pub index: IndexArgs,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// After indexing, train an inverted-file (IVF) coarse quantizer of this
    /// many cells over the collection's chunks: dense search then scores only
    /// the chunks in the `--ivf-nprobe` nearest cells. Chunks added later are
    /// assigned to the trained cells; 0 removes it (exact search again).
    #[arg(long, value_name = "N")]
    pub ivf_nlist: Option<usize>,
    /// Cells a dense search scans when the collection has an IVF quantizer.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub ivf_nprobe: usize,
}

/// Runs `cairn index`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let path = a.index.path(cache);
    let dir = resolve_model(&a.index.embedder, cache)?;
    on_backend!(a.backend.pick()?, b => {
        let emb = load_embedder(b, &dir, &EmbedderOptions::default())?;
        for p in &a.paths {
            let started = std::time::Instant::now();
            let r = crate::rag::index_dir(&emb, &a.index.embedder, p, &a.collection, &path)?;
            report(&path, p, &a.collection, &r, started.elapsed().as_secs_f64());
        }
        if let Some(nlist) = a.ivf_nlist {
            let sizes = crate::rag::build_ivf(&path, &a.index.embedder, emb.dim(), &a.collection, nlist, a.ivf_nprobe)?;
            if nlist == 0 {
                println!("{}: collection '{}': IVF removed (exact dense search)", path.display(), a.collection);
            } else {
                let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
                println!(
                    "{}: collection '{}': IVF of {nlist} cells over {} chunks ({min}–{max} per cell), {} scanned per query",
                    path.display(),
                    a.collection,
                    sizes.iter().sum::<usize>(),
                    a.ivf_nprobe.min(nlist)
                );
            }
        }
    });
    Ok(())
}

/// Prints what one path added to the index.
fn report(index: &Path, source: &Path, collection: &str, r: &crate::rag::IndexReport, s: f64) {
    println!(
        "{}: collection '{}' ← {}: {} files indexed, {} unchanged, {} removed, {} failed, {} skipped; {} pages, {} passages, {} indexed chunks in {s:.1} s ({:.1} pages/s, {:.1} chunks/s)",
        index.display(),
        collection,
        source.display(),
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
}
