//! `cairn ask`: retrieve passages for a question, answer from them with
//! citations, and list the sources a reader can check.

use std::path::Path;

use cairn_core::backend::Backend;
use cairn_core::embedder::{Embedder, EmbedderOptions};
use cairn_core::generate::Generator;
use cairn_core::rag::answer::{Answer, AskOptions, SourceText};
use cairn_core::rag::{Hit, RagIndex};
use clap::ValueEnum;

use super::args::{DecodingArgs, RetrieveArgs};
use super::generate::DecoderArgs;
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::{Error, Result};
use crate::generate::load_adapted;
use crate::on_backend;

use crate::rag::ATTRIBUTION_MIN_COSINE;

/// The source text a prompt shows for each hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ContextArg {
    /// The matched 128-token chunk (best for small models).
    Matched,
    /// The matched chunk's whole 512-token passage.
    Passage,
}

/// How `ask` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnswerArg {
    /// The decoder writes the answer from the sources, citing them.
    Generate,
    /// Extractive: the source sentences closest to the question, quoted
    /// verbatim with their source numbers (no decoder; faithful by
    /// construction).
    Quote,
}

/// Arguments of `cairn ask`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The question.
    pub question: String,
    /// Retrieval options.
    #[command(flatten)]
    pub retrieval: RetrieveArgs,
    /// Print the retrieved passages (JSON) instead of generating an answer.
    #[arg(long)]
    pub retrieve_only: bool,
    /// Below this best question–passage cosine, answer "I don't know" without generating.
    #[arg(long, default_value_t = 0.35)]
    pub min_cosine: f32,
    /// The decoder (e.g. with the grounded-answering adapter of
    /// bench/reports/grounded/REPORT.md); its backend also runs the embedder
    /// (the router and the reranker run on the CPU).
    #[command(flatten)]
    pub decoder: DecoderArgs,
    /// Source text in the prompt (and what `--answer quote` quotes from).
    #[arg(long, value_enum, default_value = "matched")]
    pub context: ContextArg,
    /// Generate the answer, or quote the supporting sentences.
    #[arg(long, value_enum, default_value = "generate")]
    pub answer: AnswerArg,
    /// `--answer quote`: most sentences quoted.
    #[arg(long, default_value_t = crate::rag::QUOTE_SENTENCES)]
    pub quote_sentences: usize,
    /// `--answer quote`: least question–sentence cosine for a quote (none
    /// that close: "I don't know").
    #[arg(long, default_value_t = crate::rag::QUOTE_MIN_COSINE)]
    pub quote_min_cosine: f32,
    /// Decoding options.
    #[command(flatten)]
    pub decoding: DecodingArgs,
}

/// Runs `cairn ask`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let path = a.retrieval.index.path(cache);
    if !path.exists() {
        return Err(Error::Model(format!(
            "no index at {}; build one with `cairn index DIR --collection NAME`",
            path.display()
        )));
    }
    let generation = a.decoding.config()?;
    let emb_dir = resolve_model(&a.retrieval.index.embedder, cache)?;
    on_backend!(a.decoder.backend.pick()?, b => {
        let emb = load_embedder(b.clone(), &emb_dir, &EmbedderOptions::default())?;
        let mut ix = crate::rag::read_index(&path, &a.retrieval.index.embedder, emb.dim())?;
        let hits = retrieve(&a, &emb, &mut ix)?;
        if a.retrieve_only {
            println!("{}", serde_json::to_string_pretty(&hits).unwrap_or_default());
            return Ok(());
        }
        let source_text = match a.context {
            ContextArg::Passage => SourceText::Passage,
            ContextArg::Matched => SourceText::Matched,
        };
        if a.answer == AnswerArg::Quote {
            let answer = pollster::block_on(cairn_core::rag::answer::quote(
                &emb,
                &a.question,
                &hits,
                source_text,
                a.quote_sentences,
                a.quote_min_cosine,
            ))?;
            println!("{}", answer.text);
            return print_sources(&emb, &answer);
        }
        let generator = load_adapted(
            b,
            &resolve_model(&a.decoder.model, cache)?,
            a.decoder.adapter.as_deref(),
        )?;
        let ask = AskOptions {
            generation,
            min_cosine: a.min_cosine,
            source_text,
        };
        let answer = stream_answer(&generator, &a.question, &hits, &ask)?;
        print_sources(&emb, &answer)
    })
}

