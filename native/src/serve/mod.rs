//! `cairn serve`: one HTTP service for generation, embeddings, reranking,
//! classification and cited answers, with an OpenAI-compatible API.
//!
//! - [`engine`]: the decoder thread and its continuous-batching loop.
//! - [`embedder`]: the embedding batcher thread.
//! - [`openai`]: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`.
//! - [`routes`]: `/v1/rerank`, `/v1/classify`, `/v1/collections`, `/v1/ask`.
//! - [`documents`]: uploading documents into the index and deleting them.
//! - [`error`]: errors in OpenAI's shape. [`metrics`]: `/metrics`.
//!
//! The listener binds first; the embedder, classifiers and index load
//! before requests are taken, the decoder in its own thread — `/health`
//! answers 503 until it is loaded. Model work never runs on the async
//! threads. SIGTERM or Ctrl-C stops accepting connections, lets the
//! streams in flight finish, then stops the model threads.

pub mod documents;
pub mod embedder;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod openai;
pub mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use cairn_core::embedder::EmbedderOptions;
use cairn_core::rag::answer::AskOptions;
use cairn_core::rag::{RagIndex, SearchOptions};
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

use crate::cli::args::Picked;
use crate::error::{Error, Result};
use error::ApiError;
use metrics::Metrics;
use routes::Named;

/// Decoder state reported by `/health`.
const LOADING: u8 = 0;
const READY: u8 = 1;
const FAILED: u8 = 2;

/// Everything `cairn serve` needs, resolved from its arguments.
pub struct ServeConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// The compute backend of the decoder and the embedder.
    pub backend: Picked,
    /// The decoder: name clients use and GGUF path, with an optional LoRA adapter.
    pub decoder: Option<(String, PathBuf, Option<PathBuf>)>,
    /// The embedder: name clients use and directory.
    pub embedder: Option<(String, PathBuf)>,
    /// The RAG index file (created by the first upload when missing).
    pub index: Option<PathBuf>,
    /// The router directory and its threshold.
    pub router: Option<(PathBuf, f32)>,
    /// The reranker directory, and whether its scores fuse with retrieval ranks.
    pub reranker: Option<(PathBuf, bool)>,
    /// More classifier directories for `/v1/classify`.
    pub classifiers: Vec<PathBuf>,
    /// Retrieval of `/v1/ask`.
    pub search: SearchOptions,
    /// Answering of `/v1/ask`.
    pub ask: AskOptions,
    /// Required bearer key of `/v1/*`, if any.
    pub api_key: Option<String>,
    /// Sequences decoded together at most.
    pub max_concurrency: usize,
    /// Requests waiting for a slot at most (then 429).
    pub queue: usize,
    /// `max_tokens` when a request gives none.
    pub default_max_tokens: usize,
    /// Largest request body in bytes (then 413).
    pub max_body_bytes: usize,
    /// Directory served at `/` (the demo page), with `/pkg/` and `/models/`.
    pub static_dirs: Vec<(String, PathBuf)>,
}

/// What every handler shares.
pub struct AppState {
    engine: Option<engine::EngineHandle>,
    decoder_name: Option<String>,
    decoder_state: Arc<AtomicU8>,
    embed: Option<embedder::EmbedHandle>,
    embedder_name: Option<String>,
    index: Option<Arc<Mutex<RagIndex>>>,
    index_path: Option<PathBuf>,
    router: Option<Named>,
    router_threshold: f32,
    reranker: Option<Named>,
    rerank_fusion: bool,
    classifiers: Vec<Named>,
    search: SearchOptions,
    ask: AskOptions,
    api_key: Option<String>,
    default_max_tokens: usize,
    started_unix: u64,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// Every model id `/v1/models` lists.
    pub fn model_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .decoder_name
            .iter()
            .chain(&self.embedder_name)
            .cloned()
            .collect();
        v.extend(self.reranker.iter().map(|(n, _)| n.clone()));
        v.extend(self.classifiers.iter().map(|(n, _)| n.clone()));
        v.dedup();
        v
    }
}

