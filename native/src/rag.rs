//! `cairn index` and `cairn ask`: building the on-disk RAG index from a
//! directory of documents, and answering questions from it.

use std::path::{Path, PathBuf};

use crate::progress::Progress;
use cairn_core::backend::Backend;
use cairn_core::embedder::Embedder;
use cairn_core::rag::{Ingestor, RagIndex, content_hash};

use crate::atomic::{WriteLock, sweep_partials, write_atomic};
use crate::error::{Error, Result};

pub use cairn_core::rag::answer::{QUOTE_MIN_COSINE, QUOTE_SENTENCES};

/// Least cosine between an answer sentence and a source sentence to
/// attribute the sentence to that source when the model cites none
/// (MiniLM: paraphrases score above ~0.6, merely related sentences 0.3–0.5).
pub const ATTRIBUTION_MIN_COSINE: f32 = 0.6;

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

/// Largest document `cairn index` reads (files are read whole): the
/// 2,415-page Debian Reference is 6 MB; a 10 GB log file is reported, not
/// loaded into memory.
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// Extensions the loaders read.
pub const DOCUMENT_EXTENSIONS: [&str; 6] = ["pdf", "html", "htm", "md", "markdown", "txt"];

/// The documents under a path, as [`document_files`] found them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Canonical paths of the regular files the loaders read, sorted, each once.
    pub files: Vec<PathBuf>,
    /// Entries passed over, each with the reason (unreadable, a dangling or
    /// looping link, a FIFO or device, a directory already walked).
    pub skipped: Vec<String>,
}

fn is_document(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DOCUMENT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The documents under `dir` (pdf, html/htm, md/markdown, txt), walked
/// recursively: paths canonicalised (so `docs`, `./docs` and its absolute
/// path are one source), symlinks followed but no directory walked twice
/// (a link to `.` or a loop ends there), and entries that cannot be read,
/// dangling links, FIFOs and devices skipped and reported instead of ending
/// (or hanging) the walk. `dir` itself must exist.
pub fn document_files(dir: &Path) -> Result<Walk> {
    let root = dir.canonicalize().map_err(Error::io("indexing", dir))?;
    let mut walk = Walk::default();
    let meta = std::fs::metadata(&root).map_err(Error::io("indexing", dir))?;
    if meta.is_file() {
        walk.files.push(root);
        return Ok(walk);
    }
    if !meta.is_dir() {
        return Err(Error::Model(format!(
            "{}: not a regular file or directory",
            dir.display()
        )));
    }
    let mut seen_dirs = std::collections::HashSet::from([root.clone()]);
    let mut seen_files = std::collections::HashSet::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                walk.skipped
                    .push(format!("{}: cannot list ({e})", d.display()));
                continue;
            }
        };
        for e in entries {
            let p = match e {
                Ok(e) => e.path(),
                Err(e) => {
                    walk.skipped
                        .push(format!("{}: cannot list an entry ({e})", d.display()));
                    continue;
                }
            };
            // Follows links; a dangling link or a loop is an error here.
            let (canon, meta) = match p.canonicalize().and_then(|c| {
                let m = std::fs::metadata(&c)?;
                Ok((c, m))
            }) {
                Ok(x) => x,
                Err(e) => {
                    if is_document(&p) || p.is_symlink() {
                        walk.skipped.push(format!("{}: {e}", p.display()));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if seen_dirs.insert(canon.clone()) {
                    stack.push(canon);
                } else {
                    walk.skipped.push(format!(
                        "{}: directory {} already walked",
                        p.display(),
                        canon.display()
                    ));
                }
            } else if !is_document(&p) && !is_document(&canon) {
                continue;
            } else if !meta.is_file() {
                walk.skipped.push(format!(
                    "{}: not a regular file (a FIFO, socket or device)",
                    p.display()
                ));
            } else if seen_files.insert(canon.clone()) {
                walk.files.push(canon);
            }
        }
    }
    walk.files.sort();
    Ok(walk)
}