/// Routes (with `--router`), searches, and reranks (with `--reranker`).
fn retrieve<B: Backend>(a: &Args, emb: &Embedder<B>, ix: &mut RagIndex) -> Result<Vec<Hit>> {
    let r = &a.retrieval;
    let router = r
        .router
        .as_ref()
        .map(|dir| crate::train::load_classifier(dir, None))
        .transpose()?;
    let reranker = r
        .reranker
        .as_ref()
        .map(|dir| crate::train::load_classifier(dir, None))
        .transpose()?;
    let qv = pollster::block_on(emb.encode_async(&[a.question.as_str()], true))?.data;
    let with = crate::rag::Retrieval {
        router: router.as_ref().map(|c| (c, r.router_threshold)),
        reranker: reranker.as_ref().map(|c| (c, r.rerank_fusion)),
    };
    Ok(crate::rag::retrieve(&a.question, &qv, ix, &r.search_options(), with)?.hits)
}

/// Generates the grounded answer, streaming it to stdout.
fn stream_answer<B: Backend>(
    generator: &Generator<B>,
    question: &str,
    hits: &[Hit],
    ask: &AskOptions,
) -> Result<Answer> {
    use std::io::Write;
    let answer = pollster::block_on(cairn_core::rag::answer::answer(
        generator,
        question,
        hits,
        ask,
        |piece| {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(piece.as_bytes());
            let _ = o.flush();
            true
        },
    ))?;
    println!();
    Ok(answer)
}

/// Lists the sources of a grounded answer: the ones it cites; or, when it
/// cites none, the ones its sentences match; else the ones it was given.
fn print_sources<B: Backend>(emb: &Embedder<B>, a: &Answer) -> Result<()> {
    if !a.grounded {
        return Ok(());
    }
    let label = |h: &Hit| {
        format!(
            "{}{} [{}]",
            h.chunk.source,
            h.chunk
                .page
                .map(|p| format!(", page {p}"))
                .unwrap_or_default(),
            h.collection
        )
    };
    if !a.cited.is_empty() {
        println!("\nSources cited:");
        for n in &a.cited {
            println!("  [{n}] {}", label(&a.sources[n - 1]));
        }
        return Ok(());
    }
    // The model wrote no [n]: trace each answer sentence to the source
    // sentence it is closest to, and say so.
    let found = pollster::block_on(cairn_core::rag::answer::attribute(
        emb,
        &a.text,
        &a.sources,
        ATTRIBUTION_MIN_COSINE,
    ))?;
    let mut sources: Vec<usize> = found.iter().map(|f| f.source).collect();
    sources.sort_unstable();
    sources.dedup();
    if sources.is_empty() {
        println!(
            "\nSources (retrieved; the answer cites none and no answer sentence matches one):"
        );
        for (i, h) in a.sources.iter().enumerate() {
            println!("  [{}] {}", i + 1, label(h));
        }
    } else {
        println!(
            "\nSources (attributed by cairn: the model wrote no [n]; answer sentences matched to source sentences, cosine ≥ {ATTRIBUTION_MIN_COSINE}):"
        );
        for n in sources {
            let best = found
                .iter()
                .filter(|f| f.source == n)
                .map(|f| f.cosine)
                .fold(0f32, f32::max);
            println!("  [{n}] {} (cosine {best:.2})", label(&a.sources[n - 1]));
        }
    }
    Ok(())
}
