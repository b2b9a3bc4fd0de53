//! `cairn serve`: the HTTP service (OpenAI-compatible API, embeddings,
//! rerank, classify, cited answers, the demo page). See [`crate::serve`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use cairn_core::rag::answer::AskOptions;

use super::args::{DecodingArgs, RetrieveArgs};
use super::generate::DecoderArgs;
use crate::cache::resolve_model;
use crate::error::Result;

/// Arguments of `cairn serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (loopback by default; 0.0.0.0 exposes the service).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The decoder of /v1/chat/completions, /v1/completions and /v1/ask.
    #[command(flatten)]
    pub decoder: DecoderArgs,
    /// Serve no decoder (embeddings, rerank and classify only).
    #[arg(long)]
    pub no_decoder: bool,
    /// Retrieval of /v1/ask: the index (--index, --embedder; the embedder
    /// also serves /v1/embeddings), router, reranker and search options.
    #[command(flatten)]
    pub retrieval: RetrieveArgs,
    /// More classifier directories for /v1/classify (repeatable; named by
    /// their directory name, the router included).
    #[arg(long, value_name = "DIR")]
    pub classifier: Vec<PathBuf>,
    /// Decoding defaults of /v1/ask (OpenAI routes take theirs from the request).
    #[command(flatten)]
    pub decoding: DecodingArgs,
    /// Below this best question–passage cosine, /v1/ask answers "I don't know".
    #[arg(long, default_value_t = 0.35)]
    pub min_cosine: f32,
    /// Require `Authorization: Bearer KEY` on /v1/* (also $CAIRN_API_KEY).
    #[arg(long, env = "CAIRN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Sequences decoded together in one batched step at most.
    #[arg(long, default_value_t = 16)]
    pub max_concurrency: usize,
    /// Requests waiting for a decoding slot at most; beyond, 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// `max_tokens` of a request that gives none.
    #[arg(long, default_value_t = 512)]
    pub default_max_tokens: usize,
    /// Largest request body in bytes; beyond, 413.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Directory served at / (default: the demo page, www/ of the checkout,
    /// when it exists; with /pkg/ the wasm package and /models/ the cache's models).
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
}

/// Runs `cairn serve`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let backend = a.decoder.backend.pick()?;
    let decoder = if a.no_decoder {
        None
    } else {
        Some((
            a.decoder.model.clone(),
            resolve_model(&a.decoder.model, cache)?,
            a.decoder.adapter.clone(),
        ))
    };
    let emb_name = a.retrieval.index.embedder.clone();
    let embedder = Some((emb_name.clone(), resolve_model(&emb_name, cache)?));
    let index_path = a.retrieval.index.path(cache);
    if !index_path.exists() {
        tracing::info!(
            "no RAG index at {} yet: /v1/ask finds nothing until documents are indexed (cairn index, or POST /v1/collections/NAME/documents)",
            index_path.display()
        );
    }
    let index = Some(index_path);
    let mut static_dirs = Vec::new();
    let www = a.static_dir.clone().or_else(|| {
        let here = PathBuf::from("www");
        here.join("index.html").exists().then_some(here)
    });
    if let Some(dir) = www {
        static_dirs.push(("/".to_string(), dir));
        let pkg = std::env::var_os("CAIRN_WASM_WEB")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache.join("build/wasm-pkg/web"));
        if pkg.is_dir() {
            static_dirs.push(("/pkg".to_string(), pkg));
        }
        static_dirs.push(("/models".to_string(), cache.join("models")));
    }
    crate::serve::run(crate::serve::ServeConfig {
        addr: SocketAddr::new(a.host, a.port),
        backend,
        decoder,
        embedder,
        index,
        router: a
            .retrieval
            .router
            .clone()
            .map(|d| (d, a.retrieval.router_threshold)),
        reranker: a
            .retrieval
            .reranker
            .clone()
            .map(|d| (d, a.retrieval.rerank_fusion)),
        classifiers: a.classifier.clone(),
        search: a.retrieval.search_options(),
        ask: AskOptions {
            generation: a.decoding.config()?,
            min_cosine: a.min_cosine,
            ..AskOptions::default()
        },
        api_key: a.api_key.clone(),
        max_concurrency: a.max_concurrency,
        queue: a.queue,
        default_max_tokens: a.default_max_tokens,
        max_body_bytes: a.max_body_bytes,
        static_dirs,
    })
}
