//! The `cairn` command line: the command table and its dispatch. Each
//! command's arguments and `run` live in `cli/<command>.rs`; argument groups
//! shared by several commands (backend, decoding, retrieval) in
//! [`args`]. `main.rs` only sets up logging, parses and maps errors to exit
//! codes (2 for usage errors, 1 for runtime errors).
//!
//! One spelling per concept across commands: `--model` is the model a
//! command runs (an embedder for `embed`, a decoder for `generate`, the base
//! for `train`); `--embedder` is the encoder of a RAG index; `--index` is a
//! RAG index (`.cidx`), `--vectors` a vector collection (`.cvec`);
//! `-o/--output` is what a command writes; `--backend` picks the compute
//! backend wherever a model runs. Older spellings still work for one release
//! and log a deprecation warning.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::error::Result;

pub mod agent;
pub mod args;
pub mod ask;
pub mod chat;
pub mod classify;
pub mod doctor;
pub mod embed;
pub mod eval;
pub mod extract;
pub mod fetch;
pub mod generate;
pub mod index;
pub mod info;
pub mod merge;
pub mod models;
pub mod perplexity;
pub mod quantize;
pub mod reference;
pub mod search;
pub mod serve;
pub mod similarity;
pub mod tokenize;
pub mod train;
pub mod train_tokenizer;
pub mod words;

/// The `cairn` command line.
#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Run language models locally: embeddings, search, RAG, generation, fine-tuning."
)]
pub struct Cli {
    /// Cache directory for models and documents (default: $CAIRN_CACHE, else ~/.cache/cairn).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Every `cairn` command.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Download the pinned models and documents into the cache, verifying every sha256.
    Fetch(fetch::Args),
    /// List the models cairn knows by name and whether they are cached.
    Models(models::Args),
    /// Describe a model: a known name, or a path to a GGUF file, safetensors file or model directory.
    Info(info::Args),
    /// Tokenize text with a model's tokenizer.json and print ids and tokens as JSON.
    Tokenize(tokenize::Args),
    /// Embed texts with a sentence encoder; prints JSON (vectors and, for 2–16 texts, their cosine matrix), writes .npy, or adds them to a vector collection.
    Embed(embed::Args),
    /// Search vector collections (one .cvec file, or every *.cvec in a directory) with a text query.
    Search(search::Args),
    /// Cosine similarity of two texts under a sentence encoder.
    Similarity(similarity::Args),
    /// Generate a continuation of a prompt with a GGUF decoder, streaming the text.
    Generate(generate::Args),
    /// Chat with a GGUF decoder: one user turn per line of stdin (interactive on a terminal).
    Chat(chat::Args),
    /// Perplexity of a text under a GGUF decoder (sliding window beyond the context).
    Perplexity(perplexity::Args),
    /// Print the text a document loader extracts (JSON: segments with page / heading path).
    Extract(extract::Args),
    /// Index documents (PDF, HTML, Markdown, text) into a named collection of a RAG index.
    Index(index::Args),
    /// Answer a question from the indexed documents, streaming the answer and citing sources.
    Ask(Box<ask::Args>),
    /// Classify texts with a fine-tuned classifier directory; prints JSON (labels and scores).
    Classify(classify::Args),
    /// Train: fine-tune a classifier or a LoRA adapter, learn a tokenizer or word vectors (`cairn train --help`).
    Train(train::Args),
    /// Nearest words, analogies and similarities in word2vec vectors (`cairn train word2vec`).
    Words(words::WordsArgs),
    /// Evaluate a classifier or retrieval on labeled data.
    Eval(eval::Args),
    /// Write a GGUF file with its matrices in another block type (Q8_0, Q4_0, Q4_1, Q4_K, F16, F32),
    /// from a GGUF file or a Hugging Face Llama directory (config.json + model.safetensors + tokenizer.json).
    Quantize(quantize::Args),
    /// Merge a LoRA adapter into a GGUF decoder's weights (W + alpha/r·B·A) and write a new GGUF.
    Merge(merge::Args),
    /// Check the compute backends: find a GPU adapter and run the matmul kernel against the CPU.
    Doctor(doctor::Args),
    /// Solve a task with a ReAct agent and tools (calculator, search, read_page), streaming each step.
    Agent(Box<agent::Args>),
    /// Serve the models over HTTP: an OpenAI-compatible API (chat, completions, embeddings), rerank, classify and cited answers, with continuous batching.
    Serve(Box<serve::Args>),
    /// Deprecated spelling of `cairn eval retrieval`.
    #[command(hide = true)]
    EvalRetrieval(eval::RetrievalArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let cache = crate::cache::cache_dir(cli.cache_dir.as_deref());
    dispatch(cli.command, &cache)
}

fn dispatch(cmd: Cmd, cache: &Path) -> Result<()> {
    match cmd {
        Cmd::Fetch(a) => fetch::run(a, cache),
        Cmd::Models(a) => models::run(a, cache),
        Cmd::Info(a) => info::run(a, cache),
        Cmd::Tokenize(a) => tokenize::run(a, cache),
        Cmd::Embed(a) => embed::run(a, cache),
        Cmd::Search(a) => search::run(a, cache),
        Cmd::Similarity(a) => similarity::run(a, cache),
        Cmd::Generate(a) => generate::run(a, cache),
        Cmd::Chat(a) => chat::run(a, cache),
        Cmd::Perplexity(a) => perplexity::run(a, cache),
        Cmd::Extract(a) => extract::run(a, cache),
        Cmd::Index(a) => index::run(a, cache),
        Cmd::Ask(a) => ask::run(*a, cache),
        Cmd::Classify(a) => classify::run(a, cache),
        Cmd::Train(a) => train::run(a, cache),
        Cmd::Eval(a) => eval::run(a, cache),
        Cmd::Words(a) => words::words(a),
        Cmd::Quantize(a) => quantize::run(a, cache),
        Cmd::Merge(a) => merge::run(a, cache),
        Cmd::Doctor(a) => doctor::run(a, cache),
        Cmd::Serve(a) => serve::run(*a, cache),
        Cmd::Agent(a) => agent::run(*a, cache),
        Cmd::EvalRetrieval(a) => {
            tracing::warn!(
                "`cairn eval-retrieval` is deprecated and will be removed in the next release; use `cairn eval retrieval`"
            );
            eval::retrieval(a, cache)
        }
    }
}

/// Keeps the panics that core catches on purpose (a third-party parser
/// failing on a malformed file, turned into that file's error by
/// [`cairn_core::util::catch_panic`]) out of the terminal: they go to the
/// debug log. Any other panic is a bug and prints as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if cairn_core::util::panicking_in_guard() {
            tracing::debug!("a parser panicked on malformed input (reported as an error): {info}");
        } else {
            default(info);
        }
    }));
}

/// Sets up the structured log on stderr: `CAIRN_LOG` filters (default
/// `info`); colour only when stderr is a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
