//! `cairn index` and `cairn ask`: building the on-disk RAG index from a
//! directory of documents, and answering questions from it.

use std::path::{Path, PathBuf};

use crate::progress::Progress;
use cairn_core::backend::block_on_ready;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::Embedder;
use cairn_core::rag::{Ingestor, RagIndex, content_hash};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// Name under which the bundled embedder is recorded in the index.
pub const DEFAULT_EMBEDDER: &str = "all-minilm-l6-v2";

/// The default index file: `<cache>/index/rag.cidx`.
pub fn default_index_path(cache: &Path) -> PathBuf {
    cache.join("index").join("rag.cidx")
}

/// Reads an index file, or a new empty one when it does not exist.
pub fn read_index(path: &Path, embedder: &str, dim: usize) -> Result<RagIndex> {
    match std::fs::read(path) {
        Ok(b) => {
            let ix = RagIndex::from_bytes(&b, &path.display().to_string())?;
            if ix.embedder != embedder || ix.dim != dim {
                return Err(Error::Model(format!(
                    "{} was built with embedder '{}' ({} dims), not '{embedder}' ({dim}); rebuild it or pass --model {}",
                    path.display(),
                    ix.embedder,
                    ix.dim,
                    ix.embedder
                )));
            }
            Ok(ix)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RagIndex::new(embedder, dim)),
        Err(e) => Err(Error::io("reading", path)(e)),
    }
}

/// Files under `dir` that the loaders read (pdf, html/htm, md/markdown, txt), sorted.
pub fn document_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.is_file() {
            out.push(d);
            continue;
        }
        for e in std::fs::read_dir(&d).map_err(Error::io("listing", &d))? {
            let p = e.map_err(Error::io("listing", &d))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(ext) = p.extension().and_then(|e| e.to_str())
                && ["pdf", "html", "htm", "md", "markdown", "txt"]
                    .contains(&ext.to_ascii_lowercase().as_str())
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What one `cairn index` run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// Files (re)indexed.
    pub indexed: usize,
    /// Files skipped because their content hash was unchanged.
    pub unchanged: usize,
    /// Files removed from the collection because they vanished from the directory.
    pub removed: usize,
    /// Files that could not be read (reported, not fatal).
    pub failed: Vec<String>,
    /// Pages loaded.
    pub pages: usize,
    /// Parent chunks and indexed child chunks added.
    pub parents: usize,
    /// Child chunks added.
    pub children: usize,
}

/// Indexes every document under `dir` into `collection` of the index at
/// `index_path`: unchanged files (same sha256) are skipped, changed ones
/// replaced, vanished ones removed; a file that cannot be read is reported
/// and the rest go on. Children of 128 tokens are embedded and BM25-indexed;
/// their 512-token parents (overlap 64) are what answers cite. The index is
/// written atomically after each file, so an interrupted run keeps its work.
pub fn index_dir(
    embedder: &Embedder<CpuBackend>,
    embedder_name: &str,
    dir: &Path,
    collection: &str,
    index_path: &Path,
) -> Result<IndexReport> {
    let files = document_files(dir)?;
    if files.is_empty() {
        return Err(Error::Model(format!(
            "{} holds no .pdf, .html, .md or .txt files",
            dir.display()
        )));
    }
    let mut ix = read_index(index_path, embedder_name, embedder.dim())?;
    let ingest = Ingestor::new(embedder)?;
    let mut report = IndexReport::default();
    let mut bar = Progress::new("index", "files", files.len() as u64);
    let sources: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    // Files that disappeared from this directory leave the collection.
    let prefix = dir.display().to_string();
    let gone: Vec<String> = ix
        .collections
        .get(collection)
        .map(|c| {
            c.files
                .keys()
                .filter(|s| s.starts_with(&prefix) && !sources.contains(s))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for s in gone {
        ix.remove_file(collection, &s);
        report.removed += 1;
    }
    for (file, source) in files.iter().zip(&sources) {
        bar.set_message(format!(
            "{} | pages {} chunks {}",
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            report.pages,
            report.children
        ));
        let bytes = std::fs::read(file).map_err(Error::io("reading", file))?;
        let hash = content_hash(&bytes);
        if ix.is_current(collection, source, &hash) {
            report.unchanged += 1;
            bar.inc(1);
            continue;
        }
        let chunks = match block_on_ready(ingest.file_chunks(source, &bytes, hash, |_, _| true)) {
            Ok(c) => c,
            Err(e) => {
                bar.suspend(|| tracing::warn!("skipping {source}: {e}"));
                report.failed.push(format!("{source}: {e}"));
                bar.inc(1);
                continue;
            }
        };
        report.pages += chunks.pages;
        report.parents += chunks.parents.len();
        report.children += chunks.children.len();
        ix.add_file(collection, chunks)?;
        report.indexed += 1;
        if let Some(parent_dir) = index_path.parent() {
            std::fs::create_dir_all(parent_dir).map_err(Error::io("creating", parent_dir))?;
        }
        write_atomic(index_path, &ix.to_bytes()?)?;
        bar.inc(1);
    }
    bar.finish();
    if report.indexed == 0 && report.removed > 0 {
        write_atomic(index_path, &ix.to_bytes()?)?;
    }
    Ok(report)
}

/// One question of a retrieval evaluation set (`bench/rag_eval_set.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EvalQuestion {
    /// Collection to search.
    pub collection: String,
    /// File name of the answering document.
    pub file: String,
    /// The question.
    pub question: String,
    /// 1-based pages that answer it.
    pub pages: Vec<u32>,
}

/// Retrieval quality and speed of one method.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalRow {
    /// Method name.
    pub method: String,
    /// Share of questions with a relevant passage in the top 5.
    pub recall_at_5: f64,
    /// Share with a relevant passage in the top 20.
    pub recall_at_20: f64,
    /// Mean reciprocal rank of the first relevant passage (top 20; 0 if none).
    pub mrr: f64,
    /// Median retrieval latency (ms), query embedding included.
    pub p50_ms: f64,
    /// 95th-percentile latency (ms).
    pub p95_ms: f64,
}