/// `p` made absolute against the working directory, with `.` and `..`
/// removed lexically (for stored sources whose file may no longer exist).
fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    if let Ok(c) = joined.canonicalize() {
        return c;
    }
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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
    /// Files that could not be read or loaded (reported, not fatal).
    pub failed: Vec<String>,
    /// Entries the walk passed over (see [`Walk::skipped`]).
    pub skipped: Vec<String>,
    /// Pages loaded.
    pub pages: usize,
    /// Parent chunks and indexed child chunks added.
    pub parents: usize,
    /// Child chunks added.
    pub children: usize,
}

/// Indexes every document under `dir` into `collection` of the index at
/// `index_path`: unchanged files (same sha256) are skipped, changed ones
/// replaced, vanished ones removed (only those under `dir`, compared path
/// component by path component, so indexing `d` never touches `d2`); a file
/// that cannot be read is reported and the rest go on. Sources are stored as
/// canonical absolute paths. Children of 128 tokens are embedded and
/// BM25-indexed; their 512-token parents (overlap 64) are what answers cite.
///
/// The run holds the index's [`WriteLock`] from reading it to its last
/// write, so a concurrent writer waits instead of losing this run's update
/// (or making this run lose its own). The index is written atomically after
/// each file, so an interrupted (even killed) run keeps its finished files
/// and the file stays loadable.
pub fn index_dir<B: Backend>(
    embedder: &Embedder<B>,
    embedder_name: &str,
    dir: &Path,
    collection: &str,
    index_path: &Path,
) -> Result<IndexReport> {
    let Walk { files, skipped } = document_files(dir)?;
    for s in &skipped {
        tracing::warn!("skipping {s}");
    }
    let root = dir.canonicalize().map_err(Error::io("indexing", dir))?;
    let _lock = WriteLock::acquire(index_path)?;
    sweep_partials(index_path);
    let mut ix = read_index(index_path, embedder_name, embedder.dim())?;
    let ingest = Ingestor::new(embedder)?;
    let mut report = IndexReport {
        skipped,
        ..Default::default()
    };
    let sources: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let current: std::collections::HashSet<&str> = sources.iter().map(String::as_str).collect();
    // Files that disappeared from this directory leave the collection.
    let gone: Vec<String> = ix
        .collections
        .get(collection)
        .map(|c| {
            c.files
                .keys()
                .filter(|s| {
                    !current.contains(s.as_str()) && absolute(Path::new(s)).starts_with(&root)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for s in gone {
        ix.remove_file(collection, &s);
        report.removed += 1;
    }
    if files.is_empty() && report.removed == 0 {
        return Err(Error::Model(format!(
            "{} holds no .pdf, .html, .md or .txt files{}",
            dir.display(),
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!(" that could be read ({} skipped)", report.skipped.len())
            }
        )));
    }
    let mut bar = Progress::new("index", "files", files.len() as u64);
    for (file, source) in files.iter().zip(&sources) {
        bar.set_message(format!(
            "{} | pages {} chunks {}",
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            report.pages,
            report.children
        ));
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        if size > MAX_DOCUMENT_BYTES {
            let why = format!(
                "{source}: {size} bytes is above the {MAX_DOCUMENT_BYTES}-byte limit for one document (split it)"
            );
            skip_file(&mut bar, &mut report, why);
            continue;
        }
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                skip_file(
                    &mut bar,
                    &mut report,
                    format!("{source}: cannot read ({e})"),
                );
                continue;
            }
        };
        let hash = content_hash(&bytes);
        if ix.is_current(collection, source, &hash) {
            report.unchanged += 1;
            bar.inc(1);
            continue;
        }
        let chunks = match pollster::block_on(ingest.file_chunks(source, &bytes, hash, |_, _| true))
        {
            Ok(c) => c,
            Err(e) => {
                skip_file(&mut bar, &mut report, format!("{source}: {e}"));
                continue;
            }
        };
        report.pages += chunks.pages;
        report.parents += chunks.parents.len();
        report.children += chunks.children.len();
        ix.add_file(collection, chunks)?;
        report.indexed += 1;
        write_atomic(index_path, &ix.to_bytes()?)?;
        bar.inc(1);
    }
    bar.finish();
    if report.indexed == 0 && report.removed > 0 {
        write_atomic(index_path, &ix.to_bytes()?)?;
    }
    Ok(report)
}

/// Trains (or, with `nlist = 0`, removes) the IVF coarse quantizer of
/// `collection` in the index at `index_path` ([`RagIndex::build_ivf`]),
/// under the index's write lock, written atomically. Returns the number of
/// chunks per cell.
pub fn build_ivf(
    index_path: &Path,
    embedder_name: &str,
    dim: usize,
    collection: &str,
    nlist: usize,
    nprobe: usize,
) -> Result<Vec<usize>> {
    let _lock = WriteLock::acquire(index_path)?;
    let mut ix = read_index(index_path, embedder_name, dim)?;
    ix.build_ivf(collection, nlist, nprobe)?;
    write_atomic(index_path, &ix.to_bytes()?)?;
    let mut sizes = vec![0usize; nlist];
    if let Some(c) = ix.collections.get(collection)
        && let Some(ivf) = &c.ivf
    {
        for (cell, ch) in ivf.cells.iter().zip(&c.children) {
            if let (Some(n), Some(_)) = (sizes.get_mut(*cell as usize), ch) {
                *n += 1;
            }
        }
    }
    Ok(sizes)
}

/// A file `index_dir` could not index: logged, reported, counted as done.
fn skip_file(bar: &mut Progress, report: &mut IndexReport, why: String) {
    bar.suspend(|| tracing::warn!("skipping {why}"));
    report.failed.push(why);
    bar.inc(1);
}

/// One question of a retrieval evaluation set (`bench/data/rag_eval_set.json`).
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
pub fn eval_retrieval<B: Backend>(
    ix: &mut RagIndex,
    embedder: &Embedder<B>,
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
            let qv = pollster::block_on(embedder.encode_async(&[q.question.as_str()], true))?.data;
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

/// What [`retrieve`] runs besides the search itself.
#[derive(Clone, Copy)]
pub struct Retrieval<'a> {
    /// A router and its threshold: picks the collections when the search
    /// options name none.
    pub router: Option<(
        &'a cairn_core::classify::TextClassifier<cairn_core::backend::cpu::CpuBackend>,
        f32,
    )>,
    /// A cross-encoder reranker, and whether its scores are fused with the
    /// retrieval ranks (instead of replacing them).
    pub reranker: Option<(
        &'a cairn_core::classify::TextClassifier<cairn_core::backend::cpu::CpuBackend>,
        bool,
    )>,
}

/// The passages retrieved for a question, and the routing decision.
#[derive(Debug, Clone)]
pub struct Retrieved {
    /// Best first.
    pub hits: Vec<cairn_core::rag::Hit>,
    /// The router's decision, when a router ran.
    pub route: Option<crate::train::Route>,
}

/// Routes (with a router), searches, and reranks (with a reranker): the
/// retrieval of `cairn ask` and the service's `/v1/ask`.
pub fn retrieve(
    question: &str,
    question_vec: &[f32],
    ix: &mut RagIndex,
    opts: &cairn_core::rag::SearchOptions,
    with: Retrieval<'_>,
) -> Result<Retrieved> {
    let mut opts = opts.clone();
    let mut route = None;
    if let (Some((router, threshold)), true) = (with.router, opts.collections.is_empty()) {
        let available: Vec<String> = ix.collections.keys().cloned().collect();
        let r = crate::train::route(router, question, threshold, &available)?;
        tracing::info!(label = %r.label, score = r.score, "router: {}", r.reason);
        opts.collections = r.collections.clone();
        route = Some(r);
    }
    let started = std::time::Instant::now();
    let hits = match with.reranker {
        Some((reranker, fusion)) => {
            let first = cairn_core::rag::SearchOptions {
                k: opts.candidates,
                ..opts.clone()
            };
            let candidates = ix.search(question, question_vec, &first)?;
            if fusion {
                cairn_core::rag::rerank_fused(reranker, question, candidates, opts.k, opts.rrf_c)?
            } else {
                cairn_core::rag::rerank(reranker, question, candidates, opts.k)?
            }
        }
        None => ix.search(question, question_vec, &opts)?,
    };
    tracing::info!(
        hits = hits.len(),
        ms = started.elapsed().as_millis() as u64,
        "retrieved"
    );
    Ok(Retrieved { hits, route })
}