fn dir_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Runs the service until SIGTERM or Ctrl-C.
pub fn run(cfg: ServeConfig) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let mut threads = Vec::new();

    // The embedder thread loads its model and says so (or why not).
    let mut embed = None;
    if let Some((name, dir)) = &cfg.embedder {
        let (handle, rx) = embedder::channel(cfg.queue.max(1), 0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (backend, dir, m) = (cfg.backend.clone(), dir.clone(), metrics.clone());
        threads.push(
            std::thread::Builder::new()
                .name("cairn-embedder".into())
                .spawn(move || {
                    crate::on_backend!(backend, b => {
                        match crate::embed::load_embedder(b, &dir, &EmbedderOptions::default()) {
                            Ok(e) => {
                                let _ = ready_tx.send(Ok(e.dim()));
                                embedder::run(&e, &rx, 256, &m);
                            }
                            Err(e) => { let _ = ready_tx.send(Err(e)); }
                        }
                    });
                })
                .map_err(|e| Error::Model(format!("starting the embedder thread: {e}")))?,
        );
        let dim = ready_rx
            .recv()
            .map_err(|_| Error::Model("the embedder thread stopped while loading".into()))??;
        tracing::info!(embedder = %name, dim, "embedder loaded");
        embed = Some((handle.with_dim(dim), name.clone()));
    }

    let index = match &cfg.index {
        Some(path) => {
            let (name, dim) = match &embed {
                Some((h, n)) => (n.clone(), h.dim),
                None => {
                    return Err(Error::Usage(
                        "--index needs an embedder (--embedder) to embed questions".into(),
                    ));
                }
            };
            let ix = crate::rag::read_index(path, &name, dim)?;
            tracing::info!(index = %path.display(), collections = ix.collections.len(), "index loaded");
            Some(Arc::new(Mutex::new(ix)))
        }
        None => None,
    };
    let load = |dir: &PathBuf| -> Result<Named> {
        let c = crate::train::load_classifier(dir, None)?;
        Ok((dir_name(dir), Arc::new(c)))
    };
    let router = cfg.router.as_ref().map(|(d, _)| load(d)).transpose()?;
    let reranker = cfg.reranker.as_ref().map(|(d, _)| load(d)).transpose()?;
    let mut classifiers: Vec<Named> = router.iter().cloned().collect();
    for d in &cfg.classifiers {
        classifiers.push(load(d)?);
    }

    // The decoder loads in its own thread; /health says when it is ready.
    let decoder_state = Arc::new(AtomicU8::new(LOADING));
    let mut engine_handle = None;
    if let Some((name, path, adapter)) = &cfg.decoder {
        let (handle, rx) = engine::channel(cfg.queue.max(1), metrics.clone());
        let (backend, path, adapter, m, st) = (
            cfg.backend.clone(),
            path.clone(),
            adapter.clone(),
            metrics.clone(),
            decoder_state.clone(),
        );
        let max_batch = cfg.max_concurrency.max(1);
        let name2 = name.clone();
        threads.push(std::thread::Builder::new().name("cairn-decoder".into()).spawn(move || {
            crate::on_backend!(backend, b => {
                let started = Instant::now();
                match crate::generate::load_adapted(b, &path, adapter.as_deref()) {
                    Ok(g) => {
                        st.store(READY, Ordering::SeqCst);
                        tracing::info!(decoder = %name2, secs = started.elapsed().as_secs_f32(), "decoder loaded; ready");
                        engine::run(&g, &rx, max_batch, &m);
                    }
                    Err(e) => {
                        st.store(FAILED, Ordering::SeqCst);
                        tracing::error!(decoder = %name2, error = %e, "the decoder failed to load");
                    }
                }
            });
        }).map_err(|e| Error::Model(format!("starting the decoder thread: {e}")))?);
        engine_handle = Some(handle);
    } else {
        decoder_state.store(READY, Ordering::SeqCst);
    }

    let state = Arc::new(AppState {
        engine: engine_handle,
        decoder_name: cfg.decoder.as_ref().map(|d| d.0.clone()),
        decoder_state,
        embedder_name: embed.as_ref().map(|e| e.1.clone()),
        embed: embed.map(|e| e.0),
        index,
        index_path: cfg.index.clone(),
        router,
        router_threshold: cfg.router.as_ref().map_or(0.9, |r| r.1),
        reranker,
        rerank_fusion: cfg.reranker.as_ref().is_some_and(|r| r.1),
        classifiers,
        search: cfg.search.clone(),
        ask: cfg.ask.clone(),
        api_key: cfg.api_key.clone(),
        default_max_tokens: cfg.default_max_tokens,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        metrics,
    });
    let app = build_router(state, &cfg);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Model(format!("starting the async runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.addr)
            .await
            .map_err(|e| Error::Model(format!("listening on {}: {e}", cfg.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Model(format!("listening on {}: {e}", cfg.addr)))?;
        // The line scripts and tests wait for.
        println!("cairn serve: listening on http://{local}");
        tracing::info!(%local, "listening");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| Error::Model(format!("serving on {local}: {e}")))
    })?;
    // The router (and with it every engine handle) is dropped: the model
    // threads finish what is in flight and stop.
    drop(rt);
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The route table.
fn build_router(state: Arc<AppState>, cfg: &ServeConfig) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/rerank", post(routes::rerank))
        .route("/v1/classify", post(routes::classify))
        .route("/v1/collections", get(routes::collections))
        .route("/v1/ask", post(routes::ask))
        .route("/v1/collections/{name}/documents", post(documents::upload))
        .route(
            "/v1/collections/{name}/documents/{document}",
            delete(documents::delete),
        )
        .route("/v1/{*rest}", any(not_found_fallback))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    let mut app = Router::new()
        .merge(v1)
        .route("/health", get(health))
        .route("/metrics", get(metrics_text));
    let mut root = None;
    for (at, dir) in &cfg.static_dirs {
        if at == "/" {
            root = Some(dir);
        } else {
            app = app.nest_service(at, ServeDir::new(dir));
        }
    }
    // Unknown paths: the static root's 404, or a JSON 404 without one.
    app = match root {
        Some(dir) => app.fallback_service(ServeDir::new(dir)),
        None => app.fallback(not_found_fallback),
    };
    app.layer(middleware::from_fn_with_state(state.clone(), log_request))
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(CorsLayer::permissive())
        .with_state(state)
}

async fn not_found_fallback(req: Request) -> ApiError {
    ApiError::not_found(format!("no route {} {}", req.method(), req.uri().path()))
}

/// 401 unless the request carries `Authorization: Bearer <key>` (when a key is set).
async fn require_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => {
                return ApiError::unauthorized(
                    "missing API key: send the header `Authorization: Bearer <key>`",
                )
                .into_response();
            }
            Some(g) if !constant_time_eq(g.as_bytes(), key.as_bytes()) => {
                return ApiError::unauthorized("incorrect API key").into_response();
            }
            Some(_) => {}
        }
    }
    next.run(req).await
}

/// Compares keys without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 503 while the decoder is loading (or failed to).
async fn require_ready(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match state.decoder_state.load(Ordering::SeqCst) {
        READY => next.run(req).await,
        FAILED => {
            ApiError::unavailable("the decoder failed to load; see the server log").into_response()
        }
        _ => ApiError::unavailable("the models are still loading; retry shortly").into_response(),
    }
}

/// Counts and logs every request (route template, status, milliseconds).
async fn log_request(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    state.metrics.request(&route, status);
    tracing::info!(%method, route = %route, status, ms = started.elapsed().as_millis() as u64, "request");
    res
}

/// `GET /health`: 200 `{"status":"ok"}` once the models are loaded, else 503.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (code, status) = match state.decoder_state.load(Ordering::SeqCst) {
        READY => (StatusCode::OK, "ok"),
        FAILED => (StatusCode::SERVICE_UNAVAILABLE, "failed"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
    };
    (code, axum::Json(serde_json::json!({"status": status}))).into_response()
}

/// `GET /metrics` in Prometheus' text format.
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