/// Runs every question through BM25, dense, hybrid and hybrid + MMR (λ 0.7)
/// — with a reranker also hybrid top-20 reranked, and reranked with the
/// hybrid ranking fused back in (RRF) — searching the question's own
/// collection, and scores the ranked pages.
pub fn eval_retrieval(
    ix: &mut RagIndex,
    embedder: &Embedder<CpuBackend>,
    questions: &[EvalQuestion],
    reranker: Option<&dyn cairn_core::retrieve::Reranker>,
) -> Result<Vec<EvalRow>> {
    use cairn_core::rag::{Method, SearchOptions};
    let mut methods: Vec<(&str, Method, Option<f32>, bool)> = vec![
        ("bm25", Method::Bm25, None, false),
        ("dense", Method::Dense, None, false),
        ("hybrid", Method::Hybrid, None, false),
        ("hybrid+mmr", Method::Hybrid, Some(0.7), false),
    ];
    if reranker.is_some() {
        methods.push(("hybrid+rerank", Method::Hybrid, None, true));
        methods.push(("hybrid+rerank-rrf", Method::Hybrid, None, true));
    }
    let mut rows = Vec::new();
    for (name, method, mmr, rerank) in methods {
        let (mut r5, mut r20, mut rr) = (0usize, 0usize, 0f64);
        let mut times = Vec::with_capacity(questions.len());
        for q in questions {
            let t = std::time::Instant::now();
            let qv = embedder.encode(&[q.question.as_str()], true)?.data;
            let hits = ix.search(
                &q.question,
                &qv,
                &SearchOptions {
                    method,
                    candidates: 20,
                    k: 20,
                    mmr_lambda: mmr,
                    collections: vec![q.collection.clone()],
                    ..Default::default()
                },
            )?;
            let hits = match (rerank, reranker) {
                (true, Some(r)) if name.ends_with("-rrf") => cairn_core::rag::rerank_fused(
                    r,
                    &q.question,
                    hits,
                    20,
                    SearchOptions::default().rrf_c,
                )?,
                (true, Some(r)) => cairn_core::rag::rerank(r, &q.question, hits, 20)?,
                _ => hits,
            };
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let first = hits.iter().position(|h| {
                h.chunk.source.ends_with(&q.file)
                    && h.chunk.page.is_some_and(|p| q.pages.contains(&p))
            });
            if let Some(i) = first {
                r5 += usize::from(i < 5);
                r20 += 1;
                rr += 1.0 / (i + 1) as f64;
            }
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        let n = questions.len().max(1) as f64;
        rows.push(EvalRow {
            method: name.into(),
            recall_at_5: r5 as f64 / n,
            recall_at_20: r20 as f64 / n,
            mrr: rr / n,
            p50_ms: pct(0.5),
            p95_ms: pct(0.95),
        });
    }
    Ok(rows)
}
