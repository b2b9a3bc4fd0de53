//! `cairn eval classify` and `cairn eval retrieval`.

use std::path::{Path, PathBuf};

use cairn_core::embedder::EmbedderOptions;

use super::args::{BackendArgs, IndexArgs};
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::{Error, Result};
use crate::on_backend;

/// Arguments of `cairn eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to evaluate.
    #[command(subcommand)]
    pub what: EvalCmd,
}

/// What `cairn eval` evaluates.
#[derive(clap::Subcommand, Debug)]
pub enum EvalCmd {
    /// Classification report (per-class precision/recall/F1, macro/micro F1,
    /// confusion matrix) of a classifier on labeled JSONL.
    Classify(ClassifyArgs),
    /// Retrieval quality (recall@5, recall@20, MRR) and latency per method on a question set.
    Retrieval(RetrievalArgs),
}

/// Arguments of `cairn eval classify`.
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// Classifier directory.
    #[arg(short, long)]
    pub model: PathBuf,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Labeled JSONL ({"text", "label"} per line).
    #[arg(long)]
    pub data: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cairn eval retrieval`.
#[derive(clap::Args, Debug)]
pub struct RetrievalArgs {
    /// Question set (JSON: {"questions": [{collection, file, question, pages}]}),
    /// e.g. bench/data/rag_eval_set.json (the 170 FAQ questions of the corpus).
    #[arg(long)]
    pub set: PathBuf,
    /// The RAG index and its embedder.
    #[command(flatten)]
    pub index: IndexArgs,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// A cross-encoder directory (one-label pair classifier from `cairn
    /// train classify`): adds "hybrid+rerank" (hybrid top-20 reranked) and
    /// "hybrid+rerank-rrf" (the two rankings fused) rows.
    #[arg(long)]
    pub reranker: Option<PathBuf>,
}

/// Runs `cairn eval`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    match a.what {
        EvalCmd::Classify(a) => classify(a),
        EvalCmd::Retrieval(a) => retrieval(a, cache),
    }
}

fn classify(a: ClassifyArgs) -> Result<()> {
    let (r, _) = on_backend!(a.backend.pick()?, b => {
        let c = crate::train::load_classifier_on(b, &a.model, None)?;
        crate::train::eval_classifier(&c, &a.data)?
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!("{} on {}\n{r}", a.model.display(), a.data.display());
    }
    Ok(())
}

/// Runs `cairn eval retrieval`.
pub fn retrieval(a: RetrievalArgs, cache: &Path) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Set {
        questions: Vec<crate::rag::EvalQuestion>,
    }
    let body = std::fs::read(&a.set).map_err(Error::io("reading", &a.set))?;
    let qs: Set = serde_json::from_slice(&body)
        .map_err(|e| Error::Model(format!("{}: not a question set: {e}", a.set.display())))?;
    let path = a.index.path(cache);
    let reranker = a
        .reranker
        .as_deref()
        .map(|d| crate::train::load_classifier(d, None))
        .transpose()?;
    let dir = resolve_model(&a.index.embedder, cache)?;
    let rows = on_backend!(a.backend.pick()?, b => {
        let emb = load_embedder(b, &dir, &EmbedderOptions::default())?;
        let mut ix = crate::rag::read_index(&path, &a.index.embedder, emb.dim())?;
        crate::rag::eval_retrieval(
            &mut ix,
            &emb,
            &qs.questions,
            reranker
                .as_ref()
                .map(|r| r as &dyn cairn_core::retrieve::Reranker),
        )?
    });
    println!("{} questions, index {}", qs.questions.len(), path.display());
    println!(
        "{:17} {:>9} {:>10} {:>6} {:>8} {:>8}",
        "method", "recall@5", "recall@20", "MRR", "p50 ms", "p95 ms"
    );
    for r in rows {
        println!(
            "{:17} {:>9.3} {:>10.3} {:>6.3} {:>8.1} {:>8.1}",
            r.method, r.recall_at_5, r.recall_at_20, r.mrr, r.p50_ms, r.p95_ms
        );
    }
    Ok(())
}
