//! `cairn embed`: sentence embeddings as JSON or .npy, or added to a vector
//! collection (`.cvec`) that `cairn search` reads.

use std::path::{Path, PathBuf};

use cairn_core::embedder::{EmbedderOptions, similarity_matrix};
use cairn_core::models::pooling::Pooling;
use cairn_core::retrieve::dense::{
    AnyIndex, Collection, FlatIndex, HnswIndex, HnswParams, IvfIndex, IvfParams, VectorIndex,
};
use clap::ValueEnum;

use super::args::{BackendArgs, DEFAULT_EMBEDDER, renamed};
use crate::atomic::write_atomic;
use crate::cache::resolve_model;
use crate::embed::{load_embedder, to_npy};
use crate::error::{Error, Result};
use crate::on_backend;

/// Output format of `cairn embed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON: the vectors, and for 2–16 texts their cosine matrix.
    Json,
    /// A NumPy `.npy` array `[texts, dim]` of f32 (needs --output).
    Npy,
}

/// Pooling of token states into one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolingArg {
    /// Mean over the tokens.
    Mean,
    /// The first ([CLS]) token.
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

impl From<PoolingArg> for Pooling {
    fn from(p: PoolingArg) -> Pooling {
        match p {
            PoolingArg::Mean => Pooling::Mean,
            PoolingArg::Cls => Pooling::Cls,
            PoolingArg::Max => Pooling::Max,
        }
    }
}

/// Vector index kind of a new collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IndexKind {
    /// Exact search over every vector.
    Flat,
    /// HNSW graph (approximate, fast on large collections).
    Hnsw,
    /// Inverted file (approximate): k-means cells, scanning `--nprobe` of `--nlist`;
    /// trained on the first batch added (at least `--nlist` texts).
    Ivf,
    /// Inverted file with product-quantised vectors (`--pq-m` bytes per vector).
    IvfPq,
}

/// Arguments of `cairn embed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name or directory.
    #[arg(short, long, default_value = DEFAULT_EMBEDDER)]
    pub model: String,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Read texts from this file, one per line (in addition to any given as arguments).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Write to this file (atomically) instead of stdout; required for npy.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Keep raw pooled vectors instead of L2-normalising them.
    #[arg(long)]
    pub no_normalize: bool,
    /// Pooling (default: the model's 1_Pooling config).
    #[arg(long, value_enum)]
    pub pooling: Option<PoolingArg>,
    /// Matryoshka truncation to the first N dimensions.
    #[arg(long)]
    pub dims: Option<usize>,
    /// Fail on inputs longer than the model's maximum instead of truncating them.
    #[arg(long)]
    pub no_truncate: bool,
    /// Instead of printing, add the vectors (texts as payloads) to this vector
    /// collection file (.cvec), creating it if missing; written atomically.
    /// Search it with `cairn search --vectors`.
    #[arg(long, value_name = "FILE")]
    pub vectors: Option<PathBuf>,
    /// Deprecated spelling of --vectors.
    #[arg(long = "index", value_name = "FILE", hide = true)]
    pub index_deprecated: Option<PathBuf>,
    /// Index kind when creating a collection.
    #[arg(long, value_enum, default_value = "hnsw")]
    pub kind: IndexKind,
    /// IVF cells when creating an ivf/ivf-pq collection (the first batch
    /// trains them and must hold at least this many texts).
    #[arg(long, default_value_t = 100)]
    pub nlist: usize,
    /// IVF cells scanned per query, stored with the collection (`cairn search --nprobe` overrides it).
    #[arg(long, default_value_t = 8)]
    pub nprobe: usize,
    /// IVF-PQ sub-quantizers (bytes per vector); must divide the dimension.
    #[arg(long, default_value_t = 16)]
    pub pq_m: usize,
    /// Collection name when creating one (default: the file stem).
    #[arg(long)]
    pub collection: Option<String>,
    /// Texts to embed.
    pub texts: Vec<String>,
}

/// Runs `cairn embed`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let mut texts = a.texts;
    if let Some(f) = &a.file {
        let body = std::fs::read_to_string(f).map_err(Error::io("reading", f))?;
        texts.extend(
            body.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        return Err(Error::Usage(
            "no texts to embed: give them as arguments or with --file".into(),
        ));
    }
    let vectors = renamed(a.vectors, a.index_deprecated, "embed --index", "--vectors");
    if a.format == Format::Npy && a.output.is_none() && vectors.is_none() {
        return Err(Error::Usage("--format npy needs --output PATH".into()));
    }
    let options = EmbedderOptions {
        pooling: a.pooling.map(Pooling::from),
        truncate: !a.no_truncate,
        ..Default::default()
    };
    let normalize = !a.no_normalize;
    let dir = resolve_model(&a.model, cache)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let mut emb = on_backend!(a.backend.pick()?, b => {
        let embedder = load_embedder(b, &dir, &options)?;
        pollster::block_on(embedder.encode_async(&refs, normalize))?
    });
    if let Some(d) = a.dims {
        emb = emb.truncate_dims(d, normalize)?;
    }
    tracing::info!(
        texts = emb.rows,
        dim = emb.dim,
        ms = started.elapsed().as_millis() as u64,
        "embedded"
    );
    if let Some(path) = vectors {
        let mut c = if path.exists() {
            let c = super::search::read_collection(&path)?;
            if c.model.as_deref() != Some(a.model.as_str()) {
                return Err(Error::Model(format!(
                    "{} holds vectors of model {:?}, not '{}'",
                    path.display(),
                    c.model,
                    a.model
                )));
            }
            c
        } else {
            let name = a.collection.unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let index = match a.kind {
                IndexKind::Flat => AnyIndex::Flat(FlatIndex::new(emb.dim)),
                IndexKind::Hnsw => AnyIndex::Hnsw(HnswIndex::new(emb.dim, HnswParams::default())),
                IndexKind::Ivf | IndexKind::IvfPq => AnyIndex::Ivf(IvfIndex::new(
                    emb.dim,
                    IvfParams {
                        nlist: a.nlist,
                        nprobe: a.nprobe,
                        pq_m: if a.kind == IndexKind::IvfPq {
                            a.pq_m
                        } else {
                            0
                        },
                        ..IvfParams::default()
                    },
                )?),
            };
            Collection {
                name,
                model: Some(a.model.clone()),
                index,
            }
        };
        let ids = c.index.add(&emb.data, texts)?;
        write_atomic(&path, &c.to_bytes()?)?;
        println!(
            "{}: collection '{}' now holds {} vectors (added ids {}..{})",
            path.display(),
            c.name,
            c.index.len(),
            ids.start,
            ids.end
        );
        return Ok(());
    }
    match (a.format, &a.output) {
        (Format::Npy, Some(path)) => write_atomic(path, &to_npy(&emb))?,
        (Format::Npy, None) => {
            return Err(Error::Usage("--format npy needs --output PATH".into()));
        }
        (Format::Json, out) => {
            let rows: Vec<&[f32]> = emb.iter().collect();
            let mut json = serde_json::json!({ "model": a.model, "dim": emb.dim, "normalized": normalize, "embeddings": rows });
            if (2..=16).contains(&emb.rows) {
                let sim = similarity_matrix(&emb, &emb);
                json["cosine"] = serde_json::json!(sim.chunks(emb.rows).collect::<Vec<_>>());
            }
            let text = json.to_string() + "\n";
            match out {
                Some(path) => write_atomic(path, text.as_bytes())?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}
