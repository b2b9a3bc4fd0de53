//! `cairn search`: nearest texts in vector collections (`.cvec`) built by
//! `cairn embed --vectors`.

use std::path::{Path, PathBuf};

use cairn_core::embedder::EmbedderOptions;
use cairn_core::retrieve::dense::{AnyIndex, Collection, VectorIndex};

use super::args::{BackendArgs, renamed_required};
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::{Error, Result};
use crate::on_backend;

/// Arguments of `cairn search`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A vector collection file (.cvec) or a directory of them.
    #[arg(long, value_name = "PATH")]
    pub vectors: Option<PathBuf>,
    /// Deprecated spelling of --vectors.
    #[arg(long = "index", value_name = "PATH", hide = true)]
    pub index_deprecated: Option<PathBuf>,
    /// Only this collection (by name) when PATH is a directory.
    #[arg(long)]
    pub collection: Option<String>,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// IVF collections: cells scanned per query (default: the collection's own).
    #[arg(long)]
    pub nprobe: Option<usize>,
    /// Model name or directory (default: the one recorded in the collection).
    #[arg(short, long)]
    pub model: Option<String>,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// The query.
    pub query: String,
}

/// Reads a vector collection file.
pub fn read_collection(path: &Path) -> Result<Collection> {
    let bytes = std::fs::read(path).map_err(Error::io("reading", path))?;
    Ok(Collection::from_bytes(&bytes, &path.display().to_string())?)
}

/// Runs `cairn search`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let index = renamed_required(a.vectors, a.index_deprecated, "search --index", "--vectors")?;
    let files: Vec<PathBuf> = if index.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&index)
            .map_err(Error::io("listing", &index))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "cvec"))
            .collect();
        v.sort();
        v
    } else {
        vec![index.clone()]
    };
    let mut collections = Vec::new();
    for f in &files {
        let c = read_collection(f)?;
        if a.collection.as_deref().is_none_or(|n| n == c.name) {
            collections.push(c);
        }
    }
    let Some(first) = collections.first() else {
        return Err(Error::Model(format!(
            "no collection{} in {}",
            a.collection
                .map(|c| format!(" named '{c}'"))
                .unwrap_or_default(),
            index.display()
        )));
    };
    let model = a
        .model
        .or_else(|| first.model.clone())
        .ok_or_else(|| Error::Usage("the collection records no model; pass --model".into()))?;
    let dir = resolve_model(&model, cache)?;
    let q = on_backend!(a.backend.pick()?, b => {
        let e = load_embedder(b, &dir, &EmbedderOptions::default())?;
        pollster::block_on(e.encode_async(&[a.query.as_str()], true))?
    });
    let mut hits = Vec::new();
    for c in &collections {
        if c.index.dim() != q.dim {
            return Err(Error::Model(format!(
                "collection '{}' has {}-d vectors but model '{model}' gives {}-d",
                c.name,
                c.index.dim(),
                q.dim
            )));
        }
        let found = match (&c.index, a.nprobe) {
            (AnyIndex::Ivf(i), Some(p)) => i.search_nprobe(q.row(0), a.k, p)?,
            _ => c.index.search(q.row(0), a.k)?,
        };
        for h in found {
            hits.push((
                h.score,
                c.name.as_str(),
                c.index.payload(h.id).unwrap_or_default(),
                h.id,
            ));
        }
    }
    hits.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (score, name, payload, id) in hits.into_iter().take(a.k) {
        println!("{score:.4}  {name}#{id}  {payload}");
    }
    Ok(())
}
